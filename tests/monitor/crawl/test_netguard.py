"""The SSRF guard: which addresses the crawler may reach, in every notation."""

from __future__ import annotations

import ipaddress

import pytest

from monitor.crawl.netguard import BlockedAddressError, NetworkPolicy, ip_literal, is_public


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1",
    "ff02::1", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", [
    "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "[::1]",
    "[::ffff:127.0.0.1]", "127.0.0.1.",
])
def test_every_notation_of_loopback_is_refused(host: str) -> None:
    policy = NetworkPolicy(resolver=_never_called)
    literal = ip_literal(host)
    assert literal is not None
    with pytest.raises(BlockedAddressError, match="not a public address"):
        policy.resolve(host)


def test_a_name_is_refused_if_any_of_its_addresses_is_private() -> None:
    policy = NetworkPolicy(resolver=lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(BlockedAddressError, match=r"10\.0\.0\.5"):
        policy.resolve("rebind.example")


def test_a_public_name_resolves_to_its_checked_addresses() -> None:
    policy = NetworkPolicy(resolver=lambda host, port: ["93.184.216.34"])
    assert policy.resolve("music.example") == ["93.184.216.34"]


def test_allow_private_covers_the_target_host_only() -> None:
    answers = {"demo.local": ["127.0.0.1"], "other.local": ["127.0.0.2"]}
    policy = NetworkPolicy.allowing(["Demo.Local"], resolver=lambda host, port: answers[host])
    assert policy.resolve("demo.local") == ["127.0.0.1"]
    with pytest.raises(BlockedAddressError, match=r"other\.local"):
        policy.resolve("other.local")
    with pytest.raises(BlockedAddressError):
        policy.resolve("127.0.0.2")


def test_a_name_without_addresses_is_an_error() -> None:
    policy = NetworkPolicy(resolver=lambda host, port: [])
    with pytest.raises(OSError, match="no address"):
        policy.resolve("void.example")


def test_host_names_are_not_literals() -> None:
    assert ip_literal("music.example") is None
    assert ip_literal("1.example") is None


def _never_called(host: str, port: int) -> list[str]:
    raise AssertionError("an IP literal must not be resolved")
