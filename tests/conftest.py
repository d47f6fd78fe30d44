import threading
import time

import pytest
from botocore.stub import Stubber
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import override_settings

from config.celery import app
from imports import aws
from imports.emulator.testing import running_emulator
from imports.forms import ImportVmImageForm
from imports.models import ApiToken, Membership, Team, VmImport

# The emulator's seeded VM import tasks: completed (with its AMI), and converting.
SEEDED_TASK = "import-ami-0123456789abcdef0"
SEEDED_AMI = "ami-0a1b2c3d4e5f60718"
CONVERTING_TASK = "import-ami-0c0ffee0123456789"


def valid_payload(**overrides):
    payload = {
        "clientToken": "0b6f2c1e-1d7e-4c55-9d61-1a2b3c4d5e6f",
        "name": "Web server base",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "vmImportTaskId": SEEDED_TASK,
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not None}


@pytest.fixture
def payload():
    return valid_payload()


@pytest.fixture
def team(db):
    return Team.objects.create(name="platform")


@pytest.fixture
def other_team(db):
    return Team.objects.create(name="data")


def make_member(username, team, role=Membership.Role.SUBMITTER):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    Membership.objects.create(user=user, team=team, role=role)
    return user


@pytest.fixture
def user(team):
    return make_member("alice", team)


@pytest.fixture
def teammate(team):
    return make_member("bob", team)


@pytest.fixture
def outsider(other_team):
    return make_member("mallory", other_team)


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client


@pytest.fixture
def vm_import(team, user, payload):
    vm_import, _ = VmImport.submit(team=team, user=user, payload=payload)
    return vm_import


@pytest.fixture
def api_token(team, user):
    _, raw_token = ApiToken.issue(user=user, team=team, name="ci")
    return raw_token


@pytest.fixture
def api_headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def aws_credentials(monkeypatch):
    """Dummy credentials: Stubber answers before anything is signed or sent."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests create many users; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_aws_clients_and_cache():
    """Each test starts with new boto3 clients and an empty cache."""
    aws.clear_clients()
    cache.clear()
    yield
    aws.clear_clients()


@pytest.fixture
def imagebuilder_stub(aws_credentials):
    client = aws.client("imagebuilder")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def bound_form(payload):
    return ImportVmImageForm.from_json(payload)


def serve_emulator(monkeypatch, step_seconds):
    with running_emulator(step_seconds=step_seconds) as control:
        for name, value in control.environ().items():
            monkeypatch.setenv(name, value)
        aws.clear_clients()
        yield control


@pytest.fixture
def emulator(monkeypatch, aws_credentials):
    """The project's AWS emulator on a real port, boto3 pointed at it; no waiting."""
    yield from serve_emulator(monkeypatch, step_seconds=0)


@pytest.fixture
def slow_emulator(monkeypatch, aws_credentials):
    """The emulator with one-minute steps: advance() walks tasks and images."""
    yield from serve_emulator(monkeypatch, step_seconds=60)


@pytest.fixture(scope="module")
def worker(django_db_setup):
    """A real Celery worker on the configured broker, one per module (each costs seconds)."""
    # Retries at once: the tests wait for results rather than sleeping.
    with override_settings(IMPORT_RETRY_BASE_DELAY=0):
        app.control.purge()  # nothing left over from an earlier run may reach this one
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as w:
            yield w


def wait_for_status(vm_import, *statuses, timeout=30):
    """The import once the worker has moved it to one of `statuses`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vm_import.refresh_from_db()
        if vm_import.status in statuses:
            return vm_import
        time.sleep(0.1)
    raise AssertionError(f"import {vm_import.pk} stayed {vm_import.status}, not {statuses}")


def at_once(action, times=4):
    """Run `action` in `times` threads released together; returns their results.

    Each thread closes its own database connection, as a web or worker
    process would at the end of its work.
    """
    barrier = threading.Barrier(times)
    results = []

    def run():
        barrier.wait()
        try:
            results.append(action())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == times, "a thread failed; see its traceback above"
    return results
