"""The database as the portal uses it: prepared statements, the token lookup's SQL (issue 14)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import F

from imports.models import Action, ApiToken, AuditEvent, Membership

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
    # Django's own backend and defaults then: values quoted into the SQL.
    assert "server_side_binding" not in database["OPTIONS"]
    assert "prepare_threshold" not in database["OPTIONS"]
    assert database["ENGINE"] == "django.db.backends.postgresql"


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
