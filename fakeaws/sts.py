"""STS AssumeRole over the query protocol: fake temporary credentials.

Each call is recorded (ExternalId included) so that a test can check what
the portal sent when a team's AWS target names a role to assume.
"""

import re
import secrets
import xml.etree.ElementTree as ET

from .state import iso_time, new_request_id
from .wire import ServiceError, xml_element, xml_response

SERVICE = "sts"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
OPERATIONS = ("AssumeRole",)
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)")
SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
DURATION_MIN, DURATION_MAX, DURATION_DEFAULT = 900, 43200, 3600

STS_CODES = {
    "ServiceException": "InternalFailure",
    "ServiceUnavailableException": "ServiceUnavailable",
    "ThrottlingException": "Throttling",
    "CallRateLimitExceededException": "Throttling",
}
ERROR_STATUSES = {"AccessDenied": 403, "InternalFailure": 500, "ServiceUnavailable": 503}


def handle(world, operation, request):
    try:
        return answer(operation, assume_role(world, request.form))
    except ServiceError as error:
        return error_response(error.code, error.message)


def answer(operation, result):
    root = xml_element(f"{operation}Response", {}, NAMESPACE)
    root.append(xml_element(f"{operation}Result", result))
    root.append(xml_element("ResponseMetadata", {"RequestId": new_request_id()}))
    return xml_response(200, root)


def error_response(code, message):
    code = STS_CODES.get(code, code)
    status = ERROR_STATUSES.get(code, 400)
    root = ET.Element("ErrorResponse", {"xmlns": NAMESPACE})
    error = {"Type": "Receiver" if status >= 500 else "Sender", "Code": code, "Message": message}
    root.append(xml_element("Error", error))
    ET.SubElement(root, "RequestId").text = new_request_id()
    return xml_response(status, root)


def assume_role(world, params):
    role_arn = required(params, "RoleArn")
    session_name = required(params, "RoleSessionName")
    role = ROLE_ARN.fullmatch(role_arn)
    if not role:
        raise ServiceError("ValidationError", f"{role_arn} is not a valid IAM role ARN.")
    if not SESSION_NAME.fullmatch(session_name):
        raise ServiceError(
            "ValidationError",
            "RoleSessionName must be 2-64 characters of letters, digits and _+=,.@-.",
        )
    duration = duration_of(params.get("DurationSeconds"))
    with world.lock:
        world.assumed_roles.append(
            {
                "RoleArn": role_arn,
                "RoleSessionName": session_name,
                "ExternalId": params.get("ExternalId"),
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


def required(params, name):
    value = params.get(name)
    if not value:
        raise ServiceError(
            "ValidationError",
            f"1 validation error detected: Value null at '{name[0].lower() + name[1:]}' "
            "failed to satisfy constraint: Member must not be null",
        )
    return value


def duration_of(value):
    if value is None:
        return DURATION_DEFAULT
    if not value.isdigit() or not DURATION_MIN <= int(value) <= DURATION_MAX:
        raise ServiceError(
            "ValidationError",
            f"DurationSeconds must be between {DURATION_MIN} and {DURATION_MAX}.",
        )
    return int(value)
