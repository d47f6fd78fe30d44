"""Error answers: one JSON shape under /api/, plain pages elsewhere.

Every error the API gives, whether a view chose it or Django did (an
unknown URL, a body too large, an exception), has the shape

    {"error": "<a sentence for the person>", "status": <the HTTP status>}

with `errors` (member -> messages) added when a request failed validation.

A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 under /api/ (a 400 on the
pages, as Django answers). Django raises it as a SuspiciousOperation, and
with DEBUG on answers those with its technical page (a traceback, the
settings) before handler400 is asked; so the API's bodies are read early,
in `inputs.RejectMalformedText`, which answers with `bad_request` itself.

A dependency that is down is not a bug of ours: a database that refuses or
does not answer, or a cache that is gone, turns into a 503 that says so (with
Retry-After), never a 500. The error pages themselves touch no database.
"""

import logging
import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import csrf, defaults

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10


def is_api(request):
    return request.path.startswith("/api/")


def api_error(status, message, **extra):
    return JsonResponse({"error": message, "status": status, **extra}, status=status)


def unavailable_dependency(error):
    """'database' or 'cache' when `error` means that dependency is down, else ''."""
    if isinstance(error, OperationalError | InterfaceError):
        return "database"
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a requirement
        return ""
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return "cache"
    return ""


def service_unavailable(request, dependency):
    if dependency == "database":
        message = (
            "The portal cannot reach its database right now. Nothing was lost; "
            f"try again in {RETRY_AFTER_SECONDS} seconds."
        )
    else:
        message = (
            "A service the portal depends on is not answering right now; "
            f"try again in {RETRY_AFTER_SECONDS} seconds."
        )
    if is_api(request):
        response = api_error(503, message)
    else:
        html = loader.render_to_string(
            "503.html", {"message": message, "retry_after": RETRY_AFTER_SECONDS}
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# -- Django's error handlers (config/urls.py names them) -----------------------


def bad_request(request, exception):
    if is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return body_too_large()
        return api_error(400, "The request could not be read: " + describe(exception))
    return defaults.bad_request(request, exception)


def body_too_large():
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api_error(
        413,
        f"The request body is larger than the {byte_size(limit)} ({limit:,} bytes) "
        "the API accepts.",
    )


def byte_size(size):
    """A size as people read it, in the README's units: 256 KiB, 2.5 MiB.

    Every page and message says sizes this way (the template filter of the
    same name); only upload.js's live counter keeps one decimal, so that its
    figures do not jump as they grow.
    """
    if size < 1024:
        return f"{size} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f}".removesuffix(".0") + " " + unit


def permission_denied(request, exception):
    if is_api(request):
        return api_error(403, str(exception) or "You may not do that.")
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def api_not_found(request):
    return api_error(404, "There is no such API resource; see /api/openapi.json.")


def csrf_failure(request, reason=""):
    if is_api(request):
        return api_error(403, f"CSRF verification failed: {reason}")
    return csrf.csrf_failure(request, reason)


def server_error(request):
    error = sys.exc_info()[1]
    dependency = unavailable_dependency(error)
    if dependency:
        logger.warning("%s unavailable while serving %s: %r", dependency, request.path, error)
        return service_unavailable(request, dependency)
    if is_api(request):
        return api_error(500, "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)


def describe(exception):
    """A short reason for a 400 that Django raised (too many fields, a malformed body)."""
    text = str(exception).strip()
    if not text or "\n" in text or len(text) > 200:
        return "it is malformed."
    return text if text.endswith(".") else text + "."
