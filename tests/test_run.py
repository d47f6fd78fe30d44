"""`make run`'s web process for real: the Procfile's `web` line, started through honcho.

It is gunicorn (config/gunicorn_run.py) with DEBUG on, not runserver, which
stalled on kept-alive connections and held a PostgreSQL connection per
client connection. These tests start it as `make run` does and check that
kept-alive connections are kept, that on PostgreSQL the database
connections stay bounded by the worker's threads however many clients come
and stay, that static files (the portal's, the admin's, Uppy's) are served,
that a saved module or template restarts the worker (on a copy of the
project), that a module that fails to import is answered with its error
until its fix is saved, and that Ctrl-C stops it within seconds.
"""

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from imports.models import ApiToken, Team

from .factories import make_import, make_member
from .sockets import free_port

ROOT = Path(__file__).resolve().parent.parent
APPLICATION_NAME = "make-run-test"
THREADS = 4

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

on_postgresql = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="connections per client are PostgreSQL's limit (CI's passes 2 and 3)",
)


def database_url_for_tests():
    """The test database, its sessions named so that they can be counted apart."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return (
        f"postgres://{settings['USER']}{password}@{settings['HOST']}:{settings['PORT']}"
        f"/{settings['NAME']}?application_name={APPLICATION_NAME}"
    )


class RunWeb:
    """`python -m config.procfile start --procfile Procfile --port PORT web`, as `make run`."""

    def __init__(self, data_dir, home=ROOT):
        data_dir.mkdir(exist_ok=True)
        self.home = home
        self.port = free_port()
        self.log = data_dir / "run.log"
        environ = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url_for_tests(),
            "RUN_WEB_THREADS": str(THREADS),
        }
        for name in ("DEBUG", "PROMETHEUS_MULTIPROC_DIR", "LOG_FORMAT", "LOG_LEVEL"):
            environ.pop(name, None)
        with open(self.log, "w") as out:
            self.honcho = subprocess.Popen(
                [sys.executable, "-m", "config.procfile", "start", "--procfile", "Procfile"]
                + ["--port", str(self.port), "web"],
                cwd=home,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_until_answering()

    def wait_until_answering(self, seconds=60):
        deadline = time.monotonic() + seconds
        while True:
            assert self.honcho.poll() is None, self.text()[-3000:]
            try:
                if self.get(self.connection(), "/healthz").status == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, self.text()[-3000:]
            time.sleep(0.2)

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    @staticmethod
    def get(client, path, headers=None):
        client.request("GET", path, headers=headers or {})
        response = client.getresponse()
        response.body = response.read()
        return response

    def text(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        if self.honcho.poll() is None:
            self.honcho.send_signal(signal.SIGINT)
            try:
                self.honcho.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.honcho.kill()
                self.honcho.wait()


@pytest.fixture
def run_web(tmp_path):
    web = RunWeb(tmp_path)
    yield web
    web.stop()


@pytest.fixture
def bearer(db):
    team = Team.objects.create(name="platform")
    user = make_member("alice", team)
    make_import(team, user)
    return {"Authorization": f"Bearer {ApiToken.issue(user=user, team=team)[1]}"}


def test_it_is_gunicorn_and_keeps_connections_alive(run_web, bearer):
    client = run_web.connection()
    first = run_web.get(client, "/api/imports", bearer)
    kept = client.sock
    for _ in range(200):
        response = run_web.get(client, "/api/imports", bearer)
        assert response.status == 200
    assert client.sock is kept  # one TCP connection for all of them
    assert response.getheader("Connection") != "close"
    assert first.status == 200
    assert "Using worker: config.gunicorn_worker.ThreadWorker" in run_web.text()  # gthread


def test_the_worker_loads_what_a_first_request_needs_before_taking_one(run_web):
    # config/warmup.py, through deploy/gunicorn.conf.py's post_worker_init,
    # which make run's configuration takes over.
    assert re.search(
        r"Loaded the views, the templates, .* in \d+ ms, before the first request\.",
        run_web.text(),
    )
    assert "Could not load" not in run_web.text()


def database_sessions():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


@on_postgresql
def test_on_postgresql_its_connections_stay_bounded_however_many_clients_stay(run_web, bearer):
    # runserver gave each client connection a thread, and each thread its
    # own PostgreSQL connection (CONN_MAX_AGE keeps it): 50 idle browsers,
    # 50 connections, until PostgreSQL answered "too many clients".
    kept_alive = run_web.connection()
    for _ in range(200):
        assert run_web.get(kept_alive, "/api/imports", bearer).status == 200
    idle_clients = []
    for _ in range(50):
        client = run_web.connection()
        assert run_web.get(client, "/api/imports", bearer).status == 200
        idle_clients.append(client)  # left open, as a browser leaves its connections
    held = database_sessions()
    assert 1 <= held <= THREADS
    for client in [kept_alive, *idle_clients]:
        client.close()
    assert database_sessions() <= THREADS


def static_paths(html):
    return sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', html)))


def test_static_files_are_served_with_debug_on(run_web):
    client = run_web.connection()
    pages = ("/accounts/login/", "/admin/login/")
    linked = [
        path for page in pages for path in static_paths(run_web.get(client, page).body.decode())
    ]
    assert "/static/css/portal.css" in linked and "/static/admin/css/base.css" in linked
    # The New import page's scripts, Uppy's vendored bundle among them.
    wanted = ["/static/js/upload.js", "/static/vendor/uppy/uppy.min.js"]
    for path in linked + wanted:
        response = run_web.get(client, path)
        assert response.status == 200, path
        assert response.getheader("Content-Type").startswith(("text/css", "text/javascript"))


def project_copy(destination):
    """The files `make run`'s web process reads, copied: these tests edit them."""
    for name in ("config", "imports", "notifications", "templates"):
        shutil.copytree(
            ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("manage.py", "Procfile"):
        shutil.copy2(ROOT / name, destination / name)
    (destination / "deploy").mkdir()
    shutil.copy2(ROOT / "deploy" / "gunicorn.conf.py", destination / "deploy")
    (destination / "static").symlink_to(ROOT / "static")
    return destination


@pytest.fixture
def copied_run_web(tmp_path):
    web = RunWeb(tmp_path / "data", home=project_copy(tmp_path / "home"))
    yield web
    web.stop()


def save(web, relative, text):
    """Write a file as an editor saves it, until the web process has restarted its worker."""
    path = web.home / relative
    path.write_text(text)
    booted = web.text().count("Booting worker")
    deadline = time.monotonic() + 30
    while web.text().count("Booting worker") == booted:
        # Saved again until seen: the reloader (a poll each second) notices
        # a change only after its first look at a file, and it first looks
        # at a module once imported (urls.py: at the first request).
        os.utime(path)
        assert time.monotonic() < deadline, web.text()[-3000:]
        time.sleep(0.5)
    assert f"Worker reloading: {relative} modified" in web.text() or (
        f"Worker reloading: {path} modified" in web.text()
    )


def page(web, path):
    response = web.get(web.connection(), path)
    return response.status, response.body.decode(errors="replace")


def test_a_saved_template_or_module_restarts_the_worker(copied_run_web):
    web = copied_run_web
    base = (web.home / "templates" / "base.html").read_text()
    save(web, "templates/base.html", base.replace("</body>", "<p>edited template</p></body>"))
    web.wait_until_answering()
    assert "edited template" in page(web, "/accounts/login/")[1]
    health = (web.home / "imports" / "health.py").read_text()
    save(web, "imports/health.py", health.replace('{"status": "ok"}', '{"status": "edited"}', 1))
    web.wait_until_answering()
    assert "edited" in page(web, "/healthz")[1]


@pytest.mark.parametrize(
    "module, when",
    [("imports/admin.py", "while the portal loads"), ("imports/api.py", "at the first request")],
)
def test_a_module_that_fails_to_import_shows_its_error_until_its_fix_is_saved(
    copied_run_web, module, when
):
    web = copied_run_web
    source = (web.home / module).read_text()
    save(web, module, source + '\nraise RuntimeError("a half-saved edit")\n')
    deadline = time.monotonic() + 30
    while (answer := page(web, "/api/imports"))[0] != 500:
        assert time.monotonic() < deadline, web.text()[-3000:]
        time.sleep(0.2)
    assert "a half-saved edit" in answer[1]  # the traceback, with DEBUG on
    assert web.honcho.poll() is None  # make run goes on
    save(web, module, source)  # not imported now: found through the globs
    web.wait_until_answering()
    assert page(web, "/api/imports")[0] == 401


def test_ctrl_c_stops_it_within_seconds_even_with_a_connection_kept_alive(run_web):
    browser = run_web.connection()
    assert run_web.get(browser, "/accounts/login/").status == 200
    started = time.monotonic()
    run_web.honcho.send_signal(signal.SIGINT)
    run_web.honcho.wait(timeout=30)
    assert time.monotonic() - started < 10
    output = run_web.text()
    assert "web.1 stopped" in output and "SIGKILL" not in output
