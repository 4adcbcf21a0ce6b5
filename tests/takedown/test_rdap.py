"""RdapClient against a real RDAP-speaking HTTP server on 127.0.0.1, and the bootstrap helpers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from takedown.errors import RecipientLookupError
from takedown.rdap import (
    RDAP_MEDIA_TYPE,
    RdapClient,
    find_abuse_contact,
    servers_for_domain,
    servers_for_ip,
)
from tests.takedown.servers import HttpTestServer, Reply


def _vcard(name: str, email: str | None = None, phone: str | None = None) -> list[Any]:
    props: list[Any] = [["version", {}, "text", "4.0"], ["fn", {}, "text", name],
                        ["kind", {}, "text", "group"]]
    if email:
        props.append(["email", {"type": "work"}, "text", email])
    if phone:
        props.append(["tel", {"type": ["work", "voice"]}, "uri", f"tel:{phone}"])
    return ["vcard", props]


# Shaped like an RIR answer: the technical contact comes first, the abuse desk is nested in the
# registrant organisation.
IP_NETWORK: dict[str, Any] = {
    "rdapConformance": ["rdap_level_0"], "objectClassName": "ip network",
    "handle": "NET-192-0-2-0-1", "startAddress": "192.0.2.0", "endAddress": "192.0.2.255",
    "entities": [
        {"objectClassName": "entity", "handle": "NOC1-TEST", "roles": ["technical"],
         "vcardArray": _vcard("Network Operations", "noc@hosting.example")},
        {"objectClassName": "entity", "handle": "HOSTING-ORG", "roles": ["registrant"],
         "vcardArray": _vcard("Bulletproof Hosting Ltd"),
         "entities": [
             {"objectClassName": "entity", "handle": "ABUSE5-TEST", "roles": ["abuse"],
              "vcardArray": _vcard("Abuse Desk", "abuse@hosting.example", "+1-555-0100")}]}]}

# Shaped like a gTLD registry answer: the abuse contact hangs off the registrar.
DOMAIN: dict[str, Any] = {
    "objectClassName": "domain", "ldhName": "pirate.example",
    "entities": [
        {"objectClassName": "entity", "roles": ["registrant"],
         "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                  ["fn", {}, "text", "REDACTED FOR PRIVACY"]]]},
        {"objectClassName": "entity", "handle": "9999", "roles": ["registrar"],
         "vcardArray": _vcard("Example Registrar, Inc."),
         "entities": [{"objectClassName": "entity", "roles": ["abuse"],
                       "vcardArray": _vcard("", "abuse@registrar.example", "+1.5550199")}]}]}


def _rdap(document: object, status: int = 200, **extra: Any) -> Reply:
    return Reply(status, json.dumps(document).encode(), RDAP_MEDIA_TYPE, **extra)


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One client for the module: building its TLS context costs more than a whole test.
    with httpx.Client() as opened:
        yield opened


@pytest.fixture
def rdap(server: HttpTestServer, client: httpx.Client) -> RdapClient:
    return RdapClient(client, [f"{server.base_url}/rir/"], [f"{server.base_url}/tld"],
                      timeout=5.0)


def test_abuse_contact_found_in_a_nested_entity(server: HttpTestServer,
                                                rdap: RdapClient) -> None:
    server.reply("/rir/ip/192.0.2.10", _rdap(IP_NETWORK))

    contact = rdap.abuse_contact_for_ip("192.0.2.10")

    assert contact is not None
    assert (contact.email, contact.name, contact.phone, contact.role, contact.handle) == (
        "abuse@hosting.example", "Abuse Desk", "+1-555-0100", "abuse", "ABUSE5-TEST")
    assert contact.source_url == f"{server.base_url}/rir/ip/192.0.2.10"
    (request,) = server.requests
    assert request.headers["accept"].startswith(RDAP_MEDIA_TYPE)


def test_domain_lookup_finds_the_registrar_abuse_contact(server: HttpTestServer,
                                                         rdap: RdapClient) -> None:
    server.reply("/tld/domain/pirate.example", _rdap(DOMAIN))

    contact = rdap.abuse_contact_for_domain("Pirate.EXAMPLE.")

    assert contact is not None
    assert (contact.email, contact.role, contact.phone) == (
        "abuse@registrar.example", "abuse", "+1.5550199")
    assert contact.name is None  # an empty fn is no name


def test_404_is_none(server: HttpTestServer, rdap: RdapClient) -> None:
    assert rdap.abuse_contact_for_ip("2001:db8::1") is None
    assert [r.path for r in server.requests] == ["/rir/ip/2001:db8::1"]


def test_malformed_json_is_a_lookup_error(server: HttpTestServer, rdap: RdapClient) -> None:
    server.reply("/rir/ip/192.0.2.10", Reply(200, b'{"objectClassName": "ip net', RDAP_MEDIA_TYPE))
    with pytest.raises(RecipientLookupError, match="malformed JSON") as caught:
        rdap.abuse_contact_for_ip("192.0.2.10")
    assert isinstance(caught.value, RecipientLookupError) and not caught.value.temporary


def test_503_is_a_temporary_lookup_error(server: HttpTestServer, rdap: RdapClient) -> None:
    server.reply("/rir/ip/192.0.2.10", _rdap({"errorCode": 503}, 503,
                                             headers=(("Retry-After", "30"),)))
    with pytest.raises(RecipientLookupError, match="temporary") as caught:
        rdap.abuse_contact_for_ip("192.0.2.10")
    assert caught.value.temporary and caught.value.status_code == 503
    assert "Retry-After: 30" in str(caught.value)


def test_fallback_role_is_flagged_in_the_result(server: HttpTestServer,
                                                rdap: RdapClient) -> None:
    network = {"objectClassName": "ip network", "entities": [
        {"roles": ["registrant"], "handle": "ORG-1",
         "vcardArray": _vcard("Small ISP", "hostmaster@isp.example")}]}
    server.reply("/rir/ip/192.0.2.10", _rdap(network))
    contact = rdap.abuse_contact_for_ip("192.0.2.10")
    assert contact is not None and (contact.role, contact.email) == (
        "registrant", "hostmaster@isp.example")


def test_record_without_any_address_is_none() -> None:
    assert find_abuse_contact(DOMAIN | {"entities": DOMAIN["entities"][:1]}, "u") is None
    assert find_abuse_contact(IP_NETWORK, "u", fallback_roles=()) is not None


def test_next_server_is_asked_when_the_first_does_not_know(server: HttpTestServer,
                                                           client: httpx.Client) -> None:
    server.reply("/ripe/ip/192.0.2.10", _rdap(IP_NETWORK))
    rdap = RdapClient(client, [f"{server.base_url}/arin", f"{server.base_url}/ripe"], [])
    contact = rdap.abuse_contact_for_ip("192.0.2.10")
    assert contact is not None and contact.source_url.endswith("/ripe/ip/192.0.2.10")


def test_redirect_to_the_authoritative_server_is_followed(server: HttpTestServer,
                                                          rdap: RdapClient) -> None:
    target = f"{server.base_url}/ripe/ip/192.0.2.10"
    server.reply("/rir/ip/192.0.2.10", Reply(301, b"", RDAP_MEDIA_TYPE, (("Location", target),)))
    server.reply("/ripe/ip/192.0.2.10", _rdap(IP_NETWORK))
    contact = rdap.abuse_contact_for_ip("192.0.2.10")
    assert contact is not None and contact.source_url == target


def test_an_oversized_answer_is_refused(server: HttpTestServer, client: httpx.Client) -> None:
    server.reply("/rir/ip/192.0.2.10", _rdap(IP_NETWORK | {"remarks": ["x" * 5000]}))
    rdap = RdapClient(client, [f"{server.base_url}/rir"], [], max_bytes=2000)
    with pytest.raises(RecipientLookupError, match="larger than 2000 bytes"):
        rdap.abuse_contact_for_ip("192.0.2.10")


def test_an_html_page_is_not_an_rdap_answer(server: HttpTestServer, rdap: RdapClient) -> None:
    server.reply("/rir/ip/192.0.2.10", Reply(200, b"<html>login</html>", "text/html"))
    with pytest.raises(RecipientLookupError, match="not application/rdap"):
        rdap.abuse_contact_for_ip("192.0.2.10")


def test_unreachable_server_is_temporary(client: httpx.Client) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = RdapClient(client, [f"http://127.0.0.1:{port}/"], [], timeout=2.0)
    with pytest.raises(RecipientLookupError) as caught:
        dead.abuse_contact_for_ip("192.0.2.10")
    assert caught.value.temporary


@pytest.mark.parametrize("bad", ["192.0.2", "example.com", "fe80::1%eth0"])
def test_not_an_ip_address_is_refused_before_asking(bad: str, rdap: RdapClient) -> None:
    with pytest.raises(ValueError):
        rdap.abuse_contact_for_ip(bad)


@pytest.mark.parametrize("bad", ["", "pirate example", "a/../../ip/1.2.3.4", "x" * 64 + ".com"])
def test_not_a_domain_is_refused_before_asking(bad: str, rdap: RdapClient) -> None:
    with pytest.raises(ValueError):
        rdap.abuse_contact_for_domain(bad)


BOOTSTRAP_IPV4 = {"version": "1.0", "publication": "2026-01-01T00:00:00Z", "services": [
    [["192.0.0.0/8"], ["http://rdap.arin.example/registry/", "https://rdap.arin.example/registry/"]],
    [["192.0.2.0/24", "198.51.100.0/24"], ["https://rdap.test-net.example/"]]]}
BOOTSTRAP_DNS = {"version": "1.0", "services": [
    [["example", "test"], ["https://rdap.example-registry.example/"]],
    [["co.example"], ["https://rdap.co-example.example/"]]]}


def test_bootstrap_picks_the_longest_prefix_https_first() -> None:
    assert servers_for_ip(BOOTSTRAP_IPV4, "192.0.2.10") == ["https://rdap.test-net.example/"]
    assert servers_for_ip(BOOTSTRAP_IPV4, "192.7.7.7") == [
        "https://rdap.arin.example/registry/", "http://rdap.arin.example/registry/"]
    assert servers_for_ip(BOOTSTRAP_IPV4, "2001:db8::1") == []


def test_bootstrap_picks_the_longest_domain_suffix() -> None:
    assert servers_for_domain(BOOTSTRAP_DNS, "pirate.co.example") == [
        "https://rdap.co-example.example/"]
    assert servers_for_domain(BOOTSTRAP_DNS, "pirate.example") == [
        "https://rdap.example-registry.example/"]
    assert servers_for_domain(BOOTSTRAP_DNS, "pirate.invalid") == []
