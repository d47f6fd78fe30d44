"""EC2 VM import over the EC2 query protocol: ImportImage, DescribeImportImageTasks,
CancelImportTask. Answers are XML in EC2's 2016-11-15 namespace."""

import base64
import binascii
import re
import xml.etree.ElementTree as ET

from .state import ImportTask, hex_id, new_request_id
from .wire import ServiceError, indexed, indexed_values, xml_element, xml_response

SERVICE = "ec2"
NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
OPERATIONS = ("ImportImage", "DescribeImportImageTasks", "CancelImportTask")

# EC2 never answers with Image Builder's error names: a fault asked for by
# one of those arrives as the EC2 error that means the same.
EC2_CODES = {
    "ServiceException": "InternalError",
    "ServiceUnavailableException": "Unavailable",
    "ThrottlingException": "RequestLimitExceeded",
    "CallRateLimitExceededException": "RequestLimitExceeded",
}
ERROR_STATUSES = {
    "InternalError": 500,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "RequestLimitExceeded": 503,
    "DryRunOperation": 412,
    "UnauthorizedOperation": 403,
}
TASK_ID = re.compile(r"import-ami-[0-9a-f]{17}")
PLATFORMS = ("Windows", "Linux")
ARCHITECTURES = ("x86_64", "arm64", "i386")
TASK_STATES = ("active", "completed", "deleting", "deleted")
DISK_SIZE_BYTES = 8 * 1024**3
MAX_RESULTS_LIMIT = 1000


def handle(world, operation, request):
    handler = {
        "ImportImage": import_image,
        "DescribeImportImageTasks": describe_import_image_tasks,
        "CancelImportTask": cancel_import_task,
    }[operation]
    params = request.form
    try:
        if params.get("DryRun") == "true":
            raise ServiceError(
                "DryRunOperation", "Request would have succeeded, but DryRun flag is set."
            )
        return answer(operation, handler(world, params))
    except ServiceError as error:
        return error_response(error.code, error.message)


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


def import_image(world, params):
    client_token = params.get("ClientToken")
    request = {name: value for name, value in params.items() if name not in ("Action", "Version")}
    with world.lock:
        if client_token in world.task_tokens:
            task = world.tasks[world.task_tokens[client_token]]
            if task.request != request:
                raise ServiceError(
                    "IdempotentParameterMismatch",
                    f"The client token {client_token!r} was already used with other parameters.",
                )
        else:
            task = world.add_task(new_task(world, params, request))
        return describe_task(world, task)


def new_task(world, params, request):
    disks = [disk_of(container) for container in indexed(params, "DiskContainer")]
    if not disks:
        raise ServiceError(
            "MissingParameter", "The request must contain the parameter DiskContainer."
        )
    platform = params.get("Platform") or "Linux"
    architecture = params.get("Architecture") or "x86_64"
    check_choice("Platform", platform, PLATFORMS)
    check_choice("Architecture", architecture, ARCHITECTURES)
    return ImportTask(
        task_id=hex_id("import-ami-"),
        created_at=world.clock.now(),
        description=params.get("Description") or "",
        platform=platform,
        architecture=architecture,
        license_type=params.get("LicenseType") or "BYOL",
        image_id=hex_id("ami-"),
        disks=disks,
        tags=task_tags(params),
        client_token=params.get("ClientToken"),
        request=request,
    )


def disk_of(container):
    bucket, key, url = (
        container.get("UserBucket.S3Bucket"),
        container.get("UserBucket.S3Key"),
        container.get("Url"),
    )
    if not (url or (bucket and key) or container.get("SnapshotId")):
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


def task_tags(params):
    tags = []
    for spec in indexed(params, "TagSpecification"):
        if spec.get("ResourceType") != "import-image-task":
            raise ServiceError(
                "InvalidParameterValue",
                f"TagSpecification ResourceType {spec.get('ResourceType')!r} is not valid "
                "here; use import-image-task.",
            )
        tags += [(tag["Key"], tag.get("Value", "")) for tag in indexed(spec, "Tag")]
    return tags


def check_choice(name, value, choices):
    if value not in choices:
        raise ServiceError(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {name} is invalid; use one of {', '.join(choices)}.",
        )


# -- DescribeImportImageTasks -----------------------------------------------


def describe_import_image_tasks(world, params):
    with world.lock:
        tasks = named_tasks(world, indexed_values(params, "ImportTaskId"))
        for task_filter in indexed(params, "Filters"):
            values = [v for name, v in task_filter.items() if name.startswith("Value.")]
            tasks = [
                task for task in tasks if matches(world, task, task_filter.get("Name"), values)
            ]
        start, end = page_bounds(params, len(tasks))
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
    raise ServiceError(
        "InvalidParameterValue",
        f"The filter {name!r} is invalid; use task-state, tag-key or tag:<key>.",
    )


def page_bounds(params, total):
    start = decode_token(params["NextToken"]) if params.get("NextToken") else 0
    max_results = params.get("MaxResults")
    if max_results is None:
        return start, total
    if not max_results.isdigit() or not 1 <= int(max_results) <= MAX_RESULTS_LIMIT:
        raise ServiceError(
            "InvalidParameterValue",
            f"Value ({max_results}) for parameter MaxResults is invalid; "
            f"use 1 to {MAX_RESULTS_LIMIT}.",
        )
    return start, min(total, start + int(max_results))


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
        "diskImageSize": DISK_SIZE_BYTES,
        "format": disk["format"],
        "status": state.status,
        "url": disk.get("url"),
    }
    if disk.get("bucket"):
        detail["userBucket"] = {"s3Bucket": disk["bucket"], "s3Key": disk["key"]}
    if state.status == "completed":
        # Derived from the AMI so that every read names the same snapshot.
        detail["snapshotId"] = "snap-" + task.image_id.removeprefix("ami-")
    return detail


# -- CancelImportTask -------------------------------------------------------


def cancel_import_task(world, params):
    task_id = params.get("ImportTaskId")
    if not task_id:
        raise ServiceError(
            "MissingParameter", "The request must contain the parameter ImportTaskId."
        )
    with world.lock:
        [task] = named_tasks(world, [task_id])
        previous = world.task_state(task).status
        if previous != "active":
            raise ServiceError(
                "IncorrectState",
                f"The import task {task_id} cannot be cancelled: it is {previous}.",
            )
        task.cancelled_at = world.clock.now()
        task.cancel_reason = params.get("CancelReason")
    return {"importTaskId": task_id, "previousState": previous, "state": "deleting"}
