import pytest
from botocore.stub import Stubber
from django.contrib.auth import get_user_model
from django.core.cache import cache

from imports import aws
from imports.emulator.testing import running_emulator
from imports.forms import ImportVmImageForm
from imports.models import ApiToken, Membership, Team, VmImport


def valid_payload(**overrides):
    payload = {
        "clientToken": "0b6f2c1e-1d7e-4c55-9d61-1a2b3c4d5e6f",
        "name": "Web server base",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "vmImportTaskId": "import-ami-0123456789abcdef0",
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
