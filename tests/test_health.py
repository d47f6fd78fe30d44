"""/healthz and /readyz: for load balancers, no sign-in, nothing revealed."""

import time

import pytest
from django.db import connections
from django.test import Client

from config.celery import app

from .sockets import closed_port, hanging_server
from .test_outages import redis_cache_at

HANG_GUARD = 30


def test_healthz_answers_without_touching_anything(client):
    # No db fixture: any database access here would raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "sessionid" not in response.cookies
    assert "no-cache" in response["Cache-Control"]


def test_healthz_refuses_posts(client):
    assert client.post("/healthz").status_code == 405


def test_readyz_checks_each_dependency(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "cache": "ok"},
    }


def assert_reveals_nothing(response, port):
    text = response.content.decode()
    for secret in ("127.0.0.1", str(port), "redis", "postgres", "sqlite", "Error", "version"):
        assert secret not in text


def test_readyz_names_a_cache_that_refuses_and_stays_ready(client, db, settings):
    # Every page works without the cache (tests/test_outages.py): a machine
    # taken out of service for it would turn a Redis blip into an outage.
    port = closed_port()
    settings.CACHES = redis_cache_at(port, settings)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "broker": "ok", "cache": "unavailable"},
    }
    assert_reveals_nothing(response, port)


def test_readyz_names_a_hanging_cache_quickly(client, db, settings):
    with hanging_server() as port:
        settings.CACHES = redis_cache_at(port, settings)
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < HANG_GUARD
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["cache"] in ("unavailable", "timeout")


def test_readyz_names_a_broker_that_refuses_and_stays_ready(client, db, monkeypatch):
    # The web still records imports without the broker; the sweeper sends them.
    port = closed_port()
    url = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setattr(app, "connection_for_write", lambda: app.connection(url, connect_timeout=1))
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "broker": "unavailable", "cache": "ok"},
    }
    assert_reveals_nothing(response, port)


@pytest.mark.django_db(transaction=True)
def test_readyz_names_a_database_that_refuses(client, monkeypatch):
    port = closed_port()
    database = connections.settings["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        monkeypatch.setitem(database, "NAME", "/nonexistent/directory/portal.sqlite3")
    else:
        monkeypatch.setitem(database, "HOST", "127.0.0.1")
        monkeypatch.setitem(database, "PORT", str(port))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"] == "unavailable"
    assert_reveals_nothing(response, port)


# -- probes by the machine's address (a load balancer's, an orchestrator's) --------

PROBE_HOSTS = ["10.0.3.7:8000", "[fd00::7]:8000", "ip-10-0-3-7.ec2.internal"]


@pytest.fixture
def production_hosts(settings):
    settings.ALLOWED_HOSTS = ["portal.example.com"]


@pytest.mark.parametrize("host", PROBE_HOSTS)
def test_healthz_answers_a_probe_sent_to_the_machines_address(client, production_hosts, host):
    # An ALB's health check sends the target's IP as its Host, a kubelet the
    # pod's: a 400 there would take every machine out of service.
    response = client.get("/healthz", headers={"host": host})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"  # still through the security headers


@pytest.mark.parametrize("host", PROBE_HOSTS)
def test_readyz_answers_a_probe_sent_to_the_machines_address(client, db, production_hosts, host):
    response = client.get("/readyz", headers={"host": host})
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_a_scrape_by_the_machines_name_is_answered(client, db, production_hosts, settings):
    # Prometheus scrapes each machine by its own name, web-1.internal:8000.
    settings.METRICS_TOKEN = "scrape-token"
    host = {"host": "web-1.internal:8000"}
    response = client.get("/metrics", headers={**host, "Authorization": "Bearer scrape-token"})
    assert response.status_code == 200
    assert b"portal_imports" in response.content
    assert client.get("/metrics", headers=host).status_code == 401  # still its token


@pytest.mark.parametrize("path", ["/", "/healthz/", "/api/imports", "/accounts/login/", "/metric"])
def test_every_other_path_still_refuses_a_host_not_allowed(client, db, production_hosts, path):
    assert client.get(path, headers={"host": "10.0.3.7:8000"}).status_code == 400


def test_a_probe_to_an_allowed_host_takes_the_usual_way(client, production_hosts):
    assert client.get("/healthz", headers={"host": "portal.example.com"}).status_code == 200
    assert client.post("/healthz", headers={"host": "10.0.3.7:8000"}).status_code == 405
