"""EC2 VM import over the EC2 query protocol: ImportImage, DescribeImportImageTasks,
CancelImportTask, and CreateTags/DescribeTags on the AMIs and snapshots the
imports make. Answers are XML in EC2's 2016-11-15 namespace.

Parameters are read back through botocore's model of EC2 (query.py) and
checked against it (validation.py). EC2's model constrains little (types,
and enums such as TagSpecification's ResourceType); the rules the API
reference adds are written here, each marked so. Error codes are the ones
EC2's API reference lists ("Error codes for the Amazon EC2 API").
"""

import base64
import binascii
import re
import xml.etree.ElementTree as ET

from botocore.exceptions import BotoCoreError, ClientError

from . import query, validation
from .disks import inspect_disk
from .state import ImportTask, hex_id, new_request_id
from .validation import ShapeError
from .wire import ServiceError, xml_element, xml_response

SERVICE = "ec2"
NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
OPERATIONS = (
    "ImportImage",
    "DescribeImportImageTasks",
    "CancelImportTask",
    "CreateTags",
    "DescribeTags",
)

# EC2 never answers with Image Builder's error names: a fault asked for by
# one of those arrives as the EC2 error that means the same.
EC2_CODES = {
    "ServiceException": "InternalError",
    "ServiceUnavailableException": "Unavailable",
    "ThrottlingException": "RequestLimitExceeded",
    "CallRateLimitExceededException": "RequestLimitExceeded",
}
# EC2's model has no error shapes. The reference lists client errors (4xx)
# and server errors (5xx) without their statuses; these are a guess within
# that split, 400 for every client error not named.
ERROR_STATUSES = {
    "InternalError": 500,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "RequestLimitExceeded": 503,
    "DryRunOperation": 412,
    "UnauthorizedOperation": 403,
}
TASK_ID = re.compile(r"import-ami-[0-9a-f]{17}")
# From the API reference, not the model (whose members are plain strings):
# ImportImage's Platform and Architecture valid values.
PLATFORMS = ("Windows", "Linux")
ARCHITECTURES = ("i386", "x86_64", "arm64")
DISK_SIZE_BYTES = 8 * 1024**3
# A guess: the bounds of DescribeImportImageTasks' MaxResults (the model and
# the reference give none).
MAX_RESULTS_LIMIT = 1000


def handle(world, operation, request):
    handler = {
        "ImportImage": import_image,
        "DescribeImportImageTasks": describe_import_image_tasks,
        "CancelImportTask": cancel_import_task,
        "CreateTags": create_tags,
        "DescribeTags": describe_tags,
    }[operation]
    try:
        members = valid_members(operation, request.form)
        if members.get("DryRun"):
            raise ServiceError(
                "DryRunOperation", "Request would have succeeded, but DryRun flag is set."
            )
        return answer(operation, handler(world, members))
    except ServiceError as error:
        return error_response(error.code, error.message)


def valid_members(operation, params):
    """The operation's members, typed, under the model's names; or EC2's refusal."""
    shape = validation.operation_model(SERVICE, operation).input_shape
    try:
        members, unknown = query.decode(shape, params, ec2=True)
        broken = validation.violations(shape, members)
    except ShapeError as error:
        # A guess: the wording. The code is EC2's for a value it cannot use.
        raise ServiceError(
            "InvalidParameterValue",
            f"Value ({error.value}) for parameter {validation.model_path(error.location)} "
            f"is invalid. Expected type: {error.expected}.",
        ) from None
    if unknown:
        # EC2 documents UnknownParameter; a guess: the wording.
        raise ServiceError("UnknownParameter", f"The parameter {unknown[0]} is not recognized")
    if broken:
        first = broken[0]
        # A guess: EC2 does not answer in the ValidationException words of
        # AWS's JSON services, but names one bad parameter.
        raise ServiceError(
            "InvalidParameterValue",
            f"Value ({validation.java_text(first.value)}) for parameter "
            f"{validation.model_path(first.location)} is invalid. {first.constraint}.",
        )
    return members


def answer(operation, result):
    root = xml_element(f"{operation}Response", {"requestId": new_request_id()}, NAMESPACE)
    for name, value in result.items():
        if value is not None:
            root.append(xml_element(name, value))
    return xml_response(200, root)


def error_response(code, message):
    code = EC2_CODES.get(code, code)
    root = ET.Element("Response")
    errors = ET.SubElement(root, "Errors")
    errors.append(xml_element("Error", {"Code": code, "Message": message}))
    ET.SubElement(root, "RequestID").text = new_request_id()
    return xml_response(ERROR_STATUSES.get(code, 400), root)


# -- ImportImage ------------------------------------------------------------


def import_image(world, members):
    client_token = members.get("ClientToken")
    with world.lock:
        task = repeated_task(world, client_token, members)
    if task is None:
        # S3 is read outside the lock; a race on the same token is settled below.
        task = new_task(world, members)
    with world.lock:
        task = repeated_task(world, client_token, members) or world.add_task(task)
        return describe_task(world, task)


def repeated_task(world, client_token, members):
    """The task an earlier call with this ClientToken started, if any."""
    if client_token not in world.task_tokens:
        return None
    task = world.tasks[world.task_tokens[client_token]]
    if task.request != members:
        raise ServiceError(
            "IdempotentParameterMismatch",
            f"The client token {client_token!r} was already used with other parameters.",
        )
    return task


def new_task(world, members):
    disks = [disk_of(container) for container in members.get("DiskContainers", [])]
    if not disks:
        # The reference: "DiskContainers ... Required: No", yet a VM import
        # needs a disk. A guess: EC2's MissingParameter and its wording.
        raise ServiceError(
            "MissingParameter", "The request must contain the parameter DiskContainer."
        )
    platform = members.get("Platform") or "Linux"
    architecture = members.get("Architecture") or "x86_64"
    check_choice("Platform", platform, PLATFORMS)
    check_choice("Architecture", architecture, ARCHITECTURES)
    failures = [read_disk(world, disk) for disk in disks]
    return ImportTask(
        task_id=hex_id("import-ami-"),
        created_at=world.clock.now(),
        description=members.get("Description") or "",
        platform=platform,
        architecture=architecture,
        license_type=members.get("LicenseType") or "BYOL",
        image_id=hex_id("ami-"),
        disks=disks,
        tags=task_tags(members),
        client_token=members.get("ClientToken"),
        request=members,
        failure=next((failure for failure in failures if failure), None),
    )


def read_disk(world, disk):
    """Read the disk's header from S3, when the emulator has one; EC2's failure or None.

    Without S3 (no --s3-endpoint) every disk is taken as it is declared.
    """
    bucket, key = disk.get("bucket"), disk.get("key")
    if not bucket and (disk.get("url") or "").startswith("s3://"):
        # The reference: a Url may be an Amazon S3 URL (s3://..).
        bucket, _, key = disk["url"].removeprefix("s3://").partition("/")
    if world.s3 is None or not (bucket and key):
        return None
    try:
        found = inspect_disk(world.s3, bucket, key, disk["format"])
    except (BotoCoreError, ClientError) as error:
        raise ServiceError("InternalError", f"The emulator could not read S3: {error}") from None
    if found.size is not None:
        disk["size"] = found.size
    return found.failure


def disk_of(container):
    bucket = container.get("UserBucket", {}).get("S3Bucket")
    key = container.get("UserBucket", {}).get("S3Key")
    url = container.get("Url")
    if not (url or (bucket and key) or container.get("SnapshotId")):
        # A guess: the code and wording.
        raise ServiceError(
            "InvalidParameter",
            "Each DiskContainer needs a Url, a UserBucket (S3Bucket and S3Key) or a SnapshotId.",
        )
    return {
        "format": (container.get("Format") or "VMDK").upper(),
        "bucket": bucket,
        "key": key,
        "url": url,
        "description": container.get("Description"),
    }


def task_tags(members):
    tags = []
    for spec in members.get("TagSpecifications", []):
        # The model allows every taggable resource type; ImportImage tags only its task.
        if spec.get("ResourceType") != "import-image-task":
            # A guess: the wording.
            raise ServiceError(
                "InvalidParameterValue",
                f"TagSpecification ResourceType {spec.get('ResourceType')!r} is not valid "
                "here; use import-image-task.",
            )
        tags += [(tag.get("Key", ""), tag.get("Value", "")) for tag in spec.get("Tags", [])]
    return tags


def check_choice(name, value, choices):
    if value not in choices:
        # A guess: the wording.
        raise ServiceError(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {name} is invalid; use one of {', '.join(choices)}.",
        )


# -- DescribeImportImageTasks -----------------------------------------------


def describe_import_image_tasks(world, members):
    with world.lock:
        tasks = named_tasks(world, members.get("ImportTaskIds", []))
        for task_filter in members.get("Filters", []):
            name, values = task_filter.get("Name"), task_filter.get("Values", [])
            tasks = [task for task in tasks if matches(world, task, name, values)]
        start, end = page_bounds(members, len(tasks))
        for task in tasks[start:end]:
            world.list_task(task)
        described = [describe_task(world, task) for task in tasks[start:end]]
    next_token = encode_token(end) if end < len(tasks) else None
    return {"importImageTaskSet": described, "nextToken": next_token}


def named_tasks(world, task_ids):
    if not task_ids:
        return list(world.tasks.values())
    for task_id in task_ids:
        if not TASK_ID.fullmatch(task_id):
            raise ServiceError(
                "InvalidConversionTaskId.Malformed",
                f"The import task ID {task_id!r} is malformed.",
            )
        if task_id not in world.tasks:
            # EC2's list of error codes has no InvalidConversionTaskId.NotFound:
            # it documents InvalidConversionTaskId ("is not valid") and
            # InvalidConversionTaskId.Malformed. A guess: that the first is
            # the answer for a well-formed ID that names no task (EC2 has also
            # been seen to answer .Malformed for a task that no longer exists).
            raise ServiceError(
                "InvalidConversionTaskId", f"The import task ID {task_id!r} does not exist."
            )
    return [world.tasks[task_id] for task_id in dict.fromkeys(task_ids)]


def matches(world, task, name, values):
    if name == "task-state":
        return world.task_state(task).status in values
    if name == "tag-key":
        return any(key in values for key, _ in task.tags)
    if name and name.startswith("tag:"):
        return any(key == name[4:] and value in values for key, value in task.tags)
    # A guess: the code (EC2 also lists InvalidFilter) and the wording.
    raise ServiceError(
        "InvalidParameterValue",
        f"The filter {name!r} is invalid; use task-state, tag-key or tag:<key>.",
    )


def page_bounds(members, total):
    start = decode_token(members["NextToken"]) if members.get("NextToken") else 0
    max_results = members.get("MaxResults")
    if max_results is None:
        return start, total
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise ServiceError(
            "InvalidMaxResults",
            f"Value ({max_results}) for parameter MaxResults is invalid; "
            f"use 1 to {MAX_RESULTS_LIMIT}.",
        )
    return start, min(total, start + max_results)


def encode_token(offset):
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_token(token):
    try:
        label, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if label == "offset" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ServiceError("InvalidNextToken", f"The NextToken {token!r} is not valid.")


def describe_task(world, task):
    state = world.task_state(task)
    completed = state.status == "completed"
    return {
        "architecture": task.architecture,
        "description": task.description or None,
        "imageId": task.image_id if completed else None,
        "importTaskId": task.task_id,
        "licenseType": task.license_type,
        "platform": task.platform,
        "progress": state.progress,
        "snapshotDetailSet": [snapshot(task, disk, state) for disk in task.disks],
        "status": state.status,
        "statusMessage": state.message,
        "tagSet": [{"key": key, "value": value} for key, value in task.tags] or None,
    }


def snapshot(task, disk, state):
    detail = {
        "description": disk.get("description"),
        "diskImageSize": disk.get("size", DISK_SIZE_BYTES),
        "format": disk["format"],
        "status": state.status,
        "url": disk.get("url"),
    }
    if disk.get("bucket"):
        detail["userBucket"] = {"s3Bucket": disk["bucket"], "s3Key": disk["key"]}
    if state.status == "completed":
        detail["snapshotId"] = snapshot_id(task)
    return detail


def snapshot_id(task):
    # Derived from the AMI so that every read names the same snapshot.
    return "snap-" + task.image_id.removeprefix("ami-")


# -- CancelImportTask -------------------------------------------------------


def cancel_import_task(world, members):
    task_id = members.get("ImportTaskId")
    if not task_id:
        # The model and the reference mark ImportTaskId optional, but there is
        # nothing to cancel without it. A guess: the code and wording.
        raise ServiceError(
            "MissingParameter", "The request must contain the parameter ImportTaskId."
        )
    with world.lock:
        [task] = named_tasks(world, [task_id])
        previous = world.task_state(task).status
        if previous != "active":
            # A guess: the code (EC2 also lists DeleteConversionTaskError) and wording.
            raise ServiceError(
                "IncorrectState",
                f"The import task {task_id} cannot be cancelled: it is {previous}.",
            )
        task.cancelled_at = world.clock.now()
        task.cancel_reason = members.get("CancelReason")
    return {"importTaskId": task_id, "previousState": previous, "state": "deleting"}


# -- CreateTags, DescribeTags: on the AMIs and snapshots of completed tasks ----

RESOURCE_TYPES = {"ami-": "image", "snap-": "snapshot"}
# From the API reference, not the model: a tag key may not begin with aws:.
RESERVED_TAG_PREFIX = "aws:"


def create_tags(world, members):
    resources = members.get("Resources", [])
    tags = members.get("Tags", [])
    with world.lock:
        known = imported_resources(world)
        for resource_id in resources:
            check_resource(resource_id, known)
        for tag in tags:
            if tag.get("Key", "").lower().startswith(RESERVED_TAG_PREFIX):
                # A guess: the code (EC2 lists InvalidParameterValue) and wording.
                raise ServiceError(
                    "InvalidParameterValue",
                    f"Tag keys starting with 'aws:' are reserved for internal use: {tag['Key']!r}",
                )
        for resource_id in resources:
            on_resource = world.resource_tags.setdefault(resource_id, {})
            on_resource.update({tag["Key"]: tag.get("Value", "") for tag in tags})
    return {"return": "true"}


def imported_resources(world):
    """The AMI and snapshot ids of every completed task: what may be tagged."""
    ids = set()
    for task in world.tasks.values():
        if world.task_state(task).status == "completed":
            ids.add(task.image_id)
            ids.add(snapshot_id(task))
    return ids


def check_resource(resource_id, known):
    prefix = next((p for p in RESOURCE_TYPES if resource_id.startswith(p)), None)
    if prefix is None:
        # EC2's codes: InvalidID for an id of no known kind.
        raise ServiceError("InvalidID", f"The ID '{resource_id}' is not valid")
    if resource_id not in known:
        code = "InvalidAMIID.NotFound" if prefix == "ami-" else "InvalidSnapshot.NotFound"
        raise ServiceError(code, f"The resource ID '{resource_id}' does not exist")


def describe_tags(world, members):
    wanted = {}
    for tag_filter in members.get("Filters", []):
        name = tag_filter.get("Name")
        if name not in ("resource-id", "key", "resource-type"):
            # A guess: the wording. DescribeTags has more filters; these are
            # the ones anyone asks of imported AMIs and snapshots.
            raise ServiceError("InvalidParameterValue", f"The filter {name!r} is not supported.")
        wanted[name] = set(tag_filter.get("Values", []))
    with world.lock:
        described = [
            {
                "resourceId": resource_id,
                "resourceType": resource_type(resource_id),
                "key": key,
                "value": value,
            }
            for resource_id, tags in sorted(world.resource_tags.items())
            for key, value in sorted(tags.items())
        ]
    names = {"resource-id": "resourceId", "key": "key", "resource-type": "resourceType"}
    for name, values in wanted.items():
        described = [tag for tag in described if tag[names[name]] in values]
    return {"tagSet": described}


def resource_type(resource_id):
    return next(kind for prefix, kind in RESOURCE_TYPES.items() if resource_id.startswith(prefix))
