"""The worker's AWS call, checked with botocore's Stubber against the real service model."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from imports import aws, services, tasks
from imports.hints import failure_hint
from imports.models import AuditEvent, ImageImport, Status, aws_client_token

from .factories import disk_submission
from .helpers import Statements

ARN = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"


def accepted(payload):
    return {"requestId": "req-1", "clientToken": payload["clientToken"], "imageArn": ARN}


def test_it_sends_the_stored_payload_with_its_token_and_records_the_answer(
    image_import, imagebuilder_stub, payload
):
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(image_import.payload), expected_params=image_import.payload
    )

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    assert image_import.image_arn == ARN
    assert image_import.request_id == "req-1"
    assert image_import.response_client_token == image_import.payload["clientToken"]
    assert image_import.attempts == 1
    assert image_import.submitted_at is not None
    assert [(e.from_status, e.to_status) for e in image_import.events.all()] == [
        ("", "queued"),
        ("queued", "submitting"),
        ("submitting", "importing"),
    ]


def test_one_submit_task_is_two_statements_on_postgresql_four_in_two_transactions_elsewhere(
    image_import, imagebuilder_stub, payload
):
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(image_import.payload), expected_params=image_import.payload
    )
    # The claim reads the row (UPDATE ... RETURNING, no SELECT before it),
    # then the answer: each an UPDATE and its event, committed on its own
    # (the claim before the AWS call, for the lease). No re-read of the row
    # or of its team after a transition.
    with Statements() as said:
        tasks.submit_import(image_import.pk)
    if connection.vendor == "postgresql":
        # WITH moved AS (UPDATE ... RETURNING ...) INSERT the event: atomic alone.
        assert (said.statements, said.transactions) == (2, 0), said
        assert [line.split()[0] for line in said.sql] == ["WITH", "WITH"]
    else:
        assert (said.statements, said.transactions) == (4, 2), said
        assert [line.split()[0] for line in said.sql] == ["UPDATE", "INSERT", "UPDATE", "INSERT"]
    claimed, answered = AuditEvent.objects.filter(image_import=image_import).order_by("id")[1:]
    assert claimed.detail == "Attempt 1 sending to AWS"  # attempts + 1, as the UPDATE stored it
    assert claimed.team_id == answered.team_id == image_import.team_id


def test_the_claimed_import_is_the_row_as_the_claim_left_it(image_import):
    claimed = ImageImport.claim_queued(image_import.pk)
    stored = ImageImport.objects.get(pk=image_import.pk)
    for field in ImageImport._meta.concrete_fields:
        assert getattr(claimed, field.attname) == getattr(stored, field.attname), field.name
    assert (stored.status, stored.attempts) == (Status.SUBMITTING, 1)
    assert claimed.team == image_import.team  # its relations load as any instance's


def test_an_import_not_queued_or_gone_is_not_claimed(image_import):
    assert ImageImport.claim_queued(image_import.pk) is not None
    assert ImageImport.claim_queued(image_import.pk) is None  # already submitting
    assert ImageImport.claim_queued(987654) is None
    assert AuditEvent.objects.filter(image_import=image_import, to_status="submitting").count() == 1


def test_a_transition_leaves_the_instance_as_the_row_is(image_import):
    image_import.claim()
    image_import.mark_importing(image_arn=ARN, request_id="req-1", client_token="tok")
    stored = ImageImport.objects.get(pk=image_import.pk)
    for field in ImageImport._meta.concrete_fields:
        assert getattr(image_import, field.attname) == getattr(stored, field.attname), field.name
    assert image_import.version == stored.version


def test_tags_and_optional_members_reach_aws_exactly(team, user, imagebuilder_stub):
    payload = {
        "clientToken": "tok-tags",
        "name": "Tagged",
        "description": "With everything",
        "semanticVersion": "2.3.4",
        "platform": "Windows",
        "osVersion": "2022",
        "vmImportTaskId": "import-ami-0123456789abcdef0",
        "tags": {"team": "web", "cost:centre": "42"},
    }
    image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)
    # Exactly as given, but for the token, which is the team's own.
    sent = {**payload, "clientToken": aws_client_token(team.pk, "tok-tags")}
    imagebuilder_stub.add_response("import_vm_image", accepted(sent), expected_params=sent)

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING


@pytest.mark.parametrize(
    "code, http_status",
    [
        ("ServiceUnavailableException", 503),
        ("ServiceException", 500),
        ("ThrottlingException", 400),
        ("CallRateLimitExceededException", 429),
    ],
)
def test_retryable_errors_go_back_to_queued_and_retry_with_the_same_token(
    image_import, imagebuilder_stub, payload, retries_queued, code, http_status
):
    imagebuilder_stub.add_client_error(
        "import_vm_image",
        service_error_code=code,
        service_message="Try again later",
        http_status_code=http_status,
        expected_params=image_import.payload,
    )
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(image_import.payload), expected_params=image_import.payload
    )

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.QUEUED
    assert image_import.error_code == code
    assert len(retries_queued) == 1
    (args, countdown) = retries_queued[0]
    assert args == (image_import.pk,)
    assert 0 < countdown <= 300

    tasks.submit_import(image_import.pk)  # the re-enqueued attempt, same stored token

    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    assert image_import.attempts == 2
    details = [event.detail for event in image_import.events.all()]
    assert details[1] == "Attempt 1 sending to AWS"
    assert details[2].startswith(f"{code}: Try again later (retrying in")
    assert details[3] == "Attempt 2 sending to AWS"


def test_a_connection_error_is_retried(image_import, aws_credentials, retries_queued, monkeypatch):
    # Nothing listens on this port: a real connection refusal from botocore.
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", "http://127.0.0.1:9")

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.QUEUED
    assert image_import.error_code == "ConnectionError"
    assert "Could not reach AWS" in image_import.error_message
    assert len(retries_queued) == 1


def test_a_client_exception_fails_the_import_with_aws_message(
    image_import, imagebuilder_stub, payload, retries_queued
):
    imagebuilder_stub.add_client_error(
        "import_vm_image",
        service_error_code="ClientException",
        service_message="The VM import task import-ami-0123456789abcdef0 does not exist.",
        http_status_code=400,
        expected_params=image_import.payload,
    )

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.error_code == "ClientException"
    assert image_import.error_message == (
        "The VM import task import-ami-0123456789abcdef0 does not exist."
    )
    assert image_import.finished_at is not None
    assert retries_queued == []


def test_it_gives_up_after_the_maximum_attempts(
    image_import, imagebuilder_stub, payload, retries_queued, settings
):
    settings.IMPORT_MAX_ATTEMPTS = 2
    for _ in range(2):
        imagebuilder_stub.add_client_error(
            "import_vm_image",
            service_error_code="ServiceException",
            http_status_code=500,
            service_message="Internal error",
            expected_params=image_import.payload,
        )

    tasks.submit_import(image_import.pk)
    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert "gave up after 2 attempts" in image_import.error_message
    assert len(retries_queued) == 1


def test_without_credentials_the_import_fails_with_a_clear_message(image_import):
    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.error_code == "NoCredentials"
    assert image_import.error_message.startswith("No AWS credentials configured")


def test_a_second_delivery_of_the_same_message_does_nothing(
    image_import, imagebuilder_stub, payload
):
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(image_import.payload), expected_params=image_import.payload
    )

    tasks.submit_import(image_import.pk)
    tasks.submit_import(image_import.pk)  # Stubber would fail on a second call

    image_import.refresh_from_db()
    assert image_import.attempts == 1


def test_a_missing_import_is_ignored(db, imagebuilder_stub):
    # The stub holds no answer: a call to AWS would raise.
    tasks.submit_import(987654)
    assert not ImageImport.objects.exists() and not AuditEvent.objects.exists()


def test_the_sweeper_requeues_expired_leases_and_lost_messages_only(
    image_import, team, user, monkeypatch, settings
):
    sent = []
    monkeypatch.setattr(tasks.submit_import, "delay", lambda pk: sent.append(pk))
    long_ago = timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER + 5)
    expired, _ = ImageImport.submit(
        team=team, user=user, payload={**image_import.payload, "clientToken": "expired"}
    )
    expired.claim()
    slow, _ = ImageImport.submit(
        team=team, user=user, payload={**image_import.payload, "clientToken": "slow"}
    )
    slow.claim()
    fresh, _ = ImageImport.submit(
        team=team, user=user, payload={**image_import.payload, "clientToken": "fresh"}
    )
    # A queued row whose message was lost, a claim whose lease ran out, and a
    # claim still within its lease although its row is old: a slow call.
    ImageImport.objects.filter(pk=image_import.pk).update(updated_at=long_ago)
    ImageImport.objects.filter(pk=expired.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    ImageImport.objects.filter(pk=slow.pk).update(updated_at=long_ago)

    assert tasks.requeue_stuck_imports() == 2
    assert sorted(sent) == sorted([image_import.pk, expired.pk])
    expired.refresh_from_db()
    assert expired.status == Status.QUEUED
    assert expired.lease_expires_at is None
    assert expired.events.last().detail.startswith("The worker's lease ran out")
    slow.refresh_from_db()
    assert slow.status == Status.SUBMITTING
    # A second sweep right away finds nothing stuck: the clocks were reset.
    assert tasks.requeue_stuck_imports() == 0


def test_the_sweeper_sends_an_import_whose_first_message_was_lost_within_a_minute(
    image_import, team, user, monkeypatch, settings
):
    sent = []
    monkeypatch.setattr(tasks.submit_import, "delay", lambda pk: sent.append(pk))
    a_while_ago = timezone.now() - timedelta(seconds=settings.IMPORT_UNSENT_AFTER + 5)
    retrying, _ = ImageImport.submit(
        team=team, user=user, payload={**image_import.payload, "clientToken": "retrying"}
    )
    retrying.claim()
    retrying.mark_retrying(code="ServiceException", message="boom", delay=120)
    ImageImport.objects.filter(pk__in=[image_import.pk, retrying.pk]).update(updated_at=a_while_ago)

    # The unsent one goes again; the one waiting out its backoff does not.
    assert tasks.requeue_stuck_imports() == 1
    assert sent == [image_import.pk]


def test_a_claim_leases_the_import_just_past_the_aws_timeouts(image_import, settings):
    before = timezone.now()
    assert image_import.claim()
    image_import.refresh_from_db()
    lease = image_import.lease_expires_at - before
    assert (
        timedelta(seconds=settings.IMPORT_LEASE_SECONDS)
        <= lease
        < timedelta(seconds=settings.IMPORT_LEASE_SECONDS + 5)
    )
    # Longer than an attempt may last: AssumeRole then ImportVmImage.
    attempt = 2 * (settings.AWS_CONNECT_TIMEOUT + settings.AWS_READ_TIMEOUT)
    assert attempt < settings.IMPORT_LEASE_SECONDS
    # A killed worker's import is sent again within two minutes by default.
    assert settings.IMPORT_LEASE_SECONDS + settings.IMPORT_SWEEP_INTERVAL < 120
    assert tasks.submit_import.time_limit < settings.IMPORT_LEASE_SECONDS


def test_requeue_leaves_a_claim_within_its_lease_alone(image_import):
    image_import.claim()
    image_import.refresh_from_db()
    far_past = timezone.now() - timedelta(days=1)
    assert not image_import.requeue(stuck_before=far_past)
    assert image_import.status == Status.SUBMITTING
    later = image_import.lease_expires_at + timedelta(seconds=1)
    assert image_import.requeue(stuck_before=far_past, now=later)
    assert image_import.status == Status.QUEUED


def test_every_way_out_of_submitting_ends_the_lease(image_import):
    image_import.claim()
    image_import.mark_retrying(code="ServiceException", message="boom", delay=1)
    assert image_import.lease_expires_at is None
    image_import.claim()
    image_import.mark_importing(image_arn="arn:x", request_id="r", client_token="t")
    assert image_import.lease_expires_at is None


def outlive_the_lease_during_the_call(stub, image_import):
    """While the stubbed call is in hand: its lease runs out, the sweeper takes the
    import back and another worker claims it (attempt 2)."""

    def sweep_and_claim_again(**kwargs):
        stuck = ImageImport.objects.get(pk=image_import.pk)
        after_the_lease = stuck.lease_expires_at + timedelta(seconds=1)
        assert stuck.requeue(stuck_before=timezone.now(), now=after_the_lease)
        assert ImageImport.claim_queued(image_import.pk).attempts == 2

    stub.client.meta.events.register(
        "before-parameter-build.imagebuilder.ImportVmImage", sweep_and_claim_again
    )


@pytest.mark.parametrize(
    "code, http_status",
    [("ServiceUnavailableException", 503), ("ClientException", 400)],
    ids=["retryable", "refused"],
)
def test_an_attempt_that_outlived_its_lease_leaves_the_newer_attempt_alone(
    image_import, imagebuilder_stub, payload, retries_queued, code, http_status
):
    # Under the threads pool no time limit ends such a call (a DNS lookup that
    # hangs); its failure must neither send the import back to the queue nor
    # end it while attempt 2 is in flight with the same client token.
    outlive_the_lease_during_the_call(imagebuilder_stub, image_import)
    imagebuilder_stub.add_client_error(
        "import_vm_image",
        service_error_code=code,
        service_message="stale",
        http_status_code=http_status,
        expected_params=image_import.payload,
    )

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert (image_import.status, image_import.attempts) == (Status.SUBMITTING, 2)
    assert image_import.error_code == ""
    assert retries_queued == []
    assert [event.detail for event in image_import.events.all()][-1] == "Attempt 2 sending to AWS"


def test_an_attempt_that_outlived_its_lease_records_aws_s_answer_for_both(
    image_import, imagebuilder_stub, payload
):
    # The same client token: AWS answers attempt 2 with what it answered
    # attempt 1, so whichever records it first records the truth.
    outlive_the_lease_during_the_call(imagebuilder_stub, image_import)
    imagebuilder_stub.add_response(
        "import_vm_image", accepted(image_import.payload), expected_params=image_import.payload
    )

    tasks.submit_import(image_import.pk)

    image_import.refresh_from_db()
    assert (image_import.status, image_import.image_arn) == (Status.IMPORTING, ARN)


def test_retry_delay_grows_and_is_capped(settings):
    settings.IMPORT_RETRY_BASE_DELAY = 2
    settings.IMPORT_RETRY_MAX_DELAY = 60
    assert 2 <= tasks.retry_delay(1) <= 4
    assert 16 <= tasks.retry_delay(4) <= 32
    assert 30 <= tasks.retry_delay(20) <= 60


def test_events_cannot_be_changed_or_deleted(image_import):
    event = AuditEvent.objects.filter(image_import=image_import).first()
    event.detail = "rewritten"
    with pytest.raises(Exception, match="append-only"):
        event.save()
    with pytest.raises(Exception, match="append-only"):
        event.delete()


def test_a_broker_that_is_down_loses_nothing(
    team, user, payload, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.submit_import, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        image_import, created = services.submit_import(team=team, user=user, payload=payload)

    assert created
    assert (
        ImageImport.objects.get(pk=image_import.pk).status == Status.QUEUED
    )  # the sweeper's to send
    assert "the sweeper will send it later" in caplog.text


def test_after_a_failed_publish_the_next_ones_are_left_to_the_sweeper_for_a_while(
    monkeypatch, settings
):
    # A broker that hangs costs a publish its timeouts: paid once, not by
    # every submit in a row (tests/test_broker_outages.py times it).
    tried = []

    def broker_down(pk):
        tried.append(pk)
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.submit_import, "delay", broker_down)
    assert tasks.send_to_worker(1) is False
    assert tasks.send_to_worker(2) is False
    assert tried == [1]

    monkeypatch.setattr(tasks.submit_import, "delay", tried.append)
    monkeypatch.setattr(tasks.PublishPause, "until", 0.0)  # BROKER_PUBLISH_PAUSE is over
    assert tasks.send_to_worker(3) is True
    assert tried == [1, 3]


# -- an answer that may have reached AWS is never final -----------------------------


def attempts_until_settled(image_import, times):
    """Run the submit task `times` times (each a retry's message), then read the import."""
    for _ in range(times):
        tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    return image_import


def test_an_answer_lost_after_aws_acted_is_retried_past_the_limit_and_makes_one_image(
    image_import, emulator, retries_queued, settings
):
    # The emulator makes the image, then closes the connection before its
    # answer: AWS may hold the image, so giving up (and the person submitting
    # again, with a new token) would make a second one.
    settings.IMPORT_MAX_ATTEMPTS = 3
    emulator.drop_next(5, operation="ImportVmImage", after=True)

    image_import = attempts_until_settled(image_import, 5)

    assert (image_import.status, image_import.error_code) == (Status.QUEUED, "ConnectionError")
    assert image_import.error_message == (
        "AWS Image Builder did not answer: the connection closed before its answer came. "
        + tasks.ASKING_AGAIN
    )
    assert "keeps asking with the same client token" in image_import.error_message
    assert len(retries_queued) == 5

    image_import = attempts_until_settled(image_import, 1)  # AWS answers at last

    assert image_import.status == Status.IMPORTING
    assert emulator.calls()["imagesCreated"] == 1
    assert emulator.calls()["clientTokens"] == {image_import.payload["clientToken"]: 6}


def test_the_retries_of_a_lost_answer_back_off_up_to_the_cap(
    image_import, emulator, retries_queued, settings
):
    settings.IMPORT_MAX_ATTEMPTS = 2
    settings.IMPORT_RETRY_MAX_DELAY = 30
    emulator.drop_next(6, operation="ImportVmImage", after=True)

    attempts_until_settled(image_import, 6)

    countdowns = [countdown for _, countdown in retries_queued]
    assert all(countdown <= 30 for countdown in countdowns)
    assert countdowns[-1] >= 15  # half the cap at least, once it is reached


def test_once_aws_may_hold_the_image_only_aws_ends_the_import(
    image_import, emulator, retries_queued, settings, monkeypatch
):
    # The first answer was lost; then AWS cannot be reached at all (refused):
    # those attempts would otherwise use up the limit and fail the import.
    settings.IMPORT_MAX_ATTEMPTS = 2
    emulator.drop_next(1, operation="ImportVmImage", after=True)
    attempts_until_settled(image_import, 1)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", "http://127.0.0.1:9")
    aws.clear_clients()

    image_import = attempts_until_settled(image_import, 4)

    assert image_import.status == Status.QUEUED
    assert image_import.error_message.startswith(
        "Could not reach AWS Image Builder: the connection failed. An earlier attempt may have"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", emulator.url)
    aws.clear_clients()
    image_import = attempts_until_settled(image_import, 1)
    assert image_import.status == Status.IMPORTING
    assert emulator.calls()["imagesCreated"] == 1


def test_a_connection_that_never_reached_aws_still_gives_up_at_the_limit(
    image_import, aws_credentials, retries_queued, settings, monkeypatch
):
    settings.IMPORT_MAX_ATTEMPTS = 2
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", "http://127.0.0.1:9")  # refused

    image_import = attempts_until_settled(image_import, 2)

    assert (image_import.status, image_import.error_code) == (Status.FAILED, "ConnectionError")
    assert image_import.error_message.startswith(
        "Could not reach AWS Image Builder: the connection failed. (gave up after 2 attempts"
    )
    assert "127.0.0.1" not in image_import.error_message  # no URL, no query string
    assert "could not reach AWS" in failure_hint(image_import)


def test_a_lost_ec2_import_image_answer_is_retried_with_its_client_token(
    team, user, emulator, retries_queued, settings
):
    # For a disk file the worker first calls EC2 ImportImage, with a client
    # token of its own: the same rule, so EC2 starts one VM import task.
    settings.IMPORT_MAX_ATTEMPTS = 2
    image_import, _ = ImageImport.submit(
        team=team, user=user, **disk_submission(ClientToken="ec2-token-lost")
    )
    emulator.drop_next(3, operation="ImportImage", after=True)

    image_import = attempts_until_settled(image_import, 3)

    assert image_import.status == Status.QUEUED
    assert image_import.error_message.startswith("AWS EC2 did not answer")
    assert tasks.ASKING_AGAIN in image_import.error_message

    image_import = attempts_until_settled(image_import, 1)

    assert image_import.status == Status.IMPORTING
    assert emulator.calls()["importTasksCreated"] == 1
    assert emulator.calls()["imagesCreated"] == 1


def test_aws_s_own_error_answers_keep_the_limit_after_a_lost_answer(
    image_import, emulator, retries_queued, settings
):
    # Attempts AWS answered count; the one whose answer was lost does not.
    settings.IMPORT_MAX_ATTEMPTS = 2
    emulator.drop_next(1, operation="ImportVmImage", after=True)
    emulator.fail_next(5, "ServiceUnavailableException", operation="ImportVmImage")

    image_import = attempts_until_settled(image_import, 2)
    assert image_import.status == Status.QUEUED  # one answered attempt so far

    image_import = attempts_until_settled(image_import, 1)
    assert image_import.status == Status.FAILED
    assert "gave up after 3 attempts" in image_import.error_message
