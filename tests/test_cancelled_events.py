"""A cancel's event says Cancelled on the import's page and in the admin, as team activity does.

A cancel is stored as status failed with the error code Cancelled; its
event (Action.CANCELLED) is told apart from a failure by its action.

After a failed attempt, the cancel's confirmation, message and event say what
reached AWS: nothing, a request AWS never accepted, or one whose answer was lost.
"""

from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imports import services, tasks
from imports.models import ImageImport, Membership, Status

from .factories import disk_submission, make_import, make_member

AUDIT = "admin:imports_auditevent_changelist"


def cancelled_import(team, user):
    image_import = make_import(team, user, Status.QUEUED)
    assert image_import.withdraw(user=user)
    return image_import


def failed_import(team, user):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.claim()
    image_import.mark_failed(code="ClientException", message="nope")
    return image_import


def timeline(client, image_import):
    page = client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    return page[page.index('id="timeline"') :]


def test_a_withdrawn_import_s_timeline_says_cancelled(user_client, team, user):
    shown = timeline(user_client, cancelled_import(team, user))
    assert "Queued &rarr; Cancelled" in shown
    assert "&rarr; Failed" not in shown


def test_a_cancelled_running_import_s_timeline_says_cancelled(user_client, team, user):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.claim()
    image_import.mark_importing(image_arn="arn:x", request_id="r", client_token="t")
    assert image_import.mark_cancelled(user=user, ec2_state="deleting")
    shown = timeline(user_client, image_import)
    assert "Importing &rarr; Cancelled" in shown
    assert "&rarr; Failed" not in shown


def test_a_failure_still_says_failed(user_client, team, user):
    assert "Submitting &rarr; Failed" in timeline(user_client, failed_import(team, user))


def test_the_polled_timeline_says_cancelled_too(user_client, team, user):
    image_import = make_import(team, user, Status.QUEUED)
    seen = image_import.version
    image_import.withdraw(user=user)
    polled = user_client.get(
        reverse("imports:status", args=[image_import.pk]), {"seen": seen}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Queued &rarr; Cancelled" in polled


def test_the_admin_s_status_column_says_cancelled(admin_client, team, user):
    cancelled_import(team, user)
    failed_import(team, user)
    content = admin_client.get(reverse(AUDIT)).content.decode()
    assert "Queued → Cancelled" in content
    assert "Queued → Failed" not in content
    assert "Submitting → Failed" in content


def test_the_admin_s_import_status_filter_tells_cancelled_from_failed(admin_client, team, user):
    cancelled = cancelled_import(team, user)
    failed = failed_import(team, user)
    url = reverse(AUDIT)

    listing = admin_client.get(url).content.decode()
    assert "?import_status=cancelled" in listing and ">Cancelled</a>" in listing

    by_cancelled = admin_client.get(url, {"import_status": "cancelled"})
    assert {event.image_import_id for event in by_cancelled.context["cl"].result_list} == {
        cancelled.pk
    }
    by_failed = admin_client.get(url, {"import_status": "failed"})
    assert {event.image_import_id for event in by_failed.context["cl"].result_list} == {failed.pk}


def test_an_unknown_import_status_lists_nothing_and_does_not_fail(admin_client, team, user):
    cancelled_import(team, user)
    response = admin_client.get(reverse(AUDIT), {"import_status": "done"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def attempt(image_import):
    """One run of the submit task (a retry's message), then the import as stored."""
    tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    return image_import


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
    user_client, image_import, imagebuilder_stub, retries_queued
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
    user_client, image_import, emulator, retries_queued
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
    team, user, user_client, emulator, retries_queued
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
        f"EC2's VM import task {task_id}, started for it, is left as it is: if it is not "
        "wanted, cancel it in EC2 while it converts the disk, or deregister the AMI it made "
        "once it has completed."
    )


def lost_answer_counts(queries):
    return [
        query["sql"] for query in queries if "COUNT(" in query["sql"] and "LIKE" in query["sql"]
    ]


def test_only_who_may_cancel_a_retried_import_pays_for_reading_what_cancel_would_do(
    user_client, team, user
):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.claim()
    image_import.mark_retrying(
        code="ServiceUnavailableException", message="busy", delay=60, attempt=1
    )
    detail = reverse("imports:detail", args=[image_import.pk])

    # A viewer sees no Cancel button, so the page (and each of its polls)
    # does not read the audit for lost answers to word one.
    viewer_client = Client()
    viewer_client.force_login(make_member("vera", team, Membership.Role.VIEWER))
    with CaptureQueriesContext(connection) as viewer:
        assert "Cancel this import" not in viewer_client.get(detail).content.decode()
    assert lost_answer_counts(viewer.captured_queries) == []

    with CaptureQueriesContext(connection) as submitter:
        page = user_client.get(detail).content.decode()
    assert "AWS has not accepted it: the import is simply withdrawn" in page
    assert len(lost_answer_counts(submitter.captured_queries)) == 1
