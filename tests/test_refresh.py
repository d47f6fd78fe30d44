"""Following imports to their end: the refresher, forward-only status, cancel.

Against the emulator over real HTTP; the refresher runs in the test's own
process (it is what beat runs every IMPORT_REFRESH_INTERVAL seconds).
"""

import random
import time

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from django.core.cache import cache
from django.urls import reverse

from imports import tasks
from imports.aws import Ec2ImportTask, ImageState
from imports.hints import failure_hint
from imports.models import (
    IMAGE_STATES_IN_ORDER,
    Action,
    AuditEvent,
    ImageImport,
    Source,
    Status,
    version_cache_key,
)

from .factories import CONVERTING_TASK, SEEDED_TASK, disk_submission, make_import, valid_payload
from .helpers import Statements


@pytest.fixture(autouse=True)
def no_pause():
    cache.delete(tasks.REFRESH_PAUSE_KEY)
    yield
    cache.delete(tasks.REFRESH_PAUSE_KEY)


def importing(team, user, emulator, **overrides):
    """An import sent to the emulator by the real submit task."""
    image_import, _ = ImageImport.submit(team=team, user=user, payload=valid_payload(**overrides))
    tasks.submit_import(image_import.pk)
    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING, image_import.error_message
    return image_import


def test_the_image_walks_its_states_with_one_event_per_change(team, user, slow_emulator):
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    seen = []
    for _ in range(12):
        tasks.refresh_imports()
        tasks.refresh_imports()  # an unchanged answer adds nothing
        image_import.refresh_from_db()
        seen.append((image_import.progress, image_import.image_state, image_import.status))
        ImageImport.objects.filter(pk=image_import.pk).update(refreshed_at=None)
        slow_emulator.advance(60)
    assert image_import.status == Status.AVAILABLE
    progresses = [progress for progress, _, _ in seen if progress is not None]
    assert progresses == sorted(progresses) and progresses[-1] == 100
    assert any(state == "BUILDING" for _, state, _ in seen)
    details = [event.detail for event in image_import.events.all()]
    assert len(details) == len(set(details))  # no repeated event
    assert any("VM import task: converting" in detail for detail in details)
    assert details[-1].startswith("Image available: ami-")


def observe(image_import, task=None, image=None):
    """What a refresh cycle does with one import's answers: its end, or its progress."""
    ImageImport.record_progress(tasks.observed(image_import, task, image))


def test_shuffled_answers_never_move_an_import_back(team, user, image_import):
    image_import.claim()
    image_import.mark_importing(image_arn="arn", request_id="r", client_token="t")
    answers = [
        (Ec2ImportTask(SEEDED_TASK, "active", message, progress, "", ""), ImageState(state, "", []))
        for progress, message in [(10, "pending"), (30, "validating"), (50, "converting")]
        for state in IMAGE_STATES_IN_ORDER[:4]
    ]
    random.Random(7).shuffle(answers)
    best_rank, best_progress = -1, -1
    for task, image in answers:
        observe(image_import, task=task, image=image)
        image_import.refresh_from_db()
        rank = IMAGE_STATES_IN_ORDER.index(image_import.image_state)
        assert rank >= best_rank and image_import.progress >= best_progress
        best_rank, best_progress = rank, image_import.progress
    assert image_import.status == Status.IMPORTING
    # Terminal answers are final too: a late "BUILDING" cannot revive it.
    observe(
        image_import,
        image=ImageState(
            "AVAILABLE", "", [{"region": "us-east-1", "image": "ami-1", "accountId": "1"}]
        ),
    )
    observe(image_import, image=ImageState("BUILDING", "", []))
    observe(image_import, image=ImageState("FAILED", "late", []))
    image_import.refresh_from_db()
    assert (image_import.status, image_import.image_state) == (Status.AVAILABLE, "AVAILABLE")


def test_describe_calls_are_batched_by_100_and_get_image_is_one_per_import(team, user, emulator):
    for number in range(150):
        importing(team, user, emulator, clientToken=f"batch-{number}")
    before = emulator.calls()["operations"]

    result = tasks.refresh_imports()

    after = emulator.calls()["operations"]
    assert result == {"refreshed": 150, "throttled": False}
    assert after["DescribeImportImageTasks"] - before.get("DescribeImportImageTasks", 0) == 1
    assert after["GetImage"] - before.get("GetImage", 0) == 150
    assert ImageImport.objects.filter(status=Status.AVAILABLE).count() == 150


def new_vm_import_tasks(count):
    """The IDs of `count` VM import tasks the emulator's EC2 starts now."""
    ec2 = tasks.aws.client("ec2")
    disk = {"Format": "VMDK", "UserBucket": {"S3Bucket": "vm-exports", "S3Key": "disk.vmdk"}}
    return [ec2.import_image(DiskContainers=[disk])["ImportTaskId"] for _ in range(count)]


def test_describe_batches_split_at_100_distinct_task_ids(emulator):
    task_ids = new_vm_import_tasks(201)
    before = emulator.calls()["operations"].get("DescribeImportImageTasks", 0)

    found = tasks.aws.describe_import_image_tasks(
        task_ids + task_ids[:10], target=tasks.aws.Target("us-east-1")
    )

    assert sorted(found) == sorted(task_ids)
    assert emulator.calls()["operations"]["DescribeImportImageTasks"] - before == 3


def test_throttling_pauses_the_refresher_instead_of_failing_imports(team, user, emulator, settings):
    image_import = importing(team, user, emulator)
    emulator.fail_next(1, "CallRateLimitExceededException", operation="GetImage")

    assert tasks.refresh_imports() == {"refreshed": 1, "throttled": True}
    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    assert tasks.refresh_imports() == {"paused": True}

    cache.delete(tasks.REFRESH_PAUSE_KEY)  # the pause has run out
    ImageImport.objects.filter(pk=image_import.pk).update(refreshed_at=None)
    assert tasks.refresh_imports() == {"refreshed": 1, "throttled": False}
    image_import.refresh_from_db()
    assert image_import.status == Status.AVAILABLE


def test_throttled_describe_calls_still_let_images_decide(team, user, emulator):
    image_import = importing(team, user, emulator)
    emulator.fail_next(1, "ThrottlingException", operation="DescribeImportImageTasks")
    assert tasks.refresh_imports()["throttled"]
    image_import.refresh_from_db()
    assert image_import.status == Status.AVAILABLE


def test_only_one_refresh_cycle_runs_at_a_time(team, user, emulator):
    importing(team, user, emulator)
    cache.add(tasks.REFRESH_LOCK_KEY, True)  # a cycle running on another worker
    assert tasks.refresh_imports() == {"busy": True}
    assert "GetImage" not in emulator.calls()["operations"]
    cache.delete(tasks.REFRESH_LOCK_KEY)
    assert tasks.refresh_imports()["refreshed"] == 1
    assert cache.get(tasks.REFRESH_LOCK_KEY) is None  # released after the cycle


def test_the_pause_grows_and_is_capped(settings):
    settings.IMPORT_REFRESH_MAX_PAUSE = 5
    pauses = []
    for _ in range(4):
        tasks.pause_refreshing()
        pauses.append(cache.get(tasks.REFRESH_PAUSE_KEY)["seconds"])
    assert pauses == [2, 4, 5, 5]


def test_one_broken_import_never_stops_the_others(team, user, emulator):
    good = importing(team, user, emulator, clientToken="good")
    broken = importing(team, user, emulator, clientToken="broken")
    ImageImport.objects.filter(pk=broken.pk).update(
        image_arn="arn:aws:imagebuilder:us-east-1:123456789012:image/gone/1.0.0/9"
    )

    tasks.refresh_imports()

    good.refresh_from_db()
    broken.refresh_from_db()
    assert good.status == Status.AVAILABLE
    assert broken.status == Status.IMPORTING


def test_young_imports_are_refreshed_often_and_old_ones_less(team, user, image_import, settings):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    image_import.claim()
    image_import.mark_importing(image_arn="arn", request_id="r", client_token="t")
    ImageImport.objects.filter(pk=image_import.pk).update(
        submitted_at=now - timedelta(minutes=1), refreshed_at=now - timedelta(seconds=15)
    )
    assert list(ImageImport.objects.due_for_refresh(now)) == [image_import]
    ImageImport.objects.filter(pk=image_import.pk).update(submitted_at=now - timedelta(hours=1))
    assert list(ImageImport.objects.due_for_refresh(now)) == []
    ImageImport.objects.filter(pk=image_import.pk).update(refreshed_at=now - timedelta(minutes=2))
    assert list(ImageImport.objects.due_for_refresh(now)) == [image_import]


# -- cancel ---------------------------------------------------------------------


def test_a_queued_import_is_withdrawn_before_any_aws_call(user_client, image_import, emulator):
    response = user_client.post(reverse("imports:cancel", args=[image_import.pk]))
    assert response.status_code == 302
    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.error_message == "Cancelled by alice."
    tasks.submit_import(image_import.pk)  # a message still in the queue does nothing
    assert emulator.calls()["operations"] == {}


def portal_started(image_import):
    """The import as if the portal had started its VM import task, from a disk file."""
    import_image_payload = disk_submission()["import_image_payload"]
    ImageImport.objects.filter(pk=image_import.pk).update(
        source=Source.S3_OBJECT, import_image_payload=import_image_payload
    )
    image_import.refresh_from_db()
    return image_import


def test_an_importing_import_asks_ec2_to_cancel_its_task(team, user, user_client, slow_emulator):
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    portal_started(image_import)
    user_client.post(reverse("imports:cancel", args=[image_import.pk]))
    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.is_cancelled
    assert "EC2 import task import-ami-0c0ffee0123456789 is" in image_import.events.last().detail
    assert slow_emulator.calls()["operations"]["CancelImportTask"] == 1


@pytest.mark.parametrize("before_aws", [True, False], ids=["withdrawn", "after-aws"])
def test_every_cancel_is_audited_as_a_cancel(team, user, user_client, slow_emulator, before_aws):
    if before_aws:
        image_import = make_import(team, user, Status.QUEUED)
    else:
        image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
        portal_started(image_import)
    user_client.post(reverse("imports:cancel", args=[image_import.pk]))
    cancels = AuditEvent.objects.filter(image_import=image_import, action=Action.CANCELLED)
    assert cancels.count() == 1
    assert cancels.get().to_status == Status.FAILED
    assert cancels.get().actor == user


def test_a_cancel_ec2_refuses_is_recorded_and_the_import_goes_on(team, user, user_client, emulator):
    image_import = portal_started(importing(team, user, emulator))  # its task has completed
    response = user_client.post(reverse("imports:cancel", args=[image_import.pk]), follow=True)
    assert "EC2 did not cancel the VM import task" in response.content.decode()
    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    refusal = image_import.events.get(action=Action.CANCEL_REQUESTED)
    assert refusal.detail.startswith("Cancel requested, but EC2 refused")


def test_a_refused_cancel_shows_where_ec2_says_the_task_is_now(team, user, user_client, emulator):
    # EC2 refused because the task completed since the last refresh: the
    # page said so above a panel still showing the progress of before.
    image_import = portal_started(importing(team, user, emulator))
    (task,) = tasks.aws.client("ec2").describe_import_image_tasks(
        ImportTaskIds=[image_import.vm_import_task_id]
    )["ImportImageTasks"]
    assert task["Status"] == "completed" and image_import.progress is None

    response = user_client.post(reverse("imports:cancel", args=[image_import.pk]), follow=True)

    image_import.refresh_from_db()
    assert (image_import.status, image_import.progress) == (Status.IMPORTING, 100)
    page = response.content.decode()
    assert "EC2 did not cancel the VM import task" in page
    assert "Cancel this import" not in page  # a completed task cannot be cancelled


def test_a_task_the_portal_did_not_start_is_not_cancelled(
    team, user, user_client, client, api_headers, slow_emulator
):
    # The person named it: it may be anyone's in the account, imported by others too.
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    page = user_client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    assert "Cancel this import" not in page
    assert f"It imports from VM import task {CONVERTING_TASK}, which the portal did not" in page
    refused = user_client.post(reverse("imports:cancel", args=[image_import.pk]), follow=True)
    assert "which the portal did not start" in refused.content.decode()
    response = api_cancel(client, api_headers, image_import)
    assert response.status_code == 409
    assert "which the portal did not start" in response.json()["error"]
    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING
    assert slow_emulator.calls()["operations"].get("CancelImportTask", 0) == 0


def test_a_finished_import_cannot_be_cancelled(user_client, image_import):
    image_import.mark_failed(code="ClientException", message="x")
    events = image_import.events.count()
    response = user_client.post(reverse("imports:cancel", args=[image_import.pk]), follow=True)
    assert "cannot be cancelled now" in response.content.decode()
    image_import.refresh_from_db()
    assert (image_import.status, image_import.error_code) == (Status.FAILED, "ClientException")
    assert image_import.events.count() == events


def test_cancel_needs_the_submitter_role_and_the_team(client, outsider_client, image_import, user):
    assert (
        outsider_client.post(reverse("imports:cancel", args=[image_import.pk])).status_code == 404
    )
    user.memberships.update(role="viewer")
    client.force_login(user)
    assert client.post(reverse("imports:cancel", args=[image_import.pk])).status_code == 403
    assert client.get(reverse("imports:cancel", args=[image_import.pk])).status_code == 403
    assert client.put(reverse("imports:cancel", args=[image_import.pk])).status_code == 405


# -- cancel through the API: the page's rules ---------------------------------------


def api_cancel(client, api_headers, image_import):
    return client.post(f"/api/imports/{image_import.pk}/cancel", headers=api_headers)


def test_the_api_withdraws_a_queued_import_and_answers_it_again(
    client, api_headers, image_import, emulator
):
    first = api_cancel(client, api_headers, image_import)
    assert first.status_code == 200
    assert first.json()["status"] == "failed"
    assert first.json()["error"] == {"code": "Cancelled", "message": "Cancelled by alice."}
    again = api_cancel(client, api_headers, image_import)  # a retried call
    assert again.status_code == 200 and again.json() == first.json()
    assert (
        AuditEvent.objects.filter(image_import=image_import, action=Action.CANCELLED).count() == 1
    )
    assert emulator.calls()["operations"] == {}


def test_the_api_asks_ec2_to_cancel_an_importing_import(
    team, user, client, api_headers, slow_emulator
):
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    response = api_cancel(client, api_headers, portal_started(image_import))
    assert response.status_code == 200
    assert response.json()["error"]["code"] == "Cancelled"
    assert slow_emulator.calls()["operations"]["CancelImportTask"] == 1


def test_an_api_cancel_ec2_refuses_is_a_409_saying_why(team, user, client, api_headers, emulator):
    image_import = portal_started(importing(team, user, emulator))  # its task has completed
    response = api_cancel(client, api_headers, image_import)
    assert response.status_code == 409
    assert response.json()["error"].startswith("EC2 did not cancel the VM import task")
    assert response.json()["id"] == image_import.pk
    image_import.refresh_from_db()
    assert image_import.status == Status.IMPORTING


def test_an_ended_import_is_a_409_through_the_api(client, api_headers, image_import):
    image_import.mark_failed(code="ClientException", message="x")
    response = api_cancel(client, api_headers, image_import)
    assert response.status_code == 409
    assert response.json()["error"] == "This import is failed; it cannot be cancelled now."


def test_the_api_cancel_needs_the_submitter_role_and_the_team(
    client, api_headers, image_import, user, other_team, outsider
):
    foreign = make_import(other_team, outsider)
    assert api_cancel(client, api_headers, foreign).status_code == 404
    assert (
        client.get(f"/api/imports/{image_import.pk}/cancel", headers=api_headers).status_code == 405
    )
    user.memberships.update(role="viewer")
    assert api_cancel(client, api_headers, image_import).status_code == 403
    image_import.refresh_from_db()
    assert image_import.status == Status.QUEUED


# -- the task picker --------------------------------------------------------------


def test_the_picker_lists_seeded_tasks_completed_first(user_client, emulator):
    response = user_client.get(reverse("imports:vm_import_tasks"), headers={"HX-Request": "1"})
    content = response.content.decode()
    assert response.status_code == 200
    assert content.index(SEEDED_TASK) < content.index(CONVERTING_TASK)
    assert 'data-value="import-ami-0123456789abcdef0"' in content
    assert '<datalist id="vm-import-tasks">' in content


def test_a_picker_that_cannot_list_shows_a_message(user_client, emulator):
    emulator.fail_next(1, "ServiceUnavailableException", operation="DescribeImportImageTasks")
    response = user_client.get(reverse("imports:vm_import_tasks"))
    assert response.status_code == 200
    assert "could not be listed" in response.content.decode()


def test_the_api_lists_vm_import_tasks(client, api_headers, emulator):
    response = client.get("/api/vm-import-tasks", headers=api_headers)
    assert response.status_code == 200
    tasks_listed = response.json()
    assert tasks_listed[0] == {
        "importTaskId": tasks_listed[0]["importTaskId"],
        "status": "completed",
        "statusMessage": tasks_listed[0]["statusMessage"],
        "progress": tasks_listed[0]["progress"],
        "imageId": tasks_listed[0]["imageId"],
        "description": tasks_listed[0]["description"],
    }
    assert SEEDED_TASK in [task["importTaskId"] for task in tasks_listed]
    assert client.get("/api/vm-import-tasks").status_code == 401


def test_the_api_reports_progress_and_amis(client, api_headers, team, user, emulator):
    image_import = importing(team, user, emulator)
    tasks.refresh_imports()
    body = client.get(f"/api/imports/{image_import.pk}", headers=api_headers).json()
    assert body["status"] == "available"
    assert body["progress"] == 100
    assert body["imageState"] == "AVAILABLE"
    assert body["amis"] == [
        {"region": "us-east-1", "image": "ami-0a1b2c3d4e5f60718", "accountId": "123456789012"}
    ]


@pytest.mark.parametrize("count", [2, 8])
def test_a_cycle_with_nothing_new_reads_once_and_writes_once(
    team, user, slow_emulator, count, django_assert_num_queries
):
    imports = [importing(team, user, slow_emulator, clientToken=f"same-{n}") for n in range(count)]
    tasks.refresh_imports()  # the first answers are news: image PENDING, task progress
    ImageImport.objects.filter(pk__in=[i.pk for i in imports]).update(refreshed_at=None)
    # The same answers again: one SELECT of the due imports, one UPDATE stamping
    # them all, whatever their number, and no event.
    with django_assert_num_queries(2):
        tasks.refresh_imports()
    assert not ImageImport.objects.filter(refreshed_at__isnull=True).exists()


def test_a_cycle_past_a_statement_s_bound_values_stamps_its_imports_in_slices(
    team, user, slow_emulator, monkeypatch, django_assert_num_queries
):
    imports = [importing(team, user, slow_emulator, clientToken=f"many-{n}") for n in range(8)]
    tasks.refresh_imports()
    ImageImport.objects.filter(pk__in=[i.pk for i in imports]).update(refreshed_at=None)
    monkeypatch.setattr(tasks, "STAMP_BATCH", 3)  # as 10,000 is to PostgreSQL's 65,535
    with django_assert_num_queries(1 + 3):  # the due imports; 3 + 3 + 2 stamped
        tasks.refresh_imports()
    assert not ImageImport.objects.filter(refreshed_at__isnull=True).exists()


@pytest.mark.parametrize("count", [2, 8])
def test_a_cycle_that_moves_every_import_writes_them_in_one_update_and_one_insert(
    team, user, slow_emulator, count
):
    imports = [importing(team, user, slow_emulator, clientToken=f"moves-{n}") for n in range(count)]
    tasks.refresh_imports()  # the first answers: image PENDING
    ImageImport.objects.filter(pk__in=[i.pk for i in imports]).update(refreshed_at=None)
    slow_emulator.advance(60)  # every image one state on
    # One SELECT of the due imports; one UPDATE ... RETURNING writing every
    # row its own state and one INSERT of their events, in one transaction;
    # the cycle's stamp. However many imports moved.
    with Statements() as said:
        tasks.refresh_imports()
    assert (said.statements, said.transactions) == (4, 1), said
    for image_import in imports:
        image_import.refresh_from_db()
        assert image_import.image_state == "CREATING"
        last = image_import.events.last()
        assert (last.action, last.from_status, last.to_status) == (
            Action.STATUS,
            Status.IMPORTING,
            Status.IMPORTING,
        )
        assert last.detail == "Image creating"
        assert last.team_id == team.pk


def test_progress_is_written_only_to_rows_unchanged_since_they_were_read(team, user, image_import):
    image_import.claim()
    image_import.mark_importing(image_arn="arn", request_id="r", client_token="t")
    other = make_import(team, user, Status.IMPORTING, client_token="other")
    as_read = list(ImageImport.objects.filter(status=Status.IMPORTING).order_by("pk"))
    # Meanwhile a person cancels one, and another cycle records the other's progress.
    ImageImport.objects.get(pk=image_import.pk).mark_failed(code="Cancelled", message="by a person")
    observe(ImageImport.objects.get(pk=other.pk), image=ImageState("BUILDING", "", []))
    news = [(row, *row.progress_news(image=ImageState("CREATING", "", []))) for row in as_read]

    assert ImageImport.record_progress(news) == []

    image_import.refresh_from_db()
    other.refresh_from_db()
    assert image_import.status == Status.FAILED and image_import.image_state == ""
    assert other.image_state == "BUILDING"  # never moved back by the stale read
    assert not AuditEvent.objects.filter(detail="Image creating").exists()


def test_the_written_instances_hold_what_the_rows_hold(
    team, user, image_import, django_capture_on_commit_callbacks
):
    image_import.claim()
    image_import.mark_importing(image_arn="arn", request_id="r", client_token="t")
    task = Ec2ImportTask(SEEDED_TASK, "active", "converting", 50, "", "")
    news = image_import.progress_news(task=task, image=ImageState("PENDING", "", []))

    with django_capture_on_commit_callbacks(execute=True):
        assert ImageImport.record_progress([(image_import, *news)]) == [image_import]

    stored = ImageImport.objects.get(pk=image_import.pk)
    assert (stored.progress, stored.status_message, stored.image_state) == (
        50,
        "converting",
        "PENDING",
    )
    assert image_import.version == stored.version
    assert cache.get(version_cache_key(image_import.pk)) == stored.version
    assert image_import.events.last().detail == "Image pending; VM import task: converting (50%)"
    assert image_import.progress_news(task=task, image=ImageState("PENDING", "", [])) is None


def test_a_completed_task_is_not_asked_about_again(team, user, slow_emulator):
    image_import = importing(team, user, slow_emulator)  # its task is already completed
    tasks.refresh_imports()  # records 100 %, image PENDING
    image_import.refresh_from_db()
    assert image_import.task_completed
    before = slow_emulator.calls()["operations"]
    ImageImport.objects.filter(pk=image_import.pk).update(refreshed_at=None)
    slow_emulator.advance(60)

    tasks.refresh_imports()

    after = slow_emulator.calls()["operations"]
    assert after["DescribeImportImageTasks"] == before["DescribeImportImageTasks"]
    assert after["GetImage"] == before["GetImage"] + 1
    image_import.refresh_from_db()
    assert (image_import.progress, image_import.image_state) == (100, "CREATING")


# -- an image (or a VM import task) AWS no longer knows --------------------------------

GONE_ARN = "arn:aws:imagebuilder:us-east-1:123456789012:image/gone/1.0.0/9"
UNKNOWN_TASK = "import-ami-0ffffffffffffffff"  # well formed; EC2 knows no such task


def cycle(*image_imports):
    """One refresh cycle with these imports due, then each as stored."""
    ImageImport.objects.filter(pk__in=[i.pk for i in image_imports]).update(refreshed_at=None)
    tasks.refresh_imports()
    for image_import in image_imports:
        image_import.refresh_from_db()


def test_an_import_whose_image_is_gone_fails_after_cycles_spanning_some_time(
    team, user, slow_emulator, settings
):
    # The emulator restarted: it forgets its images, and GetImage answers
    # ResourceNotFoundException on every cycle, for ever.
    settings.IMPORT_MISSING_CYCLES = 3
    settings.IMPORT_MISSING_AFTER = 1
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    slow_emulator.reset()

    for _ in range(4):  # cycles enough, but within a second: not yet
        cycle(image_import)
        assert image_import.status == Status.IMPORTING
    time.sleep(1.1)
    cycle(image_import)

    assert (image_import.status, image_import.error_code) == (Status.FAILED, "ImageNotFound")
    assert image_import.error_message.startswith(
        "Image Builder no longer has this import's image: it answered that the image does "
        "not exist on 5 checks over 1 minute."
    )
    assert "gone from Image Builder" in failure_hint(image_import)
    assert image_import.events.last().to_status == Status.FAILED


def test_an_import_ended_as_image_not_found_keeps_what_ec2_said_in_that_cycle(
    team, user, slow_emulator, settings
):
    # The cycle that ends the import also asked EC2 about its VM import task:
    # that answer was dropped, and the import ended with whatever an earlier
    # cycle had recorded (here nothing at all).
    settings.IMPORT_MISSING_CYCLES = 1
    settings.IMPORT_MISSING_AFTER = 0
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    ImageImport.objects.filter(pk=image_import.pk).update(image_arn=GONE_ARN)
    slow_emulator.advance(60)
    (task,) = tasks.aws.client("ec2").describe_import_image_tasks(ImportTaskIds=[CONVERTING_TASK])[
        "ImportImageTasks"
    ]
    assert image_import.progress is None and task["Progress"]

    cycle(image_import)

    assert (image_import.status, image_import.error_code) == (Status.FAILED, "ImageNotFound")
    assert (image_import.progress, image_import.status_message) == (
        int(task["Progress"]),
        task["StatusMessage"],
    )


def test_an_image_found_again_starts_the_count_again(team, user, slow_emulator, settings):
    settings.IMPORT_MISSING_CYCLES = 3
    settings.IMPORT_MISSING_AFTER = 0
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    real_arn = image_import.image_arn

    def answers(arn, cycles):
        ImageImport.objects.filter(pk=image_import.pk).update(image_arn=arn)
        for _ in range(cycles):
            cycle(image_import)

    answers(GONE_ARN, 2)
    answers(real_arn, 1)  # found: whatever came before no longer counts
    answers(GONE_ARN, 2)
    assert image_import.status == Status.IMPORTING
    answers(GONE_ARN, 1)
    assert image_import.status == Status.FAILED


def test_one_unknown_task_no_longer_stops_the_progress_of_its_batch(team, user, slow_emulator):
    # EC2 refuses a whole DescribeImportImageTasks call for one ID it does not
    # know (the emulator as EC2: InvalidConversionTaskId), so one forgotten
    # task hid the progress of every import in its region.
    good = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    forgotten = importing(team, user, slow_emulator, clientToken="forgotten")
    ImageImport.objects.filter(pk=forgotten.pk).update(vm_import_task_id=UNKNOWN_TASK)
    ec2 = tasks.aws.client("ec2")
    with pytest.raises(ClientError, match="InvalidConversionTaskId"):
        ec2.describe_import_image_tasks(ImportTaskIds=[CONVERTING_TASK, UNKNOWN_TASK])

    cycle(good, forgotten)

    assert good.progress is not None and good.status_message
    assert forgotten.status == Status.IMPORTING  # once is not enough to end it


def test_an_unknown_task_and_a_silent_image_builder_end_nothing(team, user, emulator, settings):
    # Only Image Builder's "no such image" ends an import: EC2 forgetting the
    # task, or Image Builder not answering (throttled, down), tells nothing.
    settings.IMPORT_MISSING_CYCLES = 2
    settings.IMPORT_MISSING_AFTER = 0
    image_import = importing(team, user, emulator)
    ImageImport.objects.filter(pk=image_import.pk).update(vm_import_task_id=UNKNOWN_TASK)
    emulator.fail_next(3, "ServiceUnavailableException", operation="GetImage")

    for _ in range(3):
        cycle(image_import)

    assert image_import.status == Status.IMPORTING


def test_unknown_ids_are_dropped_and_the_rest_asked_again(emulator):
    known = new_vm_import_tasks(3)
    before = emulator.calls()["operations"].get("DescribeImportImageTasks", 0)

    found = tasks.aws.describe_import_image_tasks(
        [*known, UNKNOWN_TASK], target=tasks.aws.Target("us-east-1")
    )

    assert sorted(found) == sorted([*known, UNKNOWN_TASK])
    assert all(isinstance(found[task_id], Ec2ImportTask) for task_id in known)
    assert found[UNKNOWN_TASK].code == "InvalidConversionTaskId"
    # The refused call, then the same batch without the ID EC2 named.
    assert emulator.calls()["operations"]["DescribeImportImageTasks"] - before == 2


def test_unknown_ids_ec2_does_not_name_are_found_by_halves(aws_credentials):
    ec2 = tasks.aws.client("ec2")
    ids = [f"import-ami-0{digit}{digit * 15}" for digit in "1234"]

    def refused(batch):
        stub.add_client_error(
            "describe_import_image_tasks",
            service_error_code="InvalidConversionTaskId.Malformed",
            service_message="The given conversion task id is invalid.",
            expected_params={"ImportTaskIds": batch},
        )

    def answered(batch):
        stub.add_response(
            "describe_import_image_tasks",
            {"ImportImageTasks": [{"ImportTaskId": i, "Status": "active"} for i in batch]},
            expected_params={"ImportTaskIds": batch},
        )

    with Stubber(ec2) as stub:
        refused(ids)
        answered(ids[:2])
        refused(ids[2:])
        answered(ids[2:3])
        refused(ids[3:])
        found = tasks.aws.describe_import_image_tasks(ids, target=tasks.aws.Target("us-east-1"))
        stub.assert_no_pending_responses()

    assert [found[i].status for i in ids[:3]] == ["active"] * 3
    assert found[ids[3]].code == "InvalidConversionTaskId.Malformed"


# -- the task message an ended import keeps --------------------------------------------


def test_an_import_made_available_while_ec2_went_unheard_keeps_no_earlier_step_s_message(
    team, user, slow_emulator, client, api_headers
):
    image_import = importing(team, user, slow_emulator, vmImportTaskId=CONVERTING_TASK)
    for _ in range(12):  # until EC2 says the task is preparing its AMI
        cycle(image_import)
        if image_import.status_message == "preparing ami":
            break
        slow_emulator.advance(60)
    assert image_import.status_message == "preparing ami"
    # From then on EC2 is never heard; the image goes on to be made.
    for _ in range(12):
        slow_emulator.advance(60)
        slow_emulator.fail_next(1, "InternalError", operation="DescribeImportImageTasks")
        cycle(image_import)
        if image_import.status == Status.AVAILABLE:
            break

    assert image_import.status == Status.AVAILABLE
    assert (image_import.progress, image_import.status_message) == (100, "")
    answer = client.get(f"/api/imports/{image_import.pk}", headers=api_headers).json()
    assert (answer["progress"], answer["statusMessage"]) == (100, None)
