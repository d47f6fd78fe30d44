"""An HTTP client for URLs that people type in: no SSRF.

- Only https (plain http too when WEBHOOK_ALLOW_PRIVATE is on, for local use).
- The host name is resolved here, every address it resolves to is checked,
  and the connection is made to the checked address itself, with the
  original name as Host header, TLS SNI and certificate name. A second
  look-up by the HTTP library (DNS rebinding: public when checked, private
  when connecting) therefore cannot happen.
- Redirects are never followed, and nothing is retried here: the caller
  decides (see notifications.tasks).

Only addresses that are globally routable pass (`ipaddress.is_global`):
private, loopback, link-local (so 169.254.169.254, the instance metadata
service), shared (100.64/10), reserved and unspecified addresses are refused,
and so are IPv4 addresses hidden in IPv6 (::ffff:127.0.0.1, 6to4, NAT64's
64:ff9b::a9fe:a9fe) when the address inside is.
WEBHOOK_ALLOW_PRIVATE lifts this rule; never set it in production.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings


class BlockedUrl(ValueError):
    """The URL may not be called: the message says why, for the person."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self):
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def allow_private():
    return settings.WEBHOOK_ALLOW_PRIVATE


# DNS's limits (RFC 1035): a name of at most 253 characters written out, in
# labels of 1 to 63 between its dots.
HOST_NAME_MAX = 253
HOST_LABEL_MAX = 63


def parse(url):
    """Check the URL's form (not its addresses) and split it; BlockedUrl if refused.

    Every rule of form comes before resolve()'s look-up, so a mistyped URL
    is told what is wrong with it rather than that its host does not resolve.
    """
    url = url.strip()
    if any(char.isspace() or not char.isprintable() for char in url):
        # urlsplit drops tabs and newlines silently, and keeps spaces in a host name.
        raise BlockedUrl(
            "A URL has no spaces or control characters; write a space in its path as %20."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise BlockedUrl(f"This is not a valid URL ({error}).") from None
    schemes = ("https", "http") if allow_private() else ("https",)
    if parts.scheme not in schemes:
        # http:// is allowed only with private addresses, for local tests: say so there.
        given = f"{parts.scheme}://" if parts.scheme else "no scheme"
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise BlockedUrl(f"The URL must start with {allowed}; this one has {given}.")
    if not parts.hostname:
        raise BlockedUrl("The URL has no host name.")
    name = parts.hostname.rstrip(".").lower()
    check_host_name(name)
    if not allow_private() and (name == "localhost" or name.endswith(".localhost")):
        # RFC 6761: always this machine, whatever a resolver says; trailing dot too.
        raise BlockedUrl("localhost is this machine; webhooks may only call public addresses.")
    if parts.username or parts.password:
        raise BlockedUrl("The URL may not carry a user name or password.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default, path)


def check_host_name(name):
    """DNS's length rules for a host name (an IP address has none to break)."""
    if len(name) > HOST_NAME_MAX:
        raise BlockedUrl(
            f"A host name has at most {HOST_NAME_MAX} characters; this one has {len(name)}."
        )
    if any(not label or len(label) > HOST_LABEL_MAX for label in name.split(".")):
        raise BlockedUrl(
            f"Each part of a host name between its dots has 1 to {HOST_LABEL_MAX} characters."
        )


# IPv6 prefixes whose last 32 bits are an IPv4 address that a translator or
# an old stack reaches: NAT64's well-known prefix, IPv4-compatible and
# IPv4-translated addresses. The IPv4 address inside is checked too.
IPV4_IN_LOW_BITS = tuple(
    ipaddress.ip_network(net) for net in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96")
)
# Not globally routable, though ipaddress calls them global: NAT64 for local
# use, IPv6 site-local (deprecated), the 6to4 relays' anycast.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(net) for net in ("64:ff9b:1::/48", "fec0::/10", "192.88.99.0/24")
)


def embedded_ipv4(ip):
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64...), or None."""
    embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo and ip.teredo[1])
    if embedded is None and any(ip in net for net in IPV4_IN_LOW_BITS):
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return embedded


def address_allowed(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if any(ip in net for net in NOT_GLOBAL if net.version == ip.version):
        return False
    if ip.version == 6:
        embedded = embedded_ipv4(ip)
        if embedded is not None and not address_allowed(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


def resolve(target):
    """The address to connect to: every address of the name checked, the first used."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise BlockedUrl(f"The host name {target.host} does not resolve ({error}).") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise BlockedUrl(f"The host name {target.host} does not resolve.")
    if not allow_private():
        for address in addresses:
            if not address_allowed(address):
                raise BlockedUrl(
                    f"{target.host} resolves to {address}, a private, loopback, link-local "
                    "or otherwise internal address; webhooks may only call public addresses."
                )
    return addresses[0]


def check(url):
    """Everything but the call: the form of the URL and its addresses now."""
    target = parse(url)
    resolve(target)
    return target


def post(url, body, headers, *, timeout):
    """POST body to url through the checked, pinned address; never follows a redirect.

    Raises BlockedUrl, or urllib3's errors (timeouts, connection errors).
    """
    target = parse(url)
    address = resolve(target)  # again at connect time: the name may have changed
    pool_options = {
        "port": target.port,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.WEBHOOK_CA_BUNDLE or None,  # None: the system's CAs
            **pool_options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, **pool_options)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            content = response.read(4096)  # a receiver's answer is kept short
        finally:
            response.release_conn()
        return Response(response.status, content)
    finally:
        pool.close()
