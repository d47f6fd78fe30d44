"""The JSON endpoints @uppy/aws-s3 calls for a multipart upload straight to S3.

The bytes never pass through the portal: it starts the upload for the key it
chose when the import was recorded, signs one URL per part (that key, that
upload, that part only; the page asks for them in batches, ahead of its
PUTs), lists the parts S3 already holds so a reload resumes, completes the
upload (and queues the import), or aborts it (and cancels the import).
Every call is scoped to an `uploading` import of the person's team; session
authentication, CSRF-protected like every form.
"""

import json
import re

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import aws, services, teams
from .inputs import json_problem
from .models import Membership


def upload_plan(image_import):
    """Where the page sends an import's file, and in how many parts of what size.

    The part size is what Uppy's getChunkSize must answer: it splits the file
    before it asks for the upload.
    """
    size = image_import.upload_size
    return {
        "endpoint": reverse("imports:detail", args=[image_import.pk]) + "/",
        "createUrl": reverse("imports:upload_create", args=[image_import.pk]),
        "key": image_import.user_bucket["S3Key"],
        "partSize": aws.part_size(size),
        "partCount": aws.part_count(size),
    }


def uploading_import(request, pk):
    image_import = get_object_or_404(teams.team_imports(request), pk=pk)
    if not Membership.role_can_submit(image_import.viewer_role):
        raise PermissionDenied("You need the submitter role in this team to upload.")
    return image_import


def answer(call):
    """Run one step; refusals and AWS errors become JSON with a message."""
    try:
        return call()
    except services.PartNumberError as error:
        return bad_request(str(error))
    except services.UploadError as error:
        body = {"error": str(error), **({"code": error.code} if error.code else {})}
        return JsonResponse(body, status=409)
    except aws.AwsError as error:
        status = 503 if error.retryable else 502
        # "S3 refused" only when S3 answered: an unreachable S3 refused nothing.
        said = f"S3 refused: {error.message}" if error.answered else error.message
        return JsonResponse({"error": said, "code": error.code}, status=status)


def bad_request(message):
    return JsonResponse({"error": message}, status=400)


def json_body(request):
    """The JSON object Uppy sends, or None for anything else (a form post included)."""
    if request.content_type != "application/json":
        return None
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(body, dict) or json_problem(body):
        return None  # nested too deeply, or text no database stores
    return body


@login_required
@require_POST
def create_upload(request, pk):
    """createMultipartUpload: {"uploadId", "key", "partSize", "partCount"}."""
    image_import = uploading_import(request, pk)
    # Uppy sends {"filename", "type", "metadata"}: the key and the object's
    # type are the portal's (a disk image), never what the browser guessed.

    def start():
        upload_id = services.start_upload(image_import, user=request.user)
        plan = upload_plan(image_import)
        return JsonResponse(
            {
                "uploadId": upload_id,
                "key": plan["key"],
                "partSize": plan["partSize"],
                "partCount": plan["partCount"],
            }
        )

    return answer(start)


@login_required
@require_GET
def sign_part(request, pk, upload_id, part_number):
    """signPart: {"url", "method": "PUT", "expires"}; the URL allows only this part."""
    image_import = uploading_import(request, pk)
    return answer(
        lambda: JsonResponse(
            {
                "url": services.sign_part(
                    image_import, upload_id, request.GET.get("key"), part_number
                ),
                "method": "PUT",
                "expires": aws.PRESIGNED_PART_SECONDS,
            }
        )
    )


@login_required
@require_GET
def sign_parts(request, pk, upload_id):
    """A batch of signPart answers: ?partNumbers=4,5,6 -> {"presignedUrls": {"4": url, ...}}.

    Companion's batch route, so the page signs parts ahead of its PUTs rather
    than waiting for the portal before each one. Same rules as sign_part.
    """
    image_import = uploading_import(request, pk)

    key = request.GET.get("key")

    def sign():
        services.check_upload(image_import, upload_id, key)  # first, as for one part
        numbers = part_numbers(request.GET.get("partNumbers"))
        urls = services.sign_parts(image_import, upload_id, key, numbers)
        return JsonResponse(
            {
                "presignedUrls": {str(number): url for number, url in urls.items()},
                "method": "PUT",
                "expires": aws.PRESIGNED_PART_SECONDS,
            }
        )

    return answer(sign)


PART_NUMBER = re.compile(r"[0-9]{1,5}")


def part_numbers(query):
    """The batch's part numbers from "4,5,6"; PartNumberError (a 400) says what is wrong."""
    if not query:
        raise services.PartNumberError(
            "Send partNumbers: the parts to sign, comma-separated, as in ?partNumbers=1,2,3."
        )
    items = query.split(",")
    if len(items) > services.SIGN_BATCH_MAX:
        raise services.PartNumberError(
            f"At most {services.SIGN_BATCH_MAX} part numbers in one batch; "
            f"this asks for {len(items)}."
        )
    if not all(PART_NUMBER.fullmatch(item) for item in items):
        raise services.PartNumberError(
            "partNumbers must be whole numbers separated by commas, as in 1,2,3."
        )
    numbers = [int(item) for item in items]
    if len(set(numbers)) != len(numbers):
        raise services.PartNumberError("Each part number may appear only once in partNumbers.")
    return numbers


@login_required
@require_http_methods(["GET", "DELETE"])
def upload(request, pk, upload_id):
    """listParts (GET): [{"PartNumber", "Size", "ETag"}]; abortMultipartUpload (DELETE)."""
    image_import = uploading_import(request, pk)
    key = request.GET.get("key")
    if request.method == "GET":
        return answer(
            lambda: JsonResponse(
                services.uploaded_parts(image_import, upload_id, key, user=request.user),
                safe=False,
            )
        )

    def abort():
        services.check_upload(image_import, upload_id, key)
        outcome = services.cancel_import(image_import, user=request.user)
        return JsonResponse({"cancelled": outcome.cancelled, "message": outcome.message})

    return answer(abort)


@login_required
@require_POST
def complete_upload(request, pk, upload_id):
    """completeMultipartUpload: {"parts": [{"PartNumber", "ETag"}]} -> {"location"}."""
    image_import = uploading_import(request, pk)
    key = request.GET.get("key")
    body = json_body(request)
    parts = body.get("parts") if body else None

    def complete():
        services.check_upload(image_import, upload_id, key)
        if not valid_parts(parts, aws.part_count(image_import.upload_size)):
            return JsonResponse(
                {
                    "error": 'Send {"parts": [{"PartNumber": 1, "ETag": "..."}, ...]}, in order, '
                    "each part number one of the upload's."
                },
                status=400,
            )
        location = services.complete_upload(image_import, upload_id, key, parts, user=request.user)
        return JsonResponse({"location": location})

    return answer(complete)


def valid_parts(parts, part_count):
    """A list of {"PartNumber", "ETag"} in ascending order, each number 1 to part_count."""
    if not isinstance(parts, list) or not 1 <= len(parts) <= part_count:
        return False
    numbers = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("ETag"), str):
            return False
        number = part.get("PartNumber")
        if not isinstance(number, int) or isinstance(number, bool):
            return False
        numbers.append(number)
    return numbers == sorted(set(numbers)) and numbers[0] >= 1 and numbers[-1] <= part_count
