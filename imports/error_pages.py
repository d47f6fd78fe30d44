"""The portal's pages for the bare 400s and 405s a browser would otherwise show.

Two answers leave Django with no body for a person to read:

- a 405 from `require_POST` and its kin, or a class-based view (GET
  /accounts/logout/): an empty body, which Chromium replaces with its own
  "HTTP ERROR 405". `MethodNotAllowedPages` answers 405.html instead, with
  the same Allow header.
- a 400 from `inputs.RejectMalformedText`, which refuses text no database
  can store before the session is read: a line of plain text.
  `MalformedTextPages`, just before it, answers 400.html with that line (as
  it would any plain-text 400 from further in).

Only where a page is expected (`errors.wants_page`): the API keeps its JSON,
htmx and fetch() the bare answer, the probes their empty one.
"""

from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.shortcuts import render

from config.content_security import ContentSecurityPolicyMiddleware

from .errors import bad_request_page, wants_page
from .inputs import REFUSAL_PREFIX


def dress(response, page):
    """`response` with `page`'s body: its status, and every header it has, stay."""
    response.content = page.content
    response["Content-Type"] = page["Content-Type"]
    if "Content-Length" in response:
        response["Content-Length"] = str(len(response.content))
    return response


def is_bare(response, status):
    return response.status_code == status and not getattr(response, "streaming", False)


class MethodNotAllowedPages:
    """405.html for a page's empty 405 (after authentication: the header shows who is signed in)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not is_bare(response, 405) or response.content or not wants_page(request):
            return response
        allowed = [method.strip() for method in response.get("Allow", "").split(",")]
        page = render(
            request,
            "405.html",
            {
                "method": request.method,
                "allowed": [method for method in allowed if method],
                "opened": request.method in ("GET", "HEAD"),
            },
            status=405,
        )
        return dress(response, page)


class MalformedTextPages:
    """400.html for inputs.RejectMalformedText's plain-text refusal of a page's request.

    That refusal comes before the session, the CSRF cookie, the
    Content-Security-Policy and X-Frame-Options middleware: the page is
    rendered as for a person signed out, and given the last two here.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.page_headers = (
            XFrameOptionsMiddleware(get_response),
            ContentSecurityPolicyMiddleware(get_response),
        )

    def __call__(self, request):
        response = self.get_response(request)
        if (
            not is_bare(response, 400)
            or not response.get("Content-Type", "").startswith("text/plain")
            or not wants_page(request)
        ):
            return response
        message = response.content.decode("utf-8", "replace").removeprefix(REFUSAL_PREFIX)
        response = dress(response, bad_request_page(request, message))
        for middleware in self.page_headers:
            response = middleware.process_response(request, response)
        return response
