"""The only module that imports boto3.

Clients are built once per process for each (service, region) and reused.
Endpoints follow boto3's own AWS_ENDPOINT_URL_<SERVICE> variables, so the
local emulator and real AWS differ only in configuration. Credentials come
from boto3's default chain; none is ever stored by the portal.

botocore's own retries are switched off: the worker retries at the task
level instead, so that every attempt is recorded as an event and every
attempt carries the import's one clientToken.
"""

import functools
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings

# Error codes that mean "try again later"; the HTTP status decides for codes
# not listed (a 429 or a 5xx from a proxy, say).
RETRYABLE_CODES = frozenset(
    {
        "ServiceException",
        "ServiceUnavailableException",
        "ThrottlingException",
        "Throttling",
        "CallRateLimitExceededException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})


class AwsError(Exception):
    """An AWS call that did not succeed, in words a person can act on."""

    def __init__(self, code, message, *, retryable):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class ImportAccepted:
    image_arn: str
    request_id: str
    client_token: str


@functools.cache
def client(service, region):
    # A session of its own: boto3's default session is not thread-safe,
    # while clients are.
    session = boto3.session.Session()
    return session.client(
        service,
        region_name=region or None,
        config=Config(
            connect_timeout=settings.AWS_CONNECT_TIMEOUT,
            read_timeout=settings.AWS_READ_TIMEOUT,
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )


def import_vm_image(request, *, region):
    """Send one ImportVmImage request exactly as stored, clientToken included."""
    try:
        response = client("imagebuilder", region).import_vm_image(**request)
    except (BotoCoreError, ClientError) as error:
        raise translate(error) from error
    return ImportAccepted(
        image_arn=response["imageArn"],
        request_id=response.get("requestId", ""),
        client_token=response.get("clientToken", ""),
    )


def translate(error):
    """An AwsError for any botocore failure, retryable or not."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "UnknownError"
        message = details.get("Message") or str(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retryable = code in RETRYABLE_CODES or status in RETRYABLE_HTTP_STATUSES
        return AwsError(code, message, retryable=retryable)
    if isinstance(error, NoCredentialsError):
        return AwsError(
            "NoCredentials",
            "No AWS credentials configured: give the worker AWS credentials (an instance "
            "or task role, a profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and "
            "submit again.",
            retryable=False,
        )
    if isinstance(error, NoRegionError):
        return AwsError(
            "NoRegion",
            "No AWS region configured: set AWS_REGION for the worker and submit again.",
            retryable=False,
        )
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return AwsError("ConnectionError", f"Could not reach AWS: {error}", retryable=True)
    if isinstance(error, ParamValidationError):
        return AwsError("InvalidParameter", str(error), retryable=False)
    return AwsError(type(error).__name__, str(error), retryable=False)


def default_region():
    return settings.AWS_REGION
