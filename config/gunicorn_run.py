"""gunicorn's configuration for `make run` (Procfile `web`): production's, for one developer.

    gunicorn config.wsgi_run --config config/gunicorn_run.py

It replaces runserver, which under `make run` stalled about 44 ms on every
request of a kept-alive connection (Nagle's algorithm held the answer's last
write until the client's delayed ACK; gunicorn sets TCP_NODELAY) and gave
every client connection a thread of its own, and so, with CONN_MAX_AGE, a
PostgreSQL connection of its own: enough open tabs and scripts and
PostgreSQL answered "too many clients".

Everything deploy/gunicorn.conf.py sets (logging, keep-alive, timeouts, the
metrics of a dead worker) holds here too; what differs is below, each for a
reason:

- one worker of RUN_WEB_THREADS threads (gthread): Django keeps one database
  connection per thread, so the web process holds at most that many however
  many connections browsers keep open (gthread parks idle ones, no thread);
- on 127.0.0.1 only, as runserver was;
- --reload: the worker restarts when a Python module, a template or the
  OpenAPI description changes (Django caches templates even with DEBUG on,
  and runserver's reloader is not here to clear them); config/wsgi_run.py
  answers a portal that fails to load with its traceback meanwhile;
- no max_requests: a restart in the middle of a session only slows it.
"""

import os
import runpy
from pathlib import Path

HOME = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR") or HOME / "var")

# The arbiter, not only Django in the worker, needs it: child_exit marks a
# reloaded worker's gauges dead there (settings.py sets the same default).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "prometheus"))

globals().update(
    (name, value)
    for name, value in runpy.run_path(str(HOME / "deploy" / "gunicorn.conf.py")).items()
    if not name.startswith("__")
)

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = 1
worker_class = "config.gunicorn_worker.ThreadWorker"  # gthread, refusals in JSON
threads = int(os.environ.get("RUN_WEB_THREADS", "8"))
max_requests = 0
reload = True
# Beside the modules the worker imported: the project's own modules, so that
# saving the fix to one that failed to import (and so is not among them)
# reloads too; the templates; the API description. Globs, expanded again on
# every check (new files count), relative to the checkout, make run's
# working directory.
reload_extra_files = [
    "config/*.py",
    "imports/**/*.py",
    "notifications/**/*.py",
    "templates/**/*.html",
    "imports/openapi.json",
]
