"""Deliveries: made with the transition, sent by the task, retried, swept, paused."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from config.celery import app
from imports.models import Action, AuditEvent, Membership, Source, Status
from notifications import tasks
from notifications.delivery import email_message as email_message_for
from notifications.models import Delivery, Event, NotificationSettings, Webhook

from .factories import disk_submission, make_import, make_member
from .helpers import read_settings
from .receivers import HttpReceiver, SmtpReceiver


@pytest.fixture
def eager_celery():
    """Tasks run where they are queued: a whole send, retries included, in the test."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def notify_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receivers live on loopback
    settings.WEBHOOK_TIMEOUT = 1
    settings.NOTIFY_RETRY_BASE_DELAY = 0
    settings.PORTAL_URL = "https://portal.example.com"
    return settings


@pytest.fixture
def with_email(user):
    user.email = "alice@example.com"
    user.save()
    return user


def add_webhook(team, url, kind=Webhook.Kind.JSON, events=None, by=None):
    return Webhook.add(
        team=team,
        url=url,
        kind=kind,
        events=events or [Event.AVAILABLE, Event.FAILED, Event.CANCELLED],
        by=by,
    )


def test_an_ended_import_makes_its_deliveries_in_the_same_transaction(
    team, with_email, django_capture_on_commit_callbacks
):
    webhook = add_webhook(team, "https://hooks.example.com/a")
    add_webhook(team, "https://hooks.example.com/b", events=[Event.FAILED])
    image_import = make_import(team, with_email, Status.IMPORTING)

    with django_capture_on_commit_callbacks() as callbacks:
        image_import.mark_available(amis=[{"region": "us-east-1", "image": "ami-1"}])

    deliveries = Delivery.objects.filter(image_import=image_import)
    assert {(d.channel, d.webhook_id) for d in deliveries} == {
        (Delivery.Channel.EMAIL, None),
        (Delivery.Channel.WEBHOOK, webhook.pk),
    }
    # The sends are queued only once the move commits, in one go.
    queued = [c for c in callbacks if getattr(c, "func", None) is tasks.queue]
    assert len(queued) == 1
    delivery = deliveries.get(channel=Delivery.Channel.WEBHOOK)
    assert delivery.payload["event"] == "import.available"
    assert delivery.payload["import"]["status"] == "available"
    assert delivery.payload["import"]["amis"] == [{"region": "us-east-1", "image": "ami-1"}]


def test_a_person_who_turned_email_off_or_has_no_address_gets_none(team, user, teammate):
    user.email = "alice@example.com"
    user.save()
    NotificationSettings.for_user(user).change(email_on_end=False, by=user)

    make_import(team, user, Status.IMPORTING).mark_failed(code="X", message="broken")
    make_import(team, teammate, Status.IMPORTING).mark_failed(code="X", message="broken")

    assert not Delivery.objects.exists()
    assert AuditEvent.objects.filter(action=Action.NOTIFICATIONS_CHANGED).count() == 1


def test_a_person_who_left_the_team_or_was_switched_off_gets_none(team, with_email, teammate):
    teammate.email = "bob@example.com"
    teammate.is_active = False
    teammate.save()
    hers = make_import(team, with_email, Status.IMPORTING)
    with_email.memberships.get(team=team).remove(by=teammate)

    hers.mark_failed(code="X", message="broken")
    make_import(team, teammate, Status.IMPORTING).mark_failed(code="X", message="broken")

    assert not Delivery.objects.filter(channel=Delivery.Channel.EMAIL).exists()


def test_a_superuser_in_no_team_still_hears_of_their_imports(team, django_user_model):
    # A superuser acts for every team without a membership: still the one who started it.
    root = django_user_model.objects.create_superuser("root", email="root@example.com")
    make_import(team, root, Status.IMPORTING).mark_failed(code="X", message="broken")
    assert Delivery.objects.filter(channel=Delivery.Channel.EMAIL, recipient=root).exists()


def test_a_paused_webhook_or_an_unsubscribed_event_gets_nothing(team, user):
    paused = add_webhook(team, "https://hooks.example.com/a")
    Webhook.objects.filter(pk=paused.pk).update(paused_at=timezone.now())
    add_webhook(team, "https://hooks.example.com/b", events=[Event.AVAILABLE])

    make_import(team, user, Status.QUEUED).withdraw(user=user)

    assert not Delivery.objects.exists()


def test_the_person_gets_a_plain_and_html_mail_through_a_real_smtp_server(
    team, with_email, settings, notify_settings, eager_celery, django_capture_on_commit_callbacks
):
    image_import = make_import(team, with_email, Status.IMPORTING, name="Web server base")
    with SmtpReceiver() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        with django_capture_on_commit_callbacks(execute=True):
            image_import.mark_failed(
                code="ClientException", message="The import task is not found."
            )

    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert smtp.envelopes[0].rcpt_tos == ["alice@example.com"]
    assert message["Subject"] == "[VM Import Portal] Import failed: Web server base 1.0.0"
    delivery = Delivery.objects.get()
    assert message["Message-ID"] == f"<{delivery.idempotency_key}@vm-import-portal>"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = f"https://portal.example.com/imports/{image_import.pk}"
    assert link in text and f'href="{link}"' in html
    assert "The import task is not found." in text
    assert "Image Builder could not find that VM import task" in text  # the hint
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 1


def test_an_address_stored_before_its_domain_was_checked_fails_once_not_forever(
    team, user, notify_settings, eager_celery, django_capture_on_commit_callbacks
):
    # Django's validator took it; no mail can be addressed to it (inputs.mail_domain_problem).
    user.email = "alice@example.com\u200e"
    user.save()
    image_import = make_import(team, user, Status.IMPORTING)
    with django_capture_on_commit_callbacks(execute=True):
        image_import.mark_failed(code="ClientException", message="broken")

    delivery = Delivery.objects.get(channel=Delivery.Channel.EMAIL)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    assert delivery.error.startswith("The address cannot be written on a mail:")


def test_the_embedded_default_writes_mails_as_files_under_data_dir(monkeypatch):
    for name in ("EMAIL_URL", "EMAIL_HOST"):
        monkeypatch.delenv(name, raising=False)
    values = read_settings()
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert values["EMAIL_FILE_PATH"] == str(values["DATA_DIR"] / "mail")


def test_email_url_or_the_usual_variables_configure_smtp(monkeypatch):
    monkeypatch.setenv("EMAIL_URL", "smtp://robot:s3cret@mail.example.com:587/?tls=True")
    values = read_settings()
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (values["EMAIL_HOST"], values["EMAIL_PORT"]) == ("mail.example.com", 587)
    assert (values["EMAIL_HOST_USER"], values["EMAIL_HOST_PASSWORD"]) == ("robot", "s3cret")
    assert values["EMAIL_USE_TLS"] is True

    monkeypatch.delenv("EMAIL_URL")
    monkeypatch.setenv("EMAIL_HOST", "relay.internal")
    monkeypatch.setenv("EMAIL_PORT", "2525")
    values = read_settings()
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (values["EMAIL_HOST"], values["EMAIL_PORT"]) == ("relay.internal", 2525)


def test_an_smtp_server_that_is_down_is_tried_again(
    team, with_email, settings, notify_settings, monkeypatch
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens
    queued = []
    monkeypatch.setattr(tasks.send_delivery, "apply_async", lambda *a, **k: queued.append(k))
    make_import(team, with_email, Status.IMPORTING).mark_available(amis=[])
    delivery = Delivery.objects.get()

    assert tasks.send_delivery(delivery.pk) == "retrying"

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    assert "Mail server unreachable" in delivery.error
    assert len(queued) == 1


def test_a_webhook_answering_500_then_timing_out_then_200_is_delivered_once(
    team, user, notify_settings, monkeypatch
):
    retries = []
    monkeypatch.setattr(
        tasks.send_delivery, "apply_async", lambda args, countdown: retries.append(countdown)
    )
    with HttpReceiver([500, ("hang", 2), 200]) as receiver:
        webhook = add_webhook(team, receiver.url())
        make_import(team, user, Status.IMPORTING).mark_available(amis=[])
        delivery = Delivery.objects.get()

        outcomes = [tasks.send_delivery(delivery.pk) for _ in range(3)]
        again = tasks.send_delivery(delivery.pk)  # a redelivered message: nothing more is sent

    assert outcomes == ["retrying", "retrying", "delivered"]
    assert again is None
    assert len(retries) == 2
    assert len(receiver.requests) == 3
    keys = {request["headers"]["X-Portal-Delivery"] for request in receiver.requests}
    assert keys == {str(delivery.idempotency_key)}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("delivered", 3, 200)
    webhook.refresh_from_db()
    assert webhook.failures == 0


def test_a_client_error_fails_at_once_and_a_run_of_failures_pauses_the_webhook(
    team, user, notify_settings, monkeypatch
):
    notify_settings.WEBHOOK_PAUSE_AFTER = 2
    admin = make_member("ada", team, Membership.Role.ADMIN)
    admin.email = "ada@example.com"
    admin.save()
    with HttpReceiver([404, 410]) as receiver:
        webhook = add_webhook(team, receiver.url())
        for _ in range(2):
            make_import(team, user, Status.IMPORTING).mark_available(amis=[])
        sent = []
        monkeypatch.setattr(tasks, "queue", lambda pks: sent.extend(pks))
        for delivery in Delivery.objects.filter(channel="webhook").order_by("id"):
            assert tasks.send_delivery(delivery.pk) == "failed"

    webhook.refresh_from_db()
    assert webhook.is_paused and webhook.failures == 2
    assert AuditEvent.objects.filter(action=Action.WEBHOOK_PAUSED).count() == 1
    told = Delivery.objects.get(event=Event.WEBHOOK_PAUSED)
    assert told.recipient == admin and told.channel == Delivery.Channel.EMAIL
    tasks.send_delivery(told.pk)
    assert "paused" in mail.outbox[0].body and mail.outbox[0].to == ["ada@example.com"]
    # Paused: the next import ends without a webhook delivery.
    make_import(team, user, Status.IMPORTING).mark_available(amis=[])
    assert Delivery.objects.filter(channel="webhook").count() == 2


def test_a_redirect_is_not_followed(team, user, notify_settings):
    with HttpReceiver([("redirect", "/elsewhere")]) as receiver:
        add_webhook(team, receiver.url())
        make_import(team, user, Status.IMPORTING).mark_available(amis=[])
        delivery = Delivery.objects.get()

        assert tasks.send_delivery(delivery.pk) == "failed"

    assert [request["path"] for request in receiver.requests] == ["/hook"]
    delivery.refresh_from_db()
    assert delivery.status_code == 302 and "not followed" in delivery.error


def test_the_sweeper_takes_back_a_send_whose_worker_died(team, user, monkeypatch):
    add_webhook(team, "https://hooks.example.com/a")
    make_import(team, user, Status.IMPORTING).mark_available(amis=[])
    delivery = Delivery.objects.get()
    assert delivery.claim()  # a worker claimed it, then died
    queued = []
    monkeypatch.setattr(tasks.send_delivery, "delay", queued.append)

    assert tasks.requeue_lost_deliveries() == 0  # its lease still runs

    Delivery.objects.filter(pk=delivery.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.requeue_lost_deliveries() == 1
    assert queued == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    # The dead worker's late result no longer counts: its attempt lost the row.
    stale = Delivery.objects.get(pk=delivery.pk)
    stale.attempts = 1
    stale.status = Delivery.Status.SENDING
    assert not stale.mark_delivered(200)


def test_the_sweeper_sends_again_a_pending_delivery_whose_message_was_lost(
    team, user, settings, monkeypatch
):
    add_webhook(team, "https://hooks.example.com/a")
    make_import(team, user, Status.IMPORTING).mark_available(amis=[])
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=settings.NOTIFY_STUCK_AFTER + 1)
    )
    queued = []
    monkeypatch.setattr(tasks.send_delivery, "delay", queued.append)

    assert tasks.requeue_lost_deliveries() == 1
    assert tasks.requeue_lost_deliveries() == 0  # its clock was reset: the new message waits
    assert queued == [delivery.pk]


def test_a_broker_that_is_down_leaves_the_delivery_for_the_sweeper(
    team, user, settings, monkeypatch, django_capture_on_commit_callbacks
):
    add_webhook(team, "https://hooks.example.com/a")
    image_import = make_import(team, user, Status.IMPORTING)

    def broker_down(pk):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.send_delivery, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        assert image_import.mark_available(amis=[])  # the transition stands

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING
    queued = []
    monkeypatch.setattr(tasks.send_delivery, "delay", queued.append)
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=settings.NOTIFY_STUCK_AFTER + 1)
    )
    assert tasks.requeue_lost_deliveries() == 1
    assert queued == [delivery.pk]


def test_a_finished_upload_is_told_to_the_webhooks_that_want_it(
    team, with_email, django_capture_on_commit_callbacks
):
    wants = add_webhook(team, "https://hooks.example.com/a", events=[Event.UPLOAD_FINISHED])
    add_webhook(team, "https://hooks.example.com/b")  # the default events leave it out
    submission = disk_submission(source=Source.UPLOAD, upload_size=1024)
    image_import = make_import(
        team,
        with_email,
        Status.UPLOADING,
        source=Source.UPLOAD,
        import_image_payload=submission["import_image_payload"],
    )

    # The upload's own transition sends it, inside its transaction.
    with django_capture_on_commit_callbacks() as callbacks:
        assert image_import.mark_uploaded(user=with_email)

    deliveries = Delivery.objects.filter(event=Event.UPLOAD_FINISHED)
    assert {(d.channel, d.webhook_id) for d in deliveries} == {
        (Delivery.Channel.EMAIL, None),
        (Delivery.Channel.WEBHOOK, wants.pk),
    }
    assert len([c for c in callbacks if getattr(c, "func", None) is tasks.queue]) == 1
    message = email_message_for(deliveries.get(channel=Delivery.Channel.EMAIL))
    assert message.subject == "[VM Import Portal] Upload finished: Web server base 1.0.0"
