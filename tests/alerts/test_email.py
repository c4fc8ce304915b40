"""E-mail delivery against real SMTP servers (aiosmtpd): STARTTLS with a login, TLS from
the first byte, plain relays, and what is refused rather than retried."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from _common import cli, free_port
from eventcollector.alerts import SmtpServer
from eventcollector.alerts._email import Undeliverable, send

USER, PASSWORD = "ops", "s3cret"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client trusts the test CA, as SSL_CERT_FILE makes OpenSSL do."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((session.authenticated, envelope.content))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 on a refusal


@contextmanager
def smtp_server(**options: Any) -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    port = free_port()
    options.setdefault("authenticator", inbox.authenticate)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def _message() -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "[eventcollector] test"
    message["From"] = "ec@example.org"
    message["To"] = "ops@example.com"
    message.set_content("body")
    return message


def test_starttls_and_a_login_deliver(ca: trustme.CA, trusted: None) -> None:
    """The server refuses anything before STARTTLS and AUTH before TLS."""
    context = _server_context(ca)
    with smtp_server(tls_context=context, require_starttls=True, auth_required=True) as (
        port,
        inbox,
    ):
        for mode in ("auto", "starttls"):
            send(SmtpServer("127.0.0.1", port, mode, USER, PASSWORD), _message(), 5)
    assert inbox.logins == [USER, USER]
    assert [authenticated for authenticated, _ in inbox.messages] == [True, True]
    assert b"Subject: [eventcollector] test" in inbox.messages[0][1]


def test_tls_from_the_first_byte_delivers(ca: trustme.CA, trusted: None) -> None:
    with smtp_server(ssl_context=_server_context(ca), auth_require_tls=False) as (port, inbox):
        send(SmtpServer("127.0.0.1", port, "tls", USER, PASSWORD), _message(), 5)
    assert inbox.logins == [USER]
    assert len(inbox.messages) == 1


def test_a_plain_relay_delivers_without_a_login() -> None:
    with smtp_server() as (port, inbox):
        send(SmtpServer("127.0.0.1", port), _message(), 5)  # auto: no STARTTLS offered
        send(SmtpServer("127.0.0.1", port, "off"), _message(), 5)
    assert len(inbox.messages) == 2


def test_a_password_is_never_sent_in_the_clear() -> None:
    with smtp_server(auth_require_tls=False) as (port, inbox):
        with pytest.raises(Undeliverable, match="does not offer STARTTLS, and a password"):
            send(SmtpServer("127.0.0.1", port, "auto", USER, PASSWORD), _message(), 5)
        with pytest.raises(Undeliverable, match="does not offer STARTTLS"):
            send(SmtpServer("127.0.0.1", port, "starttls"), _message(), 5)
    assert inbox.messages == []


def test_an_untrusted_certificate_is_final(ca: trustme.CA) -> None:
    with (
        smtp_server(tls_context=_server_context(ca)) as (port, inbox),
        pytest.raises(Undeliverable, match="certificate"),
    ):
        send(SmtpServer("127.0.0.1", port, "starttls"), _message(), 5)
    assert inbox.messages == []


def test_a_wrong_password_is_final(ca: trustme.CA, trusted: None) -> None:
    with (
        smtp_server(tls_context=_server_context(ca)) as (port, inbox),
        pytest.raises(Undeliverable, match="login refused"),
    ):
        send(SmtpServer("127.0.0.1", port, "auto", USER, "wrong"), _message(), 5)
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"tls": "maybe"}, "smtp-tls: one of auto, starttls, tls, off"),
        ({"user": USER}, "smtp-user: a login needs both"),
        ({"password": PASSWORD}, "smtp-user: a login needs both"),
        ({"tls": "off", "user": USER, "password": PASSWORD}, "in the clear"),
        ({"port": 0}, "smtp-port"),
    ],
)
def test_settings_that_cannot_work_are_refused(options: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SmtpServer(**options)


def test_the_password_is_not_in_the_repr() -> None:
    assert PASSWORD not in repr(SmtpServer("h", 587, "starttls", USER, PASSWORD))


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ["--smtp-user", USER],
            {},
            "error: smtp-user: a login needs both --smtp-user and $EVENTCOLLECTOR_SMTP_PASSWORD",
        ),
        (
            ["--smtp-tls", "off", "--smtp-user", USER],
            {"EVENTCOLLECTOR_SMTP_PASSWORD": PASSWORD},
            "error: smtp-tls: 'off' sends the password in the clear; use a TLS mode",
        ),
        (
            ["--smtp-tls", "sometimes"],
            {},
            "error: smtp-tls: one of auto, starttls, tls, off, got 'sometimes'",
        ),
    ],
)
def test_serve_refuses_smtp_settings_that_cannot_work(
    tmp_path: Path, args: list[str], env: dict[str, str], line: str
) -> None:
    result = cli("serve", "--port", "9", "--db", str(tmp_path / "events.db"), *args, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]
    assert PASSWORD not in result.stderr
