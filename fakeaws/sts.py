"""STS AssumeRole over the query protocol: fake temporary credentials.

Parameters are read back through botocore's model of STS (query.py) and
checked against it (validation.py): RoleSessionName's length and pattern,
DurationSeconds' bounds and the rest are the model's. Each call is recorded
(ExternalId included) so that a test can check what the portal sent when a
team's AWS target names a role to assume.
"""

import re
import secrets
import xml.etree.ElementTree as ET

from . import query, validation
from .state import iso_time, new_request_id
from .validation import ShapeError
from .wire import ServiceError, xml_element, xml_response

SERVICE = "sts"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
OPERATIONS = ("AssumeRole",)
# A guess: STS refuses a RoleArn that passes the model (any 20 to 2048
# characters) but names no IAM role.
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)")
# From the API reference, not the model: "By default, the value is set to 3600 seconds."
DURATION_DEFAULT = 3600

STS_CODES = {
    "ServiceException": "InternalFailure",
    "ServiceUnavailableException": "ServiceUnavailable",
    "ThrottlingException": "Throttling",
    "CallRateLimitExceededException": "Throttling",
}
# AWS's common errors, which the model does not list; its own error shapes
# (MalformedPolicyDocument, RegionDisabledException...) carry their statuses.
COMMON_ERROR_STATUSES = {"AccessDenied": 403, "InternalFailure": 500, "ServiceUnavailable": 503}


def handle(world, operation, request):
    try:
        return answer(operation, assume_role(world, valid_members(operation, request.form)))
    except ServiceError as error:
        return error_response(error.code, error.message)


def valid_members(operation, params):
    """The operation's members, typed, under the model's names; or STS's refusal.

    A guess: parameters the model does not define are ignored, as AWS's
    JSON services ignore unknown members (EC2, unlike them, documents
    UnknownParameter).
    """
    shape = validation.operation_model(SERVICE, operation).input_shape
    try:
        members, _unknown = query.decode(shape, params, ec2=False)
        broken = validation.violations(shape, members)
    except ShapeError as error:
        # A guess: AWS's common InvalidParameterValue and its wording.
        raise ServiceError(
            "InvalidParameterValue",
            f"Value '{error.value}' at '{validation.coral_path(error.location)}' is not a "
            f"valid {error.expected}.",
        ) from None
    if broken:
        # ValidationError, in the words STS answers with.
        raise ServiceError("ValidationError", validation.describe(broken))
    return members


def answer(operation, result):
    root = xml_element(f"{operation}Response", {}, NAMESPACE)
    root.append(xml_element(f"{operation}Result", result))
    root.append(xml_element("ResponseMetadata", {"RequestId": new_request_id()}))
    return xml_response(200, root)


def error_response(code, message):
    code = STS_CODES.get(code, code)
    statuses = {**COMMON_ERROR_STATUSES, **validation.error_statuses(SERVICE)}
    status = statuses.get(code, 400)
    root = ET.Element("ErrorResponse", {"xmlns": NAMESPACE})
    error = {"Type": "Receiver" if status >= 500 else "Sender", "Code": code, "Message": message}
    root.append(xml_element("Error", error))
    ET.SubElement(root, "RequestId").text = new_request_id()
    return xml_response(status, root)


def assume_role(world, members):
    role_arn = members["RoleArn"]
    session_name = members["RoleSessionName"]
    role = ROLE_ARN.fullmatch(role_arn)
    if not role:
        # A guess: the wording.
        raise ServiceError("ValidationError", f"{role_arn} is not a valid IAM role ARN.")
    duration = members.get("DurationSeconds", DURATION_DEFAULT)
    with world.lock:
        world.assumed_roles.append(
            {
                "RoleArn": role_arn,
                "RoleSessionName": session_name,
                "ExternalId": members.get("ExternalId"),
                "DurationSeconds": duration,
            }
        )
        expiration = iso_time(world.clock.now() + duration)
    account_id, role_name = role.groups()
    role_id = "AROA" + secrets.token_hex(8).upper()
    return {
        "Credentials": {
            "AccessKeyId": "ASIA" + secrets.token_hex(8).upper(),
            "SecretAccessKey": secrets.token_urlsafe(30),
            "SessionToken": "FwoGZXIvYXdzE" + secrets.token_urlsafe(96),
            "Expiration": expiration,
        },
        "AssumedRoleUser": {
            "AssumedRoleId": f"{role_id}:{session_name}",
            "Arn": f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}",
        },
        "PackedPolicySize": 0,
    }
