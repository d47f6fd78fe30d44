"""What a request does beyond one model: submit, cancel, list the VM import tasks.

Views and the API call these; they in turn call the models' transitions and
queue the worker's tasks. (pretix's `base/services/` is the model: functions
that change rows, record what they did and trigger the side effects, so the
views stay thin.)
"""

from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction

from . import aws, tasks
from .cache import ForgivingCache
from .models import ImageImport, Status


def submit_import(*, team, user, payload):
    """Record an import and send it to the worker once the record is committed.

    Returns (image_import, created): the same clientToken and request again
    answers the first import and queues nothing. The same token with another
    request raises models.ClientTokenConflict.
    """
    image_import, created = ImageImport.submit(team=team, user=user, payload=payload)
    if created:
        # After the commit (at once, outside a transaction), or the worker
        # could look for a row it cannot see yet.
        transaction.on_commit(partial(tasks.send_to_worker, image_import.pk))
    return image_import, created


@dataclass(frozen=True)
class CancelOutcome:
    cancelled: bool
    message: str


def cancel_import(image_import, *, user):
    """Withdraw a queued import, or ask EC2 to cancel an importing one; say what happened."""
    if image_import.withdraw(user=user):
        return CancelOutcome(True, "Cancelled before anything was sent to AWS.")
    if image_import.status != Status.IMPORTING:
        status = image_import.get_status_display().lower()
        return CancelOutcome(False, f"This import is {status}; it cannot be cancelled now.")
    try:
        ec2_state = aws.cancel_import_task(
            image_import.vm_import_task_id, target=image_import.target
        )
    except aws.AwsError as error:
        image_import.note_cancel_refused(
            f"Cancel requested, but EC2 refused: {error.message}", user=user
        )
        return CancelOutcome(False, f"EC2 did not cancel the VM import task: {error.message}")
    if not image_import.mark_cancelled(user=user, ec2_state=ec2_state):
        # The refresher saw the import end while EC2 was being asked.
        status = image_import.get_status_display().lower()
        return CancelOutcome(False, f"This import is {status}; it cannot be cancelled now.")
    return CancelOutcome(True, "EC2 is cancelling the VM import task; the import is cancelled.")


def vm_import_tasks(team):
    """EC2's VM import tasks for the team's account and region, kept briefly.

    The New import page's picker and the API both ask; a short cache keeps the
    form quick without hiding a new task for long.
    """
    target = aws.Target.for_team(team)
    key = f"vm-import-tasks:{target.region}:{target.role_arn}"
    # The cache only saves AWS calls: when it is down, AWS is asked each time.
    cache = ForgivingCache()
    vm_import_tasks = cache.get(key)
    if vm_import_tasks is None:
        vm_import_tasks = aws.list_vm_import_tasks(target=target)
        cache.set(key, vm_import_tasks, settings.VM_IMPORT_TASKS_CACHE_SECONDS)
    return vm_import_tasks
