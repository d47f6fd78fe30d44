"""Migrations from several machines at once: one migrates, the others wait, then find nothing left.

Django's own `migrate`, started three times at once on an empty PostgreSQL
database, failed twice (`relation "django_admin_log" already exists`).
`manage.py migrate_exclusively` takes an advisory lock around it. The
PostgreSQL tests run it for real, in processes of its own, on a database
made for each test and dropped after (CI's passes 2 and 3); on SQLite it
simply migrates.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from imports.management.commands.migrate_exclusively import (
    MIGRATION_LOCK_KEY,
    WAITING,
    Command,
)

ROOT = Path(__file__).resolve().parent.parent

on_postgresql = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the migration lock is PostgreSQL's (CI's passes 2 and 3)",
)


def server(dbname):
    """psycopg's connection arguments for `dbname` on the test run's PostgreSQL server."""
    settings = connection.settings_dict
    return {
        "host": settings["HOST"] or "127.0.0.1",
        "port": settings["PORT"] or 5432,
        "user": settings["USER"],
        "password": settings["PASSWORD"] or None,
        "dbname": dbname,
        "autocommit": True,
    }


@pytest.fixture
def empty_database():
    """A new PostgreSQL database with nothing in it, as on a first installation: its name."""
    name = f"portal_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**server("postgres")) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(**server("postgres")) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_url(name):
    settings = connection.settings_dict
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgres://{settings['USER']}{password}@{host}:{port}/{name}"


class Machine:
    """`manage.py migrate_exclusively` as one machine's preparation runs it, output to a file."""

    def __init__(self, url, data_dir, **variables):
        data_dir.mkdir(parents=True)
        self.log = data_dir / "migrate.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "migrate_exclusively"],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": url, "DATA_DIR": str(data_dir), **variables},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self):
        return self.log.read_text()

    def finish(self, timeout=120):
        return self.process.wait(timeout=timeout), self.output()


def migrations_on_disk():
    return len(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


def recorded_migrations(name):
    """How many rows django_migrations holds, and how many different migrations they name."""
    with psycopg.connect(**server(name)) as database:
        return database.execute(
            "SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations"
        ).fetchone()


def migrated_anything(name):
    with psycopg.connect(**server(name)) as database:
        return database.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is not None


@on_postgresql
def test_three_machines_migrating_an_empty_database_at_once_all_succeed(empty_database, tmp_path):
    machines = [Machine(database_url(empty_database), tmp_path / f"m{n}") for n in range(3)]
    finished = [machine.finish() for machine in machines]

    for status, output in finished:
        assert status == 0, output
    # One applied them all; the two others waited for it and found nothing left.
    applying = [output for _, output in finished if "Applying " in output]
    assert len(applying) == 1, "\n\n".join(output for _, output in finished)
    assert sum("No migrations to apply." in output for _, output in finished) == 2
    assert recorded_migrations(empty_database) == (migrations_on_disk(),) * 2


@on_postgresql
def test_a_machine_waits_while_another_migrates_then_finds_nothing_left(empty_database, tmp_path):
    # The test plays the machine that migrates first: it holds the lock.
    with psycopg.connect(**server(empty_database)) as first:
        first.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
        # Its statements time out after 1 s, as the portal's do after 5.
        second = Machine(
            database_url(empty_database), tmp_path / "second", DATABASE_STATEMENT_TIMEOUT="1"
        )
        deadline = time.monotonic() + 60
        while WAITING not in second.output():
            assert second.process.poll() is None, second.output()
            assert time.monotonic() < deadline, second.output()
            time.sleep(0.1)
        # Waiting is no statement to time out: the other's migrations take
        # as long as they take.
        time.sleep(2)
        assert second.process.poll() is None, second.output()
        assert not migrated_anything(empty_database)
    # The first machine's session is over, its lock with it: the second goes on.
    status, output = second.finish()
    assert status == 0, output
    assert "Applying " in output
    assert recorded_migrations(empty_database) == (migrations_on_disk(),) * 2


def test_on_sqlite_it_simply_migrates(tmp_path):
    machine = Machine(f"sqlite:///{tmp_path / 'portal.sqlite3'}", tmp_path / "data")
    status, output = machine.finish()
    assert status == 0, output
    assert "Applying " in output
    assert WAITING not in output


@on_postgresql
def test_the_migrations_run_without_the_requests_statement_timeout(db):
    # An index over a large table takes longer than a request may (5 s).
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "0"  # the portal's, for requests
        Command().lift_statement_timeout(connection)
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
