"""An ended import's page says what reached AWS, and nothing of answers still to come.

"Sent to AWS" is what the timeline and a cancel mean by it: AWS accepted the
request. An import whose attempt AWS failed, then withdrawn while it waited
to retry, was never sent in that sense, and its page must not say it was.
"""

from django.urls import reverse

from imports import services, tasks
from imports.models import ImageImport, Status

from .factories import disk_submission, make_import, valid_payload


def page_of(client, image_import):
    return client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()


def test_an_import_cancelled_while_it_retries_says_aws_never_accepted_it(
    user_client, team, user, emulator, retries_queued
):
    emulator.fail_next(4, "ServiceUnavailableException", operation="ImportVmImage")
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    assert (image_import.status, image_import.attempts) == (Status.QUEUED, 1)
    assert len(retries_queued) == 1

    assert services.cancel_import(image_import, user=user).cancelled

    page = page_of(user_client, image_import)
    assert "Cancelled by" in page
    assert "Request sent to AWS" not in page
    assert '<h2 id="request-heading">Request (AWS never accepted it)</h2>' in page
    assert "none: AWS never accepted the request" in page
    assert "not yet" not in page
    assert "Request ID" not in page and "Client token (returned)" not in page


def test_an_import_aws_refused_says_aws_never_accepted_it(user_client, team, user):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.claim()
    image_import.mark_failed(code="ClientException", message="nope")
    page = page_of(user_client, image_import)
    assert '<h2 id="request-heading">Request (AWS never accepted it)</h2>' in page
    assert "not yet" not in page


def test_an_import_withdrawn_before_any_attempt_was_never_sent(user_client, team, user):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.withdraw(user=user)
    page = page_of(user_client, image_import)
    assert '<h2 id="request-heading">Request (never sent to AWS)</h2>' in page


def test_a_disk_import_ended_before_ec2_named_its_task_says_none_will_come(user_client, team, user):
    submission = disk_submission()
    image_import = make_import(
        team,
        user,
        Status.QUEUED,
        payload={"vmImportTaskId": None},
        source=submission["source"],
        import_image_payload=submission["import_image_payload"],
    )
    image_import.withdraw(user=user)
    page = page_of(user_client, image_import)
    assert "none: the import ended before EC2 started one" in page
    assert '<dd id="request-task">(none: the import ended before EC2 named a task)</dd>' in page
    assert "added once EC2 names the task" not in page and "not yet" not in page


def test_an_import_in_flight_still_waits_for_its_answers(user_client, team, user):
    page = page_of(user_client, make_import(team, user, Status.QUEUED))
    assert "Request to send" in page
    assert page.count("not yet") == 3  # image ARN, request ID, returned client token
    assert "Request ID" in page


def test_an_accepted_import_that_failed_was_sent(user_client, team, user):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.claim()
    image_import.mark_importing(image_arn="arn:x", request_id="r-1", client_token="t")
    image_import.mark_failed(code="ImageFailed", message="The image failed.")
    page = page_of(user_client, image_import)
    assert '<h2 id="request-heading">Request sent to AWS</h2>' in page
    assert "<code>r-1</code>" in page
