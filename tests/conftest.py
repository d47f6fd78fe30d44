import pytest
from botocore.stub import Stubber
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache
from django.test import override_settings

from config.celery import app
from fakeaws import s3
from fakeaws.testing import reset_moto, running_emulator, running_moto
from imports import aws, tasks
from imports.cache import forget_failures
from imports.models import ApiToken, ImageImport, Team

from .factories import make_member, valid_payload


@pytest.fixture
def payload():
    return valid_payload()


@pytest.fixture
def team(db):
    return Team.objects.create(name="platform")


@pytest.fixture
def other_team(db):
    return Team.objects.create(name="data")


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
def image_import(team, user, payload):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)
    return image_import


@pytest.fixture
def api_token(team, user):
    _, raw_token = ApiToken.issue(user=user, team=team, name="ci")
    return raw_token


@pytest.fixture
def api_headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def retries_queued(monkeypatch):
    """Captures the re-enqueues a retry sends, instead of sending them to the broker.

    The submit task's retries: a list of (args, countdown), one per retry queued.
    """
    sent = []
    monkeypatch.setattr(
        tasks.submit_import, "apply_async", lambda args, countdown: sent.append((args, countdown))
    )
    return sent


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
    """Each test starts with new boto3 clients, an empty, working cache, and publishing on.

    A publish that failed in one test (the broker down on purpose, or a
    blip) pauses this process's publishing for BROKER_PUBLISH_PAUSE: ended
    here, so that no later test waits on a message never sent.
    """
    aws.clear_clients()
    cache.clear()
    forget_failures()
    tasks.PublishPause.end()
    yield
    aws.clear_clients()
    forget_failures()
    tasks.PublishPause.end()


@pytest.fixture
def imagebuilder_stub(aws_credentials):
    client = aws.client("imagebuilder")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


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


@pytest.fixture(scope="session")
def moto_url():
    """moto's server (S3, IAM) on a free port, for the whole run; see s3_emulator."""
    with running_moto() as url:
        yield url


@pytest.fixture
def s3_emulator(monkeypatch, aws_credentials, moto_url):
    """The emulator reading disks from moto, boto3 pointed at both; no waiting.

    moto starts empty; `s3_emulator.s3_endpoint` is its URL, and
    fakeaws.s3.set_up(url) makes what `make run` has: the upload bucket (CORS,
    lifecycle) and the vmimport role.
    """
    reset_moto(moto_url)
    with running_emulator(step_seconds=0, s3_endpoint=moto_url) as control:
        for name, value in control.environ().items():
            monkeypatch.setenv(name, value)
        aws.clear_clients()
        yield control


@pytest.fixture
def s3_set_up(s3_emulator):
    """s3_emulator with the bucket and role `make run` seeds."""
    s3.set_up(s3_emulator.s3_endpoint)
    return s3_emulator


@pytest.fixture(scope="module")
def worker(django_db_setup):
    """A real Celery worker on the configured broker, one per module (each costs seconds)."""
    # Retries at once: the tests wait for results rather than sleeping.
    with override_settings(IMPORT_RETRY_BASE_DELAY=0):
        app.control.purge()  # nothing left over from an earlier run may reach this one
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as w:
            yield w


@pytest.fixture
def public_dns(monkeypatch):
    """Every host resolves to a public address (the tests have no DNS)."""
    from notifications import safehttp

    monkeypatch.setattr(
        safehttp.socket,
        "getaddrinfo",
        lambda host, port, **kw: [(2, 1, 6, "", ("93.184.215.14", port))],
    )
