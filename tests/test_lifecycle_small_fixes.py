"""Four corners of an import's life: a lost answer counted once, a cancel after a
failed attempt said truly, the admin's status filter, and the task message an
import keeps when EC2 went unheard in its last refresh cycle."""

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imports import aws, services, tasks
from imports.aws import ImageState
from imports.hints import failure_hint
from imports.models import ImageImport, Status

from .factories import CONVERTING_TASK, disk_submission, make_import, valid_payload

REFUSED = "http://127.0.0.1:9"  # nothing listens: the connection never reaches AWS


@pytest.fixture
def no_requeue(monkeypatch):
    """Capture the countdown re-enqueues instead of sending them to the broker."""
    sent = []
    monkeypatch.setattr(
        tasks.submit_import, "apply_async", lambda args, countdown: sent.append((args, countdown))
    )
    return sent


def attempt(image_import):
    """One run of the submit task (a retry's message), then the import as stored."""
    tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    return image_import


def unreachable_image_builder(monkeypatch, url=REFUSED):
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", url)
    aws.clear_clients()


# -- 1. each lost answer is counted once ------------------------------------------------


def test_an_attempt_at_the_limit_that_waits_on_a_lost_answer_is_not_counted_as_one(
    image_import, emulator, no_requeue, settings, monkeypatch
):
    # Attempt 1's answer is lost; attempt 2, at the limit, cannot reach AWS
    # and waits for AWS's word. Only attempt 1 may have reached AWS.
    settings.IMPORT_MAX_ATTEMPTS = 2
    emulator.drop_next(1, operation="ImportVmImage", after=True)
    attempt(image_import)
    assert tasks.lost_answers(image_import) == 1
    unreachable_image_builder(monkeypatch)

    image_import = attempt(image_import)

    assert image_import.status == Status.QUEUED
    assert tasks.lost_answers(image_import) == 1
    # The person still reads why the portal goes on asking.
    assert image_import.error_message == (
        "Could not reach AWS Image Builder: the connection failed. " + tasks.ASKED_BEFORE
    )

    # So attempt 2 counts toward the limit, as a connection that never
    # reached AWS does: AWS's own error answer to attempt 3 ends the import.
    unreachable_image_builder(monkeypatch, emulator.url)
    emulator.fail_next(1, "ServiceUnavailableException", operation="ImportVmImage")
    image_import = attempt(image_import)
    assert image_import.status == Status.FAILED
    assert "gave up after 3 attempts" in image_import.error_message
    assert emulator.calls()["imagesCreated"] == 1  # attempt 1's, which the person is told of


def test_an_attempt_at_the_limit_reads_the_lost_answers_once(
    image_import, emulator, no_requeue, settings, monkeypatch
):
    settings.IMPORT_MAX_ATTEMPTS = 2
    emulator.drop_next(1, operation="ImportVmImage", after=True)
    attempt(image_import)
    unreachable_image_builder(monkeypatch)

    with CaptureQueriesContext(connection) as said:
        attempt(image_import)

    counts = [query["sql"] for query in said.captured_queries if "COUNT(" in query["sql"]]
    assert len(counts) == 1, counts


# -- 2. a cancel after a failed attempt ---------------------------------------------------


def cancel(client, image_import):
    """POST the page's cancel; the message it leaves, and the import as stored."""
    response = client.post(reverse("imports:cancel", args=[image_import.pk]))
    assert response.status_code == 302
    (message,) = [str(message) for message in get_messages(response.wsgi_request)]
    image_import.refresh_from_db()
    return message, image_import


def confirmation(client, image_import):
    return client.get(reverse("imports:cancel", args=[image_import.pk])).context["explanation"]


def cancel_event(image_import):
    return image_import.events.order_by("pk").last().detail


def test_an_import_never_sent_is_cancelled_before_anything_was_sent(user_client, image_import):
    assert confirmation(user_client, image_import).startswith(
        "Nothing has been sent to AWS yet: the import is simply withdrawn."
    )

    message, image_import = cancel(user_client, image_import)

    assert message == "Cancelled before anything was sent to AWS."
    assert image_import.is_cancelled
    assert cancel_event(image_import) == "Cancelled by alice before it was sent to AWS"


def test_an_import_aws_refused_once_is_cancelled_without_claiming_nothing_was_sent(
    user_client, image_import, imagebuilder_stub, no_requeue
):
    imagebuilder_stub.add_client_error(
        "import_vm_image",
        service_error_code="ServiceUnavailableException",
        http_status_code=503,
        service_message="Try again",
        expected_params=image_import.payload,
    )
    image_import = attempt(image_import)
    assert (image_import.status, image_import.attempts) == (Status.QUEUED, 1)
    assert confirmation(user_client, image_import).startswith(
        "AWS has not accepted it: the import is simply withdrawn, and nothing is left in AWS."
    )
    page = user_client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    assert "Nothing has been sent to AWS" not in page

    message, image_import = cancel(user_client, image_import)

    assert message == "Cancelled. AWS never accepted this import, so no image was made."
    assert image_import.is_cancelled
    assert cancel_event(image_import) == "Cancelled by alice before AWS confirmed it"
    page = user_client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    assert "Request (AWS never accepted it)" in page
    assert "before it was sent to AWS" not in page


def test_an_import_whose_answer_was_lost_is_cancelled_saying_aws_may_make_the_image(
    user_client, image_import, emulator, no_requeue
):
    emulator.drop_next(1, operation="ImportVmImage", after=True)
    image_import = attempt(image_import)
    assert image_import.status == Status.QUEUED
    assert services.MAY_HOLD_THE_IMAGE in confirmation(user_client, image_import)

    message, image_import = cancel(user_client, image_import)

    assert message == (
        "Cancelled. An earlier attempt may have reached AWS (its answer was lost), so AWS may "
        "be making the image all the same; the portal will not follow it."
    )
    assert "no image was made" not in message


def test_a_disk_import_whose_task_ec2_started_is_cancelled_naming_that_task(
    team, user, user_client, emulator, no_requeue
):
    image_import, _ = ImageImport.submit(
        team=team, user=user, **disk_submission(ClientToken="ec2-token-cancel")
    )
    emulator.fail_next(1, "ServiceUnavailableException", operation="ImportVmImage")
    image_import = attempt(image_import)
    assert image_import.status == Status.QUEUED and image_import.vm_import_task_id
    task_id = image_import.vm_import_task_id

    message, image_import = cancel(user_client, image_import)

    assert message == (
        "Cancelled. Image Builder never accepted this import, so it made no image. "
        f"EC2's VM import task {task_id}, started for it, goes on converting the disk: "
        "cancel it in EC2 if it is not wanted."
    )


# -- 3. the admin's import list filters Cancelled apart -----------------------------------


@pytest.fixture
def ended_three_ways(team, user):
    return {
        "cancelled": make_import(
            team, user, Status.FAILED, error_code="Cancelled", error_message="Cancelled by alice."
        ),
        "failed": make_import(
            team, user, Status.FAILED, error_code="ImageFailed", error_message="Import failed."
        ),
        "available": make_import(team, user, Status.AVAILABLE),
    }


def listed(admin_client, **params):
    response = admin_client.get(reverse("admin:imports_imageimport_changelist"), params)
    assert response.status_code == 200
    return {image_import.pk for image_import in response.context["cl"].result_list}


def test_the_admin_s_import_list_filters_cancelled_apart_from_failed(
    admin_client, ended_three_ways
):
    assert listed(admin_client, status="cancelled") == {ended_three_ways["cancelled"].pk}
    assert listed(admin_client, status="failed") == {ended_three_ways["failed"].pk}
    assert listed(admin_client, status="available") == {ended_three_ways["available"].pk}
    assert len(listed(admin_client)) == 3


def test_the_admin_s_import_list_offers_and_shows_cancelled(admin_client, ended_three_ways):
    page = admin_client.get(reverse("admin:imports_imageimport_changelist")).content.decode()
    assert "?status=cancelled" in page
    assert ">Cancelled<" in page  # the filter's choice
    assert '<td class="field-import_status">Cancelled</td>' in page  # the row's column


# -- 4. the task message an ended import keeps --------------------------------------------


@pytest.fixture
def fresh_refresher():
    cache.delete(tasks.REFRESH_PAUSE_KEY)
    yield
    cache.delete(tasks.REFRESH_PAUSE_KEY)


def refresh(image_import):
    ImageImport.objects.filter(pk=image_import.pk).update(refreshed_at=None)
    tasks.refresh_imports()
    image_import.refresh_from_db()
    return image_import


def test_an_import_made_available_while_ec2_went_unheard_keeps_no_earlier_step_s_message(
    team, user, slow_emulator, client, api_headers, fresh_refresher
):
    image_import, _ = ImageImport.submit(
        team=team, user=user, payload=valid_payload(vmImportTaskId=CONVERTING_TASK)
    )
    image_import = attempt(image_import)
    for _ in range(12):  # until EC2 says the task is preparing its AMI
        image_import = refresh(image_import)
        if image_import.status_message == "preparing ami":
            break
        slow_emulator.advance(60)
    assert image_import.status_message == "preparing ami"
    # From then on EC2 is never heard; the image goes on to be made.
    for _ in range(12):
        slow_emulator.advance(60)
        slow_emulator.fail_next(1, "InternalError", operation="DescribeImportImageTasks")
        image_import = refresh(image_import)
        if image_import.status == Status.AVAILABLE:
            break

    assert image_import.status == Status.AVAILABLE
    assert (image_import.progress, image_import.status_message) == (100, "")
    answer = client.get(f"/api/imports/{image_import.pk}", headers=api_headers).json()
    assert (answer["progress"], answer["statusMessage"]) == (100, None)


def test_an_import_that_fails_while_ec2_went_unheard_keeps_why_ec2_failed_its_task(
    team, user, django_capture_on_commit_callbacks
):
    # EC2 deleted the task (its reason heard) a cycle before Image Builder
    # failed the image: that reason is EC2's last word, and the hint's.
    image_import = make_import(
        team,
        user,
        Status.IMPORTING,
        vm_import_task_id=CONVERTING_TASK,
        progress=30,
        status_message="ClientError: Footers not identical",
    )

    with django_capture_on_commit_callbacks():
        tasks.observed(image_import, None, ImageState("FAILED", "Import failed.", []))

    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.status_message == "ClientError: Footers not identical"
    assert "header and footer differ" in failure_hint(image_import)
