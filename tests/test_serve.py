"""`make serve` for real: supervisord, gunicorn, a Celery worker and beat, on PostgreSQL.

Runs in CI's second and third passes (PostgreSQL with Redis, then with
RabbitMQ): an import goes to Available through the emulator, /metrics adds
up what the web and worker processes counted, one request ID leads from the
click to AWS's requestId, static files are hashed, compressed and cached for
ever, a worker killed with SIGKILL is back within 30 s, and SIGTERM stops
everything within 30 s, the AWS call in hand finished, with no ERROR logged.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from imports.models import ApiToken, ImageImport, Status, Team

from .factories import make_member, valid_payload
from .helpers import wait_for_status
from .sockets import free_port

ROOT = Path(__file__).resolve().parent.parent
METRICS_TOKEN = "serve-test-metrics"
PRODUCTION_ENGINES = (
    os.environ.get("DATABASE_URL", "").startswith("postgres")
    and os.environ.get("CELERY_BROKER_URL", "").startswith(("redis", "amqp"))
    and os.environ.get("CACHE_URL", "").startswith("redis")
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not PRODUCTION_ENGINES,
        reason="make serve needs PostgreSQL, Redis or RabbitMQ, and Redis (CI's passes 2 and 3)",
    ),
]

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(url, *, data=None, headers=None, timeout=10):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with OPENER.open(request, timeout=timeout) as response:
            body = response.read().decode(errors="replace")
            return response.status, dict(response.headers), body
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode(errors="replace")


def database_url_for_tests():
    """DATABASE_URL, naming the test database this test's rows are in."""
    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))


class Served:
    def __init__(self, process, env, log):
        self.process, self.env, self.log = process, env, log
        self.url = f"http://127.0.0.1:{env['PORT']}"

    def ctl(self, *args):
        return subprocess.run(
            [str(Path(sys.executable).parent / "supervisorctl"), "-c", "deploy/supervisord.conf"]
            + list(args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()

    def lines(self):
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture
def served(tmp_path, emulator):
    env = {
        **os.environ,
        **emulator.environ(),
        "SECRET_KEY": "serve-test-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url_for_tests(),
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(free_port()),
        "SECURE_SSL_REDIRECT": "0",
        "METRICS_TOKEN": METRICS_TOKEN,
        "SUPERVISOR_PASSWORD": "serve-test",
        "WEB_CONCURRENCY": "2",
        "CELERY_CONCURRENCY": "2",
        "IMPORT_REFRESH_INTERVAL": "1",
        "AWS_ACCESS_KEY_ID": "emulator",
        "AWS_SECRET_ACCESS_KEY": "emulator",
    }
    for name in ("DEBUG", "LOG_FORMAT", "PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, env, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, "\n".join(served.lines()[-40:])
            try:
                if http(served.url + "/accounts/login/", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "\n".join(served.lines()[-40:])
            time.sleep(0.5)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def is_json_object(line):
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def worker_pid(served):
    pid = served.ctl("pid", "portal:worker")
    return int(pid) if pid.isdigit() and pid != "0" else None


def ready_workers(served):
    return sum('"celery@' in line and ' ready."' in line for line in served.lines())


def submit(served, raw_token, request_id, **overrides):
    return http(
        served.url + "/api/imports",
        data=json.dumps(valid_payload(**overrides)).encode(),
        headers={
            "Authorization": f"Bearer {raw_token}",
            "Content-Type": "application/json",
            "X-Request-ID": request_id,
        },
    )


def test_make_serve_runs_an_import_to_available_survives_kill_9_and_stops_cleanly(served, emulator):
    team = Team.objects.create(name="platform")
    user = make_member("alice", team)
    _, raw_token = ApiToken.issue(user=user, team=team)

    status, headers, body = submit(served, raw_token, "click-serve-000001")
    assert status == 201, body
    assert headers["X-Request-ID"] == "click-serve-000001"
    image_import = ImageImport.objects.get(pk=json.loads(body)["id"])
    image_import = wait_for_status(image_import, Status.AVAILABLE, timeout=60)

    # One grep: the click, the worker's AWS call and AWS's requestId.
    traced = [json.loads(line) for line in served.lines() if "click-serve-000001" in line]
    assert any(line["logger"] == "portal.request" for line in traced)
    aws_line = next(line for line in traced if line.get("aws_operation") == "ImportVmImage")
    assert aws_line["aws_request_id"] == image_import.request_id

    # /metrics: the bearer only, and the worker's counters next to the database's gauges.
    assert http(served.url + "/metrics")[0] == 401
    status, _, text = http(
        served.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert status == 200
    assert 'portal_imports{status="available"} 1.0' in text
    assert 'portal_aws_calls_total{error_code="",operation="ImportVmImage"} 1.0' in text
    assert "portal_refresh_cycle_duration_seconds_count" in text

    # Static files: whitenoise, hashed names, compressed, cached for ever.
    stylesheet = re.search(
        r'href="(/static/css/portal\.[0-9a-f]{12}\.css)"', http(served.url + "/accounts/login/")[2]
    )[1]
    status, headers, _ = http(served.url + stylesheet, headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Cache-Control"] == "max-age=315360000, public, immutable"

    # A worker killed with SIGKILL is back within 30 s.
    killed = worker_pid(served)
    assert killed
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (worker_pid(served) or killed) == killed:
        assert time.monotonic() < deadline, served.ctl("status")
        time.sleep(0.5)
    assert (
        "exited: worker (terminated by SIGKILL; not expected)"
        in (Path(served.env["DATA_DIR"]) / "supervisord.log").read_text()
    )

    # The new worker is up (RUNNING in supervisord, ready in Celery) ...
    while "RUNNING" not in served.ctl("status", "portal:worker") or ready_workers(served) < 2:
        assert time.monotonic() < deadline, served.ctl("status")
        time.sleep(0.5)

    # A call in hand when SIGTERM comes is finished (the worker's warm shutdown).
    emulator.latency(4, operation="ImportVmImage")
    status, _, body = submit(served, raw_token, "click-serve-000002", clientToken=str(uuid.uuid4()))
    assert status == 201, body
    in_hand = ImageImport.objects.get(pk=json.loads(body)["id"])
    wait_for_status(in_hand, Status.SUBMITTING, timeout=30)

    # ... and SIGTERM stops everything within 30 s, with no ERROR logged.
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    assert time.monotonic() - started < 30
    logged = "\n".join(served.lines())
    supervisor_log = (Path(served.env["DATA_DIR"]) / "supervisord.log").read_text()
    assert '"level": "ERROR"' not in logged and '"level": "CRITICAL"' not in logged
    assert "Traceback" not in logged
    assert " CRIT " not in supervisor_log and " ERRO " not in supervisor_log
    assert "stopped: worker (exit status 0)" in supervisor_log
    assert "stopped: web (exit status 0)" in supervisor_log
    assert "stopped: beat (exit status 0)" in supervisor_log
    # Once the processes run, every line of the output is a JSON log line:
    # no Celery banner, no supervisord line, no warning (a worker run as
    # root, as here, is warned), for a log shipper to trip on. Only the
    # preparation before them (migrate's progress) is plain text, and the
    # notice Celery prints itself, on stdout, as its worker stops.
    lines = served.lines()
    first = next(number for number, line in enumerate(lines) if line.startswith("{"))
    plain = [line for line in lines[first:] if line and not is_json_object(line)]
    assert set(plain) <= {"worker: Warm shutdown (MainProcess)"}, plain
    assert any('"logger": "py.warnings"' in line for line in lines) == (os.getuid() == 0)
    # Each process loaded what its first request or task would have (config/warmup.py).
    warmed = [json.loads(line)["message"] for line in lines if '"config.warmup"' in line]
    assert any(message.endswith("ms, before the first request.") for message in warmed)
    assert any(message.endswith("ms, before the first task.") for message in warmed)
    assert wait_for_status(in_hand, Status.IMPORTING, timeout=1).image_arn
