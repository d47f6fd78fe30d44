"""A disk file to an image: the record, the worker's two calls, the API."""

import re
import uuid

import pytest
from botocore.stub import Stubber

from imports import aws, services, tasks
from imports.hints import failure_hint
from imports.models import ClientTokenConflict, ImageImport, Source, Status

from .factories import (
    DISK_KEY,
    IMPORT_BUCKET,
    disk_request,
    disk_submission,
    sent_to_aws,
    set_up_disk_imports,
    valid_payload,
)

ARN = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"
TASK = "import-ami-0fedcba9876543210"
URL = "/api/imports"


@pytest.fixture
def disk_team(team):
    return set_up_disk_imports(team)


@pytest.fixture
def ec2_stub(aws_credentials):
    with Stubber(aws.client("ec2")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def submit_disk(team, user, **kwargs):
    return services.submit_import(team=team, user=user, **disk_submission(**kwargs))


def accepted(token):
    return {"requestId": "req-1", "clientToken": token, "imageArn": ARN}


# -- the record -----------------------------------------------------------------------


def test_a_disk_file_is_recorded_with_its_own_ec2_token_and_the_teams_role(
    disk_team, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        image_import, created = submit_disk(disk_team, user, Architecture="x86_64")
    assert created and len(callbacks) == 1  # queued for the worker
    assert image_import.status == Status.QUEUED
    assert image_import.source == Source.S3_OBJECT
    assert "vmImportTaskId" not in image_import.payload
    assert image_import.vm_import_task_id == ""
    request = image_import.import_image_payload
    assert uuid.UUID(request["ClientToken"])
    assert request["RoleName"] == "vmimport-platform"
    assert request["Architecture"] == "x86_64"
    assert image_import.disk_container == {
        "format": "vmdk",
        "userBucket": {"s3Bucket": IMPORT_BUCKET, "s3Key": DISK_KEY},
    }


def test_an_upload_waits_uploading_and_queues_nothing(
    disk_team, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        image_import, _ = submit_disk(disk_team, user, source="upload", upload_size=100)
    assert callbacks == []
    assert image_import.status == Status.UPLOADING
    assert [(e.from_status, e.to_status) for e in image_import.events.all()] == [("", "uploading")]


def test_the_same_disk_request_again_is_the_same_import_with_the_same_ec2_token(disk_team, user):
    first, _ = submit_disk(disk_team, user)
    again, created = submit_disk(disk_team, user)
    assert again == first and not created
    again.refresh_from_db()
    assert again.import_image_payload == first.import_image_payload


def test_the_same_request_after_ec2_named_the_task_is_still_the_same(disk_team, user):
    first, _ = submit_disk(disk_team, user)
    first.claim()
    first.mark_vm_import_started(TASK)
    again, created = submit_disk(disk_team, user)
    assert again == first and not created


@pytest.mark.parametrize(
    "change",
    [
        {"Architecture": "arm64"},  # another ImportImage option
        {"key": "vm-imports/web/disk2.vmdk"},  # another file
        {"source": "upload", "upload_size": 5},  # another source
    ],
)
def test_the_same_token_with_another_disk_request_is_a_conflict(disk_team, user, change):
    submit_disk(disk_team, user)
    with pytest.raises(ClientTokenConflict):
        submit_disk(disk_team, user, **change)
    assert ImageImport.objects.count() == 1


def test_the_same_token_with_another_uploaded_file_of_the_same_size_is_a_conflict(disk_team, user):
    # A double click sends the same file's fingerprint twice: a replay.
    # Another file of the same name and size is another request.
    first, _ = submit_disk(
        disk_team, user, source="upload", upload_size=5, upload_fingerprint="a" * 64
    )
    again, created = submit_disk(
        disk_team, user, source="upload", upload_size=5, upload_fingerprint="a" * 64
    )
    assert again == first and not created and first.upload_fingerprint == "a" * 64
    with pytest.raises(ClientTokenConflict):
        submit_disk(disk_team, user, source="upload", upload_size=5, upload_fingerprint="b" * 64)


def test_the_vm_import_task_is_recorded_once(disk_team, user):
    image_import, _ = submit_disk(disk_team, user)
    image_import.claim()
    assert image_import.mark_vm_import_started(TASK)
    assert not image_import.mark_vm_import_started("import-ami-0000000000000000a")
    image_import.refresh_from_db()
    assert image_import.vm_import_task_id == TASK
    assert image_import.payload["vmImportTaskId"] == TASK
    assert image_import.status == Status.SUBMITTING
    assert image_import.events.last().detail == f"EC2 started the VM import task {TASK}"


def test_the_vm_import_task_is_recorded_only_while_submitting(disk_team, user):
    image_import, _ = submit_disk(disk_team, user)
    assert not image_import.mark_vm_import_started(TASK)  # still queued
    assert image_import.vm_import_task_id == ""


def test_an_upload_completes_into_the_queue_once(disk_team, user):
    image_import, _ = submit_disk(disk_team, user, source="upload", upload_size=100)
    assert image_import.mark_uploaded(user=user)
    assert not image_import.mark_uploaded(user=user)
    assert image_import.status == Status.QUEUED
    event = image_import.events.last()
    assert (event.from_status, event.to_status) == ("uploading", "queued")
    assert event.detail == f"Upload complete: s3://{IMPORT_BUCKET}/{DISK_KEY}"


def test_cancelling_an_upload_withdraws_it_and_aborts_the_multipart_upload(
    disk_team, user, aws_credentials
):
    image_import, _ = submit_disk(disk_team, user, source="upload", upload_size=100)
    image_import.note_upload_started("upload-1")
    with Stubber(aws.client("s3")) as s3:
        s3.add_response(
            "abort_multipart_upload",
            {},
            expected_params={"Bucket": IMPORT_BUCKET, "Key": DISK_KEY, "UploadId": "upload-1"},
        )
        outcome = services.cancel_import(image_import, user=user)
        s3.assert_no_pending_responses()
    assert outcome.cancelled
    assert image_import.status == Status.FAILED and image_import.is_cancelled


def test_an_upload_is_cancelled_even_when_s3_cannot_abort(disk_team, user, aws_credentials):
    image_import, _ = submit_disk(disk_team, user, source="upload", upload_size=100)
    image_import.note_upload_started("upload-1")
    with Stubber(aws.client("s3")) as s3:
        s3.add_client_error("abort_multipart_upload", "NoSuchUpload", "gone", 404)
        outcome = services.cancel_import(image_import, user=user)
    assert outcome.cancelled and image_import.is_cancelled


# -- the worker -----------------------------------------------------------------------


def expected_vm_image_request(image_import, task_id=TASK):
    request = {**valid_payload(vmImportTaskId=None), "vmImportTaskId": task_id}
    return sent_to_aws(image_import.team, request)


def test_the_worker_starts_ec2s_task_then_import_vm_image_at_once(
    disk_team, user, ec2_stub, imagebuilder_stub
):
    image_import, _ = submit_disk(disk_team, user, BootMode="uefi")
    ec2_stub.add_response(
        "import_image",
        {"ImportTaskId": TASK, "Status": "active", "Progress": "2"},
        expected_params=image_import.import_image_payload,
    )
    request = expected_vm_image_request(image_import)
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(request["clientToken"]), expected_params=request
    )

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    assert image_import.vm_import_task_id == TASK
    assert image_import.payload == request
    assert [(e.from_status, e.to_status) for e in image_import.events.all()] == [
        ("", "queued"),
        ("queued", "submitting"),
        ("submitting", "submitting"),
        ("submitting", "importing"),
    ]


def test_a_retry_after_ec2_answered_sends_only_the_same_import_vm_image(
    disk_team, user, ec2_stub, imagebuilder_stub, retries_queued
):
    image_import, _ = submit_disk(disk_team, user)
    ec2_stub.add_response(
        "import_image",
        {"ImportTaskId": TASK},
        expected_params=image_import.import_image_payload,
    )
    request = expected_vm_image_request(image_import)
    imagebuilder_stub.add_client_error(
        "import_vm_image", "ServiceUnavailableException", "busy", 503, expected_params=request
    )
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(request["clientToken"]), expected_params=request
    )

    tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    assert image_import.status == Status.QUEUED and len(retries_queued) == 1

    tasks.submit_import(image_import.pk)  # no second ImportImage: the stub has none queued
    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    assert image_import.attempts == 2


def test_a_retry_of_import_image_sends_the_same_ec2_client_token(
    disk_team, user, ec2_stub, imagebuilder_stub, retries_queued
):
    image_import, _ = submit_disk(disk_team, user)
    ec2_request = image_import.import_image_payload
    ec2_stub.add_client_error(
        "import_image", "RequestLimitExceeded", "slow down", 503, expected_params=ec2_request
    )
    ec2_stub.add_response("import_image", {"ImportTaskId": TASK}, expected_params=ec2_request)
    request = expected_vm_image_request(image_import)
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(request["clientToken"]), expected_params=request
    )

    tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    assert image_import.status == Status.QUEUED and image_import.vm_import_task_id == ""

    tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING and image_import.vm_import_task_id == TASK


def test_ec2_refusing_the_disk_fails_the_import_with_its_message_and_a_hint(
    disk_team, user, ec2_stub
):
    image_import, _ = submit_disk(disk_team, user)
    ec2_stub.add_client_error(
        "import_image",
        "InvalidParameter",
        "The service role vmimport-platform provided does not exist or does not have "
        "sufficient permissions",
        400,
        expected_params=image_import.import_image_payload,
    )

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.error_code == "InvalidParameter"
    assert "could not use the VM import role" in failure_hint(image_import)


# -- the API ----------------------------------------------------------------------------


@pytest.fixture
def bucket(s3_emulator, disk_team):
    """The team's import bucket in moto, empty."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IMPORT_BUCKET)
    return s3


@pytest.fixture
def disk_file(bucket):
    """The disk file the requests name, in the team's bucket."""
    bucket.put_object(Bucket=IMPORT_BUCKET, Key=DISK_KEY, Body=b"KDMV" + bytes(508))
    return bucket


def test_the_api_takes_a_disk_container_and_answers_with_it(
    client, api_headers, disk_team, disk_file, django_capture_on_commit_callbacks
):
    body = disk_request(
        importImageOptions={"architecture": "x86_64", "licenseType": "BYOL", "encrypted": True}
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(URL, body, content_type="application/json", headers=api_headers)
    assert response.status_code == 201, response.content
    assert len(callbacks) == 1
    answer = response.json()
    assert answer["source"] == "s3_object"
    assert answer["status"] == "queued"
    assert answer["vmImportTaskId"] is None
    assert answer["diskContainer"] == body["diskContainer"]
    assert answer["importImageOptions"] == {
        "architecture": "x86_64",
        "licenseType": "BYOL",
        "encrypted": True,
    }
    image_import = ImageImport.objects.get()
    assert image_import.import_image_payload["RoleName"] == "vmimport-platform"

    # A retry gets its import back, even once the file is gone from the bucket.
    disk_file.delete_object(Bucket=IMPORT_BUCKET, Key=DISK_KEY)
    again = client.post(URL, body, content_type="application/json", headers=api_headers)
    assert again.status_code == 200 and again.json()["id"] == answer["id"]
    other = disk_request(importImageOptions={"architecture": "arm64"})
    assert (
        client.post(URL, other, content_type="application/json", headers=api_headers).status_code
        == 409
    )


def test_the_api_names_a_file_missing_from_the_bucket_and_records_nothing(
    client, api_headers, bucket
):
    response = client.post(
        URL, disk_request(), content_type="application/json", headers=api_headers
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "diskContainer.userBucket.s3Key": [
            f"There is no file s3://{IMPORT_BUCKET}/{DISK_KEY}: check the key."
        ]
    }
    assert not ImageImport.objects.exists()


def test_an_empty_file_is_refused(client, api_headers, bucket):
    bucket.put_object(Bucket=IMPORT_BUCKET, Key=DISK_KEY, Body=b"")
    response = client.post(
        URL, disk_request(), content_type="application/json", headers=api_headers
    )
    assert response.json()["errors"]["diskContainer.userBucket.s3Key"] == [
        f"The file s3://{IMPORT_BUCKET}/{DISK_KEY} is empty: it holds no disk."
    ]


def test_when_s3_cannot_tell_the_import_is_recorded_and_ec2_judges(
    client, api_headers, disk_team, aws_credentials
):
    with Stubber(aws.client("s3")) as s3:
        s3.add_client_error(
            "head_object",
            service_error_code="403",
            http_status_code=403,
            expected_params={"Bucket": IMPORT_BUCKET, "Key": DISK_KEY},
        )
        response = client.post(
            URL, disk_request(), content_type="application/json", headers=api_headers
        )
        s3.assert_no_pending_responses()
    assert response.status_code == 201
    assert ImageImport.objects.get().source == Source.S3_OBJECT


def test_the_api_shows_the_vm_import_task_once_ec2_gave_one(client, api_headers, disk_team, user):
    image_import, _ = submit_disk(disk_team, user)
    assert (
        client.get(f"{URL}/{image_import.pk}", headers=api_headers).json()["vmImportTaskId"] is None
    )
    image_import.claim()
    image_import.mark_vm_import_started(TASK)
    assert (
        client.get(f"{URL}/{image_import.pk}", headers=api_headers).json()["vmImportTaskId"] == TASK
    )


def test_the_api_refuses_both_sources_at_once(client, api_headers, disk_team):
    body = disk_request(vmImportTaskId="import-ami-0123456789abcdef0")
    response = client.post(URL, body, content_type="application/json", headers=api_headers)
    assert response.status_code == 400
    assert "exactly one source" in response.json()["errors"]["diskContainer"][0]


def test_the_api_refuses_a_disk_for_a_team_without_a_bucket(client, api_headers, team):
    response = client.post(
        URL, disk_request(), content_type="application/json", headers=api_headers
    )
    assert response.status_code == 400
    assert "no import bucket" in response.json()["errors"]["diskContainer"][0]


def test_the_api_names_the_nested_member_that_broke_a_rule(client, api_headers, disk_team):
    body = disk_request(importImageOptions={"bootMode": "bios"})
    response = client.post(URL, body, content_type="application/json", headers=api_headers)
    assert response.status_code == 400
    assert "legacy-bios" in response.json()["errors"]["importImageOptions.bootMode"][0]


# -- the page -------------------------------------------------------------------------


def test_the_page_shows_the_whole_path_of_an_upload(user_client, disk_team, user):
    image_import, _ = submit_disk(disk_team, user, source="upload", upload_size=100)
    page = user_client.get(f"/imports/{image_import.pk}").content.decode()
    assert "Waiting for the disk file to reach" in page
    assert f"s3://{IMPORT_BUCKET}/{DISK_KEY}" in page
    assert "The EC2 ImportImage request" in page
    assert image_import.import_image_payload["ClientToken"] in page
    assert "The upload is stopped and its parts deleted" in page  # the cancel button's help


def test_the_page_shows_ec2s_task_once_named(user_client, disk_team, user):
    image_import, _ = submit_disk(disk_team, user)
    image_import.claim()
    assert (
        "Asking EC2 to convert the disk file"
        in user_client.get(f"/imports/{image_import.pk}").content.decode()
    )
    image_import.mark_vm_import_started(TASK)
    image_import.mark_importing(image_arn=ARN, request_id="r", client_token="t")
    page = user_client.get(f"/imports/{image_import.pk}/status").content.decode()
    assert f"<code>{TASK}</code>" in page


def test_a_poll_brings_the_task_ec2_named_into_the_request_shown(user_client, disk_team, user):
    image_import, _ = submit_disk(disk_team, user)
    image_import.claim()
    page = user_client.get(f"/imports/{image_import.pk}").content.decode()
    assert '<dd id="request-task">(added once EC2 names the task)</dd>' in page
    seen = image_import.version
    image_import.mark_vm_import_started(TASK)
    changed = user_client.get(
        f"/imports/{image_import.pk}/status", {"seen": seen}, headers={"HX-Request": "true"}
    ).content.decode()
    assert f'<dd id="request-task" hx-swap-oob="true"><code>{TASK}</code></dd>' in changed
    payload = re.search(r'<pre id="request-payload" hx-swap-oob="true">(.*?)</pre>', changed, re.S)
    assert f"&quot;vmImportTaskId&quot;: &quot;{TASK}&quot;" in payload.group(1)


def test_the_new_import_page_says_a_missing_file_under_its_key(user_client, disk_team, bucket):
    response = user_client.post(
        "/imports/new",
        {
            "clientToken": "7f1c3a52-0000-4000-8000-000000000004",
            "name": "Web",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "source": "s3_object",
            "format": "vmdk",
            "s3Key": DISK_KEY,
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    errors = re.search(r'<ul class="field-errors" id="errors-s3Key".*?</ul>', response.text, re.S)
    assert f"There is no file s3://{IMPORT_BUCKET}/{DISK_KEY}: check the key." in errors.group()
    assert not ImageImport.objects.exists()


def test_the_key_is_looked_for_in_the_bucket_as_the_person_leaves_it(
    user_client, disk_team, bucket
):
    data = {"source": "s3_object", "format": "vmdk", "s3Key": DISK_KEY}
    url = "/imports/new/validate/s3Key"
    missing = user_client.post(url, data, headers={"HX-Request": "true"}).content.decode()
    assert f"There is no file s3://{IMPORT_BUCKET}/{DISK_KEY}: check the key." in missing
    bucket.put_object(Bucket=IMPORT_BUCKET, Key=DISK_KEY, Body=b"KDMV" + bytes(508))
    found = user_client.post(url, data, headers={"HX-Request": "true"}).content.decode()
    assert "<li>" not in found
    # Another source's key is never looked for.
    other = user_client.post(url, {**data, "source": "upload"}, headers={"HX-Request": "true"})
    assert "There is no file" not in other.content.decode()


def test_the_new_import_page_records_a_file_in_the_bucket(user_client, disk_team, disk_file):
    page = user_client.get("/imports/new").content.decode()
    assert 'name="source" value="s3_object"' in page
    response = user_client.post(
        "/imports/new",
        {
            "clientToken": "7f1c3a52-0000-4000-8000-000000000002",
            "name": "Web",
            "semanticVersion": "1.0.0",
            "platform": "Windows",
            "source": "s3_object",
            "format": "vhdx",
            "s3Key": DISK_KEY,
            "bootMode": "uefi",
            "logGroupName": "/aws/imagebuilder/web",
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    image_import = ImageImport.objects.get()
    assert image_import.source == Source.S3_OBJECT
    assert image_import.payload["loggingConfiguration"] == {"logGroupName": "/aws/imagebuilder/web"}
    assert image_import.import_image_payload["DiskContainers"] == [
        {"Format": "VHDX", "UserBucket": {"S3Bucket": IMPORT_BUCKET, "S3Key": DISK_KEY}}
    ]
    assert image_import.import_image_payload["BootMode"] == "uefi"


def test_the_new_import_page_marks_what_each_source_requires(user_client, disk_team):
    page = user_client.get("/imports/new").content.decode()
    required = '<span class="required" aria-hidden="true">*</span>'
    for field_id, label in [
        ("id_format", "Disk format"),
        ("id_s3Key", "S3 key"),
        ("id_vmImportTaskId", "VM import task ID"),
    ]:
        assert f'<label for="{field_id}">{label} {required}</label>' in page
    # EC2 has no default disk format: the empty choice asks for one.
    assert "EC2&#x27;s default</option>" in page  # the optional ImportImage choices keep theirs
    format_choice = re.search(r'<select name="format".*?</select>', page, re.S).group()
    assert '<option value="" selected>Choose</option>' in format_choice


def test_the_new_import_page_says_which_disk_rule_broke(user_client, disk_team):
    response = user_client.post(
        "/imports/new",
        {
            "clientToken": "7f1c3a52-0000-4000-8000-000000000003",
            "name": "Mac",
            "semanticVersion": "1.0.0",
            "platform": "macOS",
            "source": "s3_object",
            "s3Key": DISK_KEY,
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
    )
    page = response.content.decode()
    assert "EC2 VM import has no macOS" in page
    assert "Disk format is required for a disk file." in page
    assert not ImageImport.objects.exists()
