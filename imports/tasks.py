"""Celery tasks: thin, take a primary key, re-read the row, safe to run twice.

The AWS call happens outside any transaction; each result is written by a
short transition of its own (see VmImport). Because every attempt sends the
stored payload with its stored clientToken, a retry, a redelivered message
or a sweep can never create a second image: AWS answers with the original.
"""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import aws
from .models import Status, VmImport

logger = logging.getLogger(__name__)


def enqueue_submit(vm_import):
    """Queue the AWS call once the row that records it is committed."""
    pk = vm_import.pk
    transaction.on_commit(lambda: submit_import.delay(pk))


def retry_delay(attempt):
    """Capped exponential backoff with full jitter, in seconds."""
    ceiling = min(settings.IMPORT_RETRY_MAX_DELAY, settings.IMPORT_RETRY_BASE_DELAY * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


@shared_task(acks_late=True, ignore_result=True)
def submit_import(pk):
    vm_import = VmImport.objects.filter(pk=pk).first()
    if vm_import is None or not vm_import.claim():
        return  # gone, or another worker already has it
    try:
        accepted = aws.import_vm_image(vm_import.request, region=vm_import.region)
    except aws.AwsError as error:
        handle_submit_error(vm_import, error)
        return
    vm_import.mark_importing(
        image_arn=accepted.image_arn,
        request_id=accepted.request_id,
        client_token=accepted.client_token,
    )


def handle_submit_error(vm_import, error):
    if not error.retryable:
        vm_import.mark_failed(code=error.code, message=error.message)
        return
    if vm_import.attempts >= settings.IMPORT_MAX_ATTEMPTS:
        vm_import.mark_failed(
            code=error.code,
            message=f"{error.message} (gave up after {vm_import.attempts} attempts; "
            "AWS may still be recovering, submit again with a new import later)",
        )
        return
    delay = retry_delay(vm_import.attempts)
    if vm_import.mark_retrying(code=error.code, message=error.message, delay=delay):
        submit_import.apply_async((vm_import.pk,), countdown=delay)


@shared_task(ignore_result=True)
def requeue_stuck_imports():
    """Send again what a lost message or a killed worker left behind.

    A row still `queued` long after its last change has lost its message; a
    row still `submitting` lost its worker mid-call. Both are safe to send
    again because the clientToken makes the call idempotent.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.IMPORT_STUCK_AFTER)
    stuck = VmImport.objects.filter(
        status__in=[Status.QUEUED, Status.SUBMITTING], updated_at__lt=cutoff
    )
    requeued = 0
    for vm_import in stuck.iterator():
        if vm_import.requeue(stuck_before=cutoff):
            submit_import.delay(vm_import.pk)
            requeued += 1
    if requeued:
        logger.warning("Re-enqueued %d stuck import(s)", requeued)
    return requeued
