"""The endpoints @uppy/aws-s3 calls: scoped to an uploading import and its own key."""

import os
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.stub import Stubber
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from imports import aws, services, tasks
from imports.models import ImageImport, Status

from .factories import IMPORT_BUCKET, disk_submission, make_import, set_up_disk_imports
from .helpers import csp_directives
from .sockets import closed_port

KEY = "vm-imports/0b6f2c1e-1d7e-4c55-9d61-1a2b3c4d5e6f/web.ova"
SIZE = 12 * aws.MiB  # three parts of 5 MiB, the last one short


@pytest.fixture
def uploading(team, user):
    set_up_disk_imports(team)
    image_import, _ = services.submit_import(
        team=team, user=user, **disk_submission(source="upload", key=KEY, upload_size=SIZE)
    )
    return image_import


@pytest.fixture
def started(uploading):
    uploading.note_upload_started("upload-1")
    return uploading


@pytest.fixture
def s3_stub(aws_credentials):
    with Stubber(aws.client("s3")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def location(image_import, upload_id="upload-1"):
    return {"Bucket": IMPORT_BUCKET, "Key": KEY, "UploadId": upload_id}


def test_create_starts_the_upload_for_the_portals_key(user_client, uploading, s3_stub):
    s3_stub.add_response(
        "create_multipart_upload",
        {"UploadId": "upload-1"},
        # Neither the browser's file name nor its type: the portal's key, bytes.
        expected_params={
            "Bucket": IMPORT_BUCKET,
            "Key": KEY,
            "ContentType": "application/octet-stream",
        },
    )
    response = user_client.post(
        reverse("imports:upload_create", args=[uploading.pk]),
        {"filename": "../../elsewhere.ova", "type": "text/html\r\nX-Injected: 1"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "uploadId": "upload-1",
        "key": KEY,
        "partSize": 5 * aws.MiB,
        "partCount": 3,
    }
    uploading.refresh_from_db()
    assert uploading.upload_id == "upload-1"
    assert uploading.events.last().detail == f"Upload started to s3://{IMPORT_BUCKET}/{KEY}"


def test_create_again_resumes_the_same_upload_without_asking_s3(user_client, started, s3_stub):
    response = user_client.post(
        reverse("imports:upload_create", args=[started.pk]), {}, content_type="application/json"
    )
    assert response.json()["uploadId"] == "upload-1"


def sign(client, image_import, part, key=KEY, upload_id="upload-1"):
    url = reverse("imports:upload_part", args=[image_import.pk, upload_id, part])
    return client.get(url, {"key": key})


def test_a_signed_part_url_allows_only_that_key_upload_and_part(
    user_client, started, aws_credentials
):
    response = sign(user_client, started, 3)
    assert response.status_code == 200
    body = response.json()
    assert body["method"] == "PUT"
    url = urlsplit(body["url"])
    assert url.path == f"/{IMPORT_BUCKET}/{KEY}"
    query = parse_qs(url.query)
    assert query["uploadId"] == ["upload-1"] and query["partNumber"] == ["3"]


@pytest.mark.parametrize(
    "part, key, upload_id, status, message",
    [
        (0, KEY, "upload-1", 400, "Part numbers of this file run from 1 to 3; 0 is not"),
        (4, KEY, "upload-1", 400, "Part numbers of this file run from 1 to 3; 4 is not"),
        (1, "vm-imports/other.ova", "upload-1", 409, "not the key of this import's upload"),
        (1, KEY, "upload-2", 409, "not the upload of this import"),
    ],
)
def test_a_part_outside_the_import_is_refused(
    user_client, started, aws_credentials, part, key, upload_id, status, message
):
    response = sign(user_client, started, part, key=key, upload_id=upload_id)
    assert response.status_code == status
    assert message in response.json()["error"]


# -- signing in batches: what the page asks for, ahead of its PUTs -----------------


def sign_batch(client, image_import, part_numbers, key=KEY, upload_id="upload-1"):
    url = reverse("imports:upload_parts", args=[image_import.pk, upload_id])
    query = {"key": key} if part_numbers is None else {"key": key, "partNumbers": part_numbers}
    return client.get(url, query)


def test_a_batch_signs_each_part_for_that_key_upload_and_part_only(
    user_client, started, aws_credentials
):
    response = sign_batch(user_client, started, "3,1,2")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["method"], body["expires"]) == ("PUT", aws.PRESIGNED_PART_SECONDS)
    assert sorted(body["presignedUrls"]) == ["1", "2", "3"]
    for number, signed in body["presignedUrls"].items():
        url = urlsplit(signed)
        assert url.path == f"/{IMPORT_BUCKET}/{KEY}"
        query = parse_qs(url.query)
        assert query["uploadId"] == ["upload-1"] and query["partNumber"] == [number]
        assert query["X-Amz-Expires"] == [str(aws.PRESIGNED_PART_SECONDS)]


def test_a_batch_costs_the_same_queries_as_one_part(
    user_client, started, aws_credentials, django_assert_max_num_queries
):
    sign(user_client, started, 1)  # the session and the client, warmed up
    with django_assert_max_num_queries(len(queries_for_one_part(user_client, started))):
        sign_batch(user_client, started, "1,2,3")


def queries_for_one_part(client, image_import):
    with CaptureQueriesContext(connection) as queries:
        sign(client, image_import, 1)
    return queries.captured_queries


@pytest.mark.parametrize(
    "part_numbers, message",
    [
        (None, "Send partNumbers: the parts to sign, comma-separated"),
        ("", "Send partNumbers: the parts to sign, comma-separated"),
        ("1,,2", "partNumbers must be whole numbers separated by commas"),
        ("1;2", "partNumbers must be whole numbers separated by commas"),
        ("-1", "partNumbers must be whole numbers separated by commas"),
        ("1.0", "partNumbers must be whole numbers separated by commas"),
        ("\u0663", "partNumbers must be whole numbers separated by commas"),  # Arabic-Indic 3
        ("99999999999999999999", "partNumbers must be whole numbers separated by commas"),
        ("1,2,1", "Each part number may appear only once"),
        ("0,1", "Part numbers of this file run from 1 to 3; 0 is not one of them."),
        ("2,4", "Part numbers of this file run from 1 to 3; 4 is not one of them."),
        ("10001", "Part numbers of this file run from 1 to 3; 10001 is not one of them."),
        (",".join(["1"] * 101), "At most 100 part numbers in one batch; this asks for 101."),
    ],
)
def test_bad_part_numbers_in_a_batch_are_a_400_saying_why(
    user_client, started, aws_credentials, part_numbers, message
):
    response = sign_batch(user_client, started, part_numbers)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_batch_of_the_most_parts_allowed_is_signed(user_client, team, user, aws_credentials):
    set_up_disk_imports(team)
    big, _ = services.submit_import(
        team=team,
        user=user,
        **disk_submission(
            source="upload",
            key="vm-imports/6c0e2a4e-4f8d-4f7e-9a51-3b8c2d1e0f9a/big.raw",
            upload_size=1000 * 5 * aws.MiB,
        ),
    )
    big.note_upload_started("upload-1")
    numbers = range(201, 201 + services.SIGN_BATCH_MAX)  # of its 313 parts of 16 MiB

    response = sign_batch(
        user_client, big, ",".join(map(str, numbers)), key=big.user_bucket["S3Key"]
    )

    assert response.status_code == 200, response.content
    assert sorted(map(int, response.json()["presignedUrls"])) == list(numbers)


@pytest.mark.parametrize(
    "key, upload_id, message",
    [
        ("vm-imports/other.ova", "upload-1", "This is not the key of this import's upload."),
        (KEY, "upload-2", "This is not the upload of this import."),
    ],
)
def test_a_batch_for_another_key_or_upload_is_refused(
    user_client, started, aws_credentials, key, upload_id, message
):
    response = sign_batch(user_client, started, "1,2", key=key, upload_id=upload_id)

    assert response.status_code == 409
    assert response.json() == {"error": message}


def test_a_batch_for_an_import_no_longer_uploading_is_refused(
    user_client, started, aws_credentials
):
    ImageImport.objects.filter(pk=started.pk).update(status=Status.QUEUED)

    response = sign_batch(user_client, started, "1")

    assert response.status_code == 409
    assert response.json() == {"error": "This import is queued."}


def test_another_teams_batch_is_not_found(outsider_client, started, aws_credentials):
    assert sign_batch(outsider_client, started, "1,2").status_code == 404


def test_a_viewer_may_not_sign_a_batch(client, teammate, started, aws_credentials):
    membership = teammate.memberships.get()
    membership.role = membership.Role.VIEWER
    membership.save()
    client.force_login(teammate)

    assert sign_batch(client, started, "1,2").status_code == 403


def test_batch_signed_urls_carry_the_parts_to_s3(user_client, uploading, s3_emulator):
    """Against moto's server: the URLs of one batch PUT the file's parts, and it completes."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IMPORT_BUCKET)
    content = os.urandom(SIZE)
    created = user_client.post(
        reverse("imports:upload_create", args=[uploading.pk]), {}, content_type="application/json"
    ).json()
    upload_id, part_size = created["uploadId"], created["partSize"]

    urls = sign_batch(user_client, uploading, "1,2,3", upload_id=upload_id).json()
    parts = []
    for number, url in sorted(urls["presignedUrls"].items()):
        start = (int(number) - 1) * part_size
        put = requests.put(url, data=content[start : start + part_size], timeout=30)
        assert put.status_code == 200, put.text
        parts.append({"PartNumber": int(number), "ETag": put.headers["ETag"]})
    done = user_client.post(
        reverse("imports:upload_complete", args=[uploading.pk, upload_id]) + f"?key={KEY}",
        {"parts": parts},
        content_type="application/json",
    )

    assert done.status_code == 200, done.content
    assert s3.get_object(Bucket=IMPORT_BUCKET, Key=KEY)["Body"].read() == content


@pytest.mark.parametrize("asked_again", ["complete", "listParts"])
def test_an_upload_s3_joined_while_its_answer_was_lost_is_queued(
    user_client, uploading, s3_emulator, asked_again
):
    """S3 completed the upload but the portal never heard (a crash, a timeout): asked again,
    the upload is gone and the file is whole, so the import goes on, queued."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IMPORT_BUCKET)
    content = os.urandom(SIZE)
    upload_id = user_client.post(
        reverse("imports:upload_create", args=[uploading.pk]), {}, content_type="application/json"
    ).json()["uploadId"]
    parts = []
    for number, start in enumerate(range(0, SIZE, 5 * aws.MiB), start=1):
        part = s3.upload_part(
            Bucket=IMPORT_BUCKET,
            Key=KEY,
            UploadId=upload_id,
            PartNumber=number,
            Body=content[start : start + 5 * aws.MiB],
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(  # the portal's call, whose answer it never got
        Bucket=IMPORT_BUCKET, Key=KEY, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    if asked_again == "complete":
        response = user_client.post(
            reverse("imports:upload_complete", args=[uploading.pk, upload_id]) + f"?key={KEY}",
            {"parts": parts},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
    else:
        response = user_client.get(
            reverse("imports:upload", args=[uploading.pk, upload_id]), {"key": KEY}
        )
        assert response.status_code == 409
        assert "already reached S3 in full" in response.json()["error"]
        assert response.json()["code"] == "already_complete"  # the page goes to the import
    uploading.refresh_from_db()
    assert uploading.status == Status.QUEUED


def test_list_parts_answers_what_s3_holds(user_client, started, s3_stub):
    s3_stub.add_response(
        "list_parts",
        {"Parts": [{"PartNumber": 1, "Size": 5 * aws.MiB, "ETag": '"e1"'}], "IsTruncated": False},
        expected_params={**location(started), "MaxParts": 1000},
    )
    response = user_client.get(
        reverse("imports:upload", args=[started.pk, "upload-1"]), {"key": KEY}
    )
    assert response.json() == [{"PartNumber": 1, "Size": 5 * aws.MiB, "ETag": '"e1"'}]


def complete(client, image_import, parts):
    url = reverse("imports:upload_complete", args=[image_import.pk, "upload-1"])
    return client.post(f"{url}?key={KEY}", {"parts": parts}, content_type="application/json")


def test_complete_joins_the_parts_and_queues_the_import(
    user_client, started, s3_stub, monkeypatch, django_capture_on_commit_callbacks
):
    parts = [{"PartNumber": 1, "ETag": '"e1"'}, {"PartNumber": 2, "ETag": '"e2"'}]
    s3_stub.add_response(
        "complete_multipart_upload",
        {"Location": f"https://s3/{IMPORT_BUCKET}/{KEY}"},
        expected_params={**location(started), "MultipartUpload": {"Parts": parts}},
    )
    sent = []
    monkeypatch.setattr(tasks.submit_import, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = complete(user_client, started, parts)
    assert response.status_code == 200
    assert response.json() == {"location": f"https://s3/{IMPORT_BUCKET}/{KEY}"}
    started.refresh_from_db()
    assert started.status == Status.QUEUED
    assert sent == [started.pk]


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [{"PartNumber": 2, "ETag": "a"}, {"PartNumber": 1, "ETag": "b"}],
        [{"PartNumber": "1", "ETag": "a"}],
        [{"PartNumber": 1}],
        "parts",
        [{"PartNumber": -1, "ETag": "a"}],  # S3 would answer, in its own words
        [{"PartNumber": 0, "ETag": "a"}],
        [{"PartNumber": 4, "ETag": "a"}],  # the upload has three parts
        [{"PartNumber": 10**30, "ETag": "a"}],
        {"parts": [{"PartNumber": 1, "ETag": "a"}]},  # not the body's own member
    ],
)
def test_complete_refuses_parts_that_are_not_a_list_in_order(user_client, started, parts):
    response = complete(user_client, started, parts)
    assert response.status_code == 400
    started.refresh_from_db()
    assert started.status == Status.UPLOADING


@pytest.mark.parametrize(
    "body", ["[" * 100_000, '{"parts": [{"PartNumber": 1, "ETag": "\\ud800"}]}', '{"parts"']
)
def test_a_hostile_body_is_a_400_not_a_500(user_client, started, body):
    # Nested past Python's recursion limit, a lone surrogate, cut short.
    url = reverse("imports:upload_complete", args=[started.pk, "upload-1"])
    response = user_client.post(f"{url}?key={KEY}", body, content_type="application/json")
    assert response.status_code == 400
    started.refresh_from_db()
    assert started.status == Status.UPLOADING


def test_abort_cancels_the_import_and_the_upload(user_client, started, s3_stub):
    s3_stub.add_response("abort_multipart_upload", {}, expected_params=location(started))
    url = reverse("imports:upload", args=[started.pk, "upload-1"])
    response = user_client.delete(f"{url}?key={KEY}")
    assert response.status_code == 200
    assert response.json()["cancelled"] is True
    started.refresh_from_db()
    assert started.is_cancelled


def test_an_s3_refusal_is_a_json_error(user_client, uploading, s3_stub):
    s3_stub.add_client_error("create_multipart_upload", "AccessDenied", "Access Denied", 403)
    response = user_client.post(
        reverse("imports:upload_create", args=[uploading.pk]), {}, content_type="application/json"
    )
    assert response.status_code == 502
    assert response.json() == {"error": "S3 refused: Access Denied", "code": "AccessDenied"}


def test_an_s3_out_of_reach_is_not_said_to_refuse(
    user_client, uploading, aws_credentials, monkeypatch
):
    # Nothing answered: S3 refused nothing, and the page should not say it did.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port()}")
    aws.clear_clients()
    response = user_client.post(
        reverse("imports:upload_create", args=[uploading.pk]), {}, content_type="application/json"
    )
    assert response.status_code == 503  # may be back soon: try again
    assert response.json()["error"].startswith("Could not reach AWS S3")
    assert "refused" not in response.json()["error"] and "http" not in response.json()["error"]


def test_an_import_that_is_not_uploading_has_no_upload(user_client, team, user):
    image_import = make_import(team, user, status=Status.QUEUED)
    response = user_client.post(
        reverse("imports:upload_create", args=[image_import.pk]),
        {},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["error"] == "This import is queued."


def test_another_teams_upload_is_not_found(outsider_client, started):
    assert sign(outsider_client, started, 1).status_code == 404


def test_the_upload_endpoints_need_the_csrf_token(user, started):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = reverse("imports:upload_complete", args=[started.pk, "upload-1"])
    response = client.post(url, {"parts": []}, content_type="application/json")
    assert response.status_code == 403


def test_the_page_form_records_an_upload_and_answers_where_to_send_it(user_client, team):
    set_up_disk_imports(team)
    response = user_client.post(
        reverse("imports:new"),
        {
            "clientToken": "7f1c3a52-0000-4000-8000-000000000001",
            "name": "Web",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "source": "upload",
            "format": "ova",
            "fileName": "web.ova",
            "fileSize": str(SIZE),
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "uploading"
    assert body["upload"] == {
        "endpoint": f"/imports/{body['id']}/",
        "createUrl": f"/imports/{body['id']}/s3/multipart",
        "key": "vm-imports/7f1c3a52-0000-4000-8000-000000000001/web.ova",
        "partSize": 5 * aws.MiB,
        "partCount": 3,
    }


def test_the_routes_are_companions_under_the_import():
    # So @uppy/aws-s3 with `endpoint: "/imports/7/"` calls them as they are.
    assert reverse("imports:upload_create", args=[7]) == "/imports/7/s3/multipart"
    assert reverse("imports:upload", args=[7, "u"]) == "/imports/7/s3/multipart/u"
    assert reverse("imports:upload_part", args=[7, "u", 3]) == "/imports/7/s3/multipart/u/3"
    assert reverse("imports:upload_parts", args=[7, "u"]) == "/imports/7/s3/multipart/u/batch"
    assert reverse("imports:upload_complete", args=[7, "u"]) == "/imports/7/s3/multipart/u/complete"


def test_an_abandoned_upload_is_given_up_and_aborted(started, s3_stub, settings):
    settings.IMPORT_UPLOAD_ABANDONED_AFTER = 3600
    ImageImport.objects.filter(pk=started.pk).update(
        updated_at=timezone.now() - timedelta(seconds=3601)
    )
    s3_stub.add_response("abort_multipart_upload", {}, expected_params=location(started))

    assert tasks.expire_abandoned_uploads() == 1

    started.refresh_from_db()
    assert started.status == Status.FAILED
    assert started.error_code == "UploadAbandoned"
    assert tasks.expire_abandoned_uploads() == 0  # once


def test_an_upload_still_in_time_is_left_alone(started, s3_stub, settings):
    settings.IMPORT_UPLOAD_ABANDONED_AFTER = 3600
    assert tasks.expire_abandoned_uploads() == 0
    started.refresh_from_db()
    assert started.status == Status.UPLOADING


# -- the pages around the upload: resume after a reload, and the CSP ---------------


def test_an_uploading_imports_page_offers_to_resume_with_the_same_file(
    user_client, uploading, aws_credentials
):
    response = user_client.get(reverse("imports:detail", args=[uploading.pk]))

    html = response.content.decode()
    assert 'id="resume-file"' in html
    assert f'data-create-url="/imports/{uploading.pk}/s3/multipart"' in html
    assert f'data-endpoint="/imports/{uploading.pk}/"' in html
    assert 'data-file-name="web.ova"' in html
    assert f'data-file-size="{SIZE}"' in html
    assert f'data-part-size="{aws.part_size(SIZE)}"' in html
    assert "vendor/uppy/uppy.min.js" in html


def test_a_viewer_is_not_offered_to_resume(client, teammate, uploading, aws_credentials):
    membership = teammate.memberships.get()
    membership.role = membership.Role.VIEWER
    membership.save()
    client.force_login(teammate)

    response = client.get(reverse("imports:detail", args=[uploading.pk]))

    assert response.status_code == 200
    assert 'id="resume-file"' not in response.content.decode()
    assert "uppy" not in response.content.decode()


def test_a_queued_imports_page_offers_no_resume(user_client, uploading, aws_credentials):
    ImageImport.objects.filter(pk=uploading.pk).update(status=Status.QUEUED)

    response = user_client.get(reverse("imports:detail", args=[uploading.pk]))

    assert 'id="resume-file"' not in response.content.decode()


def test_the_csp_lets_the_browser_put_parts_to_the_teams_bucket_only(
    user_client, team, aws_credentials, monkeypatch
):
    set_up_disk_imports(team)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.clear_clients()

    response = user_client.get(reverse("imports:new"))

    connect = connect_src(response)
    assert connect[0] == "'self'"
    assert len(connect) == 2
    assert connect[1].startswith(f"https://{IMPORT_BUCKET}.s3.")
    assert connect[1].endswith(".amazonaws.com")


def test_the_csp_names_a_local_s3_endpoint(user_client, team, aws_credentials, monkeypatch):
    set_up_disk_imports(team)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566")
    aws.clear_clients()

    response = user_client.get(reverse("imports:new"))

    assert connect_src(response) == ["'self'", "http://127.0.0.1:4566"]


def test_without_an_import_bucket_the_csp_stays_self_only(user_client, aws_credentials):
    response = user_client.get(reverse("imports:new"))

    assert connect_src(response) == ["'self'"]


def connect_src(response):
    return csp_directives(response["Content-Security-Policy"])["connect-src"]


def test_without_javascript_an_upload_says_the_file_is_missing_at_the_file_input(
    user_client, team, aws_credentials
):
    set_up_disk_imports(team)

    response = user_client.post(
        reverse("imports:new"),
        {
            "clientToken": "6f1c1f5e-7b0e-4a51-9d3c-2a4f0b9c8d7e",
            "name": "Web server base",
            "semanticVersion": "1.0.0",
            "platform": "Linux",
            "source": "upload",
            "format": "raw",
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
    )

    html = response.content.decode()
    assert '<a href="#disk-file">File name is required for an upload.</a>' in html
    assert not ImageImport.objects.exists()
