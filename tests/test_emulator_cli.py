"""The emulator as people use it: the AWS CLI, `python -m fakeaws` and `manage.py fakeaws`."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from fakeaws import s3
from fakeaws.testing import EmulatorControl, running_emulator

from .sockets import free_port

VENV_BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parent.parent
# The package's own entry point, and manage.py's thin wrapper around it.
COMMANDS = {
    "python -m fakeaws": [sys.executable, "-m", "fakeaws"],
    "manage.py fakeaws": [sys.executable, str(PROJECT / "manage.py"), "fakeaws"],
}
SEEDED_TASK = "import-ami-0123456789abcdef0"


def offline_environ(**extra):
    """The environment of a subprocess that must only ever talk to the emulator."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name.lower() not in ("http_proxy", "https_proxy")
    }
    environ.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
        **extra,
    )
    return environ


def aws_cli(emulator, *arguments):
    return subprocess.run(
        [str(VENV_BIN / "aws"), *arguments, "--endpoint-url", emulator.url, "--output", "json"],
        env=offline_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def emulator():
    with running_emulator(step_seconds=0) as emulator:
        yield emulator


def test_the_cli_imports_a_vm_image_and_reads_it_back(emulator):
    imported = aws_cli(
        emulator,
        "imagebuilder",
        "import-vm-image",
        "--name",
        "CLI image",
        "--semantic-version",
        "3.1.4",
        "--platform",
        "Windows",
        "--vm-import-task-id",
        SEEDED_TASK,
        "--client-token",
        "cli-token-1",
    )
    assert imported.returncode == 0, imported.stderr
    arn = json.loads(imported.stdout)["imageArn"]
    assert arn == "arn:aws:imagebuilder:us-east-1:123456789012:image/cli-image/3.1.4/1"

    fetched = aws_cli(emulator, "imagebuilder", "get-image", "--image-build-version-arn", arn)

    assert fetched.returncode == 0, fetched.stderr
    image = json.loads(fetched.stdout)["image"]
    assert image["state"]["status"] == "AVAILABLE"
    assert image["outputResources"]["amis"][0]["image"] == "ami-0a1b2c3d4e5f60718"


def test_the_cli_shows_the_service_validation_error(emulator):
    rejected = aws_cli(
        emulator,
        "imagebuilder",
        "import-vm-image",
        "--name",
        "CLI image",
        "--semantic-version",
        "1.0.0/1",
        "--platform",
        "Linux",
        "--vm-import-task-id",
        SEEDED_TASK,
        "--client-token",
        "cli-token-2",
    )

    assert rejected.returncode != 0
    assert "(ClientException)" in rejected.stderr
    assert "semanticVersion" in rejected.stderr


def test_the_cli_describes_vm_import_tasks(emulator):
    described = aws_cli(
        emulator,
        "ec2",
        "describe-import-image-tasks",
        "--filters",
        "Name=task-state,Values=completed",
    )

    assert described.returncode == 0, described.stderr
    tasks = json.loads(described.stdout)["ImportImageTasks"]
    assert SEEDED_TASK in [task["ImportTaskId"] for task in tasks]
    assert {task["Status"] for task in tasks} == {"completed"}


def wait_until_serving(control, process):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"fakeaws exited: {process.stdout.read()}")
        try:
            return control.get("health")
        except OSError:
            time.sleep(0.1)
    pytest.fail("fakeaws did not start serving within 30 seconds")


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_the_command_serves_with_its_fault_flags(command):
    port = free_port()
    command = [
        *command,
        "--port",
        str(port),
        "--step-seconds",
        "0",
        "--fail-next",
        "1",
        "--fail-with",
        "ServiceException",
        "--fail-operation",
        "DescribeImportImageTasks",
        "--quiet",
    ]
    process = subprocess.Popen(
        command,
        cwd=PROJECT,
        env=offline_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        control = EmulatorControl(f"http://127.0.0.1:{port}")
        assert wait_until_serving(control, process) == {"ok": True}

        failed = aws_cli(control, "ec2", "describe-import-image-tasks")
        served = aws_cli(control, "ec2", "describe-import-image-tasks")

        assert "(InternalError)" in failed.stderr
        assert served.returncode == 0, served.stderr
        assert control.calls()["operations"] == {"DescribeImportImageTasks": 2}
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_the_command_says_its_state_is_in_memory(command):
    shown = subprocess.run(
        [*command, "--help"],
        cwd=PROJECT,
        env=offline_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert "in memory" in shown.stdout
    assert "--fail-next" in shown.stdout


def test_the_command_refuses_a_failure_rate_above_one():
    refused = subprocess.run(
        [*COMMANDS["python -m fakeaws"], "--fail-rate", "2"],
        cwd=PROJECT,
        env=offline_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert refused.returncode == 2
    assert "--fail-rate must be between 0 and 1." in refused.stderr


def test_the_command_sets_up_moto_started_after_it_as_make_run_does():
    port, moto_port = free_port(), free_port()
    moto = f"http://127.0.0.1:{moto_port}"
    emulator_command = [
        *COMMANDS["python -m fakeaws"],
        *("--port", str(port), "--quiet", "--s3-endpoint", moto),
        *("--portal-origin", "http://127.0.0.1:9000"),
    ]
    moto_command = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)]
    processes = [
        subprocess.Popen(
            command,
            cwd=PROJECT,
            env=offline_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in (emulator_command, moto_command)  # moto last: the emulator waits
    ]
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    config = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})
    try:
        bucket = session.client("s3", endpoint_url=moto, config=config)
        iam = session.client("iam", endpoint_url=moto, config=config)
        deadline = time.monotonic() + 60
        while True:
            try:
                # The role's policy is the last thing set up.
                iam.get_role_policy(RoleName=s3.IMPORT_ROLE, PolicyName=s3.IMPORT_ROLE)
                break
            except Exception:
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise
                time.sleep(0.5)
        [rule] = bucket.get_bucket_cors(Bucket=s3.UPLOAD_BUCKET)["CORSRules"]
        assert rule["AllowedOrigins"] == ["http://127.0.0.1:9000"]
        assert iam.get_role(RoleName=s3.IMPORT_ROLE)["Role"]["RoleName"] == "vmimport"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
