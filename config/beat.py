"""Exactly one beat, even when a second one is started by mistake.

Every beat (`celery beat`, or the one `make run` embeds in its worker) uses
SingleBeatScheduler (settings.CELERY_BEAT_SCHEDULER). Before it opens its
schedule, it takes a lock that lasts as long as its process:

- on PostgreSQL, a session-level advisory lock on a connection of its own:
  one beat per database, whichever machine it runs on;
- on SQLite (one machine), an flock on a file under DATA_DIR.

Either lock goes away with the process that holds it, however it ends (a
kill -9 included), so there is no lease to expire and no stale lock to clear.
A second beat waits, sending nothing, and takes over when the first is gone.
Should the lock be lost while running (the database connection dropped),
beat sends nothing until it holds the lock again.
"""

import contextlib
import fcntl
import logging
import os
import signal
import time

from celery.beat import PersistentScheduler
from celery.signals import beat_init
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

# pg_try_advisory_lock's key: any constant the portal's other locks don't use.
ADVISORY_LOCK_KEY = 0x766D6970_62656174  # "vmipbeat"


class PostgresBeatLock:
    def __init__(self, alias="default"):
        self.alias = alias
        self.connection = None

    def acquire(self):
        self.release()
        # A connection of its own: Django closes and recycles its shared
        # connections, and closing this one is what gives the lock back.
        self.connection = connections.create_connection(self.alias)
        self.connection.inc_thread_sharing()  # beat's own thread, or a test's
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            held = cursor.fetchone()[0]
        if not held:
            self.release()
        return held

    def held(self):
        if self.connection is None:
            return False
        try:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception as error:
            logger.warning("Beat lost its database connection, and its lock with it: %s", error)
            self.release()
            return False

    def release(self):
        if self.connection is not None:
            with contextlib.suppress(Exception):  # already closed, or the server is gone
                self.connection.close()
            self.connection = None


class FileBeatLock:
    def __init__(self, path):
        self.path = path
        self.file = None

    def acquire(self):
        self.release()
        self.file = open(self.path, "a+")  # noqa: SIM115 (held open as long as the lock)
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            return False
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()
        return True

    def held(self):
        return self.file is not None

    def release(self):
        if self.file is not None:
            self.file.close()  # closing the file gives the flock back
            self.file = None


def beat_lock():
    if connections["default"].vendor == "postgresql":
        return PostgresBeatLock()
    return FileBeatLock(settings.DATA_DIR / "beat.lock")


class SingleBeatScheduler(PersistentScheduler):
    """A PersistentScheduler that sends nothing unless it holds the beat lock."""

    #: seconds between two tries while another beat holds the lock
    standby_seconds = 5

    def __init__(self, *args, lazy=False, **kwargs):
        self.lock = beat_lock()
        self.ticking = self.stop_requested = False
        # A lazy scheduler only describes itself (beat's start-up banner makes
        # one) and never sends: it must not take the lock from the real one.
        if not lazy:
            self.wait_for_lock()
        super().__init__(*args, lazy=lazy, **kwargs)

    def wait_for_lock(self):
        told = False
        while not self.lock.acquire():
            if not told:
                logger.warning(
                    "Another beat holds the beat lock; this one waits and sends nothing "
                    "(retrying every %ss)",
                    self.standby_seconds,
                )
                told = True
            time.sleep(self.standby_seconds)
        logger.info("This beat holds the beat lock (pid %s)", os.getpid())

    def tick(self, *args, **kwargs):
        self.ticking = True
        try:
            if not self.lock.held():
                if not self.lock.acquire():
                    return self.standby_seconds
                logger.info("This beat holds the beat lock again (pid %s)", os.getpid())
            return super().tick(*args, **kwargs)
        finally:
            self.ticking = False
            if self.stop_requested:
                raise SystemExit()

    def stop_between_ticks(self, signum, frame):
        """SIGTERM/SIGINT: stop now if idle, else once the tick in hand is done.

        Celery's own handler closes the schedule (and so our lock) at once and
        raises SystemExit wherever beat is, in the middle of sending a task
        too, which then fails and logs an ERROR.
        """
        if self.ticking:
            self.stop_requested = True
        else:
            raise SystemExit()

    def close(self):
        try:
            super().close()
        finally:
            self.lock.release()


@beat_init.connect
def stop_cleanly(sender=None, **kwargs):
    """Replace Celery's SIGTERM/SIGINT handler (installed just before) with ours."""
    scheduler = getattr(sender, "scheduler", None)
    if isinstance(scheduler, SingleBeatScheduler):
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, scheduler.stop_between_ticks)
