"""The person who cancels an import is not e-mailed about it; anyone else still is."""

import pytest

from imports.models import Status
from notifications.models import Delivery, Event, Webhook

from .factories import make_import


@pytest.fixture
def with_email(user):
    user.email = "alice@example.com"
    user.save()
    return user


def emailed(image_import):
    """Who the import's e-mail deliveries go to."""
    deliveries = Delivery.objects.filter(image_import=image_import, channel=Delivery.Channel.EMAIL)
    return [delivery.recipient for delivery in deliveries]


def test_cancelling_your_own_queued_import_sends_you_no_mail(team, with_email):
    image_import = make_import(team, with_email, Status.QUEUED)
    assert image_import.withdraw(user=with_email)
    assert emailed(image_import) == []


def test_cancelling_your_own_importing_import_sends_you_no_mail(team, with_email):
    image_import = make_import(team, with_email, Status.IMPORTING)
    assert image_import.mark_cancelled(user=with_email, ec2_state="cancelling")
    assert emailed(image_import) == []


def test_the_starter_is_mailed_when_a_teammate_cancels(team, with_email, teammate):
    image_import = make_import(team, with_email, Status.QUEUED)
    assert image_import.withdraw(user=teammate)
    assert emailed(image_import) == [with_email]
    delivery = Delivery.objects.get(image_import=image_import)
    assert delivery.event == Event.CANCELLED
    assert delivery.payload["import"]["error"]["message"] == "Cancelled by bob."


def test_the_starter_is_mailed_when_a_superuser_cancels(team, with_email, django_user_model):
    root = django_user_model.objects.create_superuser("root", email="root@example.com")
    image_import = make_import(team, with_email, Status.IMPORTING)
    assert image_import.mark_cancelled(user=root, ec2_state="cancelling")
    assert emailed(image_import) == [with_email]


def test_a_superuser_cancelling_their_own_import_gets_no_mail(team, django_user_model):
    root = django_user_model.objects.create_superuser("root", email="root@example.com")
    image_import = make_import(team, root, Status.QUEUED)
    assert image_import.withdraw(user=root)
    assert emailed(image_import) == []


def test_the_webhooks_still_hear_of_your_own_cancel(team, with_email):
    webhook = Webhook.add(
        team=team,
        url="https://hooks.example.com/a",
        kind=Webhook.Kind.JSON,
        events=[Event.CANCELLED],
        by=None,
    )
    image_import = make_import(team, with_email, Status.QUEUED)
    image_import.withdraw(user=with_email)
    deliveries = Delivery.objects.filter(image_import=image_import)
    assert [(d.channel, d.webhook_id) for d in deliveries] == [
        (Delivery.Channel.WEBHOOK, webhook.pk)
    ]


def test_a_failure_still_mails_the_starter(team, with_email):
    # Only a cancel is left out: an end the person did not cause still reaches them.
    image_import = make_import(team, with_email, Status.IMPORTING)
    image_import.mark_failed(code="X", message="broken")
    assert emailed(image_import) == [with_email]


def test_cancelling_on_the_page_sends_you_no_mail(client, team, with_email):
    image_import = make_import(team, with_email, Status.QUEUED)
    client.force_login(with_email)
    response = client.post(f"/imports/{image_import.pk}/cancel")
    assert response.status_code == 302
    image_import.refresh_from_db()
    assert image_import.is_cancelled
    assert emailed(image_import) == []
