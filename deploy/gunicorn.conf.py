"""gunicorn's configuration for `make serve` and the systemd web unit.

Every knob comes from the environment (README, "Configuration"). TERM makes
gunicorn stop accepting, finish the requests in hand within
GUNICORN_GRACEFUL_TIMEOUT, and exit.
"""

import multiprocessing
import os

from prometheus_client import multiprocess

from config import gunicorn_worker
from config.logs import logging_config

bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# gunicorn's own rule of thumb, two per core plus one, capped: the portal's
# requests are short and its slow work is the worker's.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count() + 1, 12))
# gunicorn's sync worker, but a new connection wakes one idle worker, not
# every one (config/gunicorn_worker.py); gunicorn's own where Linux lacks that.
# Either answers a request gunicorn refuses (414, 431, 400) in the API's JSON.
if gunicorn_worker.AVAILABLE:
    worker_class = "config.gunicorn_worker.SyncWorker"
else:
    worker_class = "config.gunicorn_worker.PlainSyncWorker"
# Longer than one AWS call the web makes (a picker's, a cancel's:
# AWS_CONNECT_TIMEOUT + AWS_READ_TIMEOUT, 35 s by default), so a request
# waiting on one slow call ends with AWS's words, not a worker killed mid-way.
# Check setup's several calls share CHECK_SETUP_SECONDS, well inside it;
# against an AWS that hangs, a team role's AssumeRole before a picker's call
# can still outlast it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "45"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = max_requests // 10
# gunicornc's socket beside the portal's other files, not one per user in
# $HOME, which a second gunicorn on the machine would take over.
control_socket = os.path.join(
    os.environ.get("DATA_DIR") or os.path.join(os.path.dirname(__file__), "..", "var"),
    "gunicorn.ctl",
)
# Django's request line (config/logs.py) carries the request ID; gunicorn's
# own access log would only repeat it without one.
accesslog = None
logconfig_dict = logging_config(
    os.environ.get("LOG_FORMAT", "text"), os.environ.get("LOG_LEVEL", "INFO")
)
# gunicorn's own lines ("Booting worker", "Handling signal: term") in the same format.
logconfig_dict["loggers"]["gunicorn.error"] = {
    "handlers": ["console"],
    "level": os.environ.get("LOG_LEVEL", "INFO"),
    "propagate": False,
}


def child_exit(server, worker):
    # A dead worker's live gauges must leave the metrics; its counters stay.
    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # Before the worker takes a request: what its first one would load.
    from config import warmup

    warmup.web_process()
