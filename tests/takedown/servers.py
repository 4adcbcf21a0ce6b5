"""Real servers on 127.0.0.1 for the takedown tests: an SMTP relay and a small HTTP server.

``SmtpTestServer`` is an aiosmtpd ``Controller`` on an ephemeral port that records every message
it accepts (parsed), offers STARTTLS with a self-signed certificate made by :func:`make_tls`,
AUTH LOGIN/PLAIN for one test user once TLS is up, and can be told to fail the next transactions
with a chosen reply (``fail_next``). ``HttpTestServer`` is a ``ThreadingHTTPServer`` on port 0
that answers configured replies per path and records every request. Both are context managers
that stop their thread and close their sockets on exit, so no ResourceWarning escapes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_USER = "notices"
SMTP_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TestTls:
    """A self-signed certificate for 127.0.0.1/localhost: the server's side and a client's trust."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    certfile: Path
    keyfile: Path
    cert_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.cert_pem.decode("ascii"))


def make_tls(directory: Path) -> TestTls:
    # EC P-256: generated in milliseconds, where an RSA key would cost a noticeable fraction
    # of the whole test file.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert_pem)
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return TestTls(certfile, keyfile, cert_pem)


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated_as: str | None
    over_tls: bool


@dataclass
class _Failure:
    stage: str  # "RCPT" or "DATA"
    reply: str
    remaining: int


class RecordingHandler:
    """aiosmtpd handler: records accepted messages, fails on request."""

    def __init__(self) -> None:
        self.received: list[ReceivedMessage] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()  # the server thread appends while the test thread reads

    def fail_next(self, count: int, reply: str, stage: str = "DATA") -> None:
        with self._lock:
            self._failures.append(_Failure(stage, reply, count))

    def _failure_for(self, stage: str) -> str | None:
        with self._lock:
            for failure in self._failures:
                if failure.stage == stage and failure.remaining > 0:
                    failure.remaining -= 1
                    return failure.reply
        return None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        failure = self._failure_for("RCPT")
        if failure is not None:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._failure_for("DATA")
        if failure is not None:
            return failure
        raw = envelope.original_content or b""
        parsed = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
        login = session.auth_data if session.authenticated else None
        user = login.login.decode() if isinstance(login, LoginPassword) else None
        # session.ssl is only set by STARTTLS; the transport knows about implicit TLS as well
        over_tls = server.transport is not None and bool(
            server.transport.get_extra_info("ssl_object"))
        with self._lock:
            self.received.append(ReceivedMessage(
                mail_from=envelope.mail_from or "", rcpt_tos=list(envelope.rcpt_tos),
                message=parsed, authenticated_as=user, over_tls=over_tls))
            number = len(self.received)
        return f"250 2.0.0 Ok: queued as TESTQ{number}"


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (mechanism in ("LOGIN", "PLAIN") and isinstance(auth_data, LoginPassword)
          and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class _EphemeralController(Controller):
    """A Controller on port 0; the stock one would probe port 0 instead of the bound port."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpTestServer:
    def __init__(self, tls: TestTls | None = None, *, implicit_tls: bool = False) -> None:
        self.handler = RecordingHandler()
        context = tls.server_context() if tls else None
        self._controller = _EphemeralController(
            self.handler, hostname="127.0.0.1", port=0, server_hostname="localhost",
            ssl_context=context if implicit_tls else None,
            tls_context=None if implicit_tls else context,
            authenticator=_authenticate, auth_require_tls=True)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def received(self) -> list[ReceivedMessage]:
        return self.handler.received

    def fail_next(self, count: int, reply: str, stage: str = "DATA") -> None:
        self.handler.fail_next(count, reply, stage)

    def __enter__(self) -> SmtpTestServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Routes:
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    routes: _Routes  # set on the subclass each server makes, never shared between servers

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()}, body)
        with self.routes.lock:
            self.routes.requests.append(request)
            reply = self.routes.replies.get(self.path, Reply(404, b'{"errorCode": 404}'))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading a long body resets the connection on purpose (the
        # bounded-read tests); the stock handler would print that as a traceback.
        pass


class HttpTestServer:
    """Answers ``replies[path]`` (404 otherwise) and records every request, in order."""

    def __init__(self) -> None:
        self._routes = _Routes()
        handler = type("Handler", (_Handler,), {"routes": self._routes})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._routes.lock:
            return list(self._routes.requests)

    def reply(self, path: str, reply: Reply) -> None:
        with self._routes.lock:
            self._routes.replies[path] = reply

    def __enter__(self) -> HttpTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def http_server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as server:
        yield server
