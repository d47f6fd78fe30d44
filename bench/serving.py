"""Shared by the bench scripts: the portal on gunicorn with DEBUG off, as in production.

`production_environ()` is the environment (its own DATA_DIR, DEBUG=0, plain
HTTP on loopback); `prepare()` migrates and creates a signed-in person and an
API token in that database; `Gunicorn` runs the server and stops it.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_environ(**overrides):
    environ = dict(os.environ)
    environ.update(
        DATA_DIR=environ.get("BENCH_DATA_DIR") or tempfile.mkdtemp(prefix="vmip-bench-"),
        DEBUG="0",
        SECRET_KEY="bench-only-secret-key-of-a-decent-length-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        LOG_LEVEL="ERROR",
    )
    environ.update({name: str(value) for name, value in overrides.items()})
    return environ


def run_manage(environ, *args):
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environ, check=True, timeout=300
    )


PREPARE = """
from django.contrib.auth import get_user_model
from imports.models import ApiToken, Membership, Team
team, _ = Team.objects.get_or_create(name="bench")
user = get_user_model().objects.filter(username="bench").first()
if user is None:
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    Membership.objects.create(team=team, user=user, role=Membership.Role.SUBMITTER)
print(ApiToken.issue(user=user, team=team, name="bench")[1])
"""


def prepare(environ):
    """Migrate, create the person `bench` and return a fresh API token."""
    run_manage(environ, "migrate", "--noinput", "-v", "0")
    run_manage(environ, "collectstatic", "--noinput", "-v", "0")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PREPARE],
        cwd=ROOT,
        env=environ,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]


class Gunicorn:
    """gunicorn with production's configuration (deploy/gunicorn.conf.py, its worker).

    The address, the number of workers and the timeout are the bench's, and
    no worker is recycled after `max_requests` in the middle of a figure.
    """

    def __init__(self, environ, workers=4, timeout=30):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        metrics = str(Path(environ["DATA_DIR"]) / "prometheus")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "--config",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--timeout",
                str(timeout),
                "--max-requests",
                "0",
            ],
            cwd=ROOT,
            # The configuration's child_exit clears a worker's metrics there.
            env={"PROMETHEUS_MULTIPROC_DIR": metrics, **environ},
            start_new_session=True,
        )
        self.wait()

    def wait(self, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def sign_in(session, url, username="bench", password="bench-password-1"):
    """Sign a requests.Session in; cookies are secure with DEBUG off, so send them by hand."""
    session.get(url + "/accounts/login/", timeout=10)
    csrf = session.cookies.get("csrftoken")
    response = session.post(
        url + "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Cookie": f"csrftoken={csrf}"},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed: {response.status_code}")
    session_id = response.cookies.get("sessionid")
    csrf = response.cookies.get("csrftoken") or csrf
    session.headers.update(
        {"Cookie": f"sessionid={session_id}; csrftoken={csrf}", "X-CSRFToken": csrf}
    )
    return session


class RedisServer:
    """A throwaway redis-server on a port of its own (never the shared one)."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
