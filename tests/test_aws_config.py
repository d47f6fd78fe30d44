"""Which AWS `make run` uses, and the banner that says so."""

import pytest

from imports import aws


@pytest.mark.parametrize(
    "environ, configured",
    [
        ({}, False),
        ({"AWS_REGION": "eu-west-1"}, False),  # a region but no credentials
        ({"AWS_ACCESS_KEY_ID": "AKIA..."}, False),  # credentials but no region
        ({"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIA..."}, True),
        ({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_PROFILE": "prod"}, True),
    ],
)
def test_aws_is_configured_only_with_credentials_and_a_region(
    monkeypatch, tmp_path, environ, configured
):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)  # nor may botocore find one
    environ = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), **environ}
    assert aws.aws_configured(environ) is configured


def test_a_credentials_file_counts_as_credentials(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = x\n")
    environ = {"AWS_REGION": "eu-west-1", "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    assert aws.aws_configured(environ)
    assert not aws.aws_configured({**environ, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})


@pytest.mark.parametrize(
    "endpoint, local",
    [
        (None, False),
        ("http://127.0.0.1:8001", True),
        ("http://localhost:8001", True),
        ("http://[::1]:8001", True),
        ("https://imagebuilder.eu-west-1.amazonaws.com", False),
    ],
)
def test_the_emulator_is_recognised_by_its_loopback_endpoint(endpoint, local):
    environ = {"AWS_ENDPOINT_URL_IMAGEBUILDER": endpoint} if endpoint else {}
    assert aws.uses_local_emulator(environ) is local


def test_every_page_shows_the_emulator_banner_only_with_the_emulator(user_client, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_IMAGEBUILDER")  # as with real AWS
    assert "Local AWS emulator" not in user_client.get("/").content.decode()
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", "http://127.0.0.1:8001")
    for url in ["/", "/imports/new", "/accounts/login/"]:
        content = user_client.get(url).content.decode()
        assert "Local AWS emulator: nothing is sent to AWS." in content


def test_the_aws_mode_command_prints_the_choice(capsys, monkeypatch):
    from django.core.management import call_command

    monkeypatch.delenv("AWS_REGION", raising=False)
    call_command("aws_mode")
    assert capsys.readouterr().out.strip() == "emulator"


def test_an_answer_that_is_no_aws_answer_is_a_retryable_error_not_a_crash():
    from botocore.parsers import ResponseParserError

    error = aws.translate(ResponseParserError("Unable to parse response (syntax error)"))
    assert error.code == "InvalidResponse" and error.retryable


@pytest.mark.parametrize(
    "description, version",
    [
        ("Ubuntu 22.04 web server (VMware OVA export)", "22.04"),
        ("Windows Server 2022 base (Hyper-V export)", "2022"),
        ("RHEL 9 database server", "9"),
        ("Debian 12.5.1 minimal", "12.5.1"),
        ("build agent from the x86_64 pool", ""),
        ("", ""),
    ],
)
def test_the_os_version_is_read_from_a_tasks_description(description, version):
    task = aws.Ec2ImportTask(
        import_task_id="import-ami-0123456789abcdef0",
        status="completed",
        status_message="",
        progress=None,
        image_id="",
        description=description,
    )
    assert task.os_version_hint == version
