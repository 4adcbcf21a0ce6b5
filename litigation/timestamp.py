"""RFC 3161 trusted time-stamps for a dossier's manifest (asn1crypto, httpx, the openssl CLI).

A dossier proves when it existed by a token from a Time-Stamping Authority over the SHA-256
digest of its ``manifest.json`` bytes. :func:`request_timestamp` asks the TSA at the configured
URL (optionally with HTTP basic auth) and checks the reply: status granted, our digest, our
nonce. :func:`read_token` reads a saved token; :func:`check_token` compares it with a digest and,
given the TSA's CA certificates, has ``openssl ts -verify`` check the CMS signature and the
TSA's certificate chain. The caller passes the settings (TSA URL, credentials, CA file, timeout)
as arguments; this module reads none itself.

What is saved (:attr:`TimestampToken.der`) is the TimeStampToken alone, the CMS ContentInfo,
not the whole TimeStampResp around it: the status is known to be "granted" once we keep it, and
the token is the self-contained signed object that other tools take (``openssl ts -verify
-token_in``, ``openssl ts -reply -token_in -text``, a PAdES/CAdES signature's time-stamp
attribute). Without ``-token_in`` openssl expects a whole response and fails on it.

Every failure is a :class:`~litigation.errors.TimestampError` with a message for a person; a
digest of the wrong length is a ValueError (a programming error, not a TSA's).
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import cms, core, tsp

from litigation.errors import TimestampError

QUERY_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"
HASH_ALGORITHM = "sha256"
_DIGEST_SIZE = 32
# A reply with the TSA's certificate chain is a few kB; the bound only stops a hostile server.
_MAX_REPLY_BYTES = 1_000_000
_GRANTED = ("granted", "granted_with_mods")

# asn1crypto 1.5.1 declares the token mandatory, but RFC 3161 §2.4.2 makes it OPTIONAL and a
# rejection carries none, so the stock class cannot even read the status of a refusal
# (wbond/asn1crypto#286). Made with type() because the base is untyped.
_TimeStampResp: Any = type("_TimeStampResp", (tsp.TimeStampResp,), {"_fields": [
    ("status", tsp.PKIStatusInfo),
    ("time_stamp_token", cms.ContentInfo, {"optional": True}),
]})


@dataclass(frozen=True)
class TimestampToken:
    """An RFC 3161 time-stamp token and what it says.

    ``der`` is the TimeStampToken (CMS ContentInfo) as DER, what a dossier stores; ``gen_time``
    the TSA's time (UTC); ``policy`` the TSA policy OID, dotted; ``tsa_name`` the name the TSA
    gave itself, if any; ``digest_hex`` the SHA-256 digest it time-stamps.
    """

    der: bytes
    gen_time: datetime
    serial_number: int
    policy: str
    tsa_name: str | None
    digest_hex: str


def request_timestamp(digest: bytes, url: str, *, timeout: float = 30.0,
                      client: httpx.Client | None = None, username: str = "",
                      password: str = "") -> TimestampToken:
    """A token from the TSA at ``url`` over ``digest`` (SHA-256), checked against the request.

    The token's signature is not checked here (that needs the TSA's CA: :func:`check_token`),
    but its certificate is asked for, so the token verifies on its own later.

    :param timeout: seconds for connecting and for each read.
    :param client: the HTTP client to use; one is made (and closed) for this request otherwise.
    :param username: for TSAs behind HTTP basic auth; empty means no credentials are sent.
    """
    _require_sha256(digest)
    nonce = secrets.randbits(64)  # ties the reply to this request: no replay of an old one
    query = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": HASH_ALGORITHM},
                            "hashed_message": digest},
        "nonce": nonce,
        "cert_req": True,
    }).dump()
    if client is None:
        with httpx.Client() as own_client:
            body = _post(own_client, url, query, timeout, username, password)
    else:
        body = _post(client, url, query, timeout, username, password)
    return _token_from_reply(body, url, digest, nonce)


def read_token(der: bytes) -> TimestampToken:
    """The token saved as ``der`` (the TimeStampToken alone, as :attr:`TimestampToken.der`)."""
    try:
        content_info = cms.ContentInfo.load(der, strict=True)
        content_type = content_info["content_type"].native
    except (ValueError, TypeError) as exc:
        if _is_whole_reply(der):
            raise TimestampError("this is a whole TimeStampResp, not a time-stamp token: save "
                                 "its timeStampToken") from exc
        raise TimestampError(f"not a time-stamp token: {exc}") from exc
    token, _ = _parse_token(content_info, content_type, der)
    return token


def check_token(der: bytes, digest: bytes, *, ca_file: str | None = None,
                timeout: float = 30.0) -> TimestampToken:
    """The token in ``der`` once it is shown to time-stamp ``digest``.

    With ``ca_file`` (PEM certificates to trust) ``openssl ts -verify`` also checks the
    signature over the token and the chain from the TSA's certificate to one of them, at the
    current time: a TSA certificate that has expired since fails.

    :param timeout: seconds that openssl may take.
    """
    _require_sha256(digest)
    token = read_token(der)
    if token.digest_hex != digest.hex():
        raise TimestampError(f"the time-stamp token is for digest {token.digest_hex}, "
                             f"not for {digest.hex()}")
    if ca_file is not None:
        _openssl_verify(der, digest, ca_file, timeout)
    return token


def _require_sha256(digest: bytes) -> None:
    if len(digest) != _DIGEST_SIZE:
        raise ValueError(f"a SHA-256 digest has {_DIGEST_SIZE} bytes, not {len(digest)}")


def _post(client: httpx.Client, url: str, query: bytes, timeout: float, username: str,
          password: str) -> bytes:
    auth = httpx.BasicAuth(username, password) if username else httpx.USE_CLIENT_DEFAULT
    headers = {"Content-Type": QUERY_MEDIA_TYPE, "Accept": REPLY_MEDIA_TYPE}
    try:
        with client.stream("POST", url, content=query, headers=headers, timeout=timeout,
                           auth=auth) as response:
            body = _read_bounded(response, url)
            status = response.status_code
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    except httpx.TransportError as exc:
        raise TimestampError(f"cannot reach the TSA at {url}: {exc!r}") from exc
    if status != 200:
        text = body[:200].decode("utf-8", "replace").strip()
        raise TimestampError(f"the TSA at {url} answered HTTP {status}"
                             + (f": {text}" if text else ""))
    if media_type != REPLY_MEDIA_TYPE:
        raise TimestampError(f"the TSA at {url} answered {media_type or 'no content type'}, "
                             f"not {REPLY_MEDIA_TYPE}")
    return body


def _read_bounded(response: httpx.Response, url: str) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > _MAX_REPLY_BYTES:
            raise TimestampError(f"the TSA at {url} answered more than {_MAX_REPLY_BYTES} bytes")
    return bytes(body)


def _token_from_reply(body: bytes, url: str, digest: bytes, nonce: int) -> TimestampToken:
    try:
        reply = _TimeStampResp.load(body, strict=True)
        status_info = reply["status"]
        status = status_info["status"].native
        texts = status_info["status_string"].native or []
        failures = status_info["fail_info"].native or set()
        content_info = reply["time_stamp_token"]
        content_type = (None if isinstance(content_info, core.Void)
                        else content_info["content_type"].native)
    except (ValueError, TypeError) as exc:
        raise TimestampError(f"the TSA at {url} sent a malformed reply: {exc}") from exc
    if status not in _GRANTED:
        detail = "; ".join(str(text) for text in texts)
        failure = ", ".join(sorted(_rfc_name(str(name)) for name in failures))
        raise TimestampError(f"the TSA at {url} refused the time-stamp: status "
                             f"{_rfc_name(str(status))}" + (f": {detail}" if detail else "")
                             + (f" (failure info: {failure})" if failure else ""))
    if not content_type:
        raise TimestampError(f"the TSA at {url} granted the time-stamp but sent no token")
    der = content_info.dump()
    token, token_nonce = _parse_token(content_info, content_type, der)
    if token.digest_hex != digest.hex():
        raise TimestampError(f"the TSA at {url} time-stamped digest {token.digest_hex}, "
                             f"not the requested {digest.hex()}")
    if token_nonce != nonce:
        answered = "without a nonce" if token_nonce is None else f"with nonce {token_nonce}"
        raise TimestampError(f"the TSA at {url} answered {answered} to a request with nonce "
                             f"{nonce}: a replayed or misdirected reply")
    if not content_info["content"]["certificates"].native:
        raise TimestampError(f"the TSA at {url} sent no certificate although it was asked to")
    return token


def _parse_token(content_info: Any, content_type: Any,
                 der: bytes) -> tuple[TimestampToken, int | None]:
    """The token and its nonce, if it has one; TimestampError when it is not a token."""
    if content_type != "signed_data":
        raise TimestampError(f"not a time-stamp token: CMS content {content_type}, "
                             "not signed data")
    try:
        encapsulated = content_info["content"]["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TimestampError("not a time-stamp token: the signed content is "
                                 f"{encapsulated['content_type'].native}, not TSTInfo")
        if isinstance(encapsulated["content"], core.Void):
            raise TimestampError("not a time-stamp token: the TSTInfo is missing")
        info = encapsulated["content"].parsed
        algorithm = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        digest = info["message_imprint"]["hashed_message"].native
        gen_time = info["gen_time"].native
        serial_number = info["serial_number"].native
        policy = info["policy"].dotted
        nonce = info["nonce"].native
        tsa = info["tsa"]
        tsa_name = (None if isinstance(tsa, core.Void) else tsa.chosen.human_friendly
                    if tsa.name == "directory_name" else str(tsa.native))
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"not a time-stamp token: {exc}") from exc
    if algorithm != HASH_ALGORITHM:
        raise TimestampError(f"the time-stamp token's imprint is {algorithm}, "
                             f"not {HASH_ALGORITHM}")
    if not isinstance(gen_time, datetime):  # asn1crypto's extended_datetime: year 0
        raise TimestampError(f"the time-stamp token has an impossible time {gen_time}")
    token = TimestampToken(der=der, gen_time=gen_time.astimezone(UTC),
                           serial_number=int(serial_number), policy=str(policy),
                           tsa_name=tsa_name, digest_hex=bytes(digest).hex())
    return token, None if nonce is None else int(nonce)


def _is_whole_reply(der: bytes) -> bool:
    try:
        return bool(_TimeStampResp.load(der, strict=True)["status"].native)
    except (ValueError, TypeError):
        return False


def _rfc_name(name: str) -> str:
    """asn1crypto's "granted_with_mods" as RFC 3161 spells it: "grantedWithMods"."""
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _openssl_verify(der: bytes, digest: bytes, ca_file: str, timeout: float) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TimestampError("verifying a time-stamp token needs the openssl command, "
                             "which is not on PATH")
    with tempfile.TemporaryDirectory(prefix="copyguard-tst-") as work:
        token_file = Path(work, "token.tsr")
        token_file.write_bytes(der)
        command = [openssl, "ts", "-verify", "-digest", digest.hex(), "-token_in",
                   "-in", str(token_file), "-CAfile", ca_file]
        try:
            result = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                    timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TimestampError(f"openssl ts -verify took more than {timeout} s") from exc
        except OSError as exc:
            raise TimestampError(f"cannot run openssl: {exc}") from exc
    if result.returncode != 0 or "Verification: OK" not in result.stdout:
        raise TimestampError(f"the time-stamp token does not verify against {ca_file}: "
                             f"{_openssl_message(result.stderr)}")


def _openssl_message(stderr: str) -> str:
    """openssl's error lines without the noise: "...:error:17800064:time stamp routines:
    ts_verify_cert:certificate verify error:../crypto/ts/ts_rsp_verify.c:188:Verify error:
    self-signed certificate" becomes "time stamp routines:ts_verify_cert:certificate verify
    error:Verify error:self-signed certificate"."""
    lines = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line or line.startswith("Using configuration from"):
            continue
        line = re.sub(r"^[0-9A-F]+:error:[0-9A-F]+:", "", line)
        lines.append(re.sub(r":[^:]*\.c:\d+:", ":", line).rstrip(":"))
    return "; ".join(lines) or "no reason given"
