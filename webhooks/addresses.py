"""Where a webhook may send: an http(s) URL whose host resolves only to public unicast addresses.

Checked when a webhook is created or changed and again before every delivery, whose connection goes
to the address checked here (``Target.address``): the host is looked up once per attempt, so a name
that resolves to a public address for the check and to a private one a moment later (DNS rebinding)
never reaches the private one. WEBHOOK_ALLOW_PRIVATE_NETWORKS lifts the address rules (tests, closed
networks); the URL rules and the single lookup stay.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2000
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)


class Refused(ValueError):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, for the Host header, TLS's server name and the certificate check
    port: int
    path: str  # with the query
    address: str  # the checked address the connection goes to

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a webhook URL, or ``Refused``."""
    if not isinstance(url, str) or not url:
        raise Refused("Enter the URL that receives the webhook.")
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise Refused("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"The URL is not valid: {error}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused("The URL must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise Refused("The URL must not carry a user name or password: the signature proves who sends.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("The URL has no host.")
    try:
        host.encode("idna")
    except UnicodeError:
        raise Refused(f"The host {host!r} is not a valid name.") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


def why_not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of address ``address`` is when it is not a public unicast one, else None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped address"
        if address.sixtofour is not None or address.teredo is not None:
            return "a tunnelled IPv4 address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.version == 4 and address in SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (one lookup)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise LookupError(f"The host {host} cannot be resolved: {error}.") from None
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = sockaddr[0].split("%", 1)[0]  # an IPv6 zone is not part of the address
        if address not in seen:
            seen.append(address)
    if not seen:
        raise LookupError(f"The host {host} resolves to no address.")
    return seen


def check(url: str) -> Target:
    """The target of ``url`` once every address its host resolves to passed the rules; ``Refused``
    (a URL or an address the rules forbid) or ``LookupError`` (the name does not resolve)."""
    scheme, host, port, path = parse(url)
    addresses = resolve(host, port)
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            kind = why_not_public(ipaddress.ip_address(address))
            if kind is not None:
                shown = host if host == address else f"{host} resolves to {address}, which"
                raise Refused(f"Webhooks go to public addresses only: {shown} is {kind}.")
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])
