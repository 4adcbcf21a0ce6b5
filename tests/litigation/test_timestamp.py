"""RFC 3161 time-stamps against the real local TSA (``openssl ts -reply``) of ``conftest.py``."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asn1crypto import cms, tsp

from litigation.errors import LitigationError, TimestampError
from litigation.timestamp import TimestampToken, check_token, read_token, request_timestamp
from tests.litigation.tsa_server import (
    QUERY_TYPE,
    TSA_COMMON_NAME,
    TSA_POLICY,
    TsaTestServer,
    make_ca,
)

MANIFEST = b'{"dossier": "case-17", "files": {"capture.warc.gz": "9f2c..."}}\n'
DIGEST = hashlib.sha256(MANIFEST).digest()
OTHER_DIGEST = hashlib.sha256(MANIFEST + b" ").digest()


@pytest.fixture(scope="module")
def token(tsa: TsaTestServer) -> TimestampToken:
    return request_timestamp(DIGEST, tsa.url)


def _flip(der: bytes, part: bytes, change: bytes) -> bytes:
    """``der`` with the one occurrence of ``part`` replaced by ``change`` (same length)."""
    assert der.count(part) == 1 and len(change) == len(part)
    return der.replace(part, change)


def test_tsa_time_stamps_the_digest(tsa: TsaTestServer, token: TimestampToken) -> None:
    assert token.digest_hex == DIGEST.hex()
    assert abs(datetime.now(UTC) - token.gen_time) < timedelta(minutes=1)
    assert token.gen_time.tzinfo is not None and token.gen_time.utcoffset() == timedelta(0)
    assert token.policy == TSA_POLICY
    assert token.tsa_name is not None and TSA_COMMON_NAME in token.tsa_name
    assert token.serial_number > 0


def test_query_asks_for_sha256_with_nonce_and_certificate(tsa: TsaTestServer) -> None:
    request_timestamp(DIGEST, tsa.url)
    sent = tsa.queries[-1]
    query = tsp.TimeStampReq.load(sent.body)
    assert sent.content_type == QUERY_TYPE and sent.authorization is None
    assert query["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert query["message_imprint"]["hashed_message"].native == DIGEST
    assert query["cert_req"].native is True
    assert 0 <= query["nonce"].native < 2**64


def test_two_requests_get_different_nonces_and_serials(tsa: TsaTestServer,
                                                       token: TimestampToken) -> None:
    again = request_timestamp(DIGEST, tsa.url)
    assert again.serial_number != token.serial_number
    nonces = {tsp.TimeStampReq.load(q.body)["nonce"].native for q in tsa.queries[-2:]}
    assert len(nonces) == 2


def test_credentials_go_as_basic_auth_through_an_injected_client(tsa: TsaTestServer) -> None:
    with httpx.Client() as client:
        request_timestamp(DIGEST, tsa.url, client=client, username="copyguard",
                          password="s3cret")
        assert not client.is_closed  # the caller's client stays the caller's
    expected = base64.b64encode(b"copyguard:s3cret").decode()
    assert tsa.queries[-1].authorization == f"Basic {expected}"


def test_saved_token_reads_back_the_same(token: TimestampToken) -> None:
    assert read_token(token.der) == token
    assert cms.ContentInfo.load(token.der)["content_type"].native == "signed_data"


def test_token_verifies_against_the_tsa_ca(tsa: TsaTestServer, token: TimestampToken) -> None:
    assert check_token(token.der, DIGEST, ca_file=tsa.ca_file) == token


def test_token_for_another_digest_is_refused_naming_both(tsa: TsaTestServer,
                                                         token: TimestampToken) -> None:
    with pytest.raises(TimestampError) as caught:
        check_token(token.der, OTHER_DIGEST, ca_file=tsa.ca_file)
    assert DIGEST.hex() in str(caught.value) and OTHER_DIGEST.hex() in str(caught.value)


def test_tampered_signature_fails_verification(tsa: TsaTestServer,
                                               token: TimestampToken) -> None:
    signature = cms.ContentInfo.load(token.der)["content"]["signer_infos"][0]["signature"]
    value = signature.native
    middle = len(value) // 2
    tampered = _flip(token.der, value, value[:middle] + bytes([value[middle] ^ 0x01])
                     + value[middle + 1:])
    with pytest.raises(TimestampError, match="does not verify"):
        check_token(tampered, DIGEST, ca_file=tsa.ca_file)


def test_backdated_token_reads_but_fails_verification(tsa: TsaTestServer,
                                                      token: TimestampToken) -> None:
    # A year earlier in the signed TSTInfo: still a well-formed token for our digest.
    stamp = token.gen_time.strftime("%Y%m%d%H%M%S").encode()
    earlier = str(token.gen_time.year - 1).encode() + stamp[4:]
    backdated = _flip(token.der, stamp, earlier)
    assert check_token(backdated, DIGEST).gen_time.year == token.gen_time.year - 1
    with pytest.raises(TimestampError, match="does not verify") as caught:
        check_token(backdated, DIGEST, ca_file=tsa.ca_file)
    assert "digest failure" in str(caught.value)  # the signed attributes no longer match


def test_token_fails_against_an_unrelated_ca(tmp_path: Path, token: TimestampToken) -> None:
    stranger = make_ca(tmp_path, "unrelated CA")
    with pytest.raises(TimestampError, match="does not verify") as caught:
        check_token(token.der, DIGEST, ca_file=str(stranger.cert_file))
    # the token carries the TSA's CA, which openssl does not trust here
    assert "certificate verify error" in str(caught.value)


def test_rejection_reports_status_text_and_failure_info(tsa: TsaTestServer) -> None:
    with tsa.answering("reject"), pytest.raises(TimestampError) as caught:
        request_timestamp(DIGEST, tsa.url)
    message = str(caught.value)
    assert "refused" in message and "status rejection" in message
    assert "Message digest algorithm is not supported" in message and "badAlg" in message


def test_http_500_is_reported_with_the_body(tsa: TsaTestServer) -> None:
    with tsa.answering("http_500"), pytest.raises(TimestampError,
                                                  match="HTTP 500: TSA out of order"):
        request_timestamp(DIGEST, tsa.url)


def test_reply_of_the_wrong_content_type_is_refused(tsa: TsaTestServer) -> None:
    with tsa.answering("wrong_type"), pytest.raises(TimestampError,
                                                    match="text/plain, not application/"):
        request_timestamp(DIGEST, tsa.url)


def test_replayed_reply_is_caught_by_its_nonce_or_imprint(tsa: TsaTestServer) -> None:
    request_timestamp(DIGEST, tsa.url)
    with tsa.answering("replay"):
        with pytest.raises(TimestampError, match=r"nonce \d+ to a request .*: a replayed"):
            request_timestamp(DIGEST, tsa.url)
        with pytest.raises(TimestampError) as caught:
            request_timestamp(OTHER_DIGEST, tsa.url)
    assert f"time-stamped digest {DIGEST.hex()}, not the requested" in str(caught.value)


def test_closed_port_is_reported_as_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tsa"
    expected = re.escape(f"cannot reach the TSA at {url}: ConnectError")
    with pytest.raises(TimestampError, match=expected):
        request_timestamp(DIGEST, url, timeout=5)


@pytest.mark.parametrize("garbage", [b"", b"not a token", b"\x30\x03\x02\x01\x05",
                                     MANIFEST], ids=["empty", "text", "sequence", "json"])
def test_garbage_is_not_a_token(garbage: bytes) -> None:
    with pytest.raises(TimestampError, match="not a time-stamp token"):
        read_token(garbage)


def test_truncated_token_is_not_a_token(token: TimestampToken) -> None:
    with pytest.raises(LitigationError):
        read_token(token.der[:-20])


def test_whole_reply_is_named_as_such(tsa: TsaTestServer) -> None:
    query = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": DIGEST}}).dump()
    reply = httpx.post(tsa.url, content=query, headers={"Content-Type": QUERY_TYPE}).content
    with pytest.raises(TimestampError, match="whole TimeStampResp"):
        read_token(reply)


def test_digest_of_the_wrong_size_is_a_programming_error(tsa: TsaTestServer) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        request_timestamp(hashlib.sha1(MANIFEST).digest(), tsa.url)
