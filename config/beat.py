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

Beat confirms the lock before every task it sends: on PostgreSQL it asks
pg_locks whether its own session still holds it. Should the database refuse
or drop connections, or end the lock's session (a restart,
pg_terminate_backend), PostgreSQL has let the lock go and another beat may
hold it: this one logs a warning once, holds nothing, sends nothing, and
tries again every `standby_seconds`, sending again once it holds the lock.
A database outage never ends beat's process (under `make run`, honcho would
stop the whole portal with it).
"""

import contextlib
import fcntl
import logging
import os
import signal
import threading
import time

from celery.beat import PersistentScheduler
from celery.signals import beat_init
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connections

logger = logging.getLogger(__name__)

# pg_try_advisory_lock's key: any constant the portal's other locks don't use.
ADVISORY_LOCK_KEY = 0x766D6970_62656174  # "vmipbeat"

# Whether this session holds the lock: pg_locks shows a bigint key's high half
# as classid and its low half as objid, with objsubid 1.
HOLDS_THE_LOCK = """
    SELECT EXISTS (
        SELECT FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
          AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1
    )
"""


class PostgresBeatLock:
    """The advisory lock, on a connection of its own.

    acquire() and held() raise django.db.Error when the database cannot be
    reached; they have then let go of the connection, and the lock with it.
    """

    def __init__(self, alias="default"):
        self.alias = alias
        self.connection = None

    def acquire(self):
        self.release()
        try:
            # A connection of its own: Django closes and recycles its shared
            # connections, and closing this one is what gives the lock back.
            self.connection = self.new_connection()
            self.connection.inc_thread_sharing()  # beat's own thread, or a test's
            held = self.ask("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        except BaseException:
            self.release()
            raise
        if not held:
            self.release()
        return held

    def held(self):
        """Whether PostgreSQL says this session still holds the lock.

        Not merely whether the connection answers: a session that ended (and
        its lock with it) must never pass for the one that took the lock.
        """
        if self.connection is None:
            return False
        try:
            held = self.ask(
                HOLDS_THE_LOCK, [ADVISORY_LOCK_KEY >> 32, ADVISORY_LOCK_KEY & 0xFFFFFFFF]
            )
        except BaseException:
            self.release()
            raise
        if not held:
            self.release()
        return held

    def new_connection(self):
        return connections.create_connection(self.alias)

    def ask(self, query, params):
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchone()[0]

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
        self.has_held = False
        self.standing_by = None  # why it last said it sends nothing, until it holds the lock
        # A lazy scheduler only describes itself (beat's start-up banner makes
        # one) and never sends: it must not take the lock from the real one.
        if not lazy:
            self.wait_for_lock()
        super().__init__(*args, lazy=lazy, **kwargs)

    def wait_for_lock(self):
        with self.stoppable():
            while not self.take_lock():
                time.sleep(self.standby_seconds)

    def take_lock(self):
        """Whether this beat holds the lock now, taking it if it is free: one try, never raising.

        Says once why it stands by (another beat, or the database), and once
        when it holds the lock.
        """
        try:
            if self.lock.held():
                return True
            if self.lock.acquire():
                logger.info(
                    "This beat holds the beat lock%s (pid %s)",
                    " again" if self.has_held else "",
                    os.getpid(),
                )
                self.has_held, self.standing_by = True, None
                return True
        except DatabaseError as error:
            self.stand_by(
                "database",
                "Beat cannot confirm the beat lock, the database failed (%s): it holds no "
                "lock and sends nothing until it has the lock again (retrying every %ss)",
                (str(error).strip().splitlines() or [repr(error)])[0],
                self.standby_seconds,
            )
            return False
        self.stand_by(
            "another beat",
            "Another beat holds the beat lock; this one waits and sends nothing "
            "(retrying every %ss)",
            self.standby_seconds,
        )
        return False

    def stand_by(self, reason, message, *args):
        if self.standing_by != reason:
            logger.warning(message, *args)
            self.standing_by = reason

    @contextlib.contextmanager
    def stoppable(self):
        """SIGTERM/SIGINT stop beat at once while it waits for the lock at start-up.

        Celery's handler would make the schedule (so another scheduler,
        waiting for the lock in turn) in order to save it.
        """
        if threading.current_thread() is not threading.main_thread():
            yield  # a test's thread: signals go to the main one
            return

        def stop(signum, frame):
            raise SystemExit()

        previous = {
            signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for signum, handler in previous.items():
                if handler is not None:  # None: not installed from Python
                    signal.signal(signum, handler)

    def tick(self, *args, **kwargs):
        self.ticking = True
        try:
            # Confirmed before every task sent: Celery's tick sends at most one.
            if not self.take_lock():
                return self.standby_seconds
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
