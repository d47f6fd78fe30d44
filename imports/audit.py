"""Who and from where: the client address of the request being served.

Events are written deep in model methods; rather than thread the request
through every call, a middleware keeps the client address in a context
variable for the length of the request. Work outside a request (the
worker) records no address.

A leaf: it imports nothing of the portal, so the models can import it.
"""

import ipaddress
from contextvars import ContextVar

from django.conf import settings

_client_ip = ContextVar("client_ip", default=None)


def client_ip(request):
    """The client's address, trusting X-Forwarded-For only as far as our own proxies.

    With TRUSTED_PROXY_COUNT proxies in front of the portal, the client is the
    address that many hops from the right of X-Forwarded-For: anything further
    left was written by the client itself and could be forged. A header with
    fewer hops than that came past our proxies: the connection's address holds.
    """
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        # Fewer hops than proxies: the request skipped some of ours, and the
        # header is only the client's word. Who connected is known.
        if hops and len(hops) >= proxies:
            address = hops[-proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def current_client_ip():
    return _client_ip.get()


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _client_ip.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            _client_ip.reset(token)
