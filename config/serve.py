"""`make serve`: the portal as production runs it, on one machine, in the foreground.

    python -m config.serve

Refuses to start, naming every missing or unfit variable at once, unless the
configuration is a real one (SECRET_KEY, ALLOWED_HOSTS, PostgreSQL, Redis or
RabbitMQ, a Redis cache) that config/settings.py accepts. DEBUG is off unless
DEBUG is set. Then it empties the metrics directory, runs the migrations (one
machine at a time: manage.py migrate_exclusively) and collects the static
files once, and hands over to supervisord (deploy/supervisord.conf):
gunicorn, one Celery worker, one beat.

What stops it is said in a few plain lines, with no traceback of its own.
"""

import contextlib
import os
import pwd
import runpy
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

HOME = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

REQUIRED = {
    "SECRET_KEY": "a long random string (Django's secret key)",
    "ALLOWED_HOSTS": "the host names the portal answers to, comma-separated",
    "DATABASE_URL": "postgres://USER@HOST:5432/NAME",
    "CELERY_BROKER_URL": "redis://HOST:6379/0 or amqp://USER:PASSWORD@HOST:5672/VHOST",
    "CACHE_URL": "redis://HOST:6379/1",
}
SCHEMES = {
    "DATABASE_URL": ("postgres://", "postgresql://", "pgsql://"),
    "CELERY_BROKER_URL": ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://"),
    "CACHE_URL": ("redis://", "rediss://"),
}
# Once, before any process starts, in this order; each step's own output
# says what went wrong.
PREPARATION = [
    # Under a database lock, so that every machine running make serve may
    # start at once (imports/management/commands/migrate_exclusively.py).
    ["migrate_exclusively"],
    ["collectstatic", "--noinput", "--verbosity", "0"],
]


def configuration_problems(environ):
    """What is missing or unfit for production, one line per variable."""
    problems = []
    for name, example in REQUIRED.items():
        value = environ.get(name, "").strip()
        if not value:
            problems.append(f"{name} is not set: {example}")
        elif name in SCHEMES and not value.startswith(SCHEMES[name]):
            problems.append(f"{name} must be {example}, not {value.split(':', 1)[0]}://...")
    return problems


@contextlib.contextmanager
def environment_of(environ):
    """os.environ is `environ` for the block: config/settings.py reads os.environ itself."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_problems(environ, already_named=()):
    """What config/settings.py refuses under `environ` (DEBUG=nope, LOG_FORMAT=xml), as a list.

    Read here, in this process, so that a bad value is one line among the
    others rather than a traceback from every process it would stop. The
    settings refuse one value at a time, the first they meet; one about a
    variable already named (SECRET_KEY, ALLOWED_HOSTS) would only repeat it.
    They also create their directories (DATA_DIR's): one they may not is
    named too.
    """
    with environment_of(environ):
        try:
            runpy.run_module("config.settings", run_name="config.settings")
        except ImproperlyConfigured as refusal:
            message = str(refusal)
            named = {problem.split()[0] for problem in already_named}
            return [] if message.split()[0] in named else [message]
        except OSError as refusal:
            return [f"cannot create {refusal.filename}: {refusal.strerror}"]
    return []


def debug_requested(environ):
    return environ.get("DEBUG", "0").lower() in ("1", "true", "yes", "on")


def production_environment(environ):
    """The environment the three processes get: production defaults filled in."""
    environ = dict(environ)
    environ.setdefault("DEBUG", "0")
    environ.setdefault("LOG_FORMAT", "json")
    environ.setdefault("LOG_LEVEL", "INFO")
    environ.setdefault("CELERY_CONCURRENCY", str(min(os.cpu_count() or 1, 8) * 2))
    data_dir = Path(environ.get("DATA_DIR") or HOME / "var").resolve()
    environ["DATA_DIR"] = str(data_dir)
    environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data_dir / "prometheus"))
    environ["PORTAL_USER"] = pwd.getpwuid(os.getuid()).pw_name  # supervisord runs as its user
    # The control socket's password (only this user may open the socket
    # anyway); set SUPERVISOR_PASSWORD to use supervisorctl.
    environ.setdefault("SUPERVISOR_PASSWORD", secrets.token_urlsafe(24))
    environ["PORTAL_HOME"] = str(HOME)
    environ["PORTAL_BIN"] = str(BIN)
    environ["PATH"] = f"{BIN}{os.pathsep}{environ.get('PATH', '')}"
    return environ


def exit_status(returncode):
    """A child's exit status as a shell gives it: 128 + N for one killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def prepare(environ):
    """Run PREPARATION; the exit status of the first step that fails, or 0."""
    manage = [str(BIN / "python"), str(HOME / "manage.py")]
    for step in PREPARATION:
        status = exit_status(subprocess.run([*manage, *step], env=environ, cwd=HOME).returncode)
        if status:
            # The step has said why above (migrate_exclusively in one line for
            # a database it cannot reach); say which step it was, and stop.
            print(
                f"make serve: manage.py {step[0]} failed (exit {status}); "
                "its own message is above.",
                file=sys.stderr,
            )
            return status
    return 0


def main():
    environ = production_environment(os.environ)
    problems = configuration_problems(os.environ)
    problems += settings_problems(environ, already_named=problems)
    if problems:
        print("make serve needs a production configuration:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print('See README.md, "Production".', file=sys.stderr)
        return 2
    if debug_requested(os.environ):
        print("make serve: DEBUG is on because DEBUG is set; never on a public address.")
    Path(environ["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    # Counters restart from zero with the processes that wrote them.
    metrics_dir = Path(environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    status = prepare(environ)
    if status:
        return status
    supervisord = [
        str(BIN / "supervisord"),
        "--nodaemon",
        "--configuration",
        str(HOME / "deploy" / "supervisord.conf"),
    ]
    os.chdir(HOME)
    os.execve(supervisord[0], supervisord, environ)


if __name__ == "__main__":
    sys.exit(main())
