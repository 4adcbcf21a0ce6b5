"""A real RFC 3161 Time-Stamping Authority on 127.0.0.1 for the litigation tests.

:func:`make_tsa_pki` makes a CA and a TSA certificate signed by it (EC P-256 through
``cryptography``; extendedKeyUsage timeStamping, critical, as ``openssl ts -verify`` demands)
and an ``openssl ts`` configuration. :class:`TsaTestServer` is a ``ThreadingHTTPServer`` on an
ephemeral port that answers each ``application/timestamp-query`` POST by running
``openssl ts -reply`` on it, and records the queries. :meth:`TsaTestServer.answering` switches
it, for the length of a ``with`` block, to misbehave: a real rejection from openssl, an HTTP 500,
a wrong content type, or a replay of the previous reply.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TSA_POLICY = "1.3.6.1.4.1.99999.1.1"
TSA_COMMON_NAME = "copyguard test TSA"
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"

# grant: openssl's reply; reject: openssl's own rejection (a section that only takes SHA-512);
# http_500: an error page; wrong_type: a granted reply labelled text/plain; replay: the reply
# to the previous granted query, whatever was asked now.
Mode = Literal["grant", "reject", "http_500", "wrong_type", "replay"]


@dataclass(frozen=True)
class TestCa:
    """A CA certificate and its key, in memory and as a PEM file."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path


@dataclass(frozen=True)
class TsaPki:
    ca: TestCa
    config_file: Path
    directory: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "copyguard tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def make_ca(directory: Path, common_name: str = "copyguard test CA") -> TestCa:
    """A self-signed CA, its certificate written to ``directory/<slug>.pem``."""
    # EC P-256: milliseconds to generate, where RSA would be felt in the test session.
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file = directory / f"{common_name.replace(' ', '-')}.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TestCa(cert, key, cert_file)


def make_tsa_pki(directory: Path) -> TsaPki:
    """A CA, a TSA certificate it signed, and the ``openssl ts`` configuration using them."""
    ca = make_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(TSA_COMMON_NAME)).issuer_name(ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            # RFC 3161 §2.3: the only purpose, and critical; openssl refuses the TSA otherwise.
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    (directory / "tsa.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tsa.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (directory / "serial").write_text("01\n")
    section = f"""\
dir = {directory}
serial = $dir/serial
signer_cert = $dir/tsa.pem
certs = {ca.cert_file}
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = {TSA_POLICY}
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
    config = directory / "tsa.cnf"
    config.write_text(f"[ tsa ]\ndefault_tsa = grant\n\n[ grant ]\n{section}digests = sha256\n\n"
                      f"[ reject ]\n{section}digests = sha512\n")
    return TsaPki(ca, config, directory)


@dataclass(frozen=True)
class RecordedQuery:
    content_type: str
    authorization: str | None
    body: bytes


@dataclass
class _State:
    pki: TsaPki
    mode: Mode = "grant"
    last_granted: bytes | None = None
    queries: list[RecordedQuery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # openssl rewrites the serial file on every reply; two at once would hand out one serial twice
    openssl_lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    state: _State  # set on the subclass each server makes, never shared between servers

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        with self.state.lock:
            self.state.queries.append(RecordedQuery(content_type,
                                                    self.headers.get("Authorization"), body))
            mode, last = self.state.mode, self.state.last_granted
        if mode == "http_500":
            self._send(500, b"TSA out of order", "text/plain")
        elif content_type != QUERY_TYPE:
            self._send(415, b"not a time-stamp query", "text/plain")
        elif mode == "replay" and last is not None:
            self._send(200, last, REPLY_TYPE)
        else:
            try:
                reply = self._openssl_reply(body, "reject" if mode == "reject" else "grant")
            except subprocess.CalledProcessError as exc:
                self._send(500, exc.stderr, "text/plain")
                return
            if mode != "reject":
                with self.state.lock:
                    self.state.last_granted = reply
            self._send(200, reply, "text/plain" if mode == "wrong_type" else REPLY_TYPE)

    def _openssl_reply(self, query: bytes, section: str) -> bytes:
        with tempfile.TemporaryDirectory(dir=self.state.pki.directory) as work:
            query_file, reply_file = Path(work, "query.tsq"), Path(work, "reply.tsr")
            query_file.write_bytes(query)
            command = ["openssl", "ts", "-reply", "-config", str(self.state.pki.config_file),
                       "-section", section, "-queryfile", str(query_file),
                       "-out", str(reply_file)]
            with self.state.openssl_lock:
                subprocess.run(command, check=True, capture_output=True, timeout=30)
            return reply_file.read_bytes()

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class TsaTestServer:
    """The TSA at :attr:`url`; :attr:`ca_file` is the CA its certificate chains to."""

    def __init__(self, pki: TsaPki) -> None:
        self._state = _State(pki)
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A short poll interval: shutdown() waits for it.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/tsa"

    @property
    def ca_file(self) -> str:
        return str(self._state.pki.ca.cert_file)

    @property
    def queries(self) -> list[RecordedQuery]:
        with self._state.lock:
            return list(self._state.queries)

    @contextmanager
    def answering(self, mode: Mode) -> Iterator[None]:
        """Answer in ``mode`` inside the block, then grant again (the server outlives a test)."""
        with self._state.lock:
            self._state.mode = mode
        try:
            yield
        finally:
            with self._state.lock:
                self._state.mode = "grant"

    def __enter__(self) -> TsaTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
