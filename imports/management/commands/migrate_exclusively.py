"""`manage.py migrate_exclusively`: Django's migrate, one machine at a time.

Django's migrate is not safe to start on several machines at once: each one
reads which migrations are applied, then applies the rest, so on an empty
PostgreSQL database three machines started together all created the same
tables and two failed (`relation "django_admin_log" already exists`). Every
machine's preparation (`make serve`, the systemd prepare unit) runs this
command instead:

- on PostgreSQL it first takes a session-level advisory lock: one machine
  migrates, the others wait for it, then find nothing left to apply;
- on SQLite (one machine only) it simply migrates.
"""

import contextlib

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

# pg_advisory_lock's key. Fixed: one made from anything that may differ
# between machines (a checkout's path, a host name, a version) would give two
# machines two locks, and both would migrate. Distinct from the beat lock's
# (config/beat.py), which a running beat holds for good.
MIGRATION_LOCK_KEY = 0x766D6970_6D696772  # "vmipmigr"

WAITING = "Another machine is migrating this database; waiting for it to finish."


class Command(BaseCommand):
    help = (
        "Apply the migrations, one machine at a time: on PostgreSQL under an advisory "
        "lock, so that every machine may run this at once (make serve, the systemd "
        "prepare unit). Never asks anything."
    )
    # migrate runs the system checks itself, as `manage.py migrate` would.
    requires_system_checks = []

    def handle(self, **options):
        database = connections[DEFAULT_DB_ALIAS]
        self.reach(database)
        with self.turn_to_migrate(database):
            self.lift_statement_timeout(database)
            call_command(
                "migrate", interactive=False, skip_checks=False, verbosity=options["verbosity"]
            )

    def reach(self, database):
        """A database that cannot be reached is one plain line, not migrate's traceback."""
        try:
            database.ensure_connection()
        except OperationalError as error:
            name = database.settings_dict["NAME"]
            raise CommandError(f"Cannot reach the database {name}: {error}") from None

    def lift_statement_timeout(self, database):
        """No statement timeout for the migrations: DATABASE_STATEMENT_TIMEOUT is for requests.

        An index built over a large table (0005's trigram indexes) takes
        longer than a request may; cut off, the migration would fail on the
        very tables that need it most. The setting is this session's only.
        """
        if database.vendor == "postgresql":
            with database.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")

    def turn_to_migrate(self, database):
        if database.vendor != "postgresql":
            return contextlib.nullcontext()  # SQLite is one machine's: no one to wait for
        return self.migration_lock()

    @contextlib.contextmanager
    def migration_lock(self):
        # A connection of its own, holding a session-level lock: migrate
        # commits many transactions on the default connection (a
        # transaction-level lock would end with the first), and closing this
        # connection gives the lock back however the process ends, kill -9
        # included, so no stale lock is ever left to clear.
        holder = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with holder.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
                if not cursor.fetchone()[0]:
                    self.stdout.write(WAITING)
                    # Said now, not once the wait is over (journald reads a pipe).
                    self.stdout.flush()
                    # The portal's statement timeout (DATABASE_STATEMENT_TIMEOUT,
                    # 5 s) is for requests; the other machine's migrations
                    # take as long as they take. This session only.
                    cursor.execute("SET statement_timeout = 0")
                    cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
            yield
        finally:
            with contextlib.suppress(Exception):  # already closed, or the server is gone
                holder.close()
