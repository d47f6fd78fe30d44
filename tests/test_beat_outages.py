"""Beat through a PostgreSQL outage: it stands by, sends nothing, and comes back by itself.

A short outage used to end beat's process (`CRITICAL celery.beat beat raised
exception OperationalError`), and under `make run` honcho then stopped the
whole portal. Here the database is the test run's real PostgreSQL, reached
through a TCP proxy the test cuts (every connection closed, new ones
refused) and restores, or a session PostgreSQL itself ends
(pg_terminate_backend). PostgreSQL only (CI's passes 2 and 3): SQLite's
lock is an flock, with no server to lose.
"""

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections

from config import beat
from config.beat import ADVISORY_LOCK_KEY, PostgresBeatLock, SingleBeatScheduler

from .sockets import free_port
from .test_beat import Beat

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the beat lock is PostgreSQL's advisory lock (CI's passes 2 and 3)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def quick_standby(monkeypatch):
    monkeypatch.setattr(SingleBeatScheduler, "standby_seconds", 0.05)


@pytest.fixture(autouse=True)
def beat_logs(caplog):
    # Celery's test worker (another test) may have left the root logger at
    # ERROR: beat's own logger is set here, so its warnings reach caplog.
    caplog.set_level(logging.INFO, logger="config.beat")


class Proxy:
    """A TCP proxy to PostgreSQL: cut() closes every connection and refuses new ones."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.port = free_port()
        self.sockets = []
        self.guard = threading.Lock()
        self.listening = None
        self.restore()

    def restore(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self.listening = threading.Event()
        self.listening.set()
        threading.Thread(target=self.accept, args=(listener, self.listening), daemon=True).start()

    def accept(self, listener, listening):
        with listener:
            while listening.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                try:
                    server = socket.create_connection(self.target)
                except OSError:
                    client.close()
                    continue
                with self.guard:
                    self.sockets += [client, server]
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(target=self.pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def pipe(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self):
        self.listening.clear()
        time.sleep(0.2)  # the listener closes: connecting is refused
        with self.guard:
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self.sockets.clear()

    def close(self):
        self.cut()


@pytest.fixture
def proxy():
    settings = connection.settings_dict
    proxy = Proxy(settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432))
    yield proxy
    proxy.close()


class ProxiedLock(PostgresBeatLock):
    """The real lock on the test database, its connection made through the proxy."""

    def __init__(self, port):
        super().__init__()
        self.port = port

    def new_connection(self):
        settings = {**connection.settings_dict, "PORT": str(self.port)}
        return type(connections[self.alias])(settings, alias=self.alias)


@pytest.fixture
def beat_through(proxy, monkeypatch):
    """Schedulers made now take their lock through the proxy."""
    monkeypatch.setattr(beat, "beat_lock", lambda: ProxiedLock(proxy.port))


def eventually(condition, message, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def lock_free():
    """Whether another beat could take the lock now (and then gives it back)."""
    other = PostgresBeatLock()
    taken = other.acquire()
    other.release()
    return taken


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_beat_stands_by_through_an_outage_and_sends_again_after_it(
    beat_through, proxy, tmp_path, caplog
):
    first = Beat(tmp_path / "first")
    assert first.tick() == 1

    proxy.cut()
    caplog.clear()
    for _ in range(5):  # beat's loop goes on ticking: nothing raised, nothing sent
        assert first.tick() == 1
        assert first.scheduler.lock.connection is None
    outage_warnings = warnings_in(caplog)
    assert len(outage_warnings) == 1, outage_warnings  # once for the outage, not every tick
    assert "the database failed" in outage_warnings[0]
    assert all(r.levelno < logging.ERROR for r in caplog.records)

    # PostgreSQL let the lock go with the session: another beat may take it.
    eventually(lock_free, "the cut session's lock was never given back")

    proxy.restore()
    assert first.tick() == 2  # the same tick: the lock is taken again, then sent
    assert "This beat holds the beat lock again" in caplog.text
    assert first.tick() == 3
    assert not lock_free()
    first.scheduler.close()


def test_a_beat_out_of_an_outage_waits_for_the_one_that_took_over(
    beat_through, proxy, tmp_path, monkeypatch
):
    first = Beat(tmp_path / "first")
    monkeypatch.setattr(beat, "beat_lock", PostgresBeatLock)  # the next ones connect directly
    assert first.tick() == 1
    proxy.cut()
    assert first.tick() == 1

    # A standby beat, not cut off, takes over while the first is out.
    eventually(lock_free, "the cut session's lock was never given back")
    second = Beat(tmp_path / "second")
    assert second.tick() == 1

    proxy.restore()
    for _ in range(3):  # the database is back, the lock is not the first's: never both
        assert first.tick() == 1
        assert second.tick() in (2, 3, 4)
    second.scheduler.close()
    assert first.tick() == 2
    first.scheduler.close()


def test_a_beat_whose_lock_session_the_server_ended_stops_sending(tmp_path):
    first = Beat(tmp_path / "first")
    assert first.tick() == 1

    with connection.cursor() as cursor:
        cursor.execute(
            # This database's lock only: a make run or another CI pass on the
            # same server holds the same key in its own database.
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            [ADVISORY_LOCK_KEY >> 32, ADVISORY_LOCK_KEY & 0xFFFFFFFF],
        )
        assert cursor.rowcount == 1
    # The lock went with the session: another beat takes it before the first ticks.
    taker = PostgresBeatLock()
    eventually(taker.acquire, "the ended session's lock was never given back")
    for _ in range(3):
        assert first.tick() == 1, "the first beat sent as if it still held the lock"
    taker.release()
    assert first.tick() == 2
    first.scheduler.close()


def test_a_beat_whose_live_session_no_longer_holds_the_lock_stops_sending(tmp_path):
    # A session can outlive its advisory locks (pg_advisory_unlock_all, a
    # pooler's DISCARD ALL): answering `SELECT 1` proves nothing.
    first = Beat(tmp_path / "first")
    assert first.tick() == 1
    with first.scheduler.lock.connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock_all()")
    taker = PostgresBeatLock()
    assert taker.acquire()
    for _ in range(3):
        assert first.tick() == 1, "the first beat sent as if it still held the lock"
    taker.release()
    assert first.tick() == 2
    first.scheduler.close()


def test_beat_starts_while_the_database_is_down_and_waits_for_it(beat_through, proxy, tmp_path):
    proxy.cut()
    started = {}
    thread = threading.Thread(target=lambda: started.setdefault("beat", Beat(tmp_path / "b")))
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "beat went ahead without the lock"
    proxy.restore()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert started["beat"].tick() == 1
    started["beat"].scheduler.close()


# -- `make run`'s beat, a process under honcho, through an outage ------------------


def test_make_runs_beat_outlives_a_database_outage(proxy, tmp_path):
    settings = connection.settings_dict
    url = f"postgres://{settings['USER']}@127.0.0.1:{proxy.port}/{settings['NAME']}"
    if settings["PASSWORD"]:
        url = url.replace("@", f":{settings['PASSWORD']}@", 1)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "config.procfile", "start", "--no-colour"]
            + ["--procfile", str(ROOT / "Procfile"), "--env", os.devnull, "beat"],
            cwd=ROOT,
            env={
                **os.environ,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "DATABASE_URL": url,
                "DATA_DIR": str(tmp_path / "data"),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
                "CELERY_BROKER_URL": "filesystem://",
                "IMPORT_REFRESH_INTERVAL": "1",
                "RUN_STOP_SECONDS": "10",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sent = "Sending due task refresh-imports"

    def output():
        return log.read_text()

    try:
        eventually(lambda: output().count(sent) >= 2, "beat never sent", seconds=60)
        proxy.cut()
        eventually(lambda: "the database failed" in output(), output(), seconds=30)
        sent_before = output().count(sent)
        time.sleep(3)
        assert run.poll() is None, output()
        assert output().count(sent) == sent_before, "beat sent without the lock"

        proxy.restore()
        eventually(lambda: output().count(sent) > sent_before, output(), seconds=30)
        assert "This beat holds the beat lock again" in output()
        assert "CRITICAL" not in output() and "stopped (rc=" not in output(), output()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, 15)
        run.wait(timeout=30)
