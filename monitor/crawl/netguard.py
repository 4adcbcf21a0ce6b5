"""Which network addresses the crawler may connect to: the guard against SSRF.

Pages are written by strangers, so any URL they hold may point at the operator's own network
(a router's admin page, a cloud metadata service, a database on localhost). Only globally
routable unicast addresses may be reached. The check applies to the addresses a host name
*resolves to* (every one of them: a name that resolves to one public and one private address
is refused, as the connection could go to either), at resolution time, so a redirect or a DNS
answer that changes between check and connection (DNS rebinding) cannot slip past it. IP
literals are checked in every form a URL parser or ``inet_aton`` accepts them: dotted, decimal
(``2130706433``), octal (``0177.0.0.1``), hex, and IPv4 mapped into IPv6 (``::ffff:127.0.0.1``).

A target may allow private addresses for its own host names only (``--allow-private``): a
demonstration site or an intranet the operator is responsible for. Other private hosts its
pages link to stay refused. Reads no settings.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# getaddrinfo's signature, so tests can answer as a hostile DNS server would.
Resolver = Callable[[str, int], list[str]]


class BlockedAddressError(ConnectionError):
    """A connection the policy refuses; the message names the host and the address."""


def _canonical(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return mapped
    return address


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses; False for private, loopback, link-local,
    multicast, reserved, unspecified and shared (carrier-grade NAT) ones."""
    address = _canonical(address)
    return address.is_global and not address.is_multicast and not address.is_reserved


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any accepted notation, or None for a host name."""
    bare = host.strip().strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    if bare and all(part and _is_number(part) for part in bare.split(".")):
        try:  # decimal, octal and hex forms, as C resolvers and browsers read them
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _is_number(part: str) -> bool:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return all(c in "0123456789abcdef" for c in lowered[2:])
    return lowered.isdigit()


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), as strings."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class NetworkPolicy:
    """The addresses one crawl may reach."""

    # Host names (lower case, exact) whose private addresses are allowed: the target's own.
    private_hosts: frozenset[str] = field(default_factory=frozenset)
    resolver: Resolver = system_resolver

    @classmethod
    def allowing(cls, hosts: Iterable[str], resolver: Resolver = system_resolver
                 ) -> NetworkPolicy:
        return cls(frozenset(host.lower().rstrip(".") for host in hosts), resolver)

    def allows_private(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.private_hosts

    def check_address(self, host: str, address: IPAddress) -> None:
        """Raise BlockedAddressError unless ``host`` may be reached at ``address``."""
        if not is_public(address) and not self.allows_private(host):
            raise BlockedAddressError(
                f"refused {host}: {address} is not a public address "
                "(private, loopback, link-local, multicast or reserved)")

    def resolve(self, host: str, port: int = 443) -> list[str]:
        """The addresses to connect to for ``host``, each checked; BlockedAddressError if any
        of them is refused, OSError if the name does not resolve."""
        literal = ip_literal(host)
        if literal is not None:
            self.check_address(host, literal)
            return [str(_canonical(literal))]
        addresses = self.resolver(host, port)
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        for address in addresses:
            self.check_address(host, ipaddress.ip_address(address.split("%", 1)[0]))
        return addresses
