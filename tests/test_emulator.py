"""The local AWS emulator, through real boto3 clients over real HTTP."""

import json
import re
import socket
import struct
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from fakeaws.testing import running_emulator
from imports import aws

from .factories import valid_payload as import_request

SEEDED_TASK = "import-ami-0123456789abcdef0"  # completed
CONVERTING_TASK = "import-ami-0c0ffee0123456789"  # active at start-up
ACCOUNT = "123456789012"
IMAGE_ARN = re.compile(
    r"arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1\.0\.0/(\d+)"
)
DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def emulator():
    with running_emulator(step_seconds=0) as emulator:
        yield emulator


@pytest.fixture
def slow_emulator():
    """Ten seconds a step: tests walk the states with advance()."""
    with running_emulator(step_seconds=10) as emulator:
        yield emulator


# One session for the module: its clients share the loaded service models.
SESSION = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")


def client(service, emulator, region="us-east-1"):
    return SESSION.client(
        service,
        region_name=region,
        endpoint_url=emulator.url,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5),
    )


def error_of(excinfo):
    error = excinfo.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]


def image_status(imagebuilder, arn):
    return imagebuilder.get_image(imageBuildVersionArn=arn)["image"]["state"]["status"]


def new_vm_import(ec2, **overrides):
    request = {
        "Description": "Build server (VMware export)",
        "Platform": "Linux",
        "DiskContainers": [
            {"Format": "vmdk", "UserBucket": {"S3Bucket": "exports", "S3Key": "build.vmdk"}}
        ],
    }
    request.update(overrides)
    return ec2.import_image(**request)["ImportTaskId"]


# -- ImportVmImage ------------------------------------------------------------


def test_it_answers_an_image_arn_of_the_real_shape(emulator):
    response = client("imagebuilder", emulator).import_vm_image(**import_request())

    assert IMAGE_ARN.fullmatch(response["imageArn"])[1] == "1"
    assert response["clientToken"] == "0b6f2c1e-1d7e-4c55-9d61-1a2b3c4d5e6f"
    assert response["requestId"]
    assert response["ResponseMetadata"]["RequestId"]


def test_it_takes_the_region_from_the_request_signature(emulator):
    response = client("imagebuilder", emulator, region="eu-west-1").import_vm_image(
        **import_request()
    )

    assert response["imageArn"].startswith("arn:aws:imagebuilder:eu-west-1:123456789012:image/")


def test_it_numbers_builds_per_name_and_version(emulator):
    imagebuilder = client("imagebuilder", emulator)

    first = imagebuilder.import_vm_image(**import_request(clientToken="one"))
    second = imagebuilder.import_vm_image(**import_request(clientToken="two"))
    other_version = imagebuilder.import_vm_image(
        **import_request(clientToken="three", semanticVersion="2.0.0")
    )

    assert first["imageArn"].endswith("/web-server-base/1.0.0/1")
    assert second["imageArn"].endswith("/web-server-base/1.0.0/2")
    assert other_version["imageArn"].endswith("/web-server-base/2.0.0/1")


TAG_KEY_RULES = (
    "Member must have length less than or equal to 128, "
    "Member must have length greater than or equal to 1, "
    r"Member must satisfy regular expression pattern: ^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$"
)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"semanticVersion": "1.0.0/1"},
            "Value '1.0.0/1' at 'semanticVersion' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: ^[0-9]+\.[0-9]+\.[0-9]+$",
        ),
        (
            # The model's ^...$ matched as AWS matches it: against the whole value.
            {"semanticVersion": "1.0.0\n"},
            "Value '1.0.0\n' at 'semanticVersion' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: ^[0-9]+\.[0-9]+\.[0-9]+$",
        ),
        (
            {"tags": {"aws:team": "platform"}},
            "Value '{aws:team=platform}' at 'tags' failed to satisfy constraint: "
            f"Map keys must satisfy constraint: [{TAG_KEY_RULES}]",
        ),
        (
            {"tags": {"team": "x" * 257}},
            f"Value '{{team={'x' * 257}}}' at 'tags' failed to satisfy constraint: "
            "Map value must satisfy constraint: "
            "[Member must have length less than or equal to 256]",
        ),
        (
            {"tags": {f"key{n}": "v" for n in range(51)}},
            "at 'tags' failed to satisfy constraint: "
            "Member must have length less than or equal to 50",
        ),
        (
            {"platform": "linux"},
            "Value 'linux' at 'platform' failed to satisfy constraint: "
            "Member must satisfy enum value set: [Windows, Linux, macOS]",
        ),
        (
            {"clientToken": "x" * 65},
            f"Value '{'x' * 65}' at 'clientToken' failed to satisfy constraint: "
            "Member must have length less than or equal to 64",
        ),
        (
            {"name": "n" * 1025},
            f"Value '{'n' * 1025}' at 'name' failed to satisfy constraint: "
            "Member must have length less than or equal to 1024",
        ),
    ],
)
def test_it_rejects_what_the_model_rejects_in_aws_words(emulator, overrides, problem):
    with pytest.raises(ClientError) as excinfo:
        client("imagebuilder", emulator).import_vm_image(**import_request(**overrides))

    code, message, metadata = error_of(excinfo)
    assert code == "ClientException"
    assert metadata["HTTPStatusCode"] == 400
    assert message.startswith("1 validation error detected: ")
    assert message.endswith(problem)
    assert emulator.calls()["imagesCreated"] == 0


def test_it_counts_every_broken_rule(emulator):
    with pytest.raises(ClientError) as excinfo:
        client("imagebuilder", emulator).import_vm_image(
            **import_request(platform="linux", description="d" * 1025)
        )

    message = error_of(excinfo)[1]
    assert message.startswith("2 validation errors detected: Value '")
    assert "at 'description' failed" in message
    assert "; Value 'linux' at 'platform' failed" in message


def test_a_version_node_above_2_to_the_30_minus_1_is_refused_by_the_api_reference_rule(emulator):
    imagebuilder = client("imagebuilder", emulator)

    with pytest.raises(ClientError) as excinfo:
        imagebuilder.import_vm_image(**import_request(semanticVersion="0.1073741824.0"))
    accepted = imagebuilder.import_vm_image(
        **import_request(semanticVersion="1073741823.0.01073741823")
    )

    code, message, _ = error_of(excinfo)
    assert code == "ClientException"
    assert "at most 1073741823 (2^30-1)" in message
    assert accepted["imageArn"].endswith("/1073741823.0.01073741823/1")


def test_it_rejects_an_unknown_vm_import_task(emulator):
    with pytest.raises(ClientError) as excinfo:
        client("imagebuilder", emulator).import_vm_image(
            **import_request(vmImportTaskId="import-ami-00000000000000000")
        )

    code, message, _ = error_of(excinfo)
    assert code == "ClientException"
    assert "vmImportTaskId" in message


def raw(emulator, method, path, body=None, headers=None):
    """A request as botocore would not send it; (status, headers, decoded body)."""
    request = urllib.request.Request(
        emulator.url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with DIRECT_OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_member_of_the_wrong_json_type_fails_before_validation(emulator):
    body = json.dumps({**import_request(), "name": 5}).encode()

    status, headers, answer = raw(emulator, "PUT", "/ImportVmImage", body)

    assert status == 400
    assert headers["x-amzn-ErrorType"] == "SerializationException"
    assert headers["x-amzn-RequestId"]
    assert json.loads(answer)["message"] == "Cannot read 'name': expected string, found 5."


def test_it_rejects_a_body_that_is_not_json(emulator):
    status, headers, answer = raw(emulator, "PUT", "/ImportVmImage", b"{not json")

    assert status == 400
    assert headers["x-amzn-ErrorType"] == "SerializationException"


def test_a_client_that_hangs_up_before_its_answer_costs_no_traceback(emulator, capsys):
    # A killed worker or a client timeout: ordinary for a server, so the
    # emulator's log stays free of tracebacks that would read as its bugs.
    emulator.latency(0.3)
    host, port = emulator.url.split("//")[1].split(":")
    body = b"Action=DescribeImportImageTasks&Version=2016-11-15"
    with socket.create_connection((host, int(port))) as client:
        client.sendall(
            b"POST / HTTP/1.1\r\nHost: ec2\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        time.sleep(0.1)  # the request is read; its answer waits out the latency
        # Closed with a reset, so the emulator's answer meets a dead socket.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.5)

    assert "Traceback" not in capsys.readouterr().err
    emulator.latency(0)
    assert raw(emulator, "PUT", "/ImportVmImage", b"{not json")[0] == 400  # still serving


def test_it_ignores_members_the_model_does_not_define_and_takes_those_it_does(emulator):
    body = {
        **import_request(),
        "colour": "red",
        "loggingConfiguration": {"logGroupName": "/aws/imagebuilder/web"},
    }

    status, _, answer = raw(emulator, "PUT", "/ImportVmImage", json.dumps(body).encode())

    assert status == 200
    assert IMAGE_ARN.fullmatch(json.loads(answer)["imageArn"])


def test_it_checks_structures_inside_the_request(emulator):
    body = {**import_request(), "loggingConfiguration": {"logGroupName": "no spaces here"}}

    status, headers, answer = raw(emulator, "PUT", "/ImportVmImage", json.dumps(body).encode())

    assert (status, headers["x-amzn-ErrorType"]) == (400, "ClientException")
    assert json.loads(answer)["message"] == (
        "1 validation error detected: Value 'no spaces here' at "
        "'loggingConfiguration.logGroupName' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: ^[a-zA-Z0-9\-_/\.]{1,512}$"
    )


def test_a_missing_required_member_is_null_in_aws_words(emulator):
    body = json.dumps(import_request(name=None)).encode()

    status, _, answer = raw(emulator, "PUT", "/ImportVmImage", body)

    assert status == 400
    assert json.loads(answer)["message"] == (
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
        "Member must not be null"
    )


# -- idempotency --------------------------------------------------------------


def test_the_same_token_and_parameters_answer_the_original_response(emulator):
    imagebuilder = client("imagebuilder", emulator)

    first = imagebuilder.import_vm_image(**import_request())
    again = imagebuilder.import_vm_image(**import_request())

    assert again["imageArn"] == first["imageArn"]
    assert again["requestId"] == first["requestId"]
    calls = emulator.calls()
    assert calls["imagesCreated"] == 1
    assert calls["operations"]["ImportVmImage"] == 2
    assert calls["clientTokens"]["0b6f2c1e-1d7e-4c55-9d61-1a2b3c4d5e6f"] == 2


def test_the_same_token_with_other_parameters_is_a_mismatch(emulator):
    imagebuilder = client("imagebuilder", emulator)
    imagebuilder.import_vm_image(**import_request())

    with pytest.raises(ClientError) as excinfo:
        imagebuilder.import_vm_image(**import_request(description="Another image"))

    code, _, metadata = error_of(excinfo)
    assert code == "IdempotentParameterMismatchException"
    assert metadata["HTTPStatusCode"] == 400
    assert emulator.calls()["imagesCreated"] == 1


# -- the life of an image -----------------------------------------------------


def test_with_no_step_time_an_image_is_available_at_once_with_its_ami(emulator):
    imagebuilder = client("imagebuilder", emulator)
    arn = imagebuilder.import_vm_image(**import_request(description="Base"))["imageArn"]

    image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]

    assert image["state"] == {"status": "AVAILABLE"}
    assert image["version"] == "1.0.0/1"
    assert image["outputResources"]["amis"] == [
        {
            "region": "us-east-1",
            "image": "ami-0a1b2c3d4e5f60718",
            "name": "Web server base 1.0.0/1",
            "description": "Base",
            "state": {"status": "AVAILABLE"},
            "accountId": ACCOUNT,
        }
    ]


def test_an_image_waits_for_its_vm_import_then_walks_to_available(slow_emulator):
    ec2 = client("ec2", slow_emulator)
    imagebuilder = client("imagebuilder", slow_emulator)
    task_id = new_vm_import(ec2)
    arn = imagebuilder.import_vm_image(**import_request(vmImportTaskId=task_id))["imageArn"]

    seen_tasks, seen_images = [], []
    for _ in range(12):
        [task] = ec2.describe_import_image_tasks(ImportTaskIds=[task_id])["ImportImageTasks"]
        seen_tasks.append((task["Status"], task.get("Progress"), task.get("StatusMessage")))
        seen_images.append(image_status(imagebuilder, arn))
        slow_emulator.advance(10)

    assert seen_tasks[:6] == [
        ("active", "10", "pending"),
        ("active", "30", "validating"),
        ("active", "50", "converting"),
        ("active", "70", "updating"),
        ("active", "90", "preparing ami"),
        ("completed", None, None),
    ]
    assert seen_images == ["PENDING"] * 5 + [
        "CREATING",
        "BUILDING",
        "TESTING",
        "DISTRIBUTING",
        "INTEGRATING",
        "AVAILABLE",
        "AVAILABLE",
    ]
    [task] = ec2.describe_import_image_tasks(ImportTaskIds=[task_id])["ImportImageTasks"]
    assert re.fullmatch(r"ami-[0-9a-f]{17}", task["ImageId"])
    image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]
    assert image["outputResources"]["amis"][0]["image"] == task["ImageId"]


def test_a_cancelled_vm_import_fails_its_image(slow_emulator):
    ec2 = client("ec2", slow_emulator)
    imagebuilder = client("imagebuilder", slow_emulator)
    arn = imagebuilder.import_vm_image(**import_request(vmImportTaskId=CONVERTING_TASK))["imageArn"]
    assert image_status(imagebuilder, arn) == "PENDING"

    cancelled = ec2.cancel_import_task(ImportTaskId=CONVERTING_TASK, CancelReason="wrong disk")

    assert cancelled["PreviousState"] == "active"
    assert cancelled["State"] == "deleting"
    state = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]["state"]
    assert state["status"] == "FAILED"
    assert CONVERTING_TASK in state["reason"]
    slow_emulator.advance(10)
    [task] = ec2.describe_import_image_tasks(ImportTaskIds=[CONVERTING_TASK])["ImportImageTasks"]
    assert task["Status"] == "deleted"
    assert task["StatusMessage"] == "wrong disk"
    assert "ImageId" not in task


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_the_control_api_can_end_an_image(emulator, status):
    imagebuilder = client("imagebuilder", emulator)
    arn = imagebuilder.import_vm_image(**import_request())["imageArn"]

    assert emulator.end_image(arn, status, "Disk image is corrupt")["exists"] is True

    image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]
    assert image["state"] == {"status": status, "reason": "Disk image is corrupt"}
    assert image["outputResources"]["amis"] == []


def test_an_ending_can_be_arranged_before_the_image_exists(emulator):
    imagebuilder = client("imagebuilder", emulator)
    arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"

    assert emulator.end_image(arn, "FAILED", "No boot volume")["exists"] is False
    assert imagebuilder.import_vm_image(**import_request())["imageArn"] == arn

    assert image_status(imagebuilder, arn) == "FAILED"


def test_get_image_answers_the_latest_build_for_a_version_arn(emulator):
    imagebuilder = client("imagebuilder", emulator)
    imagebuilder.import_vm_image(**import_request(clientToken="one"))
    imagebuilder.import_vm_image(**import_request(clientToken="two"))

    image = imagebuilder.get_image(
        imageBuildVersionArn="arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0"
    )["image"]

    assert image["version"] == "1.0.0/2"


@pytest.mark.parametrize(
    ("arn", "code", "status"),
    [
        (
            "arn:aws:imagebuilder:us-east-1:123456789012:image/missing/1.0.0/1",
            "ResourceNotFoundException",
            404,
        ),
        ("not-an-arn", "ClientException", 400),
    ],
)
def test_get_image_rejects_unknown_and_malformed_arns(emulator, arn, code, status):
    with pytest.raises(ClientError) as excinfo:
        client("imagebuilder", emulator).get_image(imageBuildVersionArn=arn)

    assert error_of(excinfo)[0] == code
    assert error_of(excinfo)[2]["HTTPStatusCode"] == status


# -- EC2 VM import ------------------------------------------------------------


def test_it_is_seeded_with_completed_and_converting_vm_imports(slow_emulator):
    tasks = client("ec2", slow_emulator).describe_import_image_tasks()["ImportImageTasks"]

    completed = [task for task in tasks if task["Status"] == "completed"]
    active = [task for task in tasks if task["Status"] == "active"]
    assert len(completed) == 3
    assert all(re.fullmatch(r"ami-[0-9a-f]{17}", task["ImageId"]) for task in completed)
    assert {task["Platform"] for task in completed} == {"Linux", "Windows"}
    assert len({task["Description"] for task in completed}) == 3
    assert [(task["ImportTaskId"], task["StatusMessage"]) for task in active] == [
        (CONVERTING_TASK, "converting")
    ]


def test_the_seeded_converting_task_waits_to_be_listed_then_takes_its_time():
    with running_emulator(step_seconds=2, seed_converting_seconds=180) as emulator:
        ec2 = client("ec2", emulator)
        emulator.advance(3600)  # nobody has looked yet: an hour goes by

        def converting():
            [task] = ec2.describe_import_image_tasks(ImportTaskIds=[CONVERTING_TASK])[
                "ImportImageTasks"
            ]
            return task["Status"], task.get("Progress"), task.get("StatusMessage")

        assert converting() == ("active", "50", "converting")  # first listed: it starts now
        emulator.advance(30)
        assert converting() == ("active", "50", "converting")
        emulator.advance(30)
        assert converting() == ("active", "70", "updating")
        emulator.advance(60)
        assert converting() == ("active", "90", "preparing ami")
        emulator.advance(50)
        assert converting()[0] == "active"
        emulator.advance(10)
        assert converting() == ("completed", None, None)


def test_the_command_gives_the_seeded_converting_task_three_minutes():
    from fakeaws.cli import build_parser

    assert build_parser().parse_args([]).seed_converting_seconds == 180


def test_import_image_starts_a_task_and_keeps_its_client_token(slow_emulator):
    ec2 = client("ec2", slow_emulator)

    task_id = new_vm_import(ec2, ClientToken="vm-1")
    again = new_vm_import(ec2, ClientToken="vm-1")

    assert re.fullmatch(r"import-ami-[0-9a-f]{17}", task_id)
    assert again == task_id
    assert slow_emulator.calls()["importTasksCreated"] == 1


def test_import_image_needs_a_disk_container(emulator):
    with pytest.raises(ClientError) as excinfo:
        client("ec2", emulator).import_image(Description="no disks")

    assert error_of(excinfo)[0] == "MissingParameter"


def test_describe_filters_by_task_state(slow_emulator):
    ec2 = client("ec2", slow_emulator)

    active = ec2.describe_import_image_tasks(Filters=[{"Name": "task-state", "Values": ["active"]}])

    assert [task["ImportTaskId"] for task in active["ImportImageTasks"]] == [CONVERTING_TASK]


def test_describe_filters_by_tag(emulator):
    ec2 = client("ec2", emulator)
    tags = [{"ResourceType": "import-image-task", "Tags": [{"Key": "team", "Value": "data"}]}]
    task_id = new_vm_import(ec2, TagSpecifications=tags)

    tagged = ec2.describe_import_image_tasks(Filters=[{"Name": "tag:team", "Values": ["data"]}])

    [task] = tagged["ImportImageTasks"]
    assert task["ImportTaskId"] == task_id
    assert task["Tags"] == [{"Key": "team", "Value": "data"}]


def test_describe_pages_with_max_results_and_next_token(emulator):
    ec2 = client("ec2", emulator)
    everything = [t["ImportTaskId"] for t in ec2.describe_import_image_tasks()["ImportImageTasks"]]

    first = ec2.describe_import_image_tasks(MaxResults=3)
    second = ec2.describe_import_image_tasks(MaxResults=3, NextToken=first["NextToken"])
    pages = ec2.get_paginator("describe_import_image_tasks").paginate(
        PaginationConfig={"PageSize": 1}
    )

    assert len(first["ImportImageTasks"]) == 3
    assert "NextToken" not in second
    assert [t["ImportTaskId"] for t in first["ImportImageTasks"] + second["ImportImageTasks"]] == (
        everything
    )
    assert [t["ImportTaskId"] for page in pages for t in page["ImportImageTasks"]] == everything


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"ImportTaskIds": ["import-ami-00000000000000000"]}, "InvalidConversionTaskId"),
        ({"ImportTaskIds": ["ami-123"]}, "InvalidConversionTaskId.Malformed"),
        ({"Filters": [{"Name": "colour", "Values": ["red"]}]}, "InvalidParameterValue"),
        ({"NextToken": "garbage"}, "InvalidNextToken"),
    ],
)
def test_describe_rejects_unknown_tasks_filters_and_tokens(emulator, request_, code):
    with pytest.raises(ClientError) as excinfo:
        client("ec2", emulator).describe_import_image_tasks(**request_)

    assert error_of(excinfo)[0] == code


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        (
            "MaxResults=many",
            "InvalidParameterValue",
            "Value (many) for parameter MaxResults is invalid. Expected type: integer.",
        ),
        ("MaxResults=0", "InvalidMaxResults", "Value (0) for parameter MaxResults is invalid"),
        ("Colour=red", "UnknownParameter", "The parameter Colour is not recognized"),
    ],
)
def test_describe_reads_its_parameters_through_the_ec2_model(emulator, params, code, message):
    body = f"Action=DescribeImportImageTasks&Version=2016-11-15&{params}".encode()

    status, _, answer = raw(emulator, "POST", "/", body, FORM)

    assert status == 400
    assert f"<Code>{code}</Code>".encode() in answer
    assert message.encode() in answer


def test_import_image_checks_the_models_enums(emulator):
    tags = [{"ResourceType": "bucket", "Tags": [{"Key": "team", "Value": "data"}]}]

    with pytest.raises(ClientError) as excinfo:
        new_vm_import(client("ec2", emulator), TagSpecifications=tags)

    code, message, _ = error_of(excinfo)
    assert code == "InvalidParameterValue"
    assert message.startswith(
        "Value (bucket) for parameter TagSpecifications.1.ResourceType is invalid. "
        "Member must satisfy enum value set: [capacity-reservation, "
    )


def test_a_dry_run_is_answered_after_the_checks(emulator):
    ec2 = client("ec2", emulator)

    with pytest.raises(ClientError) as excinfo:
        ec2.describe_import_image_tasks(DryRun=True)

    assert error_of(excinfo)[0] == "DryRunOperation"
    assert error_of(excinfo)[2]["HTTPStatusCode"] == 412


def test_a_completed_task_cannot_be_cancelled(emulator):
    with pytest.raises(ClientError) as excinfo:
        client("ec2", emulator).cancel_import_task(ImportTaskId=SEEDED_TASK)

    assert error_of(excinfo)[0] == "IncorrectState"


# -- STS ----------------------------------------------------------------------


def test_assume_role_answers_temporary_credentials_and_records_the_external_id(emulator):
    role_arn = "arn:aws:iam::210987654321:role/ImageImporter"

    answer = client("sts", emulator).assume_role(
        RoleArn=role_arn, RoleSessionName="vm-import-portal", ExternalId="team-42"
    )

    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert credentials["SessionToken"]
    assert credentials["Expiration"] > datetime.now(UTC)
    assert answer["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::210987654321:assumed-role/ImageImporter/vm-import-portal"
    )
    [recorded] = emulator.calls()["assumedRoles"]
    assert recorded["ExternalId"] == "team-42"
    assert recorded["RoleArn"] == role_arn


def test_assume_role_requires_a_session_name(emulator):
    status, _, answer = raw(
        emulator,
        "POST",
        "/",
        b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::210987654321:role/R",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert status == 400
    assert b"<Code>ValidationError</Code>" in answer
    assert b"roleSessionName" in answer


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (
            "RoleSessionName=my%20session",
            "Value 'my session' at 'roleSessionName' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: [\w+=,.@-]*",
        ),
        (
            "RoleSessionName=s",
            "Value 's' at 'roleSessionName' failed to satisfy constraint: "
            "Member must have length greater than or equal to 2",
        ),
        (
            "RoleSessionName=portal&DurationSeconds=43201",
            "Value '43201' at 'durationSeconds' failed to satisfy constraint: "
            "Member must have value less than or equal to 43200",
        ),
        (
            "RoleSessionName=portal&ExternalId=team%2042",
            "Value 'team 42' at 'externalId' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: [\w+=,.@:\/-]*",
        ),
    ],
)
def test_assume_role_judges_its_parameters_by_the_sts_model(emulator, params, problem):
    body = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::210987654321:role/R&" + params

    status, _, answer = raw(emulator, "POST", "/", body.encode(), FORM)

    assert status == 400
    assert b"<Code>ValidationError</Code>" in answer
    assert f"<Message>1 validation error detected: {problem}</Message>".encode() in answer
    assert emulator.calls()["assumedRoles"] == []


# -- faults -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("CallRateLimitExceededException", 429),
        ("ServiceUnavailableException", 503),
        ("ServiceException", 500),
        ("ThrottlingException", 400),
    ],
)
def test_it_fails_the_next_call_on_demand(emulator, error, status):
    imagebuilder = client("imagebuilder", emulator)
    emulator.fail_next(1, error, operation="ImportVmImage")

    with pytest.raises(ClientError) as excinfo:
        imagebuilder.import_vm_image(**import_request())

    code, _, metadata = error_of(excinfo)
    assert (code, metadata["HTTPStatusCode"]) == (error, status)
    assert emulator.calls()["imagesCreated"] == 0
    assert IMAGE_ARN.fullmatch(imagebuilder.import_vm_image(**import_request())["imageArn"])


@pytest.mark.parametrize(
    "error", ["ThrottlingException", "ServiceUnavailableException", "ServiceException"]
)
def test_botocore_retries_injected_retryable_errors(emulator, error):
    imagebuilder = SESSION.client(
        "imagebuilder",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        config=Config(retries={"total_max_attempts": 3, "mode": "standard"}),
    )
    emulator.fail_next(2, error)

    imagebuilder.import_vm_image(**import_request())

    calls = emulator.calls()
    assert calls["operations"]["ImportVmImage"] == 3
    assert calls["imagesCreated"] == 1


def test_a_fault_for_one_operation_leaves_the_others_alone(emulator):
    imagebuilder = client("imagebuilder", emulator)
    emulator.fail_next(1, "ServiceException", operation="GetImage")

    arn = imagebuilder.import_vm_image(**import_request())["imageArn"]

    with pytest.raises(ClientError):
        imagebuilder.get_image(imageBuildVersionArn=arn)
    assert image_status(imagebuilder, arn) == "AVAILABLE"


def test_ec2_faults_arrive_under_ec2_error_codes(emulator):
    emulator.fail_next(1, "ThrottlingException", operation="DescribeImportImageTasks")

    with pytest.raises(ClientError) as excinfo:
        client("ec2", emulator).describe_import_image_tasks()

    code, _, metadata = error_of(excinfo)
    assert (code, metadata["HTTPStatusCode"]) == ("RequestLimitExceeded", 503)


def test_a_dropped_connection_is_a_botocore_connection_error(emulator):
    emulator.drop_next(1, operation="ImportVmImage")

    with pytest.raises(ConnectionClosedError):
        client("imagebuilder", emulator).import_vm_image(**import_request())

    assert emulator.calls()["imagesCreated"] == 0


def test_a_lost_answer_then_a_retry_creates_one_image(emulator):
    imagebuilder = client("imagebuilder", emulator)
    emulator.drop_next(1, operation="ImportVmImage", after=True)

    with pytest.raises(ConnectionClosedError):
        imagebuilder.import_vm_image(**import_request())
    retried = imagebuilder.import_vm_image(**import_request())

    calls = emulator.calls()
    assert calls["images"] == [retried["imageArn"]]
    assert calls["imagesCreated"] == 1


def test_a_failure_rate_fails_that_fraction_of_calls(emulator):
    ec2 = client("ec2", emulator)
    emulator.fail_rate(1.0, "ServiceUnavailableException")
    with pytest.raises(ClientError):
        ec2.describe_import_image_tasks()

    emulator.fail_rate(0.0)

    assert ec2.describe_import_image_tasks()["ImportImageTasks"]


def test_latency_delays_answers(emulator):
    emulator.latency(0.3, operation="DescribeImportImageTasks")
    started = time.monotonic()

    client("ec2", emulator).describe_import_image_tasks()

    assert time.monotonic() - started >= 0.3


def test_startup_faults_and_clear_faults():
    with running_emulator(fail_next=1, fail_with="ServiceException") as faulty:
        imagebuilder = client("imagebuilder", faulty)
        with pytest.raises(ClientError) as excinfo:
            imagebuilder.import_vm_image(**import_request())
        assert error_of(excinfo)[0] == "ServiceException"

        faulty.fail_next(5, "ServiceException")
        faulty.clear_faults()

        assert imagebuilder.import_vm_image(**import_request())["imageArn"]


def test_the_control_api_rejects_an_unknown_operation(emulator):
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        emulator.fail_next(1, "ServiceException", operation="ImportVMImage")

    assert excinfo.value.code == 400


def test_reset_forgets_images_calls_and_the_clock(slow_emulator):
    imagebuilder = client("imagebuilder", slow_emulator)
    imagebuilder.import_vm_image(**import_request())
    slow_emulator.advance(1000)

    slow_emulator.reset()

    calls = slow_emulator.calls()
    assert calls["imagesCreated"] == 0
    assert calls["operations"] == {}
    state = slow_emulator.state()
    assert [t["status"] for t in state["tasks"]] == ["completed"] * 3 + ["active"]


def test_the_server_is_gone_after_the_context_manager():
    with running_emulator() as emulator:
        assert emulator.get("health") == {"ok": True}

    with pytest.raises(urllib.error.URLError):
        emulator.get("health")


# -- the portal's own AWS module against the emulator -------------------------


@pytest.fixture
def portal_aws(emulator, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    for name, url in emulator.environ().items():
        monkeypatch.setenv(name, url)
    aws.clear_clients()
    yield emulator
    aws.clear_clients()


def test_the_portal_submits_through_the_emulator(portal_aws):
    accepted = aws.import_vm_image(import_request(), target=aws.Target("us-east-1"))

    assert IMAGE_ARN.fullmatch(accepted.image_arn)
    assert portal_aws.calls()["imagesCreated"] == 1


def test_the_portal_reads_an_injected_503_as_retryable(portal_aws):
    portal_aws.fail_next(1, "ServiceUnavailableException")

    with pytest.raises(aws.AwsError) as excinfo:
        aws.import_vm_image(import_request(), target=aws.Target("us-east-1"))

    assert excinfo.value.code == "ServiceUnavailableException"
    assert excinfo.value.retryable is True
