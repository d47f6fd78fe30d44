"""What a request does beyond one model: submit, cancel, list the VM import tasks.

Views and the API call these; they in turn call the models' transitions and
queue the worker's tasks. (pretix's `base/services/` is the model: functions
that change rows, record what they did and trigger the side effects, so the
views stay thin.)
"""

import logging
import uuid
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction

from . import aws, tasks
from .cache import ForgivingCache
from .models import TERMINAL_STATUSES, ImageImport, Source, Status

logger = logging.getLogger(__name__)


def submit_import(
    *,
    team,
    user,
    payload,
    source=Source.VM_IMPORT_TASK,
    import_image_payload=None,
    upload_size=None,
    upload_fingerprint="",
):
    """Record an import and send it to the worker once the record is committed.

    Returns (image_import, created): the same clientToken and request again
    answers the first import and queues nothing. The same token with another
    request raises models.ClientTokenConflict. For a disk file, the EC2
    ImportImage request gets its own ClientToken (fixed from now on, so no
    retry starts a second conversion) and the team's VM import role. A
    browser upload waits `uploading` until complete_upload.
    """
    if import_image_payload is not None:
        import_image_payload = {
            "ClientToken": str(uuid.uuid4()),
            "RoleName": team.vm_import_role,
            **import_image_payload,
        }
    image_import, created = ImageImport.submit(
        team=team,
        user=user,
        payload=payload,
        source=source,
        import_image_payload=import_image_payload,
        upload_size=upload_size,
        upload_fingerprint=upload_fingerprint,
    )
    if created and image_import.status == Status.QUEUED:
        queue(image_import)
    return image_import, created


def submission_to_record(team, form):
    """A valid new-import form's submission, or None: its file is not in the bucket.

    The page and the API both ask this before services.submit_import; the
    reason is then on the form, under s3Key, for each to answer in its way.
    """
    submission = form.submission()
    problem = disk_file_problem(team, submission)
    if problem:
        form.add_error("s3Key", problem)
        return None
    return submission


def disk_file_problem(team, submission):
    """Why a new import's file in the team's bucket cannot be imported, or "".

    Asked before a new import is recorded from the page or the API (S3
    HeadObject): a key with a typo is said at once, in the form, rather
    than by EC2 once the import has started. Not asked for a client token
    already recorded, so that a retry gets its import back even after the
    file was removed. When S3 cannot tell (the portal's role may not read
    the bucket, S3 is down), "": EC2 judges, as before.
    """
    if submission.get("source") != Source.S3_OBJECT:
        return ""
    token = submission["payload"]["clientToken"]
    if ImageImport.objects.filter(team=team, client_token=token).exists():
        return ""
    (disk,) = submission["import_image_payload"]["DiskContainers"]
    return bucket_file_problem(team, disk["UserBucket"]["S3Bucket"], disk["UserBucket"]["S3Key"])


def bucket_file_problem(team, bucket, key):
    """Why s3://bucket/key holds no disk to import, or "" (also when S3 cannot tell)."""
    try:
        size = aws.disk_file_size(bucket, key, target=aws.Target.for_team(team))
    except aws.AwsError as error:
        logger.info("Could not look for s3://%s/%s (%s); EC2 will", bucket, key, error.code)
        return ""
    if size is None:
        return f"There is no file s3://{bucket}/{key}: check the key."
    if size == 0:
        return f"The file s3://{bucket}/{key} is empty: it holds no disk."
    return ""


def queue(image_import):
    # After the commit (at once, outside a transaction), or the worker
    # could look for a row it cannot see yet.
    transaction.on_commit(partial(tasks.send_to_worker, image_import.pk))


@dataclass(frozen=True)
class CancelOutcome:
    cancelled: bool
    message: str


def cancel_import(image_import, *, user):
    """Withdraw an uploading or queued import, or ask EC2 to cancel an importing one."""
    was_uploading = image_import.status == Status.UPLOADING
    if image_import.withdraw(user=user):
        if was_uploading and image_import.upload_id:
            abort_upload(image_import)
        return CancelOutcome(True, withdrawn_message(image_import))
    if not image_import.can_cancel:
        return CancelOutcome(False, cannot_cancel_reason(image_import))
    try:
        ec2_state = aws.cancel_import_task(
            image_import.vm_import_task_id, target=image_import.target
        )
    except aws.AwsError as error:
        image_import.note_cancel_refused(
            f"Cancel requested, but EC2 refused: {error.message}", user=user
        )
        note_task_progress(image_import)
        return CancelOutcome(False, f"EC2 did not cancel the VM import task: {error.message}")
    if not image_import.mark_cancelled(user=user, ec2_state=ec2_state):
        # The refresher saw the import end while EC2 was being asked.
        return CancelOutcome(False, cannot_cancel_reason(image_import))
    return CancelOutcome(True, "EC2 is cancelling the VM import task; the import is cancelled.")


def note_task_progress(image_import):
    """Record where EC2 says the import's VM import task is now, if it can say.

    EC2 refuses a cancel mostly because the task moved on (it completed since
    the last refresh): the page that shows the refusal would otherwise show
    the progress of before beside it ("50% converting" under "it is
    completed"). Nothing is recorded when EC2 cannot be asked.
    """
    task_id = image_import.vm_import_task_id
    try:
        task = aws.describe_import_image_tasks([task_id], target=image_import.target).get(task_id)
    except aws.AwsError as error:
        logger.info("Could not ask EC2 about %s after a refused cancel: %s", task_id, error)
        return
    if isinstance(task, aws.Ec2ImportTask):
        image_import.record_task_progress(task)


def withdrawn_message(image_import):
    """What cancelling an uploading or queued import did, as the page then says it."""
    if not image_import.attempts:
        return "Cancelled before anything was sent to AWS."
    if tasks.lost_answers(image_import):
        return f"Cancelled. {MAY_HOLD_THE_IMAGE}"
    if started_a_task(image_import):
        return (
            "Cancelled. Image Builder never accepted this import, so it made no image. "
            + task_left_behind(image_import)
        )
    return "Cancelled. AWS never accepted this import, so no image was made."


def cancel_consequence(image_import):
    """What cancelling does to the import, as its page and the confirmation page say it."""
    if image_import.status == Status.UPLOADING:
        return "The upload is stopped and its parts deleted; nothing has been sent to AWS yet."
    if image_import.status == Status.QUEUED and not image_import.attempts:
        return "Nothing has been sent to AWS yet: the import is simply withdrawn."
    if image_import.status == Status.QUEUED:
        return withdrawal_consequence(image_import)
    return (
        f"The portal asks EC2 to cancel VM import task {image_import.vm_import_task_id}; "
        "the import then ends as cancelled."
    )


# An attempt AWS answered with an error, or never received, left nothing in
# AWS; one whose answer was lost may have made the image.
MAY_HOLD_THE_IMAGE = (
    "An earlier attempt may have reached AWS (its answer was lost), so AWS may be making "
    "the image all the same; the portal will not follow it."
)


def withdrawal_consequence(image_import):
    """cancel_consequence of an import queued again after a failed attempt."""
    if tasks.lost_answers(image_import):
        return f"The import is withdrawn and not sent to AWS again. {MAY_HOLD_THE_IMAGE}"
    if started_a_task(image_import):
        withdrawn = "The import is withdrawn and not sent to AWS again."
        return f"{withdrawn} {task_left_behind(image_import)}"
    return "AWS has not accepted it: the import is simply withdrawn, and nothing is left in AWS."


def started_a_task(image_import):
    """Whether EC2 started a VM import task for this disk file (which a withdrawal leaves)."""
    return image_import.is_disk_import and bool(image_import.vm_import_task_id)


def task_left_behind(image_import):
    # The portal stops following a queued import's task, so it cannot tell
    # whether the task is still converting or has already made its AMI.
    return (
        f"EC2's VM import task {image_import.vm_import_task_id}, started for it, is left "
        "as it is: if it is not wanted, cancel it in EC2 while it converts the disk, or "
        "deregister the AMI it made once it has completed."
    )


def imports_sharing_task(image_import):
    """The team's other imports still in flight from the same VM import task."""
    if not image_import.vm_import_task_id:
        return ImageImport.objects.none()  # a disk import EC2 has not named a task for yet
    return (
        ImageImport.objects.filter(
            team_id=image_import.team_id, vm_import_task_id=image_import.vm_import_task_id
        )
        .exclude(pk=image_import.pk)
        .exclude(status__in=TERMINAL_STATUSES)
        .order_by("pk")
    )


def cannot_cancel_reason(image_import):
    if image_import.status == Status.IMPORTING and image_import.task_completed:
        return (
            "The VM import task has completed, so EC2 can no longer cancel it. "
            "Image Builder is finishing the image."
        )
    if image_import.status == Status.IMPORTING:
        return (
            f"It imports from VM import task {image_import.vm_import_task_id}, which the portal "
            "did not start: cancelling the task would end it for whoever else imports from it. "
            "Whoever started it can cancel it in EC2."
        )
    status = image_import.status_label.lower()
    return f"This import is {status}; it cannot be cancelled now."


def vm_import_tasks(team):
    """EC2's VM import tasks for the team's account and region, kept briefly.

    The New import page's picker and the API both ask; a short cache keeps the
    form quick without hiding a new task for long.
    """
    target = aws.Target.for_team(team)
    # The external ID too: a role ARN is no secret, and another team naming
    # this one's must not be served the list this team's AssumeRole fetched.
    key = f"vm-import-tasks:{target.region}:{target.role_arn}:{target.external_id}"
    # The cache only saves AWS calls: when it is down, AWS is asked each time.
    cache = ForgivingCache()
    vm_import_tasks = cache.get(key)
    if vm_import_tasks is None:
        vm_import_tasks = aws.list_vm_import_tasks(target=target)
        cache.set(key, vm_import_tasks, settings.VM_IMPORT_TASKS_CACHE_SECONDS)
    return vm_import_tasks


def bucket_files(team):
    """The disk files in the team's import bucket under its prefix, newest first.

    Not cached: a file copied there a moment ago must show on the next look.
    """
    return aws.list_bucket_files(
        team.import_bucket, team.import_prefix, target=aws.Target.for_team(team)
    )


# -- a browser upload, straight to S3 ---------------------------------------------


class UploadError(Exception):
    """A request about an upload that does not fit the import; the message says why.

    `code` tells the page's script what to do: "already_complete", go to the
    import's page (nothing is left to send).
    """

    def __init__(self, message, code=""):
        super().__init__(message)
        self.code = code


def upload_location(image_import):
    bucket = image_import.user_bucket
    return bucket["S3Bucket"], bucket["S3Key"]


def start_upload(image_import, *, user=None):
    """The import's multipart upload: started now, or the one already started (resume)."""
    if image_import.status != Status.UPLOADING:
        raise UploadError(f"This import is {image_import.get_status_display().lower()}.")
    if image_import.upload_id:
        return image_import.upload_id
    bucket, key = upload_location(image_import)
    upload_id = aws.create_multipart_upload(bucket, key, target=image_import.target)
    if not image_import.note_upload_started(upload_id, user=user):
        # Another request started one first: keep theirs, drop ours.
        tasks.abort_upload_quietly(image_import, upload_id)
    return image_import.upload_id


def check_upload(image_import, upload_id, key):
    """The upload and key a request names must be the import's own."""
    if image_import.status != Status.UPLOADING:
        raise UploadError(f"This import is {image_import.get_status_display().lower()}.")
    if not image_import.upload_id or upload_id != image_import.upload_id:
        raise UploadError("This is not the upload of this import.")
    if key is not None and key != upload_location(image_import)[1]:
        raise UploadError("This is not the key of this import's upload.")


class PartNumberError(UploadError):
    """Part numbers this file does not have: the request is wrong, not the import's state."""


# Part numbers one batch request may ask for: a page asks for far fewer at a
# time (upload.js's SIGN_BATCH); the cap keeps one request's signing short.
SIGN_BATCH_MAX = 100


def sign_part(image_import, upload_id, key, part_number):
    return sign_parts(image_import, upload_id, key, [part_number])[part_number]


def sign_parts(image_import, upload_id, key, part_numbers):
    """{part number: presigned PUT URL}, each allowing that key, upload and part only."""
    check_upload(image_import, upload_id, key)
    parts = aws.part_count(image_import.upload_size)
    outside = [number for number in part_numbers if not 1 <= number <= parts]
    if outside:
        raise PartNumberError(
            f"Part numbers of this file run from 1 to {parts}; {outside[0]} is not one of them."
        )
    bucket, key = upload_location(image_import)
    return aws.presign_parts(bucket, key, upload_id, part_numbers, target=image_import.target)


def uploaded_parts(image_import, upload_id, key, *, user):
    check_upload(image_import, upload_id, key)
    bucket, key = upload_location(image_import)
    try:
        return aws.list_parts(bucket, key, upload_id, target=image_import.target)
    except aws.AwsError as error:
        if error.code == "NoSuchUpload" and queue_if_already_joined(image_import, user=user):
            raise UploadError(
                "The file had already reached S3 in full: nothing is left to send, and the "
                "import is queued.",
                code="already_complete",
            ) from error
        raise


def complete_upload(image_import, upload_id, key, parts, *, user):
    """Join the parts, then hand the import to the worker (uploading -> queued)."""
    check_upload(image_import, upload_id, key)
    bucket, key = upload_location(image_import)
    try:
        location = aws.complete_multipart_upload(
            bucket, key, upload_id, parts, target=image_import.target
        )
    except aws.AwsError as error:
        if error.code == "NoSuchUpload" and queue_if_already_joined(image_import, user=user):
            return f"s3://{bucket}/{key}"
        raise
    if image_import.mark_uploaded(user=user):
        queue(image_import)
    return location or f"s3://{bucket}/{key}"


def queue_if_already_joined(image_import, *, user):
    """Queue the import if S3 holds its whole file though the upload is gone; True if so.

    S3 joined the parts but the portal lost its answer (a crash or a timeout
    between the two): the multipart upload no longer exists, and the file
    does, at its full size. Without this the import would wait as uploading
    until it is given up as abandoned.
    """
    bucket, key = upload_location(image_import)
    try:
        size = aws.disk_file_size(bucket, key, target=image_import.target)
    except aws.AwsError:
        return False
    if size is None or size != image_import.upload_size:
        return False
    if image_import.mark_uploaded(user=user):
        queue(image_import)
    return True


def abort_upload(image_import):
    tasks.abort_upload_quietly(image_import, image_import.upload_id)
