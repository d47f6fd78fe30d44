"""PostgreSQL connections as the portal configures them: prepared statements (issue 14)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from imports.models import ApiToken

ROOT = Path(__file__).resolve().parent.parent
SOME_POSTGRESQL = "postgres://portal@db.internal:5432/portal"


def database_options(**environ):
    """The default database's OPTIONS as config/settings.py builds them under `environ`."""
    script = (
        "import json; from config import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
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
    options = database_options(DATABASE_URL=SOME_POSTGRESQL)
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 2


def test_a_pooler_that_cannot_keep_prepared_statements_can_have_them_off():
    options = database_options(DATABASE_URL=SOME_POSTGRESQL, DATABASE_PREPARED_STATEMENTS="0")
    # Django's own defaults then: values quoted into the SQL, nothing prepared.
    assert "server_side_binding" not in options
    assert "prepare_threshold" not in options


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
