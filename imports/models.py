"""Teams, their imports, and the append-only history of every import.

`ImageImport` is a small state machine. Each transition is a method that moves
the row with a conditional UPDATE (it acts only if the row is still in the
status it expects) and writes an `AuditEvent` with it, both or neither (one
statement on PostgreSQL, a transaction elsewhere), so two workers, or a
worker and a person, can never both win a transition. Nothing else writes
`status`.
"""

import hashlib
import logging
import secrets
import uuid
from contextlib import nullcontext
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.db import (
    IntegrityError,
    connection,
    models,
    transaction,
)
from django.db.models import F, Q
from django.dispatch import receiver
from django.utils import timezone

from . import metrics, signals
from .audit import current_client_ip
from .aws import Target
from .returning import (
    MoveStatement,
    RowReader,
    RowText,
    can_write_event_in_one_statement,
    insert_returning_pk,
    per_row,
    update_returning,
)
from .vocabulary import CANCELLED, Source, Status, image_state_words, status_label

logger = logging.getLogger(__name__)


def new_external_id():
    return secrets.token_hex(16)


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    # The team's AWS target. Without a role the worker's own credentials are
    # used; with one, the worker assumes it through STS with the external ID,
    # which the portal generates and the role's trust policy must require.
    aws_region = models.CharField("AWS region", max_length=30, blank=True)
    aws_account_id = models.CharField("AWS account ID", max_length=12, blank=True)
    aws_role_arn = models.CharField("IAM role ARN to assume", max_length=2048, blank=True)
    external_id = models.CharField(max_length=64, default=new_external_id, editable=False)
    # Where disk files are uploaded to and read from, and the role EC2's VM
    # import service assumes to read them (ImportImage's RoleName).
    import_bucket = models.CharField("import bucket", max_length=63, blank=True)
    import_prefix = models.CharField("key prefix", max_length=512, blank=True)
    vm_import_role = models.CharField("VM import role name", max_length=64, default="vmimport")

    TARGET_FIELDS = (
        "aws_region",
        "aws_account_id",
        "aws_role_arn",
        "import_bucket",
        "import_prefix",
        "vm_import_role",
    )

    def __str__(self):
        return self.name

    # -- changes a team admin makes: each one an audit event ------------------

    def add_member(self, user, role, *, by):
        """Put the person in the team, recorded; AlreadyMember if they are in it.

        The forms check first, but two admins may add the same person at
        once: the second then meets the one-membership constraint, in a
        savepoint so that the admin's request goes on.
        """
        try:
            with transaction.atomic():
                membership = Membership.objects.create(team=self, user=user, role=role)
        except IntegrityError:
            if not self.memberships.filter(user=user).exists():
                raise
            raise AlreadyMember(user) from None
        AuditEvent.record(
            Action.MEMBER_ADDED,
            actor=by,
            team=self,
            detail=f"{user.get_username()} added as {membership.get_role_display()}",
        )
        return membership

    def shares_import_area(self, bucket, prefix):
        """Whether another team's bucket and prefix hold or lie inside `bucket`/`prefix`.

        Uploads and the bucket picker act on everything under a team's
        prefix: two teams in overlapping areas could list, import and
        overwrite each other's disk files. Prefixes end in "/" (or are empty,
        the whole bucket), so "lies inside" is "starts with".
        """
        if not bucket:
            return False
        others = Team.objects.exclude(pk=self.pk).filter(import_bucket=bucket)
        return any(
            prefix.startswith(other) or other.startswith(prefix)
            for other in others.values_list("import_prefix", flat=True)
        )

    def change_target(self, new_values, *, by):
        """Change the team's AWS target, recorded; returns what changed."""
        old = Team.objects.get(pk=self.pk)
        changes = [
            f"{name}: {getattr(old, name) or '(none)'} -> {new_values[name] or '(none)'}"
            for name in self.TARGET_FIELDS
            if getattr(old, name) != new_values[name]
        ]
        if changes:
            updates = {name: new_values[name] for name in self.TARGET_FIELDS}
            Team.objects.filter(pk=self.pk).update(**updates)
            for name, value in updates.items():
                setattr(self, name, value)
            AuditEvent.record(Action.TARGET_CHANGED, actor=by, team=self, detail="; ".join(changes))
        return changes

    @property
    def target_summary(self):
        """Where this team's imports go, naming the defaults it falls back on."""
        if self.aws_region:
            region = self.aws_region
        elif settings.AWS_REGION:
            region = f"{settings.AWS_REGION} (the portal's default region)"
        else:
            region = "no region yet (set one here, or AWS_REGION for the worker)"
        if self.aws_account_id:
            account = f"account {self.aws_account_id}"
        else:
            account = "the AWS account of the worker's own credentials"
        role = f", assuming {self.aws_role_arn}" if self.aws_role_arn else ""
        return f"{account}, region {region}{role}"


class AlreadyMember(Exception):
    """The person was added to the team meanwhile, by another admin."""

    def added_meanwhile(self):
        """What the admin who came second is told."""
        return (
            f"{self.args[0].get_username()} was added to the team meanwhile, by another "
            "admin: their role there is left as it is."
        )


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        SUBMITTER = "submitter", "Submitter"
        ADMIN = "admin", "Team admin"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.SUBMITTER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership")]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.get_role_display()})"

    @staticmethod
    def role_can_submit(role):
        """Submitters and team admins start and cancel imports; viewers only look."""
        return role is not None and role != Membership.Role.VIEWER

    @property
    def can_submit(self):
        return self.role_can_submit(self.role)

    @property
    def can_manage(self):
        return self.role == self.Role.ADMIN

    def removed_meanwhile(self):
        """What a team admin is told whose change found this member gone (DoesNotExist)."""
        return f"{self.user.get_username()} was removed from the team meanwhile, by another admin"

    def change_role(self, role, *, by):
        """Give the member another role, recorded; False if it is the same one.

        Membership.DoesNotExist if another admin removed them meanwhile.
        """
        if self.role == role:
            return False
        old = self.get_role_display()
        if not Membership.objects.filter(pk=self.pk).update(role=role):
            raise Membership.DoesNotExist(f"{self.user.get_username()} left the team meanwhile.")
        self.role = role
        AuditEvent.record(
            Action.ROLE_CHANGED,
            actor=by,
            team=self.team,
            detail=f"{self.user.get_username()}: {old} -> {self.get_role_display()}",
        )
        return True

    def remove(self, *, by):
        """Take the person out of the team, and their API tokens for it with them.

        A token acts only while its user is a member, but revoked here it
        stays dead should the person be added again later.
        """
        with transaction.atomic():
            self.delete()
            revoked = ApiToken.objects.filter(
                user_id=self.user_id, team_id=self.team_id, revoked_at__isnull=True
            ).update(revoked_at=timezone.now())
            plural = "s" if revoked != 1 else ""
            tokens = f"; {revoked} API token{plural} revoked" if revoked else ""
            AuditEvent.record(
                Action.MEMBER_REMOVED,
                actor=by,
                team=self.team,
                detail=f"{self.user.get_username()} removed{tokens}",
            )


class Invitation(models.Model):
    """An account the portal made for an address a team admin invited (imports/invitations.py).

    Only such an account is ever sent a link to set its password, so no
    account made another way can be taken over by e-mail. The row outlives
    the person's memberships: invited again after being removed from every
    team, they get a link again, not an account they cannot sign in to.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitation"
    )
    # The address the link went to: the one address a team admin may bring
    # the account in by. One typed on a Profile page proves nothing.
    email = models.EmailField()
    # When the latest link went: the Team page shows it beside *Invited*.
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Invitation of {self.user}"


TERMINAL_STATUSES = frozenset({Status.AVAILABLE, Status.FAILED})


# Image Builder's image states in the order an import passes through them.
# An answer naming an earlier state than the one recorded is stale.
IMAGE_STATES_IN_ORDER = (
    "PENDING",
    "CREATING",
    "BUILDING",
    "TESTING",
    "DISTRIBUTING",
    "INTEGRATING",
    "AVAILABLE",
)
IMAGE_FAILED_STATES = frozenset({"FAILED", "CANCELLED", "DEPRECATED", "DISABLED", "DELETED"})


def is_at_or_after(state, recorded):
    """Whether image state `state` is `recorded` or further along (anything is, after none)."""
    if not recorded:
        return True
    if recorded not in IMAGE_STATES_IN_ORDER:
        return False
    return IMAGE_STATES_IN_ORDER.index(state) >= IMAGE_STATES_IN_ORDER.index(recorded)


# What the refresher records while an import goes on, and how many rows one
# UPDATE of record_progress writes (its statement grows with each).
PROGRESS_FIELDS = ("image_state", "progress", "status_message")
PROGRESS_BATCH = 500


# (age in seconds below which, poll every so many milliseconds)
POLL_STEPS = ((10, 500), (60, 2000), (float("inf"), 10000))
# Until AWS has accepted a young import, its image ARN is expected within a
# second of the click: the page asks this often then (an unchanged poll is a
# 204 from the cache).
POLL_AWAITING_ARN = 250


def version_cache_key(pk):
    return f"imports:version:{pk}"


def user_bucket_of(import_image_payload):
    """An ImportImage request's disk file, {"S3Bucket", "S3Key"}; {} for none."""
    containers = import_image_payload.get("DiskContainers") or [{}]
    return containers[0].get("UserBucket", {})


class ClientTokenConflict(Exception):
    """The team already used this clientToken for a different request."""

    def __init__(self, existing):
        super().__init__(existing)
        self.existing = existing


class ImageImportQuerySet(models.QuerySet):
    def due_for_refresh(self, now=None):
        """Importing imports not refreshed lately: often while young, then less often."""
        now = now or timezone.now()
        young = now - timedelta(seconds=settings.IMPORT_REFRESH_SLOW_AFTER)
        fast = now - timedelta(seconds=settings.IMPORT_REFRESH_INTERVAL)
        slow = now - timedelta(seconds=settings.IMPORT_REFRESH_SLOW_INTERVAL)
        return self.filter(status=Status.IMPORTING).filter(
            Q(refreshed_at__isnull=True)
            | Q(submitted_at__gte=young, refreshed_at__lt=fast)
            | Q(refreshed_at__lt=slow)
        )

    def tagging_lost(self, now=None):
        """Disk imports with tags, available a while, whose tagging left no trace.

        Neither tagged nor refused nor sent again after
        IMPORT_TAGGING_LOST_AFTER: its message was lost (the broker down as
        the import became available, a worker killed mid-call). Only those
        that became available within TAGGING_RESEND_WINDOW.
        """
        now = now or timezone.now()
        oldest = now - TAGGING_RESEND_WINDOW
        return (
            self.filter(
                status=Status.AVAILABLE,
                # updated_at is never before finished_at: the index (status, updated_at).
                updated_at__gte=oldest,
                finished_at__gte=oldest,
                finished_at__lt=now - timedelta(seconds=settings.IMPORT_TAGGING_LOST_AFTER),
                payload__has_key="tags",  # left out of the request when empty
            )
            .exclude(source=Source.VM_IMPORT_TASK)
            .exclude(
                events__action__in=[Action.TAGGED, Action.TAGGING_FAILED, Action.TAGGING_RESENT]
            )
        )


TAGGING_RESEND_WINDOW = timedelta(days=1)


class UnsizedCharField(models.CharField):
    """A CharField whose max_length Django checks and PostgreSQL is not told.

    Until a table's first ANALYZE, PostgreSQL's planner guesses a row's width
    from its columns' declared types: a varchar(1024) counts as 516 bytes, an
    unlimited varchar as 32. Declared with their lengths, the imports' ten
    long strings made a row "5 KB" to it, so right after a bulk load of
    100,000 imports it believed a team held 22 of them and sorted them all
    for the history's first page (110 ms) instead of reading the index
    team_history for the first 26 (0.1 ms). Once analysed, it knows the
    real widths and the declarations no longer count.

    The limit stays on the field, where Django checks it (forms, the admin,
    full_clean); a value from AWS longer than it is kept whole, as SQLite
    keeps it, rather than failing the write.
    """

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "varchar"
        return super().db_type(connection)


# The namespace of the client tokens the portal sends AWS: never change it,
# or a retry of an import recorded before would be a new request to AWS.
AWS_CLIENT_TOKENS = uuid.UUID("5b0f3c1e-8a47-4d2b-9c1f-6e2a7d4b8c30")


def aws_client_token(team_id, client_token):
    """The clientToken ImportVmImage is sent for a team's token: the team's own.

    AWS keeps client tokens per account, and teams may import into the same
    account (all those without a role of their own share the portal's): a
    token as typed would find another team's image, or be refused as that
    team's other request. Made from the team and the token, the same on
    every attempt, and 36 characters, as AWS allows.
    """
    return str(uuid.uuid5(AWS_CLIENT_TOKENS, f"{team_id}:{client_token}"))


class ImageImport(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="imports")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="image_imports"
    )
    # The ImportVmImage request exactly as it is sent on every attempt, its
    # clientToken the team's own (aws_client_token; as typed in imports
    # recorded before the portal made it so). `client_token` is the one the
    # person gave, which finds the import again. The columns below copy
    # three of its members once, at creation, for the history's filters. For
    # a disk file, `payload` lacks `vmImportTaskId` until EC2 has started the
    # VM import task (mark_vm_import_started).
    payload = models.JSONField()
    client_token = models.CharField(max_length=36)
    name = UnsizedCharField(max_length=1024)
    platform = models.CharField(max_length=20)
    vm_import_task_id = UnsizedCharField(max_length=1024, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.VM_IMPORT_TASK)
    # For a disk file: the EC2 ImportImage request, built once with its own
    # ClientToken, sent until EC2 names the VM import task.
    import_image_payload = models.JSONField(default=dict, blank=True)
    # For a browser upload: the S3 multipart upload and the file's size.
    upload_id = UnsizedCharField(max_length=1024, blank=True)
    upload_size = models.BigIntegerField(null=True, blank=True)
    # The browser's SHA-256 of the file's first and last MiB (static/js/upload.js):
    # a resume must choose the same file, not one of the same name and size.
    upload_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The disk file's S3 key, as in import_image_payload: a column of its own
    # for the history's search (a file is found by its name), with the same
    # trigram index on PostgreSQL as the other searched columns. Unsized, as
    # the other long strings (UnsizedCharField says why).
    disk_key = UnsizedCharField("disk file's S3 key", max_length=1024, blank=True, default="")
    # The team's AWS target when it was submitted; a later change to the
    # team's target does not move imports already made.
    region = models.CharField(max_length=30, blank=True)
    account_id = models.CharField(max_length=12, blank=True)
    role_arn = UnsizedCharField(max_length=2048, blank=True)
    external_id = UnsizedCharField(max_length=64, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    # While `submitting`: until when the worker that claimed it may still be
    # calling AWS. Past it, the sweeper takes the import back (`requeue`).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    image_arn = UnsizedCharField(max_length=2048, blank=True)
    request_id = UnsizedCharField(max_length=1024, blank=True)
    response_client_token = UnsizedCharField(max_length=64, blank=True)
    error_code = UnsizedCharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)

    # What the refresher last saw: the EC2 VM import task and the image.
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    status_message = UnsizedCharField(max_length=1024, blank=True)
    image_state = models.CharField(max_length=30, blank=True)
    amis = models.JSONField(default=list, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # When a browser upload completed (uploading -> queued): the import
    # waits for the worker from then, not from created_at, hours earlier.
    uploaded_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ImageImportQuerySet.as_manager()

    class Meta:
        verbose_name = "image import"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "client_token"], name="one_import_per_token")
        ]
        indexes = [
            # In the history's exact order: a plan made while the table was
            # small (a prepared statement's generic plan, kept after a bulk
            # load) still reads the first page from it without a sort.
            models.Index(fields=["team", "-created_at", "-id"], name="team_history"),
            models.Index(fields=["team", "status"], name="team_status"),
            models.Index(fields=["team", "platform"], name="team_platform"),
            models.Index(fields=["status", "updated_at"], name="status_age"),
        ]

    def __str__(self):
        return f"{self.name} ({self.client_token})"

    @property
    def is_terminal(self):
        return self.status in TERMINAL_STATUSES

    @property
    def is_failed(self):
        return self.status == Status.FAILED

    @property
    def is_cancelled(self):
        return self.is_failed and self.error_code == CANCELLED

    @property
    def status_label(self):
        """The status as every page says it: a cancelled import is Cancelled, not Failed."""
        return "Cancelled" if self.is_cancelled else self.get_status_display()

    @property
    def end_event(self):
        """How the import ended, as signals.import_ended names it; None while in flight."""
        if self.is_cancelled:
            return signals.CANCELLED
        if self.is_failed:
            return signals.FAILED
        if self.status == Status.AVAILABLE:
            return signals.AVAILABLE
        return None

    @property
    def tags(self):
        return self.payload.get("tags", {})

    @property
    def awaiting_arn(self):
        """Sent, or about to be, and not yet accepted by AWS."""
        return self.status in (Status.QUEUED, Status.SUBMITTING) and not self.image_arn

    @property
    def poll_milliseconds(self):
        """How often a page should ask for news: very often at first (the ARN
        comes within a second of the click), then less and less."""
        age = (timezone.now() - self.created_at).total_seconds()
        every = next(every for younger_than, every in POLL_STEPS if age < younger_than)
        if self.awaiting_arn and every == POLL_STEPS[0][1]:
            return POLL_AWAITING_ARN
        return every

    def seconds_until_poll_changes(self):
        """Seconds until poll_milliseconds steps to a slower interval, or None if it never will."""
        age = (timezone.now() - self.created_at).total_seconds()
        later = [younger_than - age for younger_than, _ in POLL_STEPS if younger_than > age]
        return later[0] if later and later[0] != float("inf") else None

    @property
    def elapsed(self):
        return (self.finished_at or timezone.now()) - self.created_at

    @property
    def version(self):
        """Changes whenever the import does: lets a poll ask "anything new?"."""
        return f"{self.updated_at.timestamp():.6f}"

    @property
    def task_completed(self):
        """EC2 reported the VM import task done (the refresher records 100%)."""
        return self.progress == 100

    @property
    def can_cancel(self):
        """Uploading or queued, or importing while EC2 can still cancel the task.

        Only a task the portal started (from a disk file): a task named by the
        person may be anyone's in the account, and cancelling it would end it
        for everyone importing from it.
        """
        if self.status == Status.IMPORTING:
            return self.is_disk_import and not self.task_completed
        return self.status in (Status.UPLOADING, Status.QUEUED)

    @property
    def is_disk_import(self):
        return self.source != Source.VM_IMPORT_TASK

    @property
    def user_bucket(self):
        """The disk file's {"S3Bucket", "S3Key"}, or {} for a VM import task."""
        return user_bucket_of(self.import_image_payload)

    @property
    def disk_container(self):
        """The disk file as the API names it, or None for an existing VM import task."""
        if not self.is_disk_import:
            return None
        container = self.import_image_payload["DiskContainers"][0]
        return {
            "format": container["Format"].lower(),
            "userBucket": {
                "s3Bucket": container["UserBucket"]["S3Bucket"],
                "s3Key": container["UserBucket"]["S3Key"],
            },
        }

    @property
    def target(self):
        return Target(region=self.region, role_arn=self.role_arn, external_id=self.external_id)

    # -- creation -----------------------------------------------------------

    @classmethod
    def submit(
        cls,
        *,
        team,
        user,
        payload,
        source=Source.VM_IMPORT_TASK,
        import_image_payload=None,
        upload_size=None,
        upload_fingerprint="",
    ):
        """Record a new import, or find the one this clientToken already made.

        Returns (image_import, created); sending it to AWS is the caller's
        business (services.submit_import). The same token with another request
        raises ClientTokenConflict. The unique constraint, not a prior lookup,
        decides between concurrent identical requests. A browser upload starts
        `uploading`; everything else `queued`.
        """
        token = payload["clientToken"]
        target = Target.for_team(team)
        status = Status.UPLOADING if source == Source.UPLOAD else Status.QUEUED
        try:
            image_import = cls(
                team=team,
                submitted_by=user,
                payload={**payload, "clientToken": aws_client_token(team.pk, token)},
                client_token=token,
                name=payload["name"],
                platform=payload["platform"],
                vm_import_task_id=payload.get("vmImportTaskId", ""),
                source=source,
                import_image_payload=import_image_payload or {},
                disk_key=user_bucket_of(import_image_payload or {}).get("S3Key", ""),
                upload_size=upload_size,
                upload_fingerprint=upload_fingerprint,
                status=status,
                region=target.region,
                account_id=team.aws_account_id,
                role_arn=target.role_arn,
                external_id=target.external_id,
            )
            image_import._insert_with_event(
                AuditEvent.new(Action.SUBMITTED, actor=user, to_status=status, detail="Submitted")
            )
        except IntegrityError:
            existing = cls.objects.get(team=team, client_token=token)
            existing.answer_repeated_token(
                user, payload, source, import_image_payload or {}, upload_size, upload_fingerprint
            )
            return existing, False
        metrics.TRANSITIONS.labels("", status).inc()
        return image_import, True

    def answer_repeated_token(self, user, *request):
        """This import's token came again: a replay if the request is the same, else a conflict.

        Either way it is audited; a conflict raises ClientTokenConflict.
        """
        if not self.is_same_request(*request):
            self._record(
                action=Action.CONFLICT,
                actor=user,
                detail="The same client token came with a different request; refused",
            )
            raise ClientTokenConflict(self) from None  # called while IntegrityError is handled
        self._record(
            action=Action.REPLAYED,
            actor=user,
            detail="The same request came again; answered with this import, nothing sent to AWS",
        )

    def _insert_with_event(self, event):
        """Write this new import and its first event, both or neither.

        On PostgreSQL one statement does both (WITH created AS (INSERT ...
        RETURNING ...) INSERT the event), with no BEGIN and COMMIT round trips
        around it; elsewhere, a transaction. Within a caller's
        transaction, a savepoint keeps it usable after a duplicate token's
        IntegrityError.
        """
        if not can_write_event_in_one_statement():
            with transaction.atomic():
                self.save(force_insert=True)
                event.image_import, event.team_id = self, self.team_id
                event.save()
            return
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            insert_returning_pk(self, event=event)

    # Members of the EC2 request the portal adds itself: a fresh ClientToken
    # for every submission, and the role from the team's settings.
    GENERATED_EC2_MEMBERS = ("ClientToken", "RoleName")

    def is_same_request(
        self, payload, source, import_image_payload, upload_size, upload_fingerprint=""
    ):
        """Whether a submission repeats this one: both requests, bar what the portal adds."""

        def person_sent(ec2_request):
            return {k: v for k, v in ec2_request.items() if k not in self.GENERATED_EC2_MEMBERS}

        def without_token(request):
            # Found by the person's token; AWS was sent the team's own (aws_client_token).
            return {k: v for k, v in request.items() if k != "clientToken"}

        recorded = without_token(self.payload)
        if self.is_disk_import:
            recorded.pop("vmImportTaskId", None)  # EC2's answer, not the person's request
        return (
            recorded == without_token(payload)
            and self.source == source
            and person_sent(self.import_image_payload) == person_sent(import_image_payload)
            and self.upload_size == upload_size
            and self.upload_fingerprint == upload_fingerprint
        )

    # -- transitions ----------------------------------------------------------

    def note_upload_started(self, upload_id, *, user=None):
        """Remember the S3 multipart upload of an uploading import; False if one is kept."""
        with transaction.atomic():
            returned = update_returning(
                ImageImport.objects.filter(pk=self.pk, status=Status.UPLOADING, upload_id=""),
                {"upload_id": upload_id, "updated_at": timezone.now()},
            )
            started = returned[0] if returned else None
            if started is not None:
                self._take_values_of(started)
                self._record(
                    action=Action.STATUS,
                    actor=user,
                    from_status=Status.UPLOADING,
                    to_status=Status.UPLOADING,
                    detail=f"Upload started to s3://{self.user_bucket.get('S3Bucket')}/"
                    f"{self.user_bucket.get('S3Key')}",
                )
        if started is None:
            self.refresh_from_db()  # someone else's upload, or no longer uploading
        return started is not None

    def mark_uploaded(self, *, user=None):
        """uploading -> queued: the whole file is in S3; the worker may start."""
        return self._move(
            [Status.UPLOADING],
            Status.QUEUED,
            user=user,
            detail=(
                f"Upload complete: s3://{self.user_bucket['S3Bucket']}/{self.user_bucket['S3Key']}"
            ),
            uploaded_at=timezone.now(),
        )

    def mark_upload_abandoned(self, *, stale_before):
        """uploading -> failed, for an upload left unfinished since before `stale_before`."""
        return self._move(
            [Status.UPLOADING],
            Status.FAILED,
            detail="UploadAbandoned: the upload was not completed; given up",
            only_if=Q(updated_at__lt=stale_before),
            error_code="UploadAbandoned",
            error_message="The disk file's upload was not completed in time, so the portal "
            "gave up on it. Start a new import to upload the file again.",
            finished_at=timezone.now(),
        )

    def mark_vm_import_started(self, task_id):
        """EC2 started the VM import task: keep its ID, once, in the row and the request.

        submitting -> submitting, conditional on no task ID yet, so a retry
        that finds the ID already stored sends the same ImportVmImage request.
        """
        return self._move(
            [Status.SUBMITTING],
            Status.SUBMITTING,
            detail=f"EC2 started the VM import task {task_id}",
            only_if=Q(vm_import_task_id=""),
            vm_import_task_id=task_id,
            payload={**self.payload, "vmImportTaskId": task_id},
        )

    def claim(self):
        """queued -> submitting, counting the attempt. False if someone else has it.

        The claim is a lease of IMPORT_LEASE_SECONDS, just past the longest an
        attempt bounded by the AWS timeouts can take: should the worker die,
        the sweeper takes the import back once the lease is over, and never
        while such a call may still run (answer_of covers one stuck past them).
        """
        lease = timedelta(seconds=settings.IMPORT_LEASE_SECONDS)
        return self._move(
            [Status.QUEUED],
            Status.SUBMITTING,
            detail=RowText("Attempt {attempts} sending to AWS"),
            attempts=F("attempts") + 1,
            lease_expires_at=timezone.now() + lease,
        )

    @classmethod
    def claim_queued(cls, pk):
        """claim() for the import `pk`, read from the claim's UPDATE itself; None if not queued.

        The submit task starts here: one UPDATE ... RETURNING (and its event)
        both claims the row and reads it, where a SELECT and then the claim
        were two statements for the one answer. None when the import is
        gone, or not queued any more (another worker has it, or it ended).
        """
        image_import = cls(pk=pk, status=Status.QUEUED)
        image_import._state.adding = False  # a row of the table, read by the UPDATE
        try:
            return image_import if image_import.claim() else None
        except cls.DoesNotExist:  # gone: the failed claim's refresh found no row
            return None

    def mark_importing(self, *, image_arn, request_id, client_token):
        return self._move(
            [Status.SUBMITTING],
            Status.IMPORTING,
            detail=f"AWS accepted the request: {image_arn}",
            image_arn=image_arn,
            request_id=request_id,
            response_client_token=client_token,
            submitted_at=timezone.now(),
            error_code="",
            error_message="",
            lease_expires_at=None,
        )

    def ending_for(self, image):
        """The transition that an image's end calls for, to call; None while it goes on."""
        if image is not None and image.status == "AVAILABLE":
            return partial(self.mark_available, amis=image.amis)
        if image is not None and image.status in IMAGE_FAILED_STATES:
            return partial(
                self.mark_failed,
                code=f"Image{image.status.title()}",
                message=image.reason or f"Image Builder reports the image as {image.status}.",
            )
        return None

    def progress_news(self, *, task=None, image=None):
        """(updates, changed) that an answer brings an importing import; None if nothing new.

        `updates` is what the row should hold, `changed` the part of it that
        differs from what the row holds as read. Forward only: an image state
        earlier than the one recorded, or a lower progress, is a stale answer
        and brings nothing. record_progress writes it only if the row is
        unchanged since it was read, so the comparison here stays true.
        """
        updates = {}
        if image is not None and image.status in IMAGE_STATES_IN_ORDER:
            if not is_at_or_after(image.status, self.image_state):
                return None
            updates["image_state"] = image.status
        if task is not None:
            progress = 100 if task.status == "completed" else task.progress
            if progress is not None:
                if self.progress is not None and progress < self.progress:
                    return None
                updates["progress"] = progress
            updates["status_message"] = task.status_message or task.status
        # An unchanged answer writes nothing: the refresher stamps
        # `refreshed_at` on all the imports of a cycle in one UPDATE.
        changed = {name: value for name, value in updates.items() if getattr(self, name) != value}
        return (updates, changed) if changed else None

    def record_task_progress(self, task):
        """Write at once what EC2 says of the VM import task now, if it is news.

        For an answer heard apart from the refresher's batch: in the cycle
        that ends the import, or after EC2 refused to cancel its task.
        """
        news = self.progress_news(task=task)
        if news:
            ImageImport.record_progress([(self, *news)])

    @classmethod
    def record_progress(cls, news):
        """Write the progress of many importing imports at once, each change audited.

        `news` holds (image_import, updates, changed) from progress_news.
        Instead of a transaction per import (an UPDATE and an event each),
        one UPDATE ... RETURNING writes a batch, each row its own values, and
        one INSERT writes their events, in one transaction. A row is written
        only if it is still importing and unchanged since it was read (its
        `updated_at`): a cancel or another cycle in between wins, and the row
        waits for the next cycle. Returns the imports written.
        """
        written = []
        for start in range(0, len(news), PROGRESS_BATCH):
            written += cls._record_progress_batch(news[start : start + PROGRESS_BATCH])
        return written

    @classmethod
    def _record_progress_batch(cls, news):
        now = timezone.now()
        by_pk = {
            image_import.pk: (image_import, updates, changed)
            for image_import, updates, changed in news
        }
        fields = {"updated_at": now}
        for name in PROGRESS_FIELDS:
            values = {pk: updates[name] for pk, (_, updates, _) in by_pk.items() if name in updates}
            if values:
                fields[name] = per_row(cls, name, values)
        as_read = {pk: image_import.updated_at for pk, (image_import, _, _) in by_pk.items()}
        rows = cls.objects.filter(
            pk__in=list(by_pk),
            status=Status.IMPORTING,
            updated_at=per_row(cls, "updated_at", as_read),
        )
        with transaction.atomic():
            returned = update_returning(rows, fields, columns=["id"])
            written = [by_pk[row.pk] for row in returned]
            for image_import, updates, _ in written:
                for name, value in {**updates, "updated_at": now}.items():
                    setattr(image_import, name, value)
            AuditEvent.objects.bulk_create(
                AuditEvent.new(
                    Action.STATUS,
                    image_import=image_import,
                    from_status=Status.IMPORTING,
                    to_status=Status.IMPORTING,
                    detail=describe_progress(changed),
                )
                for image_import, _, changed in written
            )
            publish_versions([image_import for image_import, _, _ in written])
        if written:
            metrics.TRANSITIONS.labels(Status.IMPORTING, Status.IMPORTING).inc(len(written))
        return [image_import for image_import, _, _ in written]

    def mark_available(self, *, amis):
        return self._move(
            [Status.IMPORTING],
            Status.AVAILABLE,
            detail=(
                "Image available: "
                + (
                    ", ".join(f"{ami['image']} ({ami['region']})" for ami in amis)
                    or "no AMI listed"
                )
            ),
            image_state="AVAILABLE",
            progress=100,
            # The image is made, so the VM import task completed: a message
            # heard before that (EC2 unheard in the cycle that saw the image
            # made) is an earlier step's, such as "preparing ami".
            status_message=self.status_message if self.task_completed else "",
            amis=amis,
            finished_at=timezone.now(),
        )

    def withdraw(self, *, user):
        """Cancel an uploading or queued import before AWS accepted it."""
        # Queued again after a failed attempt, it was sent: AWS never said it accepted it.
        before = "AWS confirmed it" if self.attempts else "it was sent to AWS"
        return self._move(
            [Status.UPLOADING, Status.QUEUED],
            Status.FAILED,
            user=user,
            detail=f"Cancelled by {user.get_username()} before {before}",
            action=Action.CANCELLED,
            error_code=CANCELLED,
            error_message=f"Cancelled by {user.get_username()}.",
            finished_at=timezone.now(),
        )

    def mark_cancelled(self, *, user, ec2_state):
        """An importing import whose VM import task EC2 agreed to cancel."""
        return self._move(
            [Status.IMPORTING],
            Status.FAILED,
            user=user,
            detail=(
                f"Cancelled by {user.get_username()}; EC2 import task "
                f"{self.vm_import_task_id} is {ec2_state or 'cancelling'}"
            ),
            # Audited as a cancel, like a withdrawal: the audit's "cancelled"
            # filter finds every cancel, before or after AWS.
            action=Action.CANCELLED,
            error_code=CANCELLED,
            error_message=f"Cancelled by {user.get_username()}.",
            finished_at=timezone.now(),
        )

    def note_cancel_refused(self, detail, *, user):
        """A cancel that EC2 refused: recorded, and the import goes on."""
        self._record(
            action=Action.CANCEL_REQUESTED,
            actor=user,
            from_status=self.status,
            to_status=self.status,
            detail=detail,
        )

    def note_tagged(self, resources):
        """The import's tags are on its AMI and snapshots (tasks.tag_ami_and_snapshots)."""
        self._record(
            action=Action.TAGGED,
            from_status=self.status,
            to_status=self.status,
            detail=f"Tags {', '.join(sorted(self.tags))} put on {', '.join(resources)}",
        )

    def note_tagging_failed(self, error):
        """The image is available, but its AMI and snapshots could not be tagged."""
        self._record(
            action=Action.TAGGING_FAILED,
            from_status=self.status,
            to_status=self.status,
            detail=f"Could not tag the AMI and its snapshots: {error.code}: {error.message}",
        )

    def note_tagging_resent(self):
        """Its tagging had no outcome after IMPORT_TAGGING_LOST_AFTER and was queued again."""
        self._record(
            action=Action.TAGGING_RESENT,
            from_status=self.status,
            to_status=self.status,
            detail="No tagging outcome: its message was lost; sent again",
        )

    def mark_retrying(self, *, code, message, delay, attempt=None):
        """submitting -> queued after a retryable answer; see answer_of for `attempt`."""
        return self._move(
            [Status.SUBMITTING],
            Status.QUEUED,
            detail=f"{code}: {message} (retrying in {delay:.0f}s)",
            only_if=self.answer_of(attempt),
            error_code=code,
            error_message=message,
            lease_expires_at=None,
        )

    def mark_failed(self, *, code, message, user=None, attempt=None):
        """Any status before the end -> failed; from an attempt's answer, submitting only."""
        expected = [Status.UPLOADING, Status.QUEUED, Status.SUBMITTING, Status.IMPORTING]
        return self._move(
            [Status.SUBMITTING] if attempt is not None else expected,
            Status.FAILED,
            user=user,
            only_if=self.answer_of(attempt),
            detail=f"{code}: {message}",
            error_code=code,
            error_message=message,
            finished_at=timezone.now(),
            lease_expires_at=None,
        )

    @staticmethod
    def answer_of(attempt):
        """The condition that an attempt's failure still speaks for the import (None: any).

        A call can outlive its lease (a DNS lookup that hangs, past every
        timeout), and by then the sweeper has sent the import again: only
        the attempt that last claimed the row may record that it failed, so
        a stale one never sends the import back to the queue or ends it
        while a newer attempt is in flight. (A stale success needs no such
        guard: with the same client token, AWS gives every attempt the same
        answer.)
        """
        return Q(attempts=attempt) if attempt is not None else None

    def requeue(self, *, stuck_before, now=None):
        """Take back a row whose message or worker was lost; True if this caller did.

        A `submitting` row whose lease is over lost its worker mid-call and
        goes back to `queued` (an event); one still within its lease is left
        alone, its call may still be running. A `queued` row lost its message
        and only has its clock reset, so the next sweep leaves it alone while
        the new message waits.
        """
        if self.status == Status.SUBMITTING:
            return self._move(
                [Status.SUBMITTING],
                Status.QUEUED,
                detail=(
                    "The worker's lease ran out with no answer recorded; sending "
                    "again with the same client token"
                ),
                only_if=Q(lease_expires_at__lt=now or timezone.now())
                # Rows claimed before leases existed: by their age.
                | Q(lease_expires_at__isnull=True, updated_at__lt=stuck_before),
                lease_expires_at=None,
            )
        return bool(
            ImageImport.objects.filter(
                pk=self.pk, status=Status.QUEUED, updated_at__lt=stuck_before
            ).update(updated_at=timezone.now())
        )

    def _move(
        self, expected, new_status, *, detail, user=None, only_if=None, action=None, **fields
    ):
        """Move the row from one of the `expected` statuses to `new_status`, with its event.

        `detail` is the event's text: a string, or a RowText filled from the
        row the move leaves. False, with this instance read again, if the
        row was in none of the `expected` statuses (or failed `only_if`).
        """
        only_if = only_if if only_if is not None else Q()
        values = {"status": new_status, "updated_at": timezone.now(), **fields}
        event = partial(AuditEvent.new, action or Action.STATUS, actor=user, to_status=new_status)
        if self._moves_in_one_statement(expected, new_status):
            (old_status,) = expected
            returned = self._update_in_one_statement(
                old_status, only_if, values, event(from_status=old_status, detail=detail)
            )
            moved = returned[0] if returned else None
            if moved is not None:
                self._take_values_of(moved)
                self.publish_version()
        else:
            old_status, moved = self._move_in_a_transaction(
                expected, only_if, values, event, detail
            )
        if moved is None:
            self.refresh_from_db()
            return False
        metrics.TRANSITIONS.labels(old_status, new_status).inc()
        return True

    def _update_in_one_statement(self, old_status, only_if, values, event):
        if only_if:  # its own parameters, which only the ORM knows how to place
            rows = ImageImport.objects.filter(only_if, pk=self.pk, status=old_status)
            return update_returning(rows, values, event=event)
        return MoveStatement.run(ImageImport, self.pk, old_status, values, event)

    @staticmethod
    def _moves_in_one_statement(expected, new_status):
        """Whether the UPDATE can write its own event (PostgreSQL, one status, no receivers).

        One statement, in a WITH that both updates the row and inserts the
        event, is atomic by itself: no BEGIN and COMMIT around it, which were
        two of a transition's four round trips and most of its CPU.
        A move that signals receivers (an import ended, an upload finished)
        keeps the transaction, as their rows commit with it.
        """
        return (
            can_write_event_in_one_statement()
            and len(expected) == 1
            and new_status not in TERMINAL_STATUSES
            and Status.UPLOADING not in expected
        )

    def _move_in_a_transaction(self, expected, only_if, values, event, detail):
        """(the status it moved from, the row), the row None if none moved; then signals."""
        moved = old_status = None
        with transaction.atomic():
            # The status last seen first: usually still the row's, so one
            # UPDATE does it (mark_failed would otherwise try four).
            for old_status in sorted(expected, key=lambda status: status != self.status):
                rows = ImageImport.objects.filter(only_if, pk=self.pk, status=old_status)
                returned = update_returning(rows, values)
                moved = returned[0] if returned else None
                if moved is None:
                    continue
                self._take_values_of(moved)
                self.publish_version()
                text = detail.render(self) if isinstance(detail, RowText) else detail
                event(image_import=self, from_status=old_status, detail=text).save()
                # Inside the transaction: receivers' rows commit with the move.
                new_status = values["status"]
                if new_status in TERMINAL_STATUSES:
                    signals.import_ended.send(
                        sender=ImageImport, image_import=self, event=self.end_event
                    )
                elif old_status == Status.UPLOADING:
                    signals.upload_finished.send(sender=ImageImport, image_import=self)
                break
        return old_status, moved

    def _take_values_of(self, row):
        """Every column as the UPDATE left it; cached relations (team, person) are kept."""
        for field in self._meta.concrete_fields:
            setattr(self, field.attname, getattr(row, field.attname))

    def publish_version(self):
        """Tell pollers, through the cache, that the import changed (once committed).

        An unchanged poll is then answered from the cache without touching
        the database (imports/polling.py); a missing or stale entry only costs the
        poller a full answer.
        """
        key, version = version_cache_key(self.pk), self.version
        transaction.on_commit(lambda: cache_set_quietly(key, version))

    def _record(self, *, action, detail, actor=None, from_status="", to_status=""):
        AuditEvent.record(
            action,
            actor=actor,
            image_import=self,
            detail=detail,
            from_status=from_status,
            to_status=to_status,
        )


def publish_versions(image_imports):
    """publish_version for many imports: one cache call once committed, not one each."""
    versions = {version_cache_key(i.pk): i.version for i in image_imports}
    if versions:
        transaction.on_commit(lambda: cache_set_many_quietly(versions))


def cache_set_many_quietly(values, timeout=3600):
    try:
        cache.set_many(values, timeout)
    except Exception:
        logger.warning("Could not publish %s versions to the cache", len(values), exc_info=True)


def cache_set_quietly(key, value, timeout=3600):
    # A cache outage must never fail a transition that has already committed.
    try:
        cache.set(key, value, timeout)
    except Exception:
        logger.warning("Could not publish %s to the cache", key, exc_info=True)


def describe_progress(updates):
    parts = []
    if "image_state" in updates:
        parts.append(f"Image {image_state_words(updates['image_state'])}")
    if "status_message" in updates or "progress" in updates:
        progress = updates.get("progress")
        percent = f" ({progress}%)" if progress is not None else ""
        parts.append(f"VM import task: {updates.get('status_message', '')}{percent}")
    return "; ".join(parts)


class AppendOnlyError(Exception):
    pass


class Action(models.TextChoices):
    SUBMITTED = "import.submitted", "Import submitted"
    REPLAYED = "import.replayed", "Submission replayed (same token, same request)"
    CONFLICT = "import.conflict", "Submission refused (token reused for another request)"
    STATUS = "import.status", "Import status or progress"
    CANCEL_REQUESTED = "import.cancel_requested", "Cancel requested"
    CANCELLED = "import.cancelled", "Import cancelled"
    TAGGED = "import.tagged", "AMI and snapshots tagged"
    TAGGING_FAILED = "import.tagging_failed", "Tagging the AMI and snapshots failed"
    TAGGING_RESENT = "import.tagging_resent", "Tagging sent again (no outcome)"
    MEMBER_ADDED = "team.member_added", "Member added"
    ROLE_CHANGED = "team.role_changed", "Role changed"
    MEMBER_REMOVED = "team.member_removed", "Member removed"
    MEMBER_INVITED = "team.member_invited", "Member invited by e-mail"
    INVITATION_RESENT = "team.invitation_resent", "Invitation sent again"
    INVITATION_ACCEPTED = "team.invitation_accepted", "Invitation accepted"
    TARGET_CHANGED = "team.target_changed", "AWS target changed"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    WEBHOOK_ADDED = "webhook.added", "Webhook added"
    WEBHOOK_CHANGED = "webhook.changed", "Webhook changed"
    WEBHOOK_REMOVED = "webhook.removed", "Webhook removed"
    WEBHOOK_TESTED = "webhook.tested", "Webhook test message sent"
    WEBHOOK_REDELIVERED = "webhook.redelivered", "Webhook delivery sent again"
    WEBHOOK_PAUSED = "webhook.paused", "Webhook paused after failures"
    NOTIFICATIONS_CHANGED = "profile.notifications", "Notification settings changed"
    SIGNED_IN = "auth.signed_in", "Signed in"
    SIGN_IN_FAILED = "auth.sign_in_failed", "Sign-in failed"


class AuditEventQuerySet(models.QuerySet):
    """Bulk changes are refused too, not only changes through one event."""

    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are append-only; they cannot be changed.")

    def delete(self):
        raise AppendOnlyError("Audit events are append-only; they cannot be deleted.")


class AuditEvent(models.Model):
    """One line of the audit: who did what, when, from where. Never changed.

    An import's timeline is its events; everything else that changes state
    (roles, AWS targets, tokens, sign-ins) is recorded here too.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Empty when the worker acted.",
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True)
    image_import = models.ForeignKey(
        ImageImport, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    detail = models.TextField(blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="team_audit")]
        permissions = [("audit_all_teams", "Can read the audit of every team")]

    def __str__(self):
        return f"{self.get_action_display()}: {self.detail}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Audit events are append-only; they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only; they cannot be deleted.")

    @property
    def status_change(self):
        """(from, to) as every page says them, "" for no from; None if no status moved.

        A cancel is stored as failed: its event says Cancelled, as every page
        does (the import's timeline, Team activity, the admin).
        """
        if not self.to_status or self.from_status == self.to_status:
            return None
        to = "Cancelled" if self.action == Action.CANCELLED else status_label(self.to_status)
        return status_label(self.from_status), to

    @classmethod
    def record(cls, action, **fields):
        """Write one event; the client IP comes from the request being served, if any."""
        event = cls.new(action, **fields)
        event.save()
        return event

    @classmethod
    def new(cls, action, *, actor=None, team=None, image_import=None, detail="", **statuses):
        """An event not yet written (record writes one; bulk_create many)."""
        if actor is not None and not actor.is_authenticated:
            actor = None
        # An import's event names its team by ID: the team row need not be read.
        team_id = team.pk if team is not None else getattr(image_import, "team_id", None)
        return cls(
            action=action,
            actor=actor,
            team_id=team_id,
            image_import=image_import,
            client_ip=current_client_ip(),
            detail=detail,
            **statuses,
        )


LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiToken(models.Model):
    """A bearer token for the JSON API, acting as its user within one team.

    Only a SHA-256 digest is stored: the token is shown once, at creation.
    """

    PREFIX = "vmip_"
    SHOWN_CHARACTERS = len(PREFIX) + 6

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    # The token's first characters: not a secret (far too short to guess the
    # rest from), so that a person can tell two tokens apart.
    prefix = models.CharField(max_length=16, blank=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name or 'token'} for {self.user} in {self.team}"

    @property
    def is_active(self):
        return self.revoked_at is None

    def revoke(self, *, by):
        """Stop the token working; kept, not deleted, so the audit still names it."""
        revoked = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            AuditEvent.record(
                Action.TOKEN_REVOKED,
                actor=by,
                team=self.team,
                detail=f"API token {self.name!r} of {self.user.get_username()} revoked",
            )
        return bool(revoked)

    @staticmethod
    def digest_of(raw_token):
        return hashlib.sha256(raw_token.encode()).hexdigest()

    @classmethod
    def issue(cls, *, user, team, name=""):
        """Create a token; returns (api_token, raw_token). The raw token is not kept."""
        raw_token = cls.PREFIX + secrets.token_urlsafe(32)
        api_token = cls.objects.create(
            user=user,
            team=team,
            name=name,
            prefix=raw_token[: cls.SHOWN_CHARACTERS],
            digest=cls.digest_of(raw_token),
        )
        AuditEvent.record(
            Action.TOKEN_CREATED,
            actor=user,
            team=team,
            detail=f"API token {name!r} created for {user.get_username()}",
        )
        return api_token, raw_token

    @classmethod
    def authenticate(cls, raw_token):
        """The active token with its user, team and the user's role there; None if none.

        A revoked token, an inactive user, or one no longer a member of the
        token's team authenticates nothing.
        """
        api_token = TokenLookup.on(connection).find(cls.digest_of(raw_token))
        if api_token is None:
            return None
        now = timezone.now()
        # At most one write a minute per token: a busy script's every call
        # would otherwise be an UPDATE.
        if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
            cls.objects.filter(pk=api_token.pk).update(last_used_at=now)
        return api_token


class TokenLookup:
    """ApiToken.authenticate's one SELECT, its SQL written once per database connection setting.

    Every API request starts with it: the token, its user, its team and the
    membership that gives the role, in one four-table join. Compiled by the
    ORM on every request, that join cost a millisecond of CPU, five times
    the query's own; its SQL never changes, so it is written once
    from the models' fields, and each row becomes the three instances with
    the converters the ORM itself would apply. tests/test_database.py checks
    that it loads exactly what the ORM loads.
    """

    _by_alias = {}

    @classmethod
    def on(cls, connection):
        if connection.alias not in cls._by_alias:
            cls._by_alias[connection.alias] = cls(connection)
        return cls._by_alias[connection.alias]

    def __init__(self, connection):
        from django.contrib.auth import get_user_model

        self.connection = connection
        quote = connection.ops.quote_name
        # (model, its alias in the query, its fields in the SELECT's order)
        self.parts = [
            (model, alias, model._meta.concrete_fields)
            for model, alias in ((ApiToken, "token"), (get_user_model(), "person"), (Team, "team"))
        ]
        columns = ", ".join(
            f"{quote(alias)}.{quote(field.column)}"
            for _, alias, fields in self.parts
            for field in fields
        )

        def column(alias, model, name):
            return f"{quote(alias)}.{quote(model._meta.get_field(name).column)}"

        def table(model, alias):
            return f"{quote(model._meta.db_table)} {quote(alias)}"

        user_model = self.parts[1][0]
        self.sql = (
            f"SELECT {columns}, {column('membership', Membership, 'role')} "
            f"FROM {table(ApiToken, 'token')} "
            f"INNER JOIN {table(user_model, 'person')} ON "
            f"{column('person', user_model, 'id')} = {column('token', ApiToken, 'user')} "
            f"INNER JOIN {table(Team, 'team')} ON "
            f"{column('team', Team, 'id')} = {column('token', ApiToken, 'team')} "
            # Still a member of the token's team (one membership per pair).
            f"INNER JOIN {table(Membership, 'membership')} ON "
            f"{column('membership', Membership, 'team')} = {column('token', ApiToken, 'team')} "
            f"AND {column('membership', Membership, 'user')} = {column('token', ApiToken, 'user')} "
            f"WHERE {column('token', ApiToken, 'digest')} = %s "
            f"AND {column('token', ApiToken, 'revoked_at')} IS NULL "
            f"AND {column('person', user_model, 'is_active')} = %s"
        )
        self.readers = [
            RowReader(model, fields, connection, alias) for model, alias, fields in self.parts
        ]

    def find(self, digest):
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, [digest, True])
            row = cursor.fetchone()
        if row is None:
            return None
        instances, start = [], 0
        for reader in self.readers:  # the token's columns, the person's, the team's
            instances.append(reader.instance(row[start : start + reader.width], self.connection))
            start += reader.width
        api_token, user, team = instances
        api_token.user, api_token.team = user, team
        api_token.member_role = row[start]  # then the membership's role
        return api_token


# -- sign-ins: recorded where the audit lives ----------------------------------


@receiver(user_logged_in)
def record_sign_in(sender, request, user, **kwargs):
    AuditEvent.record(Action.SIGNED_IN, actor=user, detail=f"{user.get_username()} signed in")


@receiver(user_login_failed)
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    # The password is never recorded; the username tried is.
    username = credentials.get("username", "")
    AuditEvent.record(Action.SIGN_IN_FAILED, detail=f"Failed sign-in as {username!r}")
