"""EC2 Image Builder over REST-JSON: ImportVmImage and GetImage.

Requests are validated by the portal's own `ImportVmImageForm`, the one
source of the API's constraints; nothing here repeats a rule.
"""

import re

from imports.forms import ImportVmImageForm, RequestShapeError

from .state import iso_time, new_request_id
from .wire import ServiceError, json_response

SERVICE = "imagebuilder"
# (method, path) -> operation, as botocore's model routes them.
ROUTES = {("PUT", "/ImportVmImage"): "ImportVmImage", ("GET", "/GetImage"): "GetImage"}

# HTTP statuses from botocore's model of the service's error shapes.
# ThrottlingException is the common AWS error, which botocore retries by its
# code whatever the status.
ERROR_STATUSES = {
    "ClientException": 400,
    "IdempotentParameterMismatchException": 400,
    "InvalidRequestException": 400,
    "InvalidParameterException": 400,
    "ThrottlingException": 400,
    "ForbiddenException": 403,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "CallRateLimitExceededException": 429,
    "ServiceException": 500,
    "ServiceUnavailableException": 503,
}
IMAGE_VERSION_ARN = re.compile(
    r"arn:aws[^:]*:imagebuilder:[^:]+:[0-9]{12}:image/[a-z0-9_-]+/[0-9]+\.[0-9]+\.[0-9]+(/[0-9]+)?"
)


def operation_for(request):
    return ROUTES.get((request.method, request.path))


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
    return json_response(
        ERROR_STATUSES.get(code, 400),
        {"message": message},
        {"x-amzn-ErrorType": code, "x-amzn-RequestId": new_request_id()},
    )


def ok(document):
    return json_response(200, document, {"x-amzn-RequestId": document["requestId"]})


# -- ImportVmImage ----------------------------------------------------------


def import_vm_image(world, request):
    members = validated_members(request)
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
            raise ServiceError(
                "ClientException",
                f"vmImportTaskId: the VM import task {members['vmImportTaskId']!r} does not "
                f"exist in {request.region}.",
            )
        image = world.create_image(
            request=members, region=request.region, request_id=new_request_id()
        )
    return ok(image.response)


def validated_members(request):
    """The request's members as sent, or a ClientException naming each broken rule."""
    try:
        body = request.json()
    except ValueError as error:
        raise ServiceError(
            "ClientException", f"The request body is not valid JSON: {error}"
        ) from None
    try:
        form = ImportVmImageForm.from_json(body)
    except RequestShapeError as error:
        raise ServiceError("ClientException", describe_errors(error.errors)) from None
    if not form.is_valid():
        raise ServiceError("ClientException", describe_errors(form.error_map()))
    # JSON null reads as an absent member, as the form reads it.
    return {member: value for member, value in body.items() if value is not None}


def describe_errors(error_map):
    problems = [
        f"{member}: {message}" for member, messages in error_map.items() for message in messages
    ]
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + " ".join(problems)


# -- GetImage ---------------------------------------------------------------


def get_image(world, request):
    arn = request.query.get("imageBuildVersionArn", "")
    if not IMAGE_VERSION_ARN.fullmatch(arn):
        raise ServiceError(
            "InvalidRequestException",
            f"imageBuildVersionArn: {arn!r} is not an image version or build version ARN.",
        )
    with world.lock:
        image = world.find_image(arn)
        if image is None:
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
