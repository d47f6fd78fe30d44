"""What a person or a script sends is checked here before any database sees it.

Text must be valid Unicode without NUL (PostgreSQL stores neither a lone
surrogate nor a NUL, and answers both with an error), numbers are ASCII
digits of a bounded length, and JSON is bounded in depth. The middleware
applies the text rule to every query string, form field and cookie; the
API applies it to the JSON it decodes (`json_problem`). Under /api/ the
middleware also reads the body, so that one over DATA_UPLOAD_MAX_MEMORY_SIZE
(or a form with too many fields) is answered in JSON, DEBUG or not.
"""

from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.utils.encoding import punycode

from .error_pages import refusal_before_the_session
from .errors import api_error, bad_request, is_api

MAX_JSON_DEPTH = 32
MAX_DIGITS = 18  # below 2**63: fits every integer column


def text_problem(text):
    """Why this text cannot be stored, or "" when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (it has a lone surrogate)"
    return ""


def mail_domain_problem(domain):
    """Why a mail cannot be addressed to this (validated) e-mail domain, or "" when it can.

    Django's e-mail validator takes any letter in a domain, but a mail is
    addressed in IDNA (punycode), which refuses some: an invisible mark
    copied with the address (U+200E), a label past 63 characters once
    encoded. Caught only as the mail was sent, such an address was stored.
    """
    try:
        punycode(domain)
    except UnicodeError:
        return (
            "The domain after the @ holds a character no domain name can (an invisible mark "
            "copied with the address?) or a part too long for one: type it again."
        )
    return ""


def parse_int(text, *, max_digits=MAX_DIGITS):
    """A non-negative integer written in ASCII digits, or None.

    int() also reads "²"'s relatives ("٣", "５") and raises on thousands of
    digits; neither belongs in a URL or a form field of ours.
    """
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        return None
    if len(text) > max_digits:
        return None
    return int(text)


def json_problem(value, *, path="body", depth=0):
    """Why a decoded JSON value cannot be accepted, or "" when it can."""
    if depth > MAX_JSON_DEPTH:
        return f"{path} is nested more than {MAX_JSON_DEPTH} levels deep"
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{path} {problem}" if problem else ""
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                return f"a member name in {path} {problem}"
            problem = json_problem(item, path=f"{path}.{key}", depth=depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = json_problem(item, path=f"{path}[{index}]", depth=depth + 1)
            if problem:
                return problem
    return ""


def request_problem(request):
    """The first unstorable text in the query string, the form fields or the cookies."""
    sources = [("query parameter", request.GET), ("cookie", request.COOKIES)]
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        # Read the body first: it is kept, so a view may still read
        # request.body after the form fields were parsed from it.
        request.body  # noqa: B018
        sources.append(("form field", request.POST))
    elif request.method == "POST" and request.content_type == "multipart/form-data":
        sources.append(("form field", request.POST))
    for kind, data in sources:
        items = data.lists() if hasattr(data, "lists") else ((k, [v]) for k, v in data.items())
        for name, values in items:
            for text in [name, *values]:
                problem = text_problem(text)
                if problem:
                    shown = text_problem(name) and "(unreadable name)" or repr(name)
                    return f"The {kind} {shown} {problem}."
    problem = text_problem(request.path)
    return f"The URL {problem}." if problem else ""


class RejectMalformedText:
    """Answer 400 to a request carrying text that no database could store."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            if is_api(request):
                # Read here, not in the view, so that a body too large is
                # answered in JSON with DEBUG on too (errors.py says why).
                request.body  # noqa: B018
            problem = request_problem(request)
        except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent) as error:
            if not is_api(request):
                raise
            return bad_request(request, error)
        except BadRequest as error:
            # A form body in another charset than UTF-8. Django's own 400 for
            # it breaks its debug page (DEBUG on): answered here either way.
            if is_api(request):
                return api_error(400, str(error))
            return refusal_before_the_session(request, str(error))
        if problem:
            if is_api(request):
                return api_error(400, problem)
            return refusal_before_the_session(request, problem)
        return self.get_response(request)
