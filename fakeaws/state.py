"""The emulator's world: VM import tasks, images, idempotency records, call counts.

Nothing here stores a state: the status of a task or an image is computed
from the emulator clock each time it is read, so a test that jumps the clock
gets the same answer every time, and `step_seconds=0` puts everything at its
end at once. All of it lives in memory and is gone on restart.
"""

import math
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

# (Progress, StatusMessage) of an active EC2 import task, one per step.
TASK_STEPS = (
    ("10", "pending"),
    ("30", "validating"),
    ("50", "converting"),
    ("70", "updating"),
    ("90", "preparing ami"),
)
# A task whose disk fails validation is deleted after this many steps
# (pending, validating).
VALIDATION_STEPS = 2
# The image statuses between PENDING and AVAILABLE, one per step.
IMAGE_BUILD_STEPS = ("CREATING", "BUILDING", "TESTING", "DISTRIBUTING", "INTEGRATING")
IMAGE_END_STATUSES = ("FAILED", "CANCELLED")
TASK_CANCELLED_MESSAGE = "User initiated task cancelation"


def hex_id(prefix):
    """An EC2-style identifier: the prefix and 17 lowercase hex digits."""
    return prefix + secrets.token_hex(9)[:17]


def new_request_id():
    return str(uuid.uuid4())


def iso_time(timestamp):
    """The millisecond UTC timestamps AWS writes, like 2024-05-01T12:00:00.000Z."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def steps_since(start, now, step_seconds):
    """How many whole steps have passed since `start`; every step at once when 0."""
    if now < start:
        return -1
    if step_seconds <= 0:
        return math.inf
    return math.floor((now - start) / step_seconds)


class Clock:
    """Wall time plus whatever the control API has jumped it forward by."""

    def __init__(self):
        self.offset = 0.0

    def now(self):
        return time.time() + self.offset

    def advance(self, seconds):
        self.offset += seconds


@dataclass(frozen=True)
class TaskState:
    status: str  # active, completed, deleting or deleted
    progress: str | None = None
    message: str | None = None


@dataclass
class ImportTask:
    """One EC2 VM import (ImportImage) task."""

    task_id: str
    created_at: float
    description: str
    platform: str
    image_id: str  # the AMI the task produces when it completes
    architecture: str = "x86_64"
    license_type: str = "BYOL"
    disks: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    client_token: str | None = None
    request: dict = field(default_factory=dict)
    # Seeded tasks begin part-way through their steps.
    first_step: float = 0
    # How many emulator steps each of this task's steps lasts.
    pace: float = 1
    # The clock of a task that waits to be listed has not started: it stays at
    # first_step until DescribeImportImageTasks first shows it (start()).
    waits_to_be_listed: bool = False
    # EC2's StatusMessage when the disk fails validation: the task is deleted.
    failure: str | None = None
    cancelled_at: float | None = None
    cancel_reason: str | None = None

    def start(self, now):
        if self.waits_to_be_listed:
            self.waits_to_be_listed = False
            self.created_at = now

    def step_at(self, step, step_seconds):
        """When the task reaches `step` (counted as first_step is)."""
        if self.waits_to_be_listed:
            return math.inf
        return self.created_at + max(0, step - self.first_step) * step_seconds * self.pace

    def completes_at(self, step_seconds):
        if self.failure:
            return math.inf
        return self.step_at(len(TASK_STEPS), step_seconds)

    def fails_at(self, step_seconds):
        """When a bad disk is found: after the pending and validating steps."""
        return self.step_at(VALIDATION_STEPS, step_seconds) if self.failure else math.inf

    def state(self, now, step_seconds):
        if self.cancelled_at is not None:
            # Cancelling is refused once a task completes, so a cancelled task never does.
            deleting = steps_since(self.cancelled_at, now, step_seconds) < 1
            message = self.cancel_reason or TASK_CANCELLED_MESSAGE
            return TaskState("deleting" if deleting else "deleted", message=message)
        fails_at = self.fails_at(step_seconds)
        if now >= fails_at:
            deleting = steps_since(fails_at, now, step_seconds * self.pace) < 1
            return TaskState("deleting" if deleting else "deleted", message=self.failure)
        if now >= self.completes_at(step_seconds):
            return TaskState("completed")
        # Not completed, so step_seconds > 0 here (or the clock waits for a listing).
        step = math.floor(self.first_step)
        if not self.waits_to_be_listed:
            step = math.floor(
                self.first_step + max(0, now - self.created_at) / (step_seconds * self.pace)
            )
        progress, message = TASK_STEPS[min(step, len(TASK_STEPS) - 1)]
        return TaskState("active", progress, message)


@dataclass(frozen=True)
class ImageState:
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class Ending:
    """An end forced on an image through the control API."""

    status: str
    reason: str
    at: float


@dataclass
class Image:
    """One Image Builder image created by ImportVmImage."""

    arn: str
    name: str
    version: str  # x.y.z/build
    platform: str
    os_version: str | None
    description: str | None
    tags: dict
    task_id: str
    region: str
    account_id: str
    created_at: float
    request: dict  # the members as sent, for the idempotency check
    response: dict  # the original answer, replayed for a repeated clientToken

    def state(self, now, step_seconds, task, ending=None):
        if ending is not None and now >= max(ending.at, self.created_at):
            return ImageState(ending.status, ending.reason)
        if task.cancelled_at is not None:
            if now >= max(task.cancelled_at, self.created_at):
                reason = (
                    f"The VM import task {task.task_id} was cancelled "
                    f"({task.cancel_reason or TASK_CANCELLED_MESSAGE}); no AMI to import."
                )
                return ImageState("FAILED", reason)
            return ImageState("PENDING")
        if now >= max(task.fails_at(step_seconds), self.created_at):
            return ImageState("FAILED", f"The VM import task {task.task_id} failed: {task.failure}")
        # PENDING for at least one step, and for as long as the import is converting.
        build_starts = max(self.created_at + step_seconds, task.completes_at(step_seconds))
        step = steps_since(build_starts, now, step_seconds)
        if step < 0:
            return ImageState("PENDING")
        if step < len(IMAGE_BUILD_STEPS):
            return ImageState(IMAGE_BUILD_STEPS[step])
        return ImageState("AVAILABLE")


def image_slug(name):
    """The name as an image ARN spells it: lowercase, hyphens for spaces."""
    slug = re.sub(r"[^a-z0-9_-]", "", name.lower().replace(" ", "-"))
    return slug or "image"


# Seeded so that a new user can import at once. The first ID is the one the
# test suite's sample payload names.
SEED_TASKS = (
    {
        "task_id": "import-ami-0123456789abcdef0",
        "image_id": "ami-0a1b2c3d4e5f60718",
        "description": "Ubuntu 22.04 web server (VMware OVA export)",
        "platform": "Linux",
        "disks": [{"format": "VMDK", "s3_key": "exports/web-server-ubuntu2204.vmdk"}],
    },
    {
        "task_id": "import-ami-0fedcba9876543210",
        "image_id": "ami-0b2c3d4e5f6071829",
        "description": "Windows Server 2022 base (Hyper-V export)",
        "platform": "Windows",
        "disks": [{"format": "VHDX", "s3_key": "exports/win2022-base.vhdx"}],
    },
    {
        "task_id": "import-ami-04a5b6c7d8e9f0a1b",
        "image_id": "ami-0c3d4e5f607182930",
        "description": "Amazon Linux 2023 build agent (KVM raw disk)",
        "platform": "Linux",
        "architecture": "arm64",
        "disks": [{"format": "RAW", "s3_key": "exports/al2023-build-agent.raw"}],
    },
    {
        "task_id": "import-ami-0c0ffee0123456789",
        "image_id": "ami-0d4e5f60718293a4b",
        "description": "RHEL 9 database server (VMware OVA export)",
        "platform": "Linux",
        "disks": [{"format": "VMDK", "s3_key": "exports/rhel9-db.vmdk"}],
        # Half-way through "converting", and waiting there until it is first
        # listed (the portal's form lists tasks), so that a new user sees it
        # converting, and can import it while it still is.
        "first_step": 2.5,
        "waits_to_be_listed": True,
    },
)
SEED_BUCKET = "vm-exports"


class World:
    """Everything the emulator knows, behind one lock."""

    def __init__(
        self, *, step_seconds=2.0, account_id=DEFAULT_ACCOUNT_ID, seed_converting_seconds=None
    ):
        self.lock = threading.RLock()
        self.clock = Clock()
        self.step_seconds = step_seconds
        self.account_id = account_id
        # How long the seeded converting task takes, from its first listing
        # to completed; None: at the pace of every other task.
        self.seed_converting_seconds = seed_converting_seconds
        # A boto3 S3 client of moto's server, or None: then disks are not read.
        self.s3 = None
        self.reset()

    def reset(self):
        with self.lock:
            self.clock = Clock()
            self.tasks = {}
            self.task_tokens = {}
            self.images = {}
            self.image_tokens = {}
            self.builds = Counter()
            self.endings = {}
            # CreateTags on imported AMIs and snapshots: resource id -> {key: value}.
            self.resource_tags = {}
            self.operations = Counter()
            self.client_tokens = Counter()
            self.assumed_roles = []
            self.seed()

    def seed(self):
        now = self.clock.now()
        for number, seed in enumerate(SEED_TASKS):
            disks = [
                {"format": disk["format"], "bucket": SEED_BUCKET, "key": disk["s3_key"]}
                for disk in seed["disks"]
            ]
            first_step = seed.get("first_step", len(TASK_STEPS))
            # Completed seeds look a few days old; the converting one began just now.
            created_at = now - (3 - number) * 86400 if first_step >= len(TASK_STEPS) else now
            self.add_task(
                ImportTask(
                    task_id=seed["task_id"],
                    created_at=created_at,
                    description=seed["description"],
                    platform=seed["platform"],
                    image_id=seed["image_id"],
                    architecture=seed.get("architecture", "x86_64"),
                    disks=disks,
                    first_step=first_step,
                    pace=self.seed_pace(first_step),
                    waits_to_be_listed=seed.get("waits_to_be_listed", False),
                )
            )

    def seed_pace(self, first_step):
        remaining = len(TASK_STEPS) - first_step
        if not (self.seed_converting_seconds and self.step_seconds > 0 and remaining > 0):
            return 1
        return max(1, self.seed_converting_seconds / (remaining * self.step_seconds))

    # -- calls ------------------------------------------------------------

    def record_call(self, operation, client_token=None):
        with self.lock:
            self.operations[operation] += 1
            if client_token:
                self.client_tokens[client_token] += 1

    def calls(self):
        with self.lock:
            return {
                "operations": dict(self.operations),
                "clientTokens": dict(self.client_tokens),
                "imagesCreated": len(self.images),
                "images": list(self.images),
                "importTasksCreated": sum(1 for t in self.tasks.values() if t.request),
                "assumedRoles": list(self.assumed_roles),
            }

    # -- import tasks -----------------------------------------------------

    def add_task(self, task):
        with self.lock:
            self.tasks[task.task_id] = task
            if task.client_token:
                self.task_tokens[task.client_token] = task.task_id
            return task

    def task_state(self, task):
        return task.state(self.clock.now(), self.step_seconds)

    def list_task(self, task):
        """A task shown by DescribeImportImageTasks: a waiting one starts now."""
        with self.lock:
            task.start(self.clock.now())

    # -- images -----------------------------------------------------------

    def create_image(self, *, request, region, request_id):
        """A new image for a validated ImportVmImage request; its first response."""
        with self.lock:
            name = request["name"]
            version = request["semanticVersion"]
            slug = image_slug(name)
            self.builds[slug, version] += 1
            build = self.builds[slug, version]
            arn = f"arn:aws:imagebuilder:{region}:{self.account_id}:image/{slug}/{version}/{build}"
            image = Image(
                arn=arn,
                name=name,
                version=f"{version}/{build}",
                platform=request["platform"],
                os_version=request.get("osVersion"),
                description=request.get("description"),
                tags=dict(request.get("tags") or {}),
                task_id=request["vmImportTaskId"],
                region=region,
                account_id=self.account_id,
                created_at=self.clock.now(),
                request=request,
                response={
                    "requestId": request_id,
                    "clientToken": request["clientToken"],
                    "imageArn": arn,
                },
            )
            self.images[arn] = image
            self.image_tokens[request["clientToken"]] = arn
            return image

    def find_image(self, arn):
        """The image a build-version ARN names, or the latest build of a version ARN."""
        with self.lock:
            if arn in self.images:
                return self.images[arn]
            builds = [image for key, image in self.images.items() if key.startswith(arn + "/")]
            return builds[-1] if builds else None

    def image_state(self, image):
        with self.lock:
            return image.state(
                self.clock.now(),
                self.step_seconds,
                self.tasks[image.task_id],
                self.endings.get(image.arn),
            )

    def end_image(self, arn, status, reason):
        """Make an image (perhaps one not created yet) end FAILED or CANCELLED."""
        with self.lock:
            self.endings[arn] = Ending(status, reason, self.clock.now())
            return arn in self.images
