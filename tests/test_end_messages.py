"""An import that ends keeps EC2's last word on its VM import task, not a cycle's before.

The refresher reads the task and the image in one cycle; when the image's
answer ends the import, the task's news of that same answer ("completed",
or why the task failed) is recorded first, audited like any progress. When
EC2 went unheard in that cycle, what it said in an earlier one stays.
"""

from imports import tasks
from imports.aws import Ec2ImportTask, ImageState
from imports.hints import failure_hint
from imports.models import Status

from .factories import CONVERTING_TASK, SEEDED_AMI, make_import

TASK_ID = "import-ami-0fedcba9876543210"
AMIS = [{"region": "us-east-1", "image": SEEDED_AMI, "accountId": "123456789012"}]


def preparing_ami(team, user):
    """An import whose last refresh saw its task at 90 %, "preparing ami"."""
    return make_import(
        team,
        user,
        Status.IMPORTING,
        vm_import_task_id=TASK_ID,
        progress=90,
        status_message="preparing ami",
        image_state="PENDING",
    )


def test_an_import_that_becomes_available_records_the_task_s_completion_first(
    team, user, django_capture_on_commit_callbacks
):
    image_import = preparing_ami(team, user)
    task = Ec2ImportTask(TASK_ID, "completed", "", 100, SEEDED_AMI, "")

    with django_capture_on_commit_callbacks():
        assert tasks.observed(image_import, task, ImageState("AVAILABLE", "", AMIS)) == []

    image_import.refresh_from_db()
    assert image_import.status == Status.AVAILABLE
    assert image_import.status_message == "completed"
    details = list(image_import.events.order_by("pk").values_list("detail", flat=True))
    assert details[-2:] == [
        "VM import task: completed (100%)",
        f"Image available: {SEEDED_AMI} (us-east-1)",
    ]


def test_an_import_that_fails_records_why_the_task_failed_and_its_hint_reads_it(
    team, user, django_capture_on_commit_callbacks
):
    image_import = preparing_ami(team, user)
    task = Ec2ImportTask(TASK_ID, "deleted", "ClientError: Footers not identical", None, "", "")

    with django_capture_on_commit_callbacks():
        tasks.observed(image_import, task, ImageState("FAILED", "Import failed.", []))

    image_import.refresh_from_db()
    assert image_import.status == Status.FAILED
    assert image_import.status_message == "ClientError: Footers not identical"
    assert "header and footer differ" in failure_hint(image_import)


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


def test_an_end_without_the_task_s_answer_writes_no_progress_event(
    team, user, django_capture_on_commit_callbacks
):
    # DescribeImportImageTasks failed this cycle: the end alone is written.
    image_import = preparing_ami(team, user)

    with django_capture_on_commit_callbacks():
        tasks.observed(image_import, None, ImageState("AVAILABLE", "", AMIS))

    image_import.refresh_from_db()
    assert image_import.status == Status.AVAILABLE
    assert image_import.events.count() == 1


def test_an_ended_import_s_page_shows_no_task_message(team, user, user_client):
    for status, fields in [
        (Status.AVAILABLE, {"amis": AMIS, "image_state": "AVAILABLE"}),
        (Status.FAILED, {"error_code": "ImageFailed", "error_message": "Import failed."}),
    ]:
        image_import = make_import(
            team, user, status, progress=90, status_message="preparing ami", **fields
        )
        page = user_client.get(f"/imports/{image_import.pk}").content.decode()
        assert "preparing ami" not in page, status
