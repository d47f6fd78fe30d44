"""Test builders as plain functions: requests, people and imports in any status.

Rows are made directly (as healthchecks' tests do), so a test about the
history or the refresher need not walk an import through the worker first.
"""

import uuid

from django.contrib.auth import get_user_model
from django.utils import timezone

from imports.models import ImageImport, Membership, Status, aws_client_token

# The emulator's seeded VM import tasks: completed (with its AMI), and converting.
SEEDED_TASK = "import-ami-0123456789abcdef0"
SEEDED_AMI = "ami-0a1b2c3d4e5f60718"
CONVERTING_TASK = "import-ami-0c0ffee0123456789"


def valid_payload(**overrides):
    """A valid ImportVmImage request; an override of None leaves the member out."""
    payload = {
        "clientToken": "0b6f2c1e-1d7e-4c55-9d61-1a2b3c4d5e6f",
        "name": "Web server base",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "vmImportTaskId": SEEDED_TASK,
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not None}


def sent_to_aws(team, payload):
    """The ImportVmImage request AWS is sent for `payload`: the same, with the team's own token."""
    return {**payload, "clientToken": aws_client_token(team.pk, payload["clientToken"])}


def make_member(username, team, role=Membership.Role.SUBMITTER):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    Membership.objects.create(user=user, team=team, role=role)
    return user


def make_import(team, user, status=Status.QUEUED, **fields):
    """An import row in any status, written directly (no audit event, no task queued)."""
    payload = valid_payload(clientToken=str(uuid.uuid4()), **fields.pop("payload", {}))
    now = timezone.now()
    defaults = {
        "client_token": payload["clientToken"],
        "name": payload["name"],
        "platform": payload["platform"],
        "vm_import_task_id": payload.get("vmImportTaskId", ""),
        "region": team.aws_region or "us-east-1",
    }
    if status in (Status.IMPORTING, Status.AVAILABLE, Status.FAILED):
        defaults["submitted_at"] = now
    if status == Status.IMPORTING:
        defaults["image_arn"] = (
            "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"
        )
    if status in (Status.AVAILABLE, Status.FAILED):
        defaults["finished_at"] = now
    return ImageImport.objects.create(
        team=team, submitted_by=user, payload=payload, status=status, **{**defaults, **fields}
    )


# The AMI of ended_imports' available one.
ENDED_AMI = "ami-0a1b2c3d4e5f60718"


def ended_imports(team, user):
    """Web, available with its AMI; Broken, failed; Withdrawn, cancelled."""
    make_import(
        team,
        user,
        Status.AVAILABLE,
        payload={"name": "Web"},
        amis=[{"region": "us-east-1", "image": ENDED_AMI, "accountId": "123456789012"}],
    )
    make_import(
        team,
        user,
        Status.FAILED,
        payload={"name": "Broken"},
        error_code="ClientException",
        error_message="The disk is not a VMDK.",
    )
    withdrawn = make_import(team, user, payload={"name": "Withdrawn"})
    withdrawn.withdraw(user=user)


# A team's import bucket for disk files, and a request for a file in it.
IMPORT_BUCKET = "platform-imports"
IMPORT_PREFIX = "vm-imports/"
DISK_KEY = IMPORT_PREFIX + "web/disk1.vmdk"


def give_role_target(team):
    """The team's AWS target: us-east-1, an account, and a role the portal assumes."""
    type(team).objects.filter(pk=team.pk).update(
        aws_region="us-east-1",
        aws_account_id="123456789012",
        aws_role_arn="arn:aws:iam::123456789012:role/ImportPortal",
    )


def set_up_disk_imports(team, role="vmimport-platform"):
    team.import_bucket, team.import_prefix, team.vm_import_role = (
        IMPORT_BUCKET,
        IMPORT_PREFIX,
        role,
    )
    team.save()
    return team


def disk_request(**overrides):
    """A valid API request for a disk file in the team's bucket; None leaves a member out."""
    body = valid_payload(vmImportTaskId=None)
    body["diskContainer"] = {
        "format": "vmdk",
        "userBucket": {"s3Bucket": IMPORT_BUCKET, "s3Key": DISK_KEY},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def disk_submission(
    source="s3_object", key=DISK_KEY, upload_size=None, upload_fingerprint="", **options
):
    """services.submit_import's arguments for a disk file; options named as EC2 names them."""
    return {
        "payload": valid_payload(vmImportTaskId=None),
        "source": source,
        "import_image_payload": {
            "Platform": "Linux",
            "DiskContainers": [
                {"Format": "VMDK", "UserBucket": {"S3Bucket": IMPORT_BUCKET, "S3Key": key}}
            ],
            **options,
        },
        "upload_size": upload_size,
        "upload_fingerprint": upload_fingerprint,
    }
