"""The only module that talks to AWS (through botocore, boto3's core).

Clients are built once per process for each (service, target: region and
role) and reused. Every session shares one loader of botocore's service
models, so a team's role costs its client, not another copy of the models.
Endpoints follow boto3's own AWS_ENDPOINT_URL_<SERVICE> variables, so the
local emulator and real AWS differ only in configuration. Credentials come
from boto3's default chain; none is ever stored by the portal.

botocore's own retries are switched off: the worker retries at the task
level instead, so that every attempt is recorded as an event and every
attempt carries the import's one clientToken.
"""

import contextlib
import contextvars
import functools
import ipaddress
import json
import logging
import math
import os
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError
from django.conf import settings

from . import metrics

logger = logging.getLogger(__name__)

# Error codes that mean "slow down": the refresher pauses for them.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "CallRateLimitExceededException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    }
)

# Error codes that mean "try again later"; the HTTP status decides for codes
# not listed (a 429 or a 5xx from a proxy, say).
RETRYABLE_CODES = THROTTLING_CODES | {
    "ServiceException",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
}
RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})
# A gateway's answer in AWS's place: the request may have reached AWS.
GATEWAY_STATUSES = frozenset({502, 504})


class AwsError(Exception):
    """An AWS call that did not succeed, in words a person can act on.

    `answered`: AWS answered (an error of its own). False when no answer
    came: the connection failed, or was lost, or the call was never made (no
    credentials). A caller that shows "S3 refused: ..." should say so only
    when S3 answered.

    `outcome_unknown`: the request was sent and its answer lost (the
    connection closed, or the answer did not come in time), so AWS may have
    carried it out. A connection that failed before the request left (refused,
    DNS, a connect timeout) is not: AWS never saw it.
    """

    def __init__(
        self, code, message, *, retryable, http_status=None, answered=True, outcome_unknown=False
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.http_status = http_status
        self.answered = answered
        self.outcome_unknown = outcome_unknown


@dataclass(frozen=True)
class ImportAccepted:
    image_arn: str
    request_id: str
    client_token: str


@dataclass(frozen=True)
class Target:
    """Where a call goes: a region, and optionally a role to assume there."""

    region: str = ""
    role_arn: str = ""
    external_id: str = ""

    @classmethod
    def for_team(cls, team):
        return cls(
            region=team.aws_region or settings.AWS_REGION,
            role_arn=team.aws_role_arn,
            external_id=team.external_id if team.aws_role_arn else "",
        )


ROLE_SESSION_NAME = "vm-import-portal"


def client(service, target=None):
    """A client per process for each service and target, reused across calls."""
    target = target or Target()
    if not target.region:
        target = Target(settings.AWS_REGION, target.role_arn, target.external_id)
    # Sessions are not thread-safe and the refresher calls from a thread pool:
    # clients are made under a lock, then shared (clients are thread-safe).
    with _clients_lock:
        return _client(service, target)


_clients_lock = threading.RLock()


@functools.cache
def _client(service, target):
    session = assumed_role_session(target) if target.role_arn else new_session()
    config = client_config()
    if service == "s3":
        # SigV4 presigned URLs (SigV2 is retired); a local S3 (moto) on
        # 127.0.0.1 has no per-bucket host names, so path-style there.
        local = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        style = {"addressing_style": "path"} if local else {}
        config = config.merge(Config(signature_version="s3v4", s3=style))
    return session.create_client(service, region_name=target.region or None, config=config)


def new_session():
    """A botocore session: the default credential chain and endpoint variables, as boto3's.

    It reads service models through the process's one loader: left to itself
    each session loads and keeps its own copy of every model its clients
    use, which for EC2's alone is 100-290 ms and 10-35 MB a team's role.
    """
    session = botocore.session.Session()
    session.register_component("data_loader", service_models())
    return session


@functools.cache
def service_models():
    """The process's one loader of botocore's service models (AWS_DATA_PATH included)."""
    return botocore.session.Session().get_component("data_loader")


def clear_clients():
    """Forget every client, so new ones read the environment again (tests, benchmarks)."""
    with _clients_lock:
        _client.cache_clear()
        assumed_role_session.cache_clear()


def client_config():
    return Config(
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=settings.AWS_READ_TIMEOUT,
        max_pool_connections=settings.AWS_MAX_POOL_CONNECTIONS,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )


@functools.cache
def assumed_role_session(target):
    """A session whose credentials come from STS AssumeRole with the team's external ID.

    One session per target, so every service's client shares the same
    credentials; botocore refreshes them by itself shortly before they
    expire, and until then every call reuses them. The worker's own
    credentials only ever call STS.
    """
    sts = client("sts", Target(region=target.region))

    def fetch():
        credentials = sts.assume_role(
            RoleArn=target.role_arn,
            RoleSessionName=ROLE_SESSION_NAME,
            ExternalId=target.external_id,
        )["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    session = new_session()
    session._credentials = DeferredRefreshableCredentials(
        refresh_using=fetch, method="sts-assume-role"
    )
    return session


def import_vm_image(request, *, target):
    """Send one ImportVmImage request exactly as stored, clientToken included."""
    imagebuilder = _call(client, "imagebuilder", target)
    response = _call(imagebuilder.import_vm_image, **request)
    return ImportAccepted(
        image_arn=response["imageArn"],
        request_id=response.get("requestId", ""),
        client_token=response.get("clientToken", ""),
    )


OS_VERSION_IN_DESCRIPTION = re.compile(r"(?<![\w.])(\d{1,4}(?:\.\d{1,4}){0,2})(?![\w.])", re.ASCII)
# The VM import task states ImportVmImage can take: a task still converting
# (Image Builder waits for it) or completed. Any other (deleting, deleted, or
# a state EC2 adds later) has no disk left to import: the image would fail.
IMPORTABLE_TASK_STATES = ("active", "completed")
# Why a task in another state cannot be imported, said as EC2's state means it.
NOT_IMPORTABLE_BECAUSE = {
    "deleting": "EC2 is deleting this task: it cannot be imported.",
    "deleted": "EC2 deleted this task: it cannot be imported.",
}


@dataclass(frozen=True)
class Ec2ImportTask:
    """One EC2 VM import task, as DescribeImportImageTasks reports it."""

    import_task_id: str
    status: str
    status_message: str
    progress: int | None
    image_id: str
    description: str
    platform: str = ""  # "Windows" or "Linux", when EC2 detected it
    snapshot_ids: tuple = ()  # the AMI's EBS snapshots, once the task completed

    @classmethod
    def from_ec2(cls, task):
        progress = task.get("Progress")
        return cls(
            import_task_id=task["ImportTaskId"],
            status=task.get("Status", ""),
            status_message=task.get("StatusMessage", ""),
            progress=int(progress) if progress and progress.isdigit() else None,
            image_id=task.get("ImageId", ""),
            description=task.get("Description", ""),
            platform=task.get("Platform", ""),
            snapshot_ids=tuple(
                detail["SnapshotId"]
                for detail in task.get("SnapshotDetails", [])
                if detail.get("SnapshotId")
            ),
        )

    @property
    def os_version_hint(self):
        """The OS version the task's description names, if any ("Ubuntu 22.04 ..." -> 22.04).

        EC2 reports no OS version for a VM import task; people usually write
        it in the description, so the form offers it, for the person to check.
        """
        found = OS_VERSION_IN_DESCRIPTION.search(self.description)
        return found[1] if found else ""

    @property
    def can_be_imported(self):
        return self.status in IMPORTABLE_TASK_STATES

    @property
    def not_importable_reason(self):
        """Why ImportVmImage cannot take this task, in words; "" when it can."""
        if self.can_be_imported:
            return ""
        if not self.status:
            return "EC2 reports no state for this task: it cannot be imported."
        return NOT_IMPORTABLE_BECAUSE.get(
            self.status, f"EC2 reports this task as {self.status}: it cannot be imported."
        )

    def as_json(self):
        return {
            "importTaskId": self.import_task_id,
            "status": self.status,
            "statusMessage": self.status_message,
            "progress": self.progress,
            "imageId": self.image_id or None,
            "description": self.description,
        }


@dataclass(frozen=True)
class ImageState:
    """An Image Builder image's state and, once available, its AMIs."""

    status: str
    reason: str
    amis: list

    @classmethod
    def from_imagebuilder(cls, image):
        state = image.get("state", {})
        amis = [
            {
                "region": ami.get("region", ""),
                "image": ami["image"],
                "accountId": ami.get("accountId", ""),
            }
            for ami in image.get("outputResources", {}).get("amis", [])
            if ami.get("image")
        ]
        return cls(status=state.get("status", ""), reason=state.get("reason", ""), amis=amis)


DESCRIBE_BATCH = 100  # task ids per DescribeImportImageTasks call

# EC2 refuses a whole DescribeImportImageTasks call when one ID in it names no
# task (InvalidConversionTaskId, its .Malformed, InvalidImportTaskId.NotFound):
# one task EC2 has forgotten would otherwise hide every other task of the batch.
UNKNOWN_TASK_CODES = ("InvalidConversionTaskId", "InvalidImportTaskId")


def describe_import_image_tasks(task_ids, *, target):
    """The named tasks by id, in as few calls as the batch size allows (none for no id).

    An ID EC2 says it does not know maps to the AwsError EC2 answered for it;
    the others are asked about again without it.
    """
    tasks = {}
    task_ids = sorted(set(task_ids))
    if not task_ids:
        return tasks
    ec2 = _call(client, "ec2", target)
    for start in range(0, len(task_ids), DESCRIBE_BATCH):
        tasks.update(describe_batch(ec2, task_ids[start : start + DESCRIBE_BATCH]))
    return tasks


def describe_batch(ec2, batch):
    """{id: task} for one batch; {id: AwsError} for an ID EC2 does not know."""
    try:
        response = _call(ec2.describe_import_image_tasks, ImportTaskIds=batch)
    except AwsError as error:
        if not error.code.startswith(UNKNOWN_TASK_CODES):
            raise
        return without_unknown_tasks(ec2, batch, error)
    return {
        task["ImportTaskId"]: Ec2ImportTask.from_ec2(task)
        for task in response.get("ImportImageTasks", [])
    }


def without_unknown_tasks(ec2, batch, error):
    """The batch asked again without the IDs EC2 refused it for (`error` for those).

    EC2's message names the ID it did not know, usually; when it names none
    of the batch, halves are asked until the unknown ones are alone.
    """
    named = [task_id for task_id in batch if task_id in error.message]
    if named:
        rest = [task_id for task_id in batch if task_id not in named]
        return {**dict.fromkeys(named, error), **(describe_batch(ec2, rest) if rest else {})}
    if len(batch) == 1:
        return dict.fromkeys(batch, error)
    half = len(batch) // 2
    return {**describe_batch(ec2, batch[:half]), **describe_batch(ec2, batch[half:])}


def list_vm_import_tasks(*, target, limit=200):
    """The account's recent VM import tasks: completed ones first, then newest.

    Those ImportVmImage cannot take (deleting, deleted) come last: the picker
    shows them, without "Use", so that a task the person looks for is there.
    """
    ec2 = _call(client, "ec2", target)
    tasks, token = [], None
    while len(tasks) < limit:
        kwargs = {"MaxResults": 100, **({"NextToken": token} if token else {})}
        response = _call(ec2.describe_import_image_tasks, **kwargs)
        tasks += [Ec2ImportTask.from_ec2(t) for t in response.get("ImportImageTasks", [])]
        token = response.get("NextToken")
        if not token:
            break
    tasks.sort(key=lambda task: (task.status != "completed", not task.can_be_imported))
    return tasks[:limit]


def get_image(image_arn, *, target):
    imagebuilder = _call(client, "imagebuilder", target)
    response = _call(imagebuilder.get_image, imageBuildVersionArn=image_arn)
    return ImageState.from_imagebuilder(response.get("image", {}))


def cancel_import_task(task_id, *, target):
    """Ask EC2 to cancel a VM import task; returns EC2's new state for it."""
    ec2 = _call(client, "ec2", target)
    response = _call(ec2.cancel_import_task, ImportTaskId=task_id)
    return response.get("State", "")


def tag_imported_image(task_id, tags, *, target):
    """Put an import's tags on the AMI and the snapshots its VM import task made.

    ImportImage's TagSpecifications tag only the import task (EC2's API
    reference), so the AMI and its snapshots get theirs once the task has
    made them. CreateTags sets, never adds twice: a retry is harmless.
    Returns the ids tagged; none while the task has no AMI (or is gone).
    """
    task = describe_import_image_tasks([task_id], target=target).get(task_id)
    if isinstance(task, AwsError):
        raise task  # EC2 does not know the task: a refusal to audit
    if task is None or not task.image_id:
        return []
    resources = [task.image_id, *task.snapshot_ids]
    ec2 = _call(client, "ec2", target)
    _call(
        ec2.create_tags,
        Resources=resources,
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )
    return resources


# -- EC2 ImportImage: a disk image in S3 becomes a VM import task -------------


def import_image(request, *, target):
    """Start (or, for the same ClientToken, find again) EC2's VM import task."""
    ec2 = _call(client, "ec2", target)
    response = _call(ec2.import_image, **request)
    return response["ImportTaskId"]


# -- S3 multipart upload, straight from the browser ----------------------------

MiB = 1024**2
GiB = 1024**3
TiB = 1024**4
S3_MAX_PARTS = 10_000
S3_MIN_PART = 5 * MiB
S3_MAX_PART = 5 * GiB
S3_MAX_OBJECT = 5 * TiB
PRESIGNED_PART_SECONDS = 3600


# Each part costs the browser more than its bytes: a CORS preflight (every
# part's URL is a new one, so the preflight cache never answers) and a request
# of its own, a round trip each over a real network. Larger parts where the
# file is large spread that over more bytes; no larger than this, because a
# dropped network loses the parts in flight (upload.js's PARALLEL_PARTS) and
# they are sent again from their start.
PREFERRED_PART = 16 * MiB
# ... and no fewer parts than this where 5 MiB ones allow it, so a mid-sized
# file still keeps four parts in flight for a while.
PREFERRED_PARTS = 32


def part_size(file_size):
    """Bytes per part: at least S3's 5 MiB, at most 10,000 parts, 16 MiB where it can.

    Whole MiB. Up to 160 MiB: 5 MiB parts; then 1/32 of the file, rounded
    up, until that reaches 16 MiB (about 500 MiB); past 156.25 GiB whatever
    keeps 10,000 parts (525 MiB for 5 TiB, S3's largest object). 85 GiB gives
    16 MiB parts, 5,440 of them.
    """
    if file_size > S3_MAX_OBJECT:
        raise ValueError(f"S3 objects are at most 5 TiB; this file has {file_size} bytes.")
    preferred = min(PREFERRED_PART, math.ceil(max(file_size, 1) / PREFERRED_PARTS))
    needed = math.ceil(max(file_size, 1) / S3_MAX_PARTS)
    return max(S3_MIN_PART, whole_mib(preferred), whole_mib(needed))


def whole_mib(size):
    return math.ceil(size / MiB) * MiB


def part_count(file_size):
    return max(1, math.ceil(file_size / part_size(file_size)))


# The disk format a file's extension names, for the bucket picker (EC2 reads
# the file itself; the form only warns when the chosen format differs).
FORMAT_BY_EXTENSION = {
    "ova": "ova",
    "vmdk": "vmdk",
    "vhd": "vhd",
    "vhdx": "vhdx",
    "raw": "raw",
    "img": "raw",
    "bin": "raw",
}


def format_named_by(name):
    """The disk format a file name's extension names ("" for none): a guess EC2 never reads."""
    name = name.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return FORMAT_BY_EXTENSION.get(extension, "")


BUCKET_LIST_MAX_KEYS = 5000  # keys read at most (five ListObjectsV2 pages)


@dataclass(frozen=True)
class BucketFile:
    """One disk file in a team's import bucket, as the New import picker lists it."""

    key: str
    size: int
    last_modified: datetime

    @property
    def name(self):
        return self.key.rsplit("/", 1)[-1]

    @property
    def format(self):
        """The disk format the file's extension names, or ""."""
        return format_named_by(self.name)


def list_bucket_files(bucket, prefix, *, target, limit=200):
    """The files under the team's prefix, newest first (folders and empty objects left out)."""
    s3 = _call(client, "s3", target)
    files, token, read = [], None, 0
    while read < BUCKET_LIST_MAX_KEYS:
        extra = {"ContinuationToken": token} if token else {}
        response = _call(s3.list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=1000, **extra)
        contents = response.get("Contents", [])
        read += len(contents)
        files += [
            BucketFile(key=item["Key"], size=item["Size"], last_modified=item["LastModified"])
            for item in contents
            if not item["Key"].endswith("/") and item.get("Size", 0) > 0
        ]
        token = response.get("NextContinuationToken")
        if not response.get("IsTruncated") or not token:
            break
    files.sort(key=lambda file: file.last_modified, reverse=True)
    return files[:limit]


def disk_file_size(bucket, key, *, target):
    """The size of the object at bucket/key (HeadObject); None when S3 says there is none."""
    s3 = _call(client, "s3", target)
    try:
        return _call(s3.head_object, Bucket=bucket, Key=key)["ContentLength"]
    except AwsError as error:
        if error.http_status == 404:
            return None
        raise


def create_multipart_upload(bucket, key, *, target):
    """A multipart upload of a disk image: stored as bytes, whatever its file name says."""
    s3 = _call(client, "s3", target)
    response = _call(
        s3.create_multipart_upload, Bucket=bucket, Key=key, ContentType="application/octet-stream"
    )
    return response["UploadId"]


def presign_parts(bucket, key, upload_id, part_numbers, *, target):
    """{part number: URL} for several parts of one upload, each URL for its part only.

    Signing is local (an HMAC with the client's credentials, no call to S3),
    so a batch costs the browser one round trip to the portal, not one a part.
    """
    s3 = _call(client, "s3", target)
    return {
        number: _call(
            s3.generate_presigned_url,
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=PRESIGNED_PART_SECONDS,
            HttpMethod="PUT",
        )
        for number in part_numbers
    }


def upload_origin(bucket, *, target):
    """The origin the browser PUTs a file's parts to: the page's CSP must allow it."""
    s3 = _call(client, "s3", target)
    url = _call(
        s3.generate_presigned_url,
        "upload_part",
        Params={"Bucket": bucket, "Key": "k", "UploadId": "u", "PartNumber": 1},
        ExpiresIn=60,
        HttpMethod="PUT",
    )
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def list_parts(bucket, key, upload_id, *, target):
    """The parts S3 already holds, as Uppy resumes from them."""
    s3 = _call(client, "s3", target)
    parts, marker = [], None
    while True:
        extra = {"PartNumberMarker": marker} if marker else {}
        response = _call(
            s3.list_parts, Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=1000, **extra
        )
        parts += [
            {"PartNumber": part["PartNumber"], "Size": part["Size"], "ETag": part["ETag"]}
            for part in response.get("Parts", [])
        ]
        marker = response.get("NextPartNumberMarker")
        if not response.get("IsTruncated") or not marker:
            return parts


def complete_multipart_upload(bucket, key, upload_id, parts, *, target):
    s3 = _call(client, "s3", target)
    response = _call(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
        },
    )
    return response.get("Location", "")


def abort_multipart_upload(bucket, key, upload_id, *, target):
    s3 = _call(client, "s3", target)
    _call(s3.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id)


# -- the team's setup, as the Check setup button reads it ----------------------


def bucket_region(bucket, *, target):
    """The bucket's region (S3 answers None for us-east-1)."""
    s3 = _call(client, "s3", target)
    return _call(s3.get_bucket_location, Bucket=bucket).get("LocationConstraint") or "us-east-1"


def bucket_cors_rules(bucket, *, target):
    s3 = _call(client, "s3", target)
    try:
        return _call(s3.get_bucket_cors, Bucket=bucket).get("CORSRules", [])
    except AwsError as error:
        if error.code == "NoSuchCORSConfiguration":
            return []
        raise


def bucket_lifecycle_rules(bucket, *, target):
    s3 = _call(client, "s3", target)
    try:
        return _call(s3.get_bucket_lifecycle_configuration, Bucket=bucket).get("Rules", [])
    except AwsError as error:
        if error.code == "NoSuchLifecycleConfiguration":
            return []
        raise


def role_trust_policy(role_name, *, target):
    """The role's ARN and its trust policy as a dict; AwsError NoSuchEntity if absent."""
    iam = _call(client, "iam", target)
    role = _call(iam.get_role, RoleName=role_name)["Role"]
    document = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(document, str):  # URL-encoded JSON when botocore cannot decode it
        document = json.loads(unquote(document))
    return role["Arn"], document


def role_policy_statements(role_name, *, target):
    """The Allow statements of the role's inline and attached policies, as dicts."""
    iam = _call(client, "iam", target)
    documents = [
        _call(iam.get_role_policy, RoleName=role_name, PolicyName=name)["PolicyDocument"]
        for name in _call(iam.list_role_policies, RoleName=role_name)["PolicyNames"]
    ]
    attached = _call(iam.list_attached_role_policies, RoleName=role_name)["AttachedPolicies"]
    for policy in attached:
        version = _call(iam.get_policy, PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        documents.append(
            _call(iam.get_policy_version, PolicyArn=policy["PolicyArn"], VersionId=version)[
                "PolicyVersion"
            ]["Document"]
        )
    statements = []
    for document in documents:
        if isinstance(document, str):
            document = json.loads(unquote(document))
        found = document.get("Statement", [])
        statements += [found] if isinstance(found, dict) else found
    return [statement for statement in statements if statement.get("Effect") == "Allow"]


def role_may(role_arn, actions, resources, *, target):
    """The actions the role's policies do not allow on the resources (IAM's simulator)."""
    iam = _call(client, "iam", target)
    response = _call(
        iam.simulate_principal_policy,
        PolicySourceArn=role_arn,
        ActionNames=list(actions),
        ResourceArns=list(resources),
    )
    return sorted(
        {
            result["EvalActionName"]
            for result in response.get("EvaluationResults", [])
            if result.get("EvalDecision") != "allowed"
        }
    )


def _call(function, *args, **kwargs):
    operation = operation_name(function)
    if operation is None:  # building a client, not calling AWS
        try:
            return function(*args, **kwargs)
        except (BotoCoreError, ClientError, ResponseParserError) as error:
            raise translate(error) from error
    started = time.monotonic()
    try:
        response = aws_answer(operation, function, args, kwargs)
    except (BotoCoreError, ClientError, ResponseParserError) as error:
        aws_error = translate(error, service=service_name(function))
        response = getattr(error, "response", {})
        record_call(operation, started, response, error_code=aws_error.code)
        raise aws_error from error
    record_call(operation, started, response)
    return response


# What AWS's successful answer to these calls always holds. botocore takes a
# 200 that is not AWS's (a proxy's or a gateway's HTML page, an empty body)
# for an answer with nothing in it: its JSON parser reads a body that is no
# JSON as {}, and EC2's XML parser reads any well-formed page. Unchecked,
# ImportVmImage and ImportImage ended the worker's task on a KeyError, and
# GetImage and DescribeImportImageTasks reported an image with no state and
# no tasks as if AWS had said so; the rest, read by their keys below, ended
# their request on a KeyError (a 500).
ANSWER_HOLDS = {
    "ImportVmImage": ("imageArn",),
    "ImportImage": ("ImportTaskId",),
    "GetImage": ("image", "state", "status"),
    "DescribeImportImageTasks": ("ImportImageTasks",),
    "HeadObject": ("ContentLength",),
    "CreateMultipartUpload": ("UploadId",),
    "GetRole": ("Role", "Arn"),
    "ListRolePolicies": ("PolicyNames",),
    "GetRolePolicy": ("PolicyDocument",),
    "ListAttachedRolePolicies": ("AttachedPolicies",),
    "GetPolicy": ("Policy", "DefaultVersionId"),
    "GetPolicyVersion": ("PolicyVersion", "Document"),
}


def aws_answer(operation, function, args, kwargs):
    """The call's answer; ResponseParserError if it is not one AWS would give."""
    try:
        response = within_budget(function, args, kwargs)
    except KeyError as error:
        # botocore's query parser (IAM's, STS's) looks for its result's
        # element in a well-formed page that is not AWS's, and raises this.
        raise ResponseParserError(f"{operation}'s answer is not AWS's: {error}") from error
    if not holds_what_aws_answers(operation, response):
        raise ResponseParserError(f"{operation}'s answer lacks what AWS always sends")
    return response


def holds_what_aws_answers(operation, response):
    """Whether `response` holds what AWS always answers to `operation` (a value, or a list)."""
    value = response
    for key in ANSWER_HOLDS.get(operation, ()):
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return value not in (None, "")


# -- a time budget around several calls ------------------------------------------

# A call is not started with less time than this left: it could not finish.
MIN_CALL_SECONDS = 1.0

_budget_ends = contextvars.ContextVar("aws_budget_ends", default=None)


class OutOfTime(Exception):  # noqa: N818 (a budget spent, not a failed call)
    """A call not made: the time budget around it (time_budget) was spent.

    Not an AwsError, so that a caller's handling of AWS's answers lets it
    through to whoever set the budget, which says what was left undone.
    """


@contextlib.contextmanager
def time_budget(seconds):
    """Every AWS call within ends by the time `seconds` from now have passed.

    A call gets at most the time left (a nested budget, at most its outer
    one's), and ends as one AWS did not answer in time (ConnectionError,
    outcome unknown) when it runs out; once less than MIN_CALL_SECONDS is
    left, calls raise OutOfTime instead of being made.
    """
    ends = time.monotonic() + seconds
    outer = _budget_ends.get()
    token = _budget_ends.set(ends if outer is None else min(ends, outer))
    try:
        yield
    finally:
        _budget_ends.reset(token)


def within_budget(function, args, kwargs):
    """function(*args, **kwargs), given no more than the time budget has left.

    botocore's timeouts bound each connect and each read, not a call, and not
    the STS AssumeRole or the DNS lookup before it: only the clock bounds the
    whole. So the call runs in a thread of its own, and past the time left
    the caller stops waiting for it. The thread ends within the client's own
    timeouts; its answer, if any, is dropped.
    """
    ends = _budget_ends.get()
    if ends is None:
        return function(*args, **kwargs)
    left = ends - time.monotonic()
    if left < MIN_CALL_SECONDS:
        raise OutOfTime(f"{operation_name(function)} not sent: the time budget was spent")
    answer = Future()

    def call():
        try:
            answer.set_result(function(*args, **kwargs))
        except BaseException as error:  # handed to the caller, whatever it is
            answer.set_exception(error)

    threading.Thread(target=call, name="aws-call-within-budget", daemon=True).start()
    try:
        return answer.result(timeout=left)
    except TimeoutError:
        raise ReadTimeoutError(endpoint_url=function.__self__.meta.endpoint_url) from None


# How people call the services the portal uses (botocore's endpoint prefixes).
SERVICE_NAMES = {
    "imagebuilder": "Image Builder",
    "ec2": "EC2",
    "s3": "S3",
    "sts": "STS",
    "iam": "IAM",
}


def service_name(function):
    """The service a message names: "S3" for a method of an S3 client."""
    model = function.__self__.meta.service_model
    return SERVICE_NAMES.get(model.endpoint_prefix, model.service_id)


def operation_name(function):
    """ImportVmImage for imagebuilder.import_vm_image; None for anything but a client method."""
    client = getattr(function, "__self__", None)
    mapping = getattr(getattr(client, "meta", None), "method_to_api_mapping", None)
    return mapping.get(function.__name__) if mapping else None


def record_call(operation, started, response, *, error_code=""):
    """Count and time one AWS call, and log it with AWS's request ID.

    The log line carries the portal's request ID too (config/logs.py), so
    the click and AWS's `requestId` meet in one line.
    """
    seconds = time.monotonic() - started
    metrics.AWS_CALLS.labels(operation, error_code).inc()
    metrics.AWS_CALL_SECONDS.labels(operation).observe(seconds)
    response = response or {}
    aws_request_id = response.get("ResponseMetadata", {}).get("RequestId", "") or str(
        response.get("requestId", "")
    )
    # Reads are many (the refresher asks about every import in flight); their
    # successes are DEBUG, every write and every error is INFO.
    quiet = not error_code and operation.startswith(("Get", "Describe"))
    logger.log(
        logging.DEBUG if quiet else logging.INFO,
        "AWS %s %s in %.0f ms (AWS request %s)",
        operation,
        error_code or "ok",
        seconds * 1000,
        aws_request_id or "-",
        extra={
            "aws_operation": operation,
            "aws_error_code": error_code,
            "aws_request_id": aws_request_id,
            "duration_ms": round(seconds * 1000, 1),
        },
    )


def translate(error, service=""):
    """An AwsError for any botocore failure, retryable or not; `service` names the service."""
    if isinstance(error, ResponseParserError):
        return not_an_aws_answer(service)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "UnknownError"
        message = details.get("Message") or str(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retryable = code in RETRYABLE_CODES or status in RETRYABLE_HTTP_STATUSES
        if code == str(status) and status in GATEWAY_STATUSES:
            # No AWS error, only a gateway's status (botocore names the error
            # by it): a proxy or load balancer lost AWS's answer, or its own.
            return AwsError(
                code,
                message,
                retryable=True,
                http_status=status,
                answered=False,
                outcome_unknown=True,
            )
        return AwsError(code, message, retryable=retryable, http_status=status)
    if isinstance(error, NoCredentialsError):
        return AwsError(
            "NoCredentials",
            "No AWS credentials configured: give the worker AWS credentials (an instance "
            "or task role, a profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and "
            "submit again.",
            retryable=False,
            answered=False,
        )
    if isinstance(error, NoRegionError):
        return AwsError(
            "NoRegion",
            "No AWS region configured: set AWS_REGION for the worker and submit again.",
            retryable=False,
            answered=False,
        )
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return connection_error(error, service)
    if isinstance(error, ParamValidationError):
        return AwsError("InvalidParameter", str(error), retryable=False)
    return AwsError(type(error).__name__, str(error), retryable=False)


def not_an_aws_answer(service=""):
    """An answer that was no AWS answer at all: a proxy's HTML page, an empty body.

    botocore says so (ResponseParserError) when it cannot parse it, _call when
    a 200 lacks what AWS always sends. The request left, and whatever answered
    may have passed it on to AWS: the outcome is unknown, so the worker asks
    again with the same client token rather than fail the import.
    """
    name = f"AWS {service}" if service else "AWS"
    return AwsError(
        "InvalidResponse",
        f"{name} (or a proxy or gateway in between) answered with something that is not "
        "an AWS answer, such as a web page or nothing at all.",
        retryable=True,
        answered=False,
        outcome_unknown=True,
    )


def connection_error(error, service):
    """No answer from AWS, in plain words (botocore's names the URL, query string and all).

    The code stays ConnectionError either way; what differs is whether the
    request may have reached AWS (see AwsError.outcome_unknown).
    """
    name = f"AWS {service}" if service else "AWS"
    if isinstance(error, BotoConnectionError):
        # Raised before the request was sent (refused, DNS, connect timeout,
        # proxy, TLS handshake): AWS never saw it.
        if isinstance(error, ConnectTimeoutError):
            how = "the connection timed out"
        elif isinstance(error, ProxyConnectionError):
            how = "the connection to the proxy failed"
        elif isinstance(error, SSLError):
            how = "the secure (TLS) connection failed"
        else:
            how = "the connection failed"
        return AwsError(
            "ConnectionError", f"Could not reach {name}: {how}.", retryable=True, answered=False
        )
    # HTTPClientError: the request was sent, or may have been, when the
    # connection was lost or the answer did not come in time.
    if isinstance(error, ReadTimeoutError):
        message = f"{name} did not answer in time."
    elif isinstance(error, ConnectionClosedError):
        message = f"{name} did not answer: the connection closed before its answer came."
    else:
        message = f"{name} did not answer: the connection failed while the request was under way."
    return AwsError(
        "ConnectionError", message, retryable=True, answered=False, outcome_unknown=True
    )


def is_throttling(error):
    return error.code in THROTTLING_CODES or error.http_status == 429


# Variables through which boto3's default chain finds credentials without
# asking the network (the instance metadata service is deliberately not
# probed: on a laptop it only times out).
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def aws_configured(environ=os.environ):
    """True when AWS credentials and a region are configured for real AWS."""
    region = (
        environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or botocore.session.Session().get_config_variable("region")  # ~/.aws/config
    )
    credentials_file = Path(
        environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    ).expanduser()
    has_credentials = any(environ.get(name) for name in CREDENTIAL_VARIABLES) or (
        credentials_file.is_file() and credentials_file.stat().st_size > 0
    )
    return bool(region and has_credentials)


def uses_local_emulator(environ=os.environ):
    """True when Image Builder calls go to an endpoint on this machine."""
    endpoint = environ.get("AWS_ENDPOINT_URL_IMAGEBUILDER") or environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return False
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
