"""Celery tasks that send deliveries: pk-only, claimed under a lease, safe to run twice.

The send happens outside any transaction. Timeouts, connection errors, 429
and 5xx are tried again with capped exponential backoff and jitter, up to
NOTIFY_MAX_ATTEMPTS; anything else fails the delivery at once. A beat task
takes back deliveries whose message or worker was lost.
"""

import logging
import random
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import transaction

from imports.models import Membership

from . import delivery as sender
from .models import Delivery, Event

logger = logging.getLogger(__name__)


def queue(pks):
    """Queue the sends of recorded deliveries; a broker that is down is the sweeper's to fix."""
    for pk in pks:
        try:
            send_delivery.delay(pk)
        except Exception:
            logger.exception("Could not queue delivery %s; the sweeper will send it later", pk)


def retry_delay(attempt):
    """Capped exponential backoff with jitter (half to all of the cap), in seconds."""
    ceiling = min(settings.NOTIFY_RETRY_MAX_DELAY, settings.NOTIFY_RETRY_BASE_DELAY * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


@shared_task(acks_late=True, ignore_result=True)
def send_delivery(pk):
    delivery = Delivery.objects.select_related("webhook", "recipient").filter(pk=pk).first()
    if delivery is None or not delivery.claim():
        return None  # gone, done, not yet due, or another worker has it
    outcome = sender.send(delivery)
    if outcome.delivered:
        if delivery.mark_delivered(outcome.status_code):
            count_outcome(delivery, delivered=True)
        return "delivered"
    if outcome.retryable and delivery.attempts < settings.NOTIFY_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts)
        if delivery.mark_retrying(
            status_code=outcome.status_code, error=outcome.error, delay=delay
        ):
            send_delivery.apply_async((pk,), countdown=delay)
        return "retrying"
    if delivery.mark_failed(status_code=outcome.status_code, error=outcome.error):
        logger.warning("Delivery %s failed after %d attempt(s)", pk, delivery.attempts)
        count_outcome(delivery, delivered=False)
    return "failed"


def count_outcome(delivery, *, delivered):
    """A webhook's run of failures; pausing it tells its team admins by e-mail."""
    if delivery.channel != Delivery.Channel.WEBHOOK or delivery.event == Event.TEST:
        return
    with transaction.atomic():
        if delivery.webhook.record_outcome(delivered):
            tell_admins_of_pause(delivery.webhook)


def tell_admins_of_pause(webhook):
    admins = [
        membership.user
        for membership in webhook.team.memberships.filter(
            role=Membership.Role.ADMIN
        ).select_related("user")
        if membership.user.email
    ]
    deliveries = [
        Delivery.objects.create(
            channel=Delivery.Channel.EMAIL,
            event=Event.WEBHOOK_PAUSED,
            team=webhook.team,
            webhook=webhook,
            recipient=admin,
            payload={"event": Event.WEBHOOK_PAUSED.value, "import": None},
        )
        for admin in admins
    ]
    transaction.on_commit(partial(queue, [delivery.pk for delivery in deliveries]))


@shared_task(ignore_result=True)
def requeue_lost_deliveries():
    """Send again what a lost message or a killed worker left behind (same idempotency key)."""
    requeued = [delivery.pk for delivery in Delivery.objects.lost() if delivery.requeue()]
    queue(requeued)
    if requeued:
        logger.warning("Re-queued %d lost deliver(ies)", len(requeued))
    return len(requeued)
