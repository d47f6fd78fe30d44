"""Exactly one beat: a second one waits, sends nothing, and takes over when the first is gone.

The lock is the real one for the configured database: an advisory lock on
PostgreSQL (CI's second and third passes), an flock on SQLite.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from config.beat import SingleBeatScheduler, beat_lock
from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)

EVERY_TICK = {"ping": {"task": "imports.tasks.refresh_imports", "schedule": 0.01}}


@pytest.fixture(autouse=True)
def quick_standby(monkeypatch):
    monkeypatch.setattr(SingleBeatScheduler, "standby_seconds", 0.05)


class Beat:
    """A scheduler as `celery beat` makes it, recording what it would send."""

    def __init__(self, path):
        self.sent = []
        self.scheduler = SingleBeatScheduler(app=app, schedule_filename=str(path))
        self.scheduler.producer = None  # no broker: apply_async is replaced below
        self.scheduler.apply_async = lambda entry, **kwargs: self.sent.append(entry.name)
        self.scheduler.update_from_dict(EVERY_TICK)

    def tick(self):
        time.sleep(0.02)  # the entry is due again
        self.scheduler.tick()
        return self.sent.count("ping")


def start_in_thread(path):
    started = {}
    thread = threading.Thread(target=lambda: started.setdefault("beat", Beat(path)))
    thread.start()
    return thread, started


def test_a_second_beat_sends_nothing_until_it_holds_the_lock(tmp_path):
    first = Beat(tmp_path / "first")
    assert first.tick() == 1

    thread, started = start_in_thread(tmp_path / "second")
    time.sleep(0.3)
    assert thread.is_alive(), "the second beat went ahead while the first held the lock"
    assert first.tick() == 2

    # The first beat loses its lock (its database connection dropped, say):
    # the second takes over, and the first sends nothing while it is out.
    first.scheduler.lock.release()
    thread.join(timeout=5)
    second = started["beat"]
    assert second.tick() == 1
    assert first.tick() == 2
    assert second.tick() == 2

    # The second stops: the first holds the lock again and goes on.
    second.scheduler.close()
    assert first.tick() == 3
    first.scheduler.close()


def test_the_lock_goes_with_a_beat_killed_by_sigkill(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import django, sys, time; django.setup(); from django.conf import settings; "
            "settings.DATABASES['default']['NAME'] = sys.argv[1]; "
            "from config.beat import beat_lock; "
            "lock = beat_lock(); assert lock.acquire(); print('held', flush=True); time.sleep(60)",
            connection.settings_dict["NAME"],  # the test database: a lock is per database
        ],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not beat_lock().acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    lock = beat_lock()
    deadline = time.monotonic() + 10  # PostgreSQL notices the closed socket at once
    while not lock.acquire():
        assert time.monotonic() < deadline, "the killed beat's lock was never given back"
        time.sleep(0.1)
    lock.release()


def test_sigterm_in_the_middle_of_a_tick_stops_beat_after_it(tmp_path):
    beat = Beat(tmp_path / "beat")
    sent_during_signal = []

    def send_then_sigterm(entry, **kwargs):
        beat.scheduler.stop_between_ticks(signal.SIGTERM, None)  # arrives mid-send
        sent_during_signal.append(entry.name)

    beat.scheduler.apply_async = send_then_sigterm
    time.sleep(0.02)
    with pytest.raises(SystemExit):
        beat.scheduler.tick()
    assert sent_during_signal == ["ping"]  # the send in hand was finished first

    beat.scheduler.stop_requested = False
    with pytest.raises(SystemExit):  # idle: at once
        beat.scheduler.stop_between_ticks(signal.SIGTERM, None)
    beat.scheduler.close()
