"""Who is told when an import ends, and every message the portal owes them.

A `Delivery` is one message to one channel (a person's e-mail or a team's
webhook), created in the same transaction as the transition that causes it.
Sending is a Celery task that claims the row with a conditional UPDATE and a
lease, as the imports' worker does: a crashed worker's delivery is taken
back by the sweeper once its lease lapses, and sent again with the same
idempotency key (at-least-once; receivers drop a key they already saw).
"""

import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from imports.models import Action, AuditEvent, ImageImport, Team


class Event(models.TextChoices):
    AVAILABLE = "import.available", "Import available"
    FAILED = "import.failed", "Import failed"
    CANCELLED = "import.cancelled", "Import cancelled"
    UPLOAD_FINISHED = "import.upload_finished", "Upload finished"
    TEST = "webhook.test", "Test message"
    WEBHOOK_PAUSED = "webhook.paused", "Webhook paused"


# The events a person or a webhook subscribes to.
IMPORT_EVENTS = (Event.AVAILABLE, Event.FAILED, Event.CANCELLED, Event.UPLOAD_FINISHED)
DEFAULT_WEBHOOK_EVENTS = [Event.AVAILABLE.value, Event.FAILED.value, Event.CANCELLED.value]


def new_secret():
    return "whsec_" + secrets.token_urlsafe(32)


class NotificationSettings(models.Model):
    """A person's choices; a person without a row gets the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    email_on_end = models.BooleanField("E-mail me when my imports end", default=True)

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self):
        return f"Notification settings of {self.user}"

    @classmethod
    def for_user(cls, user):
        return cls.objects.filter(user=user).first() or cls(user=user)

    def change(self, *, email_on_end, by):
        if self.email_on_end == email_on_end:  # a person without a row has the default
            return False
        # Not save(): a double-click's two requests may both have found no row.
        NotificationSettings.objects.update_or_create(
            user=self.user, defaults={"email_on_end": email_on_end}
        )
        self.email_on_end = email_on_end
        AuditEvent.record(
            Action.NOTIFICATIONS_CHANGED,
            actor=by,
            detail=f"E-mail when an import ends: {'on' if email_on_end else 'off'}",
        )
        return True


def change_email_address(user, address, *, by):
    """A person's own e-mail address, recorded; False if it is the same."""
    if user.email == address:
        return False
    old = user.email or "(none)"
    user.email = address
    user.save(update_fields=["email"])
    AuditEvent.record(
        Action.NOTIFICATIONS_CHANGED,
        actor=by,
        detail=f"E-mail address of {user.get_username()}: {old} -> {address or '(none)'}",
    )
    return True


# Where Slack and Microsoft Teams give out the URLs of their incoming
# webhooks: a URL on any other host is someone's own receiver, which gets the
# signed JSON (Webhook.kind_for_url). Teams' workflows ("When a Teams webhook
# request is received") live on Power Automate, under logic.azure.com or,
# for newer flows, environment.api.powerplatform.com; the retired Office 365
# connectors' webhook.office.com took the same Adaptive Card envelope.
SLACK_WEBHOOK_HOSTS = ("hooks.slack.com",)
TEAMS_WEBHOOK_DOMAINS = (
    "logic.azure.com",
    "environment.api.powerplatform.com",
    "webhook.office.com",
)


class Webhook(models.Model):
    class Kind(models.TextChoices):
        SLACK = "slack", "Slack (incoming webhook)"
        TEAMS = "teams", "Microsoft Teams (workflow webhook)"
        JSON = "json", "Generic JSON, signed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100, blank=True)
    # The URL is itself a secret for Slack and Teams: shown only as its host.
    url = models.CharField("Webhook URL", max_length=2048)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.JSON)
    events = models.JSONField(default=list)
    # Signs the generic JSON; shown once, at creation. Kept as is: signing needs it.
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Deliveries in a row that failed after all their attempts; reset by a success.
    failures = models.PositiveIntegerField(default=0)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} webhook to {self.display_url}"

    @property
    def display_url(self):
        """Scheme and host only: the path of a Slack or Teams URL is its secret."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/…"

    @classmethod
    def kind_for_url(cls, url):
        """The kind a URL's host says, for a webhook whose kind nobody chose."""
        try:
            host = (urlsplit(url.strip()).hostname or "").rstrip(".")
        except ValueError:  # not a URL: nobody's chat service
            return cls.Kind.JSON
        if host in SLACK_WEBHOOK_HOSTS:
            return cls.Kind.SLACK
        if any(host.endswith("." + domain) for domain in TEAMS_WEBHOOK_DOMAINS):
            return cls.Kind.TEAMS
        return cls.Kind.JSON

    @property
    def is_paused(self):
        return self.paused_at is not None

    def wants(self, event):
        return self.paused_at is None and event in self.events

    @classmethod
    def add(cls, *, team, url, kind, events, name="", by):
        webhook = cls.objects.create(
            team=team, url=url, kind=kind, events=list(events), name=name, created_by=by
        )
        AuditEvent.record(
            Action.WEBHOOK_ADDED,
            actor=by,
            team=team,
            detail=f"{webhook} added for {', '.join(webhook.events) or 'no events'}",
        )
        return webhook

    def change_events(self, events, *, by):
        """Send these events from now on, recorded; False if they are the same.

        Webhook.DoesNotExist if another team admin removed it meanwhile.
        """
        events = list(events)
        if events == self.events:
            return False
        old = ", ".join(self.events) or "none"
        if not Webhook.objects.filter(pk=self.pk).update(events=events):
            raise Webhook.DoesNotExist(f"{self} was removed meanwhile.")
        self.events = events
        AuditEvent.record(
            Action.WEBHOOK_CHANGED,
            actor=by,
            team=self.team,
            detail=f"{self}: events {old} -> {', '.join(events) or 'none'}",
        )
        return True

    def resume(self, *, by):
        if not Webhook.objects.filter(pk=self.pk, paused_at__isnull=False).update(
            paused_at=None, failures=0
        ):
            return False
        self.paused_at, self.failures = None, 0
        AuditEvent.record(
            Action.WEBHOOK_CHANGED, actor=by, team=self.team, detail=f"{self} resumed"
        )
        return True

    def remove(self, *, by):
        AuditEvent.record(
            Action.WEBHOOK_REMOVED, actor=by, team=self.team, detail=f"{self} removed"
        )
        self.delete()

    def keep(self):
        """Keep the webhook from removal until the transaction ends; Webhook.DoesNotExist if gone.

        A delivery made for a webhook another team admin removed meanwhile
        would break its foreign key, which PostgreSQL checks only at commit.
        """
        if not Webhook.objects.select_for_update().filter(pk=self.pk).values("pk").first():
            raise Webhook.DoesNotExist(f"{self} was removed meanwhile.")

    def send_test(self, *, by):
        """Queue a test message to the webhook, recorded; Webhook.DoesNotExist if it is gone."""
        with transaction.atomic():
            self.keep()
            delivery = Delivery.objects.create(
                channel=Delivery.Channel.WEBHOOK,
                event=Event.TEST,
                team=self.team,
                webhook=self,
                payload={"event": Event.TEST.value, "import": None, "sentBy": by.get_username()},
            )
            AuditEvent.record(Action.WEBHOOK_TESTED, actor=by, team=self.team, detail=f"{self}")
        return delivery

    def record_outcome(self, delivered):
        """Count a delivery that ended; pause after WEBHOOK_PAUSE_AFTER failures in a row.

        Returns True when this call paused the webhook (its admins are then told).
        """
        if delivered:
            Webhook.objects.filter(pk=self.pk).update(failures=0)
            return False
        Webhook.objects.filter(pk=self.pk).update(failures=F("failures") + 1)
        paused = Webhook.objects.filter(
            pk=self.pk, paused_at__isnull=True, failures__gte=settings.WEBHOOK_PAUSE_AFTER
        ).update(paused_at=timezone.now())
        self.refresh_from_db()
        if paused:
            AuditEvent.record(
                Action.WEBHOOK_PAUSED,
                team=self.team,
                detail=f"{self} paused after {self.failures} failed deliveries in a row",
            )
        return bool(paused)


class DeliveryQuerySet(models.QuerySet):
    def lost(self, now=None):
        """Rows whose send was lost: a lapsed lease, or due long ago and still pending."""
        now = now or timezone.now()
        stuck = now - timedelta(seconds=settings.NOTIFY_STUCK_AFTER)
        return self.filter(
            models.Q(status=Delivery.Status.SENDING, lease_until__lt=now)
            | models.Q(status=Delivery.Status.PENDING, next_attempt_at__lt=stuck)
        )


class Delivery(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    # Sent with every attempt (X-Portal-Delivery, Idempotency-Key, Message-ID):
    # a receiver that sees it twice drops the second.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    event = models.CharField(max_length=40, choices=Event.choices)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True)
    image_import = models.ForeignKey(
        ImageImport, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    webhook = models.ForeignKey(
        Webhook, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True
    )
    # What is sent, fixed when the event happens: {"event", "import"} plus, for
    # people, a plain-language hint. Every attempt sends the same content.
    payload = models.JSONField(default=dict)
    redelivery_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self):
        return f"{self.event} by {self.channel} ({self.status})"

    # -- the sender's transitions: each a conditional UPDATE -----------------

    def claim(self):
        """pending -> sending under a lease, counting the attempt; False if not ours."""
        now = timezone.now()
        claimed = Delivery.objects.filter(
            pk=self.pk,
            status=self.Status.PENDING,
            # A second of slack: the broker's countdown and our clock may differ.
            next_attempt_at__lte=now + timedelta(seconds=1),
        ).update(
            status=self.Status.SENDING,
            attempts=F("attempts") + 1,
            lease_until=now + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS),
            updated_at=now,
        )
        self.refresh_from_db()
        return bool(claimed)

    def _finish(self, **fields):
        """Write an attempt's result, only if this attempt still holds the row."""
        moved = Delivery.objects.filter(
            pk=self.pk, status=self.Status.SENDING, attempts=self.attempts
        ).update(updated_at=timezone.now(), **fields)
        self.refresh_from_db()
        return bool(moved)

    def mark_delivered(self, status_code=None):
        return self._finish(
            status=self.Status.DELIVERED,
            status_code=status_code,
            error="",
            delivered_at=timezone.now(),
            lease_until=None,
        )

    def mark_retrying(self, *, status_code, error, delay):
        return self._finish(
            status=self.Status.PENDING,
            status_code=status_code,
            error=error,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            lease_until=None,
        )

    def mark_failed(self, *, status_code, error):
        return self._finish(
            status=self.Status.FAILED, status_code=status_code, error=error, lease_until=None
        )

    def requeue(self):
        """Take back a lost send (see DeliveryQuerySet.lost); True if this caller did."""
        now = timezone.now()
        return bool(
            Delivery.objects.lost(now)
            .filter(pk=self.pk)
            .update(
                status=self.Status.PENDING, next_attempt_at=now, lease_until=None, updated_at=now
            )
        )

    @property
    def is_settled(self):
        """Delivered or failed for good: one still being tried is not redelivered beside itself."""
        return self.status in (self.Status.DELIVERED, self.Status.FAILED)

    def redeliver(self, *, by):
        """A new delivery of the same content, with a new idempotency key; audited.

        Webhook.DoesNotExist if its webhook was removed meanwhile.
        """
        with transaction.atomic():
            if self.webhook_id:
                self.webhook.keep()
            again = Delivery.objects.create(
                channel=self.channel,
                event=self.event,
                team=self.team,
                image_import=self.image_import,
                webhook=self.webhook,
                recipient=self.recipient,
                payload=self.payload,
                redelivery_of=self,
            )
            AuditEvent.record(
                Action.WEBHOOK_REDELIVERED,
                actor=by,
                team=self.team,
                image_import=self.image_import,
                detail=f"{self.event} delivery {self.idempotency_key} sent again to "
                f"{self.webhook} as {again.idempotency_key}",
            )
        return again
