"""A disk import's tags reach the AMI and its snapshots, not only EC2's import task.

ImportImage's TagSpecifications tag the import task alone (EC2's API
reference), so once the image is available the worker tags the AMI and
snapshots the task made. Against the emulator over real HTTP; the last test
runs the whole path with a real worker and moto's S3.
"""

import time
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from config.celery import app
from fakeaws import s3
from imports import aws, services, tasks
from imports.models import Action, AuditEvent, ImageImport, Source, Status

from .factories import DISK_KEY, disk_submission, make_import, set_up_disk_imports
from .helpers import wait_for_status

TAGS = {"team": "platform", "cost-centre": "42"}


def ec2():
    return aws.client("ec2")


def completed_task():
    """An EC2 VM import task the emulator (no waiting) has already completed."""
    disk = {"Format": "VMDK", "UserBucket": {"S3Bucket": "vm-exports", "S3Key": "disk.vmdk"}}
    task_id = ec2().import_image(DiskContainers=[disk])["ImportTaskId"]
    [task] = ec2().describe_import_image_tasks(ImportTaskIds=[task_id])["ImportImageTasks"]
    return task_id, task["ImageId"], task["SnapshotDetails"][0]["SnapshotId"]


def tags_on(resource_id):
    answer = ec2().describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])
    return {tag["Key"]: tag["Value"] for tag in answer["Tags"]}


def disk_import(team, user, task_id, status=Status.AVAILABLE, tags=TAGS):
    return make_import(
        team,
        user,
        status=status,
        source=Source.S3_OBJECT,
        vm_import_task_id=task_id,
        payload={"vmImportTaskId": task_id, **({"tags": tags} if tags else {})},
        import_image_payload=disk_submission()["import_image_payload"],
    )


def audited(image_import, action):
    return list(AuditEvent.objects.filter(image_import=image_import, action=action))


def test_the_ami_and_its_snapshot_get_the_imports_tags(team, user, emulator):
    task_id, ami, snapshot = completed_task()
    image_import = disk_import(team, user, task_id)

    tasks.tag_ami_and_snapshots(image_import.pk)

    assert tags_on(ami) == TAGS
    assert tags_on(snapshot) == TAGS
    [event] = audited(image_import, Action.TAGGED)
    assert ami in event.detail and snapshot in event.detail


def test_a_throttled_create_tags_is_retried(team, user, emulator, settings):
    settings.IMPORT_RETRY_BASE_DELAY = 0
    task_id, ami, _ = completed_task()
    image_import = disk_import(team, user, task_id)
    emulator.fail_next(1, "RequestLimitExceeded", operation="CreateTags")

    tasks.tag_ami_and_snapshots.apply(args=(image_import.pk,))

    assert tags_on(ami) == TAGS
    assert emulator.calls()["operations"]["CreateTags"] == 2
    assert not audited(image_import, Action.TAGGING_FAILED)


def test_a_refused_tagging_is_audited_and_the_import_stays_available(team, user, emulator):
    image_import = disk_import(team, user, "import-ami-0ffffffffffffffff")  # EC2 knows no such task

    tasks.tag_ami_and_snapshots(image_import.pk)

    [event] = audited(image_import, Action.TAGGING_FAILED)
    assert event.detail.startswith("Could not tag the AMI and its snapshots: InvalidConversionTask")
    image_import.refresh_from_db()
    assert image_import.status == Status.AVAILABLE


@pytest.fixture
def eager_tasks():
    # The tagging task runs in this process when the transition commits.
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.mark.django_db(transaction=True)
def test_becoming_available_tags_a_disk_import_only(team, user, emulator, eager_tasks):
    task_id, ami, _ = completed_task()
    untagged = disk_import(team, user, task_id, status=Status.IMPORTING, tags=None)
    existing_task = make_import(
        team, user, status=Status.IMPORTING, payload={"vmImportTaskId": task_id, "tags": TAGS}
    )
    assert untagged.mark_available(amis=[]) and existing_task.mark_available(amis=[])
    assert "CreateTags" not in emulator.calls()["operations"]

    tagged = disk_import(team, user, task_id, status=Status.IMPORTING)
    assert tagged.mark_available(amis=[])

    assert tags_on(ami) == TAGS
    assert len(audited(tagged, Action.TAGGED)) == 1


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_disk_file_reaches_available_with_its_tags_on_the_ami(s3_set_up, worker, team, user):
    team = set_up_disk_imports(team, role="vmimport")
    team.import_bucket = s3.UPLOAD_BUCKET
    team.save()
    mbr_disk = bytearray(1024 * 1024)
    mbr_disk[446:462] = bytes([0x80, 0, 0, 0, 0x83, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0x07, 0, 0])
    mbr_disk[510:512] = b"\x55\xaa"
    aws.client("s3").put_object(Bucket=s3.UPLOAD_BUCKET, Key=DISK_KEY, Body=bytes(mbr_disk))
    submission = disk_submission()
    submission["payload"]["tags"] = TAGS
    container = submission["import_image_payload"]["DiskContainers"][0]
    container["Format"], container["UserBucket"]["S3Bucket"] = "RAW", s3.UPLOAD_BUCKET

    image_import, _ = services.submit_import(team=team, user=user, **submission)
    wait_for_status(image_import, Status.IMPORTING)
    tasks.refresh_imports.delay()  # what beat does, through the same worker
    image_import = wait_for_status(image_import, Status.AVAILABLE, Status.FAILED)
    assert image_import.status == Status.AVAILABLE, image_import.error_message

    task = aws.describe_import_image_tasks(
        [image_import.vm_import_task_id], target=image_import.target
    )[image_import.vm_import_task_id]
    for _ in range(100):  # the tagging task follows the transition on the worker
        if audited(image_import, Action.TAGGED):
            break
        time.sleep(0.1)
    assert tags_on(task.image_id) == TAGS
    assert all(tags_on(snapshot) == TAGS for snapshot in task.snapshot_ids)


# -- the emulator's side: what EC2 refuses ------------------------------------------


@pytest.mark.parametrize(
    "resource, key, code",
    [
        ("ami-0ffffffffffffffff", "team", "InvalidAMIID.NotFound"),
        ("snap-0ffffffffffffffff", "team", "InvalidSnapshot.NotFound"),
        ("vol-0ffffffffffffffff", "team", "InvalidID"),
        (None, "aws:team", "InvalidParameterValue"),
    ],
)
def test_the_emulator_refuses_what_ec2_refuses(emulator, resource, key, code):
    resource = resource or completed_task()[1]
    with pytest.raises(ClientError) as refused:
        ec2().create_tags(Resources=[resource], Tags=[{"Key": key, "Value": "x"}])
    assert refused.value.response["Error"]["Code"] == code


# -- a tagging whose message was lost is sent again, once -------------------------


def available_since(image_import, seconds):
    finished = timezone.now() - timedelta(seconds=seconds)
    ImageImport.objects.filter(pk=image_import.pk).update(finished_at=finished, updated_at=finished)


@pytest.fixture
def lost_after(settings):
    settings.IMPORT_TAGGING_LOST_AFTER = 3600
    return 3600


@pytest.mark.django_db(transaction=True)
def test_a_lost_tagging_is_sent_again_once_and_audited(
    team, user, emulator, eager_tasks, lost_after
):
    task_id, ami, snapshot = completed_task()
    image_import = disk_import(team, user, task_id)
    available_since(image_import, lost_after + 60)  # its message never reached a worker

    assert tasks.requeue_lost_tagging() == 1

    assert tags_on(ami) == TAGS and tags_on(snapshot) == TAGS
    [resent] = audited(image_import, Action.TAGGING_RESENT)
    assert "sent again" in resent.detail
    assert len(audited(image_import, Action.TAGGED)) == 1
    assert tasks.requeue_lost_tagging() == 0  # an outcome now, and a resend
    assert emulator.calls()["operations"]["CreateTags"] == 1


def test_a_resend_that_left_no_trace_either_is_not_sent_a_third_time(
    team, user, monkeypatch, lost_after
):
    image_import = disk_import(team, user, "import-ami-0123456789abcdef0")
    available_since(image_import, lost_after + 60)
    sent = []
    monkeypatch.setattr(tasks.tag_ami_and_snapshots, "delay", sent.append)  # lost again

    assert tasks.requeue_lost_tagging() == 1
    assert tasks.requeue_lost_tagging() == 0
    assert sent == [image_import.pk]
    assert len(audited(image_import, Action.TAGGING_RESENT)) == 1


def test_a_broker_still_down_records_nothing_and_the_next_sweep_sends_it(
    team, user, monkeypatch, lost_after
):
    image_import = disk_import(team, user, "import-ami-0123456789abcdef0")
    available_since(image_import, lost_after + 60)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.tag_ami_and_snapshots, "delay", broker_down)
    assert tasks.requeue_lost_tagging() == 0
    assert not audited(image_import, Action.TAGGING_RESENT)

    sent = []
    monkeypatch.setattr(tasks.tag_ami_and_snapshots, "delay", sent.append)
    assert tasks.requeue_lost_tagging() == 1
    assert sent == [image_import.pk]


def test_only_lost_taggings_are_sent_again(team, user, monkeypatch, lost_after):
    sent = []
    monkeypatch.setattr(tasks.tag_ami_and_snapshots, "delay", sent.append)
    task_id = "import-ami-0123456789abcdef0"
    lost = disk_import(team, user, task_id)
    recent = disk_import(team, user, task_id)  # its tagging may still be on its way
    too_old = disk_import(team, user, task_id)
    tagged = disk_import(team, user, task_id)
    refused = disk_import(team, user, task_id)
    untagged = disk_import(team, user, task_id, tags=None)
    importing = disk_import(team, user, task_id, status=Status.IMPORTING)
    existing_task = make_import(
        team, user, status=Status.AVAILABLE, payload={"vmImportTaskId": task_id, "tags": TAGS}
    )
    for image_import in (lost, tagged, refused, untagged, importing, existing_task):
        available_since(image_import, lost_after + 60)
    available_since(recent, lost_after - 60)
    available_since(too_old, 2 * 24 * 3600)
    tagged.note_tagged(["ami-0123456789abcdef0"])
    refused.note_tagging_failed(
        aws.AwsError("UnauthorizedOperation", "not allowed", retryable=False)
    )

    assert tasks.requeue_lost_tagging() == 1
    assert sent == [lost.pk]


def test_the_sweep_runs_on_beat(settings):
    [entry] = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "imports.tasks.requeue_lost_tagging"
    ]
    assert entry["schedule"] <= settings.IMPORT_TAGGING_LOST_AFTER
