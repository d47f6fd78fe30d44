"""Notifications end to end: a real Celery worker, the AWS emulator, real receivers."""

import json
import time

import pytest

from imports import services
from imports import tasks as import_tasks
from imports.models import Status
from notifications.models import Delivery, Webhook

from .factories import SEEDED_AMI, valid_payload
from .helpers import wait_for_status
from .receivers import HttpReceiver, SmtpReceiver, verify

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for_deliveries(count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Delivery.objects.filter(status__in=["delivered", "failed"])
        if done.count() >= count:
            return list(done)
        time.sleep(0.1)
    raise AssertionError(f"deliveries still pending: {list(Delivery.objects.values())}")


def test_an_import_that_becomes_available_is_told_by_mail_and_by_a_retried_webhook(
    emulator, worker, team, user, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_TIMEOUT = 1
    settings.NOTIFY_RETRY_BASE_DELAY = 0
    user.email = "alice@example.com"
    user.save()
    with SmtpReceiver() as smtp, HttpReceiver([500, ("hang", 2), 200]) as receiver:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        webhook = Webhook.add(
            team=team, url=receiver.url(), kind="json", events=["import.available"], by=user
        )
        image_import, _ = services.submit_import(team=team, user=user, payload=valid_payload())
        wait_for_status(image_import, Status.IMPORTING)
        import_tasks.refresh_imports.delay()
        wait_for_status(image_import, Status.AVAILABLE)

        email_delivery, webhook_delivery = sorted(
            wait_for_deliveries(2), key=lambda delivery: delivery.channel
        )

    assert (webhook_delivery.status, webhook_delivery.attempts) == ("delivered", 3)
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        assert verify(webhook.secret, request["headers"], request["body"])
        assert request["headers"]["X-Portal-Delivery"] == str(webhook_delivery.idempotency_key)
    body = json.loads(receiver.requests[-1]["body"])
    assert body["event"] == "import.available"
    assert body["import"]["amis"][0]["image"] == SEEDED_AMI
    assert email_delivery.status == "delivered"
    assert len(smtp.messages) == 1
    assert SEEDED_AMI in smtp.messages[0].get_body(("plain",)).get_content()
