"""The database as the portal uses it: prepared statements, the token lookup's SQL (issue 14)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections
from django.db.models import F

from config.postgresql import base as postgresql
from imports import paging
from imports.models import (
    Action,
    ApiToken,
    AuditEvent,
    ImageImport,
    Membership,
    Status,
    UnsizedCharField,
)

from .factories import make_import

ROOT = Path(__file__).resolve().parent.parent
SOME_POSTGRESQL = "postgres://portal@db.internal:5432/portal"


def database_settings(**environ):
    """The default database's settings as config/settings.py builds them under `environ`."""
    script = (
        "import json; from config import settings; "
        "print(json.dumps(settings.DATABASES['default'], default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_postgresql_statements_are_bound_on_the_server_and_prepared_on_their_second_use():
    database = database_settings(DATABASE_URL=SOME_POSTGRESQL)
    assert database["OPTIONS"]["server_side_binding"] is True
    assert database["OPTIONS"]["prepare_threshold"] == 2
    assert database["ENGINE"] == "config.postgresql"  # its batches under the bound values


def test_a_pooler_that_cannot_keep_prepared_statements_can_have_them_off():
    database = database_settings(DATABASE_URL=SOME_POSTGRESQL, DATABASE_PREPARED_STATEMENTS="0")
    # psycopg's defaults then: values quoted into the SQL.
    assert "server_side_binding" not in database["OPTIONS"]
    assert "prepare_threshold" not in database["OPTIONS"]
    assert database["ENGINE"] == "config.postgresql"  # batches by Django's rule then


def test_postgresql_prices_a_random_page_read_as_on_solid_state_storage():
    options = database_settings(DATABASE_URL=SOME_POSTGRESQL)["OPTIONS"]["options"]
    assert "random_page_cost=1.1" in options.split()
    # Empty: the server's own setting.
    database = database_settings(DATABASE_URL=SOME_POSTGRESQL, DATABASE_RANDOM_PAGE_COST="")
    assert "random_page_cost" not in database["OPTIONS"]["options"]


def test_a_page_cost_that_is_not_a_positive_number_stops_the_portal_at_start():
    for wrong in ("fast", "0", "nan", "1.1 -c work_mem=1GB"):
        with pytest.raises(subprocess.CalledProcessError) as refused:
            database_settings(DATABASE_URL=SOME_POSTGRESQL, DATABASE_RANDOM_PAGE_COST=wrong)
        assert "DATABASE_RANDOM_PAGE_COST must be a positive number" in refused.value.stderr


@pytest.mark.django_db
def test_the_page_cost_reaches_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("random_page_cost is PostgreSQL's; the PostgreSQL pass runs this")
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone()[0] == "1.1"


@pytest.mark.django_db
def test_a_bulk_write_past_the_values_one_statement_can_bind_is_sent_in_batches(team):
    # 8,000 events of 9 columns: 72,000 values, past PostgreSQL's 65,535 for
    # a statement bound on the server. SQLite batches under its own limit.
    events = [AuditEvent(action=Action.STATUS, team=team, detail=f"e{n}") for n in range(8000)]
    AuditEvent.objects.bulk_create(events)
    assert AuditEvent.objects.filter(team=team, action=Action.STATUS).count() == 8000
    if connection.vendor == "postgresql":
        assert connection.ops.bulk_batch_size(["a"] * 9, events) == 65_535 // 9


@pytest.mark.django_db
def test_the_token_lookup_is_prepared_once_a_connection_has_sent_it_twice(api_token):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's; the PostgreSQL pass runs this")
    for _ in range(3):
        assert ApiToken.authenticate(api_token) is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ['%FROM "imports_apitoken"%'],
        )
        assert cursor.fetchone()[0] >= 1


# -- the health check: at most once a second, and a server's goodbye seen at once --


def next_request():
    """What Django does between two requests, and config/celery.py between two tasks."""
    close_old_connections()


def backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture
def health_checks(monkeypatch):
    """The `SELECT 1` checks this test's requests send, by backend, with CONN_HEALTH_CHECKS on."""
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL backend's; the PostgreSQL pass runs this")
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    checks = []
    is_usable = connection.is_usable

    def counted():
        checks.append(connection.connection.info.backend_pid)
        return is_usable()

    monkeypatch.setattr(connection, "is_usable", counted)
    # A minute, not a second: a pause of a busy machine must not check early.
    monkeypatch.setattr(postgresql, "HEALTH_CHECK_INTERVAL", 60.0)
    connection.close()  # the next query opens a new one: as good as checked
    return checks


@pytest.mark.django_db(transaction=True)
def test_a_connection_checked_within_the_interval_is_not_checked_again(health_checks):
    pid = backend_pid()
    for _ in range(5):
        next_request()
        assert backend_pid() == pid
    assert health_checks == []  # opened just now: five requests, no `SELECT 1`

    connection.checked_at -= 60.0  # the interval later
    next_request()
    assert backend_pid() == pid
    assert health_checks == [pid]
    next_request()
    assert backend_pid() == pid
    assert health_checks == [pid]  # checked: good for another interval


@pytest.mark.django_db(transaction=True)
def test_a_session_the_server_ended_is_replaced_before_the_next_request_uses_it(health_checks):
    pid = backend_pid()
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    deadline = time.monotonic() + 5
    while not connection.server_has_spoken():  # its goodbye on the way
        assert time.monotonic() < deadline, "PostgreSQL never closed the session"
        time.sleep(0.01)
    assert connection.checked_lately()

    next_request()
    new_pid = backend_pid()  # no error: checked, found gone, replaced

    assert new_pid != pid
    assert health_checks == [pid]


# -- the token lookup: its SQL written once, loading what the ORM would ----------


def loaded_by_the_orm(raw_token):
    return (
        ApiToken.objects.select_related("user", "team")
        .annotate(member_role=F("team__memberships__role"))
        .get(digest=ApiToken.digest_of(raw_token), team__memberships__user=F("user"))
    )


def assert_same_row(found, expected):
    assert type(found) is type(expected)
    for field in expected._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
        assert type(getattr(found, field.attname)) is type(getattr(expected, field.attname))
    assert found._state.adding is False
    assert found._state.db == expected._state.db


@pytest.mark.django_db
def test_the_token_lookup_loads_the_token_its_person_and_team_as_the_orm_does(api_token):
    ApiToken.authenticate(api_token)  # its last use stamped, so a datetime is compared too
    found, expected = ApiToken.authenticate(api_token), loaded_by_the_orm(api_token)
    assert_same_row(found, expected)
    assert_same_row(found.user, expected.user)
    assert_same_row(found.team, expected.team)
    assert found.member_role == expected.member_role == Membership.Role.SUBMITTER
    assert found.last_used_at is not None and found.last_used_at.tzinfo is not None
    assert found.user.is_active is True


@pytest.mark.django_db
def test_a_token_of_an_inactive_person_authenticates_nothing(api_token, user):
    user.is_active = False
    user.save()
    assert ApiToken.authenticate(api_token) is None


@pytest.mark.django_db
def test_a_membership_in_another_team_does_not_keep_a_token_working(
    api_token, user, team, other_team
):
    Membership.objects.create(user=user, team=other_team)
    Membership.objects.filter(user=user, team=team).delete()
    assert ApiToken.authenticate(api_token) is None


# -- the history's first page right after a bulk load (issue 14) ------------------

SMALL, BULK_LOAD = 100, 40_000
TEAM_HISTORY = next(index for index in ImageImport._meta.indexes if index.name == "team_history")


# The history's two statements: its first page, and the capped count beside it.
KINDS = ("page", "count")


class NeverAnalysedCopy:
    """A temporary table of the imports' columns, filled with copies of one import.

    Autovacuum never visits a temporary table, so it stays as the imports
    table is right after a bulk load into a new database: never analysed.
    `sized` declares each long string with its max_length, as a plain
    CharField would; `history_order` is the index the history's page reads.
    """

    def __init__(self, cursor, name, image_import, *, sized=False, history_order=None):
        self.cursor, self.name, self.image_import = cursor, name, image_import
        cursor.execute(
            f"CREATE TEMPORARY TABLE {name} (LIKE imports_imageimport INCLUDING DEFAULTS)"
        )
        for field in ImageImport._meta.concrete_fields:
            if sized and isinstance(field, UnsizedCharField):
                declared = f"varchar({field.max_length})"
                cursor.execute(f"ALTER TABLE {name} ALTER COLUMN {field.column} TYPE {declared}")
        history_order = history_order or TEAM_HISTORY.fields_orders
        keys = [
            f"{ImageImport._meta.get_field(field).column} {order}" for field, order in history_order
        ]
        cursor.execute(f"CREATE INDEX ON {name} (team_id)")  # the foreign key's
        cursor.execute(f"CREATE INDEX {name}_history ON {name} ({', '.join(keys)})")
        self.loaded = 0

    def load(self, count, *, team_id=None):
        """`count` more copies, of the import's team or of the team `team_id`."""
        columns = [field.column for field in ImageImport._meta.concrete_fields]
        varied = {
            "id": "n",
            "client_token": "n::text",
            "created_at": "created_at - n * interval '1 second'",
        }
        if team_id is not None:
            varied["team_id"] = str(int(team_id))
        self.cursor.execute(
            f"INSERT INTO {self.name} ({', '.join(columns)})"
            f" SELECT {', '.join(varied.get(column, column) for column in columns)}"
            " FROM imports_imageimport, generate_series(%s::bigint, %s::bigint) AS n"
            " WHERE id = %s",
            [self.loaded + 1, self.loaded + count, self.image_import.pk],
        )
        self.loaded += count

    def history_sql(self, kind):
        """The history's first page (`page`) or its capped count (`count`), on this table."""
        team = self.image_import.team_id
        imports = ImageImport.objects.filter(team=team)
        if kind == "page":
            queryset = imports.order_by("-created_at", "-id")[:26]
        else:
            queryset = paging.capped(imports).values("pk")
        sql, params = queryset.query.sql_with_params()
        assert params == (team,)
        if kind == "count":
            sql = f"SELECT COUNT(*) FROM ({sql}) subquery"  # as Django counts a slice
        return sql.replace('"imports_imageimport"', self.name), params

    def custom_plan(self, kind="page"):
        """The plan made for this execution, as for a connection's first few."""
        sql, params = self.history_sql(kind)
        self.cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return self.explain(sql, params)

    def prepare_generic_plans(self):
        """Prepared statements' generic plans, made now and kept by PostgreSQL for later."""
        self.forget_plans()  # a failed run's, which the rollback did not take
        for kind in KINDS:
            sql, _ = self.history_sql(kind)
            self.cursor.execute(f"PREPARE {self.name}_{kind} (bigint) AS {sql.replace('%s', '$1')}")
        self.cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for kind in KINDS:
            self.generic_plan(kind)

    def generic_plan(self, kind="page"):
        # A utility statement binds no parameters: the team's id is written in.
        team = int(self.image_import.team_id)
        return self.explain(f"EXECUTE {self.name}_{kind} ({team})", [])

    def explain(self, sql, params):
        self.cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = self.cursor.fetchone()
        return list(nodes_of(plan[0]["Plan"]))

    def forget_plans(self):
        # A prepared statement belongs to the connection: no rollback undoes it.
        for kind in KINDS:
            name = f"{self.name}_{kind}"
            self.cursor.execute("SELECT name FROM pg_prepared_statements WHERE name = %s", [name])
            if self.cursor.fetchone():
                self.cursor.execute(f"DEALLOCATE {name}")


def nodes_of(plan):
    yield plan["Node Type"], plan.get("Index Name", "")
    for child in plan.get("Plans", []):
        yield from nodes_of(child)


def read_in_order(plan, table):
    """The page's rows, or the count's, read from the history's index in order, up to a limit."""
    if plan[0] == ("Aggregate", ""):  # the count: over the limited rows
        plan = plan[1:]
    scans = {("Index Scan", f"{table}_history"), ("Index Only Scan", f"{table}_history")}
    return plan[0] == ("Limit", "") and plan[1] in scans


@pytest.fixture
def bulk_loads(team, user):
    """Tables loaded as after a bulk load, with the plans made before and after it."""
    if connection.vendor != "postgresql":
        pytest.skip("the planner's guesses are PostgreSQL's; the PostgreSQL pass runs this")
    image_import = make_import(
        team,
        user,
        status=Status.AVAILABLE,
        image_arn="arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1",
        status_message="completed",
    )
    copies = []

    def bulk_load(name, *, kind="page", others=0, **declarations):
        copy = NeverAnalysedCopy(cursor, name, image_import, **declarations)
        copies.append(copy)
        copy.load(others, team_id=team.pk + 1)  # another team's, already there
        copy.load(SMALL)
        copy.prepare_generic_plans()
        copy.load(BULK_LOAD)
        return copy.generic_plan(kind), copy.custom_plan(kind)

    with connection.cursor() as cursor:
        yield bulk_load
        for copy in copies:
            copy.forget_plans()


@pytest.mark.django_db
def test_right_after_a_bulk_load_the_first_page_is_read_from_the_index_in_order(bulk_loads):
    generic, custom = bulk_loads("loaded")
    # The plan a connection prepared while the table was small, and the one
    # made after the load, both read the newest 26 from the index and stop.
    assert read_in_order(generic, "loaded"), generic
    assert read_in_order(custom, "loaded"), custom


@pytest.mark.django_db
def test_a_team_that_grows_beside_other_teams_still_reads_its_first_page_in_order(bulk_loads):
    # The table already holds another team's 10,000 imports, never analysed
    # (autovacuum off, or the minute before it comes), when this team's 100
    # become 40,100.
    generic, custom = bulk_loads("shared", others=10_000)
    assert read_in_order(generic, "shared"), generic
    assert read_in_order(custom, "shared"), custom
    # The count beside the page ("1000+") stops at its cap the same way.
    generic, custom = bulk_loads("shared_count", kind="count", others=10_000)
    assert read_in_order(generic, "shared_count"), generic
    assert read_in_order(custom, "shared_count"), custom


@pytest.mark.django_db
def test_why_the_long_strings_are_unsized_and_the_history_index_holds_the_id(bulk_loads):
    # With each string's length declared, the planner takes a row for about
    # 5 KB and the team's 40,100 rows for a handful, and sorts them all for 26.
    _, custom = bulk_loads("sized", sized=True)
    assert ("Sort", "") in custom, custom
    # Without the id in the index, the plan made while the table held 100
    # rows sorts the team's rows by id within created_at: after the load,
    # all 40,100 of them.
    generic, _ = bulk_loads("by_time", history_order=[("team", ""), ("created_at", "DESC")])
    assert ("Sort", "") in generic, generic
    # At PostgreSQL's own price of a random page read (4, a spinning disk's),
    # the plan prepared while the team's 100 sat beside another team's 10,000
    # bitmap-scans the team's rows and sorts them: all 40,100 after the load.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL random_page_cost = 4")
    generic, _ = bulk_loads("disk", others=10_000)
    assert ("Sort", "") in generic, generic
