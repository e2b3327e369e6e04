"""Real local targets for the alert tests: an SMTP server (aiosmtpd), an HTTP sink, a port
nobody listens on, a self-signed certificate for the TLS modes, and the warehouses."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine

from tests.databases import fresh_engine

SMTP_USER, SMTP_PASSWORD = "alerts@example.com", "s3cret-Pa55"
# A PostgreSQL database of the alert tests' own: other test modules reset theirs meanwhile.
PG_SUFFIX = "_alerts"


def free_port() -> int:
    """A port that was free a moment ago (nothing listens on it unless a test starts it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def refused_port() -> int:
    return free_port()


# --- SMTP -----------------------------------------------------------------------------------


@dataclass
class Inbox:
    """What the SMTP server accepted; filled before the server answers 250 to DATA, so a test
    reads it as soon as ``smtplib`` returns (no waiting)."""

    port: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(bytes(e.original_content or b""), policy=policy.default)
            for e in self.envelopes
        ]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        ok = (login, password) == (SMTP_USER, SMTP_PASSWORD)
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535


@contextmanager
def smtp_server(**parameters: Any) -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1; ``parameters`` go to aiosmtpd (TLS, authentication)."""
    inbox = Inbox(port=free_port())
    if parameters.pop("auth", False):
        parameters.update(authenticator=inbox.authenticate)
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, **parameters)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A plain SMTP relay without authentication (like a local Postfix)."""
    with smtp_server() as running:
        yield running


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (the client trusts it explicitly)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


# --- HTTP -----------------------------------------------------------------------------------


@dataclass
class Sink:
    """A webhook receiver: records each POST, answers the queued statuses, then 200."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [request["json"]["text"] for request in self.received]


def _handler(sink: Sink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            sink.received.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "json": json.loads(body),
                }
            )
            status = sink.statuses.pop(0) if sink.statuses else 200
            answer = b"ok" if status < 400 else b"invalid_token"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def sink() -> Iterator[Sink]:
    """An HTTP server on 127.0.0.1 taking webhook POSTs at any path."""
    sink = Sink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(sink))
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000/tOkEn"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- warehouses -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated, empty PostgreSQL warehouse (tests isolate themselves by key or account)."""
    engine = fresh_engine("postgresql", tmp_path_factory.mktemp("pg"), suffix=PG_SUFFIX)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated, empty warehouse on each backend."""
    warehouse = fresh_engine(request.param, tmp_path_factory.mktemp("warehouse"), PG_SUFFIX)
    yield warehouse
    warehouse.dispose()


@pytest.fixture
def account() -> str:
    """A partition (account) no other test uses: de-duplication state is per partition."""
    return f"cafe-{uuid.uuid4().hex[:8]}"
