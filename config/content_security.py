"""The Content-Security-Policy header, built once per process, not per response.

django-csp builds the header from the settings on every response: the
policy parts turned into a dict, the directives deep-copied, sorted and
joined, for the policy and again for the report-only one. That was a fifth
of the CPU of a request that does nothing else (an unchanged status poll,
`/healthz`). Only a view that changes its own response's policy (the
upload page allows the team's S3 origin) or a nonce makes one response's
header differ from another's; the portal's templates use no nonce. Every
other response gets the same headers, built on first use and again when
the settings change (tests). Anything else is left to django-csp.
"""

import functools

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

POLICY_SETTINGS = ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")

# What django-csp's decorators and the views set on a response to change
# its policy or to leave it out.
RESPONSE_OVERRIDES = tuple(
    f"_csp_{part}{kind}"
    for part in ("config", "update", "replace", "exempt")
    for kind in ("", "_ro")
)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def process_response(self, request, response):
        headers = fixed_headers()
        if (
            headers is None
            or settings.DEBUG  # django-csp leaves the debug pages alone
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in RESPONSE_OVERRIDES)
        ):
            return super().process_response(request, response)
        for header, policy in headers:
            if header not in response:
                response[header] = policy
        # As django-csp does: a nonce asked for once the header is written
        # could never reach it, so asking is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


@functools.cache
def fixed_headers():
    """The (header, policy) pairs of a response that changes nothing; None if they vary by path."""
    if any(
        (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES")
        for name in POLICY_SETTINGS
    ):
        return None
    headers = ((HEADER, build_policy()), (HEADER_REPORT_ONLY, build_policy(report_only=True)))
    return tuple((header, policy) for header, policy in headers if policy)


@receiver(setting_changed)
def forget_headers(setting, **kwargs):
    if setting in POLICY_SETTINGS:
        fixed_headers.cache_clear()
