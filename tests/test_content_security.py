"""The CSP header built once (config/content_security.py) says what django-csp says."""

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE
from csp.decorators import csp_exempt, csp_update
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from config.content_security import ContentSecurityPolicyMiddleware, fixed_headers

from .helpers import csp_directives

REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'none'"], "report-uri": ["/csp-reports"]}}


def plain(request):
    return HttpResponse("plain")


@csp_update({"connect-src": ["https://bucket.s3.us-east-1.amazonaws.com"]})
def updated(request):
    return HttpResponse("updated")


@csp_exempt()
def exempt(request):
    return HttpResponse("exempt")


def uses_a_nonce(request):
    return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")


def headers_from(middleware_class, view, path="/imports/new"):
    request = RequestFactory().get(path)
    response = middleware_class(view)(request)
    return {name: response.get(name) for name in (HEADER, HEADER_REPORT_ONLY)}


@pytest.mark.parametrize("view", [plain, updated, exempt, uses_a_nonce])
@pytest.mark.parametrize("report_only", [False, True])
def test_each_response_gets_the_headers_django_csp_gives_it(settings, view, report_only):
    if report_only:
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = REPORT_ONLY
    assert headers_from(ContentSecurityPolicyMiddleware, view) == headers_from(CSPMiddleware, view)


def test_a_plain_response_gets_the_policy_of_the_settings():
    headers = headers_from(ContentSecurityPolicyMiddleware, plain)
    assert "script-src 'self'" in headers[HEADER]
    assert "frame-ancestors 'none'" in headers[HEADER]
    assert headers[HEADER_REPORT_ONLY] is None


def test_changed_settings_are_read_again(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert headers_from(ContentSecurityPolicyMiddleware, plain)[HEADER] == "default-src 'none'"
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {"default-src": ["'self'"]},
        "EXCLUDE_URL_PREFIXES": ["/healthz"],
    }
    # Excluded paths vary by request: django-csp decides those, unchanged.
    assert fixed_headers() is None
    assert headers_from(ContentSecurityPolicyMiddleware, plain, "/healthz")[HEADER] is None
    assert headers_from(ContentSecurityPolicyMiddleware, plain)[HEADER] == "default-src 'self'"


def test_a_page_that_used_a_nonce_gets_its_own_in_the_header(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"script-src": ["'self'", NONCE]}}
    request = RequestFactory().get("/")
    response = ContentSecurityPolicyMiddleware(uses_a_nonce)(request)
    assert csp_directives(response[HEADER]) == {
        "default-src": ["'self'"],
        "script-src": ["'self'", f"'nonce-{request._csp_nonce}'"],
    }
    # A page without one gets the policy without it, as django-csp gives it.
    without = {"default-src": ["'self'"], "script-src": ["'self'"]}
    assert csp_directives(headers_from(ContentSecurityPolicyMiddleware, plain)[HEADER]) == without
    assert csp_directives(headers_from(CSPMiddleware, plain)[HEADER]) == without


def test_a_nonce_asked_for_after_the_header_is_written_is_refused():
    request = RequestFactory().get("/")
    ContentSecurityPolicyMiddleware(plain)(request)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


def test_the_debug_pages_are_left_to_django_csp(settings):
    settings.DEBUG = True

    def missing(request):
        return HttpResponse("not found", status=404)

    assert headers_from(ContentSecurityPolicyMiddleware, missing)[HEADER] is None
    assert headers_from(ContentSecurityPolicyMiddleware, plain)[HEADER] is not None
