"""SSRF guard (pure): which URLs and addresses a fetch may reach."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yarl import URL

from gleaner.shared.field_checks import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = frozenset({80, 443, 8080, 8443})
# Not global, or otherwise never a scraping target: CGNAT, cloud metadata, documentation, benchmarking.
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "fd00:ec2::254/128",
        "64:ff9b::/96",
        "2002::/16",
    )
)


class BlockedURL(ValueError):
    """The URL or the address it resolves to is not allowed."""


@dataclass(frozen=True, slots=True)
class Policy:
    allow_private: bool = False
    allowed_ports: frozenset[int] | None = DEFAULT_PORTS  # None: any port
    # literal addresses reachable even though private (e.g. an internal mirror); empty by default
    trusted_addresses: frozenset[str] = frozenset()

    @classmethod
    def configured(cls, allow_private: bool) -> Policy:
        """The policy of GLEANER_FETCH_ALLOW_PRIVATE: when set, private addresses and any port are allowed."""
        return cls(allow_private=allow_private, allowed_ports=None if allow_private else DEFAULT_PORTS)


def parse_host_ip(host: str) -> IPAddress | None:
    """The IP a host names literally, including the loose IPv4 forms (decimal, octal, hex, a.b) libc accepts."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefxABCDEFX." for c in bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def address_blocked(ip: IPAddress) -> str | None:
    """Why an address is refused (private, loopback, link-local, CGNAT, metadata, …), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            return address_blocked(mapped) or ("ipv6-embedded address" if not mapped.is_global else None)
    for network in BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return f"address {ip} is in the blocked range {network}"
    if ip.is_loopback:
        return f"address {ip} is loopback"
    if ip.is_link_local:
        return f"address {ip} is link-local"
    if ip.is_private:
        return f"address {ip} is private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return f"address {ip} is not a public unicast address"
    return None


# the refusals the setting lifts say so: a 422 for a local URL names the fix (both services check URLs)
LIFTED_BY = " (GLEANER_FETCH_ALLOW_PRIVATE=1 on the gateway and the workers allows it, for local development)"


def check_url(raw: str, policy: Policy) -> URL:
    """Static checks: scheme, host, port, and literal addresses. Names are checked again once resolved."""
    try:
        url = URL(raw)
    except (ValueError, TypeError) as exc:
        raise BlockedURL(f"not a valid URL: {exc}") from None
    if url.scheme not in ALLOWED_SCHEMES:
        raise BlockedURL(f"scheme {url.scheme or '(none)'!r} is not allowed; use http or https")
    if not url.host:
        raise BlockedURL("the URL has no host")
    if url.user is not None or url.password is not None:
        raise BlockedURL("credentials in URLs are not allowed")
    if policy.allowed_ports is not None and url.port not in policy.allowed_ports:
        raise BlockedURL(f"port {url.port} is not allowed{LIFTED_BY}")
    if not policy.allow_private:
        ip = parse_host_ip(url.host)
        reason = _blocked_ip(ip, policy) if ip is not None else _blocked_name(url.host)
        if reason:
            raise BlockedURL(reason + LIFTED_BY)
    return url


def url_field(policy: Policy) -> Callable[[Any], str]:
    """A payload member holding a URL a fetch may reach under `policy` (field_checks' converter shape)."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise Invalid("must be a non-empty URL string")
        try:
            check_url(value, policy)
        except BlockedURL as exc:
            raise Invalid(str(exc)) from None
        return value

    return convert


def check_static(raw: str, policy: Policy | None = None) -> str | None:
    """Why a URL is refused before any name is resolved (for the gateway at submit), or None."""
    try:
        check_url(raw, policy or Policy())
    except BlockedURL as exc:
        return str(exc)
    return None


def check_address(ip_text: str, policy: Policy) -> None:
    """Check a resolved address just before connecting to it."""
    if policy.allow_private:
        return
    ip = ipaddress.ip_address(ip_text.split("%", 1)[0])
    reason = _blocked_ip(ip, policy)
    if reason:
        raise BlockedURL(reason)


def _blocked_ip(ip: IPAddress, policy: Policy) -> str | None:
    return None if str(ip) in policy.trusted_addresses else address_blocked(ip)


def _blocked_name(host: str) -> str | None:
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith((".localhost", ".local", ".internal")):
        return f"host {host!r} names a local machine"
    return None
