"""Production hardening: deploy checks, CSP, sign-in limits, CSRF, cookies."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from imports.forms import tag_formset_data

from .factories import valid_payload
from .helpers import csp_directives

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k" * 20 + "-production-secret-for-the-deploy-check-only-0123456789",
    "ALLOWED_HOSTS": "portal.example.com",
}


def manage(*args, **env):
    environ = {key: value for key, value in os.environ.items() if key not in PRODUCTION}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_a_secret_or_hosts(missing):
    settings = {key: value for key, value in PRODUCTION.items() if key != missing}
    result = manage("check", **settings)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in result.stderr


def test_every_page_carries_a_strict_content_security_policy(user_client):
    policy = user_client.get("/imports/new")["Content-Security-Policy"]
    directives = csp_directives(policy)
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in policy


def test_pages_have_no_inline_script_or_style(user_client, image_import):
    for url in ["/", "/imports/new", reverse("imports:detail", args=[image_import.pk])]:
        content = user_client.get(url).content.decode()
        assert "<script>" not in content and " style=" not in content
        for line in content.splitlines():
            if "<script" in line:
                assert " src=" in line, line
    assert '"allowEval": false' in user_client.get("/").content.decode()


def test_sign_in_is_locked_after_five_failures(db, user, settings):
    client = Client(REMOTE_ADDR="198.51.100.20")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    # Another address is not locked out with it.
    other = Client(REMOTE_ADDR="198.51.100.21")
    response = other.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302


def test_the_lockout_keys_on_the_address_behind_our_proxy(db, user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.66")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attacker.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    # Same proxy, another client: not locked.
    colleague = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.67")
    response = colleague.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302


def test_unsafe_requests_need_the_csrf_token_htmx_ones_included(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    data = {**valid_payload(), **tag_formset_data([])}
    assert client.post("/imports/new", data, headers={"HX-Request": "true"}).status_code == 403
    page = client.get("/imports/new")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/imports/new", data, headers={"HX-Request": "true", "X-CSRFToken": token}
    )
    assert response.status_code == 200
    assert "HX-Redirect" in response


def test_production_cookies_are_secure_and_http_only():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, "
        "s.SESSION_COOKIE_AGE)",
        **PRODUCTION,
    )
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.split() == ["True", "True", "True", "True", "43200"], result.stderr
