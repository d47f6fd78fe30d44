"""The portal's real worker against the AWS emulator, over real HTTP.

A Celery worker consumes from the configured broker (filesystem, or Redis
in CI's second pass); boto3 talks HTTP to the emulator on a free port.
"""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from imports import tasks
from imports.models import ApiToken, ImageImport, Status

from .factories import SEEDED_AMI, valid_payload
from .helpers import wait_for_status

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api(team, user):
    _, raw_token = ApiToken.issue(user=user, team=team)
    client = Client(headers={"Authorization": f"Bearer {raw_token}"})
    return client


def submit(api, **overrides):
    response = api.post(
        "/api/imports", data=valid_payload(**overrides), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return ImageImport.objects.get(pk=response.json()["id"])


def test_an_import_goes_to_importing_with_the_arn_then_to_available_with_its_ami(
    emulator, worker, api
):
    image_import = wait_for_status(submit(api), Status.IMPORTING)
    assert image_import.image_arn.startswith(
        "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/"
    )
    assert image_import.request_id
    # AWS echoes the token it was sent: the team's own, made from the person's.
    assert image_import.response_client_token == image_import.payload["clientToken"]
    assert image_import.client_token == valid_payload()["clientToken"]

    tasks.refresh_imports.delay()  # what beat does, through the same worker

    image_import = wait_for_status(image_import, Status.AVAILABLE)
    assert image_import.amis == [
        {"region": "us-east-1", "image": SEEDED_AMI, "accountId": "123456789012"}
    ]
    assert image_import.progress == 100
    assert image_import.image_state == "AVAILABLE"
    assert emulator.calls()["imagesCreated"] == 1


@pytest.mark.parametrize(
    "error",
    [
        "ServiceUnavailableException",
        "ThrottlingException",
        "CallRateLimitExceededException",
        "ServiceException",
    ],
)
def test_retryable_errors_recover_with_the_same_token_and_one_image(emulator, worker, api, error):
    emulator.fail_next(2, error, operation="ImportVmImage")

    image_import = wait_for_status(submit(api), Status.IMPORTING)

    calls = emulator.calls()
    assert image_import.attempts == 3
    assert calls["clientTokens"] == {image_import.payload["clientToken"]: 3}
    assert calls["imagesCreated"] == 1
    retries = [e for e in image_import.events.all() if e.detail.startswith(error)]
    assert len(retries) == 2


def test_an_answer_lost_after_aws_acted_is_retried_without_a_second_image(emulator, worker, api):
    # The request reaches AWS and creates the image, but the answer never
    # arrives: the retry with the same token must get the original back.
    emulator.drop_next(1, operation="ImportVmImage", after=True)

    image_import = wait_for_status(submit(api), Status.IMPORTING)

    assert image_import.attempts == 2
    assert emulator.calls()["imagesCreated"] == 1
    assert "ConnectionError" in image_import.events.all()[2].detail


def test_a_dropped_connection_is_retried(emulator, worker, api):
    emulator.drop_next(1, operation="ImportVmImage")
    image_import = wait_for_status(submit(api), Status.IMPORTING)
    assert image_import.attempts == 2
    assert emulator.calls()["imagesCreated"] == 1


def test_a_client_exception_is_shown_on_the_import_page_with_aws_message(
    emulator, worker, api, client, user
):
    image_import = wait_for_status(
        submit(api, vmImportTaskId="import-ami-00000000000000000"), Status.FAILED
    )
    assert image_import.error_code == "ClientException"
    assert "import-ami-00000000000000000" in image_import.error_message

    client.force_login(user)
    page = client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    assert escape(image_import.error_message) in page
    assert "could not find that VM import task" in page  # the plain-language hint
    assert emulator.calls()["imagesCreated"] == 0


def test_an_image_that_ends_failed_fails_the_import_with_its_reason(emulator, worker, api):
    image_import = wait_for_status(submit(api), Status.IMPORTING)
    emulator.end_image(image_import.image_arn, "FAILED", "Disk image is not bootable")

    tasks.refresh_imports()

    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.error_code == "ImageFailed"
    assert image_import.error_message == "Disk image is not bootable"


def test_an_image_that_ends_cancelled_fails_the_import(emulator, worker, api):
    image_import = wait_for_status(submit(api), Status.IMPORTING)
    emulator.end_image(image_import.image_arn, "CANCELLED", "Cancelled in the console")

    tasks.refresh_imports()

    image_import.refresh_from_db()
    assert (image_import.status, image_import.error_code) == (Status.FAILED, "ImageCancelled")


def test_the_status_partial_stops_polling_when_the_import_ends(emulator, worker, api, client, user):
    image_import = wait_for_status(submit(api), Status.IMPORTING)
    client.force_login(user)
    url = reverse("imports:status", args=[image_import.pk])
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 200

    tasks.refresh_imports()

    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 286
    assert SEEDED_AMI in response.content.decode()
