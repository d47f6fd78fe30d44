"""Error answers: one JSON shape under /api/, the portal's pages elsewhere.

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
Retry-After), never a 500. The 500 and 503 pages touch no database.

Elsewhere a person's browser gets a page in the portal's layout that says
what went wrong in plain words, with a way back: 400.html (a view's message,
or Django's refusal), 403_csrf.html, 405.html (error_pages.py) and 500.html.
An htmx request, a script's fetch() and the probes keep the bare answer
they expect (`wants_page`).
"""

import logging
import sys

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE, REASON_NO_REFERER
from django.shortcuts import render
from django.template import loader
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10


# Asked by machines, which read the status code and nothing else (health.PROBES).
MACHINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Sec-Fetch-Dest of a request that shows its answer as a page (a link, a
# form); fetch() and htmx send "empty". Browsers before 2020 send none.
PAGE_DESTINATIONS = frozenset({"document", "iframe", "frame"})


def is_api(request):
    return request.path.startswith("/api/")


def wants_page(request):
    """Whether the answer is shown as a whole page: not the API, htmx, fetch() or a probe."""
    if is_api(request) or request.path in MACHINE_PATHS:
        return False
    if request.headers.get("HX-Request") == "true":
        return False
    return request.headers.get("Sec-Fetch-Dest", "document") in PAGE_DESTINATIONS


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


def dependency_down(request, dependency, error):
    logger.warning("%s unavailable while serving %s: %r", dependency, request.path, error)
    return service_unavailable(request, dependency)


class DependencyDownMiddleware:
    """A view that finds the database or the cache down answers 503, DEBUG on or off.

    Django's handler500 (server_error) answers the same, but only with DEBUG
    off: under `make run` an outage showed Django's debug page instead of
    the 503 page, or JSON under /api/.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        dependency = unavailable_dependency(exception)
        return dependency_down(request, dependency, exception) if dependency else None


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


@requires_csrf_token  # as Django's own: the page's sign-out form needs the token
def bad_request(request, exception):
    if is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return body_too_large()
        return api_error(400, "The request could not be read: " + describe(exception))
    return bad_request_page(request, refusal(exception))


def refusal(exception):
    """What Django's refusal of a page's request means, in the page's words."""
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return f"The form sent more than the {byte_size(limit)} the portal accepts."
    if isinstance(exception, TooManyFieldsSent):
        return "The form sent more fields than the portal accepts."
    if isinstance(exception, DisallowedHost):
        return "The portal does not answer to this address."
    return ""


def bad_request_page(request, message):
    """400.html saying `message`; without one, that the request could not be read."""
    return render(request, "400.html", {"message": message}, status=400)


def bad_request_answer(request, message):
    """A view's 400: the page for a person's browser, the bare message for htmx and scripts."""
    if wants_page(request):
        return bad_request_page(request, message)
    # Text, not HTML: the message may quote what the request said.
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


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
    """A form sent with a token that is no longer the session's, or without the cookie.

    Most often the form was open for long, or the person signed in or out in
    another tab since (signing in changes the token): reloading the form
    gives it the current one. The reason Django gives is shown with DEBUG on.
    """
    if is_api(request):
        return api_error(403, f"CSRF verification failed: {reason}")
    context = {
        "no_cookie": reason == REASON_NO_CSRF_COOKIE,
        "no_referer": reason == REASON_NO_REFERER,
        "form_url": same_site_referer(request),
        "reason": reason if settings.DEBUG else "",
    }
    return render(request, "403_csrf.html", context, status=403)


def same_site_referer(request):
    """The page the form was sent from, when it is one of the portal's; else ""."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return ""


def server_error(request):
    error = sys.exc_info()[1]
    dependency = unavailable_dependency(error)
    if dependency:
        return dependency_down(request, dependency, error)
    if is_api(request):
        return api_error(500, "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)


def describe(exception):
    """A short reason for a 400 that Django raised (too many fields, a malformed body)."""
    text = str(exception).strip()
    if not text or "\n" in text or len(text) > 200:
        return "it is malformed."
    return text if text.endswith(".") else text + "."
