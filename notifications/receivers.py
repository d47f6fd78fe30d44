"""Turn imports' signals into delivery rows, in the transaction of the transition."""

from functools import partial

from django.db import transaction

from imports import signals
from imports.api import serialize
from imports.hints import failure_hint
from imports.models import Action, Membership

from . import messages, tasks
from .models import Delivery, Event, NotificationSettings, Webhook

EVENT_OF_SIGNAL = {
    signals.AVAILABLE: Event.AVAILABLE,
    signals.FAILED: Event.FAILED,
    signals.CANCELLED: Event.CANCELLED,
    signals.UPLOAD_FINISHED: Event.UPLOAD_FINISHED,
}


def create_deliveries(sender, image_import, event, **kwargs):
    """One delivery for the person who started the import, one per subscribed webhook.

    The person gets none for a cancel of their own: they did it, and saw it.

    Runs inside the transition's transaction: the rows exist if and only if
    the transition committed. The sends are queued once it has.
    """
    event = EVENT_OF_SIGNAL[event]
    person = image_import.submitted_by
    payload = {
        "event": event.value,
        "import": serialize(image_import),
        # Whose it is, for a message read outside the portal (a shared channel).
        "team": {"id": image_import.team_id, "name": image_import.team.name},
        "startedBy": person.get_username(),
    }
    payload["url"] = messages.import_url(payload["import"])  # as recorded: each try the same
    hint = failure_hint(image_import)
    if hint:
        payload["hint"] = hint
    deliveries = []
    if wants_email(person, image_import.team_id) and not cancelled_it(person, image_import, event):
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


def wants_email(person, team_id):
    """Whether the person who started an import is still one to write to about it.

    Someone who left the team, or whose account was switched off, no longer
    hears of its imports.
    """
    return (
        bool(person.email)
        and person.is_active
        # A superuser acts for every team without a membership row.
        and (
            person.is_superuser or Membership.objects.filter(user=person, team_id=team_id).exists()
        )
        and NotificationSettings.for_user(person).email_on_end
    )


def cancelled_it(person, image_import, event):
    """Whether the person is the one who just cancelled the import: they saw it happen.

    The signal carries only the row; the cancel's audit event, written in
    this same transaction just before the signal, says who cancelled.
    """
    if event != Event.CANCELLED:
        return False
    canceller = (
        image_import.events.filter(action=Action.CANCELLED)
        .values_list("actor_id", flat=True)
        .first()
    )
    return canceller == person.pk


def upload_finished_deliveries(sender, image_import, **kwargs):
    """A disk file's upload completed (sent by disk-file imports' upload transition)."""
    return create_deliveries(sender, image_import, signals.UPLOAD_FINISHED)
