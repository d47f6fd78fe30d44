"""gunicorn's refusals, before Django sees a request, in the API's JSON error shape.

Each test starts gunicorn with the production configuration
(deploy/gunicorn.conf.py) on a tiny WSGI application of this module, under
either worker of config/gunicorn_worker.py, and talks to it over a raw
socket: urllib would refuse to send what these requests send.
"""

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import gunicorn_worker

from .processes import children
from .sockets import free_port

ROOT = Path(__file__).resolve().parent.parent

WORKERS = [
    pytest.param(
        "config.gunicorn_worker.SyncWorker",
        marks=pytest.mark.skipif(
            not gunicorn_worker.AVAILABLE, reason="needs Linux's EPOLLEXCLUSIVE"
        ),
        id="epoll",
    ),
    pytest.param("config.gunicorn_worker.PlainSyncWorker", id="plain"),
    pytest.param("config.gunicorn_worker.ThreadWorker", id="gthread"),  # make run's
]


def hello(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("the application's own error")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def exchange(port, request):
    """Sends `request` (bytes) and reads the answer to the end: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


@pytest.fixture(params=WORKERS)
def port(request, tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "deploy/gunicorn.conf.py",
            "--worker-class",
            request.param,
            "tests.test_gunicorn_errors:hello",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "1",
            "DATA_DIR": str(tmp_path),
            "LOG_LEVEL": "ERROR",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not children(process.pid) or not answers(port):
            assert process.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def answers(port):
    try:
        return exchange(port, b"GET / HTTP/1.0\r\n\r\n")[2] == b"hello"
    except OSError:
        return False


def refusal(port, request):
    status, headers, body = exchange(port, request)
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    answer = json.loads(body)
    assert answer["status"] == status
    return status, answer["error"]


def test_a_request_line_over_the_limit_is_a_json_414(port):
    path = "/api/imports?q=" + "a" * 5000
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert refusal(port, request) == (
        414,
        "The request line is longer than the server accepts (4094 bytes).",
    )


def test_more_header_fields_than_the_limit_is_a_json_431(port):
    headers = "".join(f"X-Field-{n}: {n}\r\n" for n in range(150))
    request = f"GET /api/imports HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()
    assert refusal(port, request) == (
        431,
        "The request has more header fields than the server accepts (100).",
    )


def test_a_header_field_over_the_limit_is_a_json_431(port):
    request = f"GET /api/imports HTTP/1.1\r\nHost: x\r\nCookie: {'c' * 9000}\r\n\r\n".encode()
    assert refusal(port, request) == (
        431,
        "A header field of the request is longer than the server accepts (8190 bytes).",
    )


def test_a_malformed_request_line_is_a_json_400(port):
    status, message = refusal(port, b"HELLO THERE\r\nHost: x\r\n\r\n")
    assert status == 400
    assert message.startswith("The request line is not valid HTTP")


def test_a_malformed_header_is_a_json_400(port):
    request = b"GET /api/imports HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"
    assert refusal(port, request) == (400, "A header field of the request is not valid HTTP.")


def test_the_application_s_own_error_is_still_gunicorn_s_500(port):
    status, headers, _ = exchange(port, b"GET /boom HTTP/1.0\r\n\r\n")
    assert status == 500
    assert headers["Content-Type"] == "text/html"


def test_the_production_configuration_refuses_in_json_without_epollexclusive(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr(gunicorn_worker, "AVAILABLE", False)
    settings = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert settings["worker_class"] == "config.gunicorn_worker.PlainSyncWorker"
