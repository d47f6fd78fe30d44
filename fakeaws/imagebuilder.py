"""EC2 Image Builder over REST-JSON: ImportVmImage and GetImage.

Requests are judged by botocore's model of the service (validation.py):
routes, members, types and constraints all come from it, and HTTP statuses
from its error shapes. Only the rules the API reference states and the model
does not are written here, each marked so.
"""

import functools
import json

from . import validation
from .query import scalar
from .state import iso_time, new_request_id
from .validation import ShapeError
from .wire import ServiceError, json_response

SERVICE = "imagebuilder"
OPERATIONS = ("ImportVmImage", "GetImage")

# A guess: which error a request that breaks the model's constraints gets.
# Neither the API reference nor the model says; ImportVmImage's model lists
# ClientException as its only client error, so it answers with the
# ValidationException wording of AWS's other services.
VALIDATION_ERROR = "ClientException"
# A guess: a body that cannot be read as the input shape (not JSON, or a
# member of the wrong JSON type) fails before validation, as AWS's other
# JSON services answer it.
SERIALIZATION_ERROR = "SerializationException"
# From the API reference, not the model: "For the first three nodes you can
# assign any positive integer value, including zero, with an upper limit of
# 2^30-1, or 1073741823 for each node."
SEMANTIC_VERSION_NODE_MAX = 2**30 - 1
# No separate rule for tag keys starting with "aws:": the reference states it,
# and so does the model's TagKey pattern, ^(?!aws:)...$.

# ThrottlingException is one of AWS's common errors (HTTP 400), not in the
# service's model; botocore retries it by its code.
COMMON_ERROR_STATUSES = {"ThrottlingException": 400, SERIALIZATION_ERROR: 400}


@functools.cache
def routes():
    """(method, path) -> operation, as botocore's model routes them."""
    found = {}
    for operation in OPERATIONS:
        http = validation.operation_model(SERVICE, operation).http
        found[http["method"], http["requestUri"]] = operation
    return found


def operation_for(request):
    return routes().get((request.method, request.path))


def client_token_of(request):
    """The clientToken of an ImportVmImage body, for the call counts; None if unreadable."""
    try:
        token = request.json().get("clientToken")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None


def handle(world, operation, request):
    handler = {"ImportVmImage": import_vm_image, "GetImage": get_image}[operation]
    try:
        return handler(world, request)
    except ServiceError as error:
        return error_response(error.code, error.message)


def error_response(code, message):
    statuses = {**COMMON_ERROR_STATUSES, **validation.error_statuses(SERVICE)}
    return json_response(
        statuses.get(code, 400),
        {"message": message},
        {"x-amzn-ErrorType": code, "x-amzn-RequestId": new_request_id()},
    )


def ok(document):
    return json_response(200, document, {"x-amzn-RequestId": document["requestId"]})


def valid_members(operation, request):
    """The operation's input members as the model reads them, or the service's refusal.

    Members the model does not define are ignored, not refused. A guess: AWS
    documents neither; its JSON services are seen to drop unknown members,
    and the SDKs' rule that adding a member is a compatible change relies on
    it. JSON null reads as an absent member.
    """
    shape = validation.operation_model(SERVICE, operation).input_shape
    try:
        members = input_members(shape, request)
        broken = validation.violations(shape, members)
    except ShapeError as error:
        raise ServiceError(SERIALIZATION_ERROR, unreadable(error)) from None
    if broken:
        raise ServiceError(VALIDATION_ERROR, validation.describe(broken))
    return members


def input_members(shape, request):
    """Members from where the model binds them: the query string, headers or the JSON body."""
    try:
        body = request.json()
    except ValueError as error:
        raise ShapeError((), request.body, f"a JSON body ({error})") from None
    if not isinstance(body, dict):
        raise ShapeError((), body, "structure")
    members = {}
    for name, member_shape in shape.members.items():
        bound_to = member_shape.serialization.get("location")
        wire_name = member_shape.serialization.get("name", name)
        if bound_to == "querystring":
            text = request.query.get(wire_name)
            value = None if text is None else scalar(member_shape, text, (name,))
        elif bound_to == "header":
            text = request.headers.get(wire_name.lower())
            value = None if text is None else scalar(member_shape, text, (name,))
        else:
            value = body.get(name)
        if value is not None:
            members[name] = value
    return members


def unreadable(error):
    # A guess: the wording; AWS's other JSON services name the Java types.
    where = validation.coral_path(error.location)
    if not where:
        return f"The request body cannot be read: expected {error.expected}."
    return f"Cannot read '{where}': expected {error.expected}, found {json.dumps(error.value)}."


# -- ImportVmImage ----------------------------------------------------------


def import_vm_image(world, request):
    members = valid_members("ImportVmImage", request)
    check_semantic_version(members["semanticVersion"])
    client_token = members["clientToken"]
    with world.lock:
        original = world.images.get(world.image_tokens.get(client_token))
        if original is not None:
            # The service's promise: a repeated token answers the first response
            # and creates nothing, but only for the very same request.
            if original.request != members:
                raise ServiceError(
                    "IdempotentParameterMismatchException",
                    f"The clientToken {client_token!r} was already used with different "
                    "parameters; use a new clientToken for a different request.",
                )
            return ok(original.response)
        if members["vmImportTaskId"] not in world.tasks:
            # A guess: the code and message for a VM import task that does not exist.
            raise ServiceError(
                "ClientException",
                f"vmImportTaskId: the VM import task {members['vmImportTaskId']!r} does not "
                f"exist in {request.region}.",
            )
        image = world.create_image(
            request=members, region=request.region, request_id=new_request_id()
        )
    return ok(image.response)


def check_semantic_version(version):
    """The API reference's node limit; the model's pattern has already passed."""
    for node in version.split("."):
        digits = node.lstrip("0") or "0"
        # The length check first keeps int() away from absurdly long input.
        if len(digits) > 10 or int(digits) > SEMANTIC_VERSION_NODE_MAX:
            # A guess: the code (the model's InvalidVersionNumberException would
            # fit, but ImportVmImage does not list it) and the wording.
            raise ServiceError(
                VALIDATION_ERROR,
                f"1 validation error detected: Value '{version}' at 'semanticVersion' "
                "failed to satisfy constraint: each of the major, minor and patch "
                f"nodes must be at most {SEMANTIC_VERSION_NODE_MAX} (2^30-1)",
            )


# -- GetImage ---------------------------------------------------------------


def get_image(world, request):
    arn = valid_members("GetImage", request)["imageBuildVersionArn"]
    with world.lock:
        image = world.find_image(arn)
        if image is None:
            # A guess: the message.
            raise ServiceError("ResourceNotFoundException", f"The image {arn} does not exist.")
        document = {"requestId": new_request_id(), "image": describe_image(world, image)}
    return ok(document)


def describe_image(world, image):
    state = world.image_state(image)
    task = world.tasks[image.task_id]
    described = {
        "arn": image.arn,
        "type": "AMI",
        "name": image.name,
        "version": image.version,
        "platform": image.platform,
        "enhancedImageMetadataEnabled": False,
        "state": {"status": state.status},
        "dateCreated": iso_time(image.created_at),
        "outputResources": {"amis": []},
        "tags": image.tags,
        "buildType": "IMPORT",
        "imageSource": "IMPORTED",
    }
    if image.os_version:
        described["osVersion"] = image.os_version
    if state.reason:
        described["state"]["reason"] = state.reason
    if state.status == "AVAILABLE":
        described["outputResources"]["amis"] = [
            {
                "region": image.region,
                "image": task.image_id,
                "name": f"{image.name} {image.version}",
                "description": image.description or task.description,
                "state": {"status": "AVAILABLE"},
                "accountId": image.account_id,
            }
        ]
    return described
