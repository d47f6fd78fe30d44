"""Outages: a cache or database that is down gives clear answers, never a 500 or a hang.

The dependencies here are really down: a port nothing listens on (refused)
or a listener that never answers (hanging), from tests/sockets.py. Times
are asserted only as generous hang guards; bench/outages.py prints figures.
"""

import time

import dj_database_url
import pytest
from django.db import OperationalError, connection
from django.db.utils import ConnectionHandler
from django.test import Client
from django.urls import reverse

from config import settings as portal_settings
from imports.forms import tag_formset_data
from imports.models import ImageImport

from .factories import SEEDED_TASK, make_import, set_up_disk_imports, valid_payload
from .sockets import closed_port, hanging_server

HANG_GUARD = 30  # seconds: far above any timeout configured, far below a hang


def redis_cache_at(port, settings):
    return {
        "default": {
            "BACKEND": "imports.cache.ReusingRedisCache",  # the portal's
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {
                "socket_connect_timeout": settings.CACHE_TIMEOUT,
                "socket_timeout": settings.CACHE_TIMEOUT,
            },
        }
    }


@pytest.fixture
def cache_refusing(settings):
    settings.CACHES = redis_cache_at(closed_port(), settings)


@pytest.fixture
def cache_hanging(settings):
    with hanging_server() as port:
        settings.CACHES = redis_cache_at(port, settings)
        yield


def test_the_redis_cache_and_broker_have_timeouts(settings):
    assert 0 < settings.CACHE_TIMEOUT <= 2
    if settings.CACHE_URL:
        assert settings.CACHES["default"]["OPTIONS"] == {
            "socket_connect_timeout": settings.CACHE_TIMEOUT,
            "socket_timeout": settings.CACHE_TIMEOUT,
        }
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        assert options["socket_timeout"] == options["socket_connect_timeout"] == 1
        assert options["retry_on_timeout"] is False  # it doubled every wait on a hanging Redis
    assert settings.CELERY_TASK_PUBLISH_RETRY_POLICY["max_retries"] <= 2
    assert settings.CELERY_BROKER_CONNECTION_MAX_RETRIES is None  # the worker never gives up


@pytest.mark.skipif(
    not portal_settings.CACHE_URL.startswith("redis"), reason="needs CACHE_URL on a Redis"
)
def test_the_redis_cache_keeps_one_client_per_pool():
    from django.core.cache import cache

    cache.set("one-client", {"every": "500"})
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client  # not a new redis.Redis per call
    assert cache.get_many(["one-client", "missing"]) == {"one-client": {"every": "500"}}
    cache.delete("one-client")


# -- Redis (the cache) down: nobody is signed out, pages keep working ------------


def test_a_person_signed_in_before_the_outage_stays_signed_in(user, team, settings):
    client = Client()
    client.force_login(user)
    image_import = make_import(team, user)
    settings.CACHES = redis_cache_at(closed_port(), settings)

    assert client.get("/").status_code == 200
    assert client.get(reverse("imports:detail", args=[image_import.pk])).status_code == 200
    status = client.get(
        reverse("imports:status", args=[image_import.pk]), headers={"HX-Request": "true"}
    )
    assert status.status_code == 200


def test_signing_in_works_while_the_cache_is_down(user, cache_refusing):
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_posting_an_import_works_while_the_cache_is_down(user, cache_refusing):
    client = Client()
    client.force_login(user)
    data = {**valid_payload(), **tag_formset_data([])}
    response = client.post(reverse("imports:new"), data)
    assert response.status_code == 302
    assert ImageImport.objects.get().client_token == data["clientToken"]


def test_the_task_picker_asks_aws_afresh_while_the_cache_is_down(user, emulator, cache_refusing):
    client = Client()
    client.force_login(user)
    response = client.get(reverse("imports:vm_import_tasks"))
    assert response.status_code == 200
    assert SEEDED_TASK in response.content.decode()


def test_the_api_lists_tasks_while_the_cache_is_down(api_headers, emulator, cache_refusing):
    response = Client().get("/api/vm-import-tasks", headers=api_headers)
    assert response.status_code == 200
    assert SEEDED_TASK in {task["importTaskId"] for task in response.json()}


def test_a_hanging_cache_costs_seconds_not_a_hang(user, emulator, cache_hanging):
    client = Client()
    client.force_login(user)
    started = time.monotonic()
    assert client.get("/").status_code == 200
    assert client.get(reverse("imports:vm_import_tasks")).status_code == 200
    assert time.monotonic() - started < HANG_GUARD


# -- the database: timeouts, so that refusing or hanging fails fast ---------------


def hanging_capable_wrapper(port):
    """A PostgreSQL connection configured as the portal configures its own."""
    params = dj_database_url.parse(f"postgres://postgres@127.0.0.1:{port}/portal")
    params["OPTIONS"] = portal_settings.postgres_session_options()
    handler = ConnectionHandler({"default": params})
    return handler["default"]


def test_postgresql_connections_carry_a_connect_and_a_statement_timeout(settings, db):
    timeouts = portal_settings.postgres_session_options()
    assert 0 < timeouts["connect_timeout"] <= 5
    given = timeouts["options"].split()
    assert f"statement_timeout={settings.DATABASE_STATEMENT_TIMEOUT * 1000}" in given
    database = settings.DATABASES["default"]
    # A server gone away (no answer at all) is noticed by TCP, not left to the kernel's 15 min.
    assert timeouts["keepalives"] == 1 and 0 < timeouts["tcp_user_timeout"] <= 60_000
    if connection.vendor == "postgresql":
        assert database["OPTIONS"]["connect_timeout"] == timeouts["connect_timeout"]
        assert database["OPTIONS"]["options"] == timeouts["options"]
        connection.ensure_connection()
        dsn = connection.connection.info.dsn
        assert "keepalives_idle=10" in dsn and "tcp_user_timeout=30000" in dsn


def test_a_database_that_never_answers_fails_instead_of_hanging(django_db_blocker):
    with hanging_server() as port, django_db_blocker.unblock():
        connection = hanging_capable_wrapper(port)
        started = time.monotonic()
        with pytest.raises(OperationalError, match="timeout"):
            connection.ensure_connection()
        assert time.monotonic() - started < HANG_GUARD


def test_a_database_that_refuses_fails_at_once(django_db_blocker):
    connection = hanging_capable_wrapper(closed_port())
    with django_db_blocker.unblock(), pytest.raises(OperationalError):
        connection.ensure_connection()


@pytest.mark.django_db
def test_the_statement_timeout_reaches_postgresql(settings):
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's; the PostgreSQL pass runs this")

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == f"{settings.DATABASE_STATEMENT_TIMEOUT}s"


# -- AWS that cannot be reached: said in plain words -----------------------------------


def test_the_bucket_picker_says_s3_cannot_be_reached_without_its_url(user, team, aws_credentials):
    # Every AWS endpoint of the test run is a port nothing listens on: S3 is down.
    set_up_disk_imports(team)
    client = Client()
    client.force_login(user)

    page = client.get(reverse("imports:bucket_files")).content.decode()

    assert "Could not reach AWS S3: the connection failed." in page
    assert "list-type" not in page and "127.0.0.1" not in page
