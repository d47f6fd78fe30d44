"""The portal's pages for the bare 400s and 405s a browser would otherwise show.

Four answers leave a person without the portal's page:

- a 405 from `require_POST` and its kin, or a class-based view (GET
  /accounts/logout/): an empty body, which Chromium replaces with its own
  "HTTP ERROR 405". `MethodNotAllowedPages` answers 405.html instead, with
  the same Allow header.
- a 400 from `inputs.RejectMalformedText`, which refuses text no database
  can store before the session is read: it answers
  `refusal_before_the_session`, 400.html with the reason.
- an htmx request whose session has ended: login_required's redirect,
  which the browser follows and htmx swapped into the page as the whole
  sign-in page. `SignInAgainForHtmx` answers HX-Redirect to sign in.
- a 404 with DEBUG on, as under `make run`: Django's debug page, which lists
  every URL pattern, where a person looking at the portal expects its "Not
  found" page. `NotFoundPagesWithDebug` answers 404.html (JSON under /api/).

Apart from the htmx one, only where a page is expected (`errors.wants_page`):
the API keeps its JSON, htmx and fetch() the bare answer, the probes their
empty one.
"""

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.shortcuts import render, resolve_url

from config.content_security import ContentSecurityPolicyMiddleware

from .errors import bad_request_page, is_api, page_not_found, wants_page


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


class NotFoundPagesWithDebug:
    """With DEBUG on, a 404 answers as with it off: the portal's page, or the API's JSON.

    Django answers Http404 with its technical page whenever DEBUG is on,
    handler404 or not; `make run` runs with DEBUG on for a first look, and a
    link to another team's import showed every URL pattern instead of the
    page that says what to do.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not settings.DEBUG or not is_bare(response, 404):
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response  # a view's own answer (JSON, text), not Django's debug page
        if not (wants_page(request) or is_api(request)):
            return response
        return page_not_found(request, None)


class SignInAgainForHtmx:
    """An htmx request whose session has ended: the whole page goes to sign in.

    login_required answers a redirect to the sign-in page, which the
    browser's XMLHttpRequest follows on its own: htmx then swapped the whole
    sign-in page into the status panel, a field's errors or the form, and the
    poll stopped. The redirect becomes a 204 with HX-Redirect instead, on
    which htmx (and upload.js) load the sign-in page in full, `next` the page
    the person was on, not the partial's address.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 302 or "HX-Request" not in request.headers:
            return response
        sign_in = resolve_url(settings.LOGIN_URL)
        if urlsplit(response["Location"]).path != sign_in:
            return response
        answer = HttpResponse(status=204)
        answer["HX-Redirect"] = f"{sign_in}?{urlencode({'next': page_of(request)})}"
        return answer


def page_of(request):
    """The page an htmx request came from (path and query), by its HX-Current-URL."""
    page = urlsplit(request.headers.get("HX-Current-URL", ""))
    if not page.path.startswith("/"):
        return "/"
    return page.path + (f"?{page.query}" if page.query else "")


# The two that add a page's own headers, which a refusal before them skips.
PAGE_HEADERS = (
    XFrameOptionsMiddleware(lambda request: None),
    ContentSecurityPolicyMiddleware(lambda request: None),
)


def refusal_before_the_session(request, problem):
    """inputs.RejectMalformedText's 400: 400.html saying `problem`, or the bare line.

    That refusal comes before the session, the CSRF cookie, the
    Content-Security-Policy and X-Frame-Options middleware: the page is
    rendered as for a person signed out, and given the last two here.
    """
    if not wants_page(request):
        return HttpResponseBadRequest(
            f"Bad request: {problem}", content_type="text/plain; charset=utf-8"
        )
    response = bad_request_page(request, problem)
    for middleware in PAGE_HEADERS:
        response = middleware.process_response(request, response)
    return response
