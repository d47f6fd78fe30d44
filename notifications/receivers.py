"""Turn imports' signals into delivery rows, in the transaction of the transition."""

from functools import partial

from django.db import transaction

from imports import signals
from imports.api import serialize
from imports.hints import failure_hint

from . import tasks
from .models import Delivery, Event, NotificationSettings, Webhook

EVENT_OF_SIGNAL = {
    signals.AVAILABLE: Event.AVAILABLE,
    signals.FAILED: Event.FAILED,
    signals.CANCELLED: Event.CANCELLED,
    signals.UPLOAD_FINISHED: Event.UPLOAD_FINISHED,
}


def create_deliveries(sender, image_import, event, **kwargs):
    """One delivery for the person who started the import, one per subscribed webhook.

    Runs inside the transition's transaction: the rows exist if and only if
    the transition committed. The sends are queued once it has.
    """
    event = EVENT_OF_SIGNAL[event]
    payload = {"event": event.value, "import": serialize(image_import)}
    hint = failure_hint(image_import)
    if hint:
        payload["hint"] = hint
    deliveries = []
    person = image_import.submitted_by
    if person.email and NotificationSettings.for_user(person).email_on_end:
        deliveries.append(
            Delivery(
                channel=Delivery.Channel.EMAIL,
                recipient=person,
                event=event,
                team_id=image_import.team_id,
                image_import=image_import,
                payload=payload,
            )
        )
    # By the team's ID: the team row itself need not be read.
    for webhook in Webhook.objects.filter(team_id=image_import.team_id):
        if webhook.wants(event):
            deliveries.append(
                Delivery(
                    channel=Delivery.Channel.WEBHOOK,
                    webhook=webhook,
                    event=event,
                    team_id=image_import.team_id,
                    image_import=image_import,
                    payload=payload,
                )
            )
    for delivery in deliveries:
        delivery.save()
    if deliveries:
        transaction.on_commit(partial(tasks.queue, [delivery.pk for delivery in deliveries]))
    return deliveries


def upload_finished_deliveries(sender, image_import, **kwargs):
    """A disk file's upload completed (sent by disk-file imports' upload transition)."""
    return create_deliveries(sender, image_import, signals.UPLOAD_FINISHED)
