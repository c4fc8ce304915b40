"""E-mail delivery over SMTP: smtplib, run in a thread by the notifier.

``tls`` says how the connection is protected:

- ``tls``: TLS from the first byte (SMTPS, port 465);
- ``starttls``: a plain connection upgraded with STARTTLS, refused if the server does
  not offer it (port 587 of most providers);
- ``auto`` (the default): ``tls`` on port 465; elsewhere STARTTLS whenever the server
  offers it, and plain only with a server that offers none (a local relay), never with
  a login: a password is not sent in the clear;
- ``off``: plain SMTP, for a relay on the same host; a login is refused.

Certificates are verified against the system's CAs, and the host name against the
certificate; ``SSL_CERT_FILE`` names another CA bundle (a private relay's CA).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

__all__ = ["SMTP_TLS_MODES", "SmtpServer", "Undeliverable", "send"]

SMTP_TLS_MODES = ("auto", "starttls", "tls", "off")
_SMTPS_PORT = 465


class Undeliverable(Exception):
    """A failure no retry will mend: no TLS where it is needed, a refused login, an
    unverifiable certificate, a refused sender or recipient."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str = "localhost"
    port: int = 25
    tls: str = "auto"
    user: str | None = None
    #: Kept out of the repr, so a logged settings object does not show it.
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("smtp-port: from 1 to 65535")
        if self.tls not in SMTP_TLS_MODES:
            raise ValueError(f"smtp-tls: one of {', '.join(SMTP_TLS_MODES)}, got {self.tls!r}")
        if (self.user is None) != (self.password is None):
            raise ValueError(
                "smtp-user: a login needs both --smtp-user and $EVENTCOLLECTOR_SMTP_PASSWORD"
            )
        if self.user is not None and self.tls == "off":
            raise ValueError("smtp-tls: 'off' sends the password in the clear; use a TLS mode")


def send(server: SmtpServer, message: EmailMessage, timeout: float) -> None:
    """Deliver ``message``; ``Undeliverable`` for what a retry would not mend."""
    context = ssl.create_default_context()
    implicit = server.tls == "tls" or (server.tls == "auto" and server.port == _SMTPS_PORT)
    try:
        smtp = (
            smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
            if implicit
            else smtplib.SMTP(server.host, server.port, timeout=timeout)
        )
        with smtp:
            if not implicit and server.tls != "off":
                _upgrade(smtp, server, context)
            if server.user is not None and server.password is not None:
                smtp.login(server.user, server.password)
            smtp.send_message(message)
    except ssl.SSLCertVerificationError as exc:
        raise Undeliverable(f"smtp: {server.host}'s certificate: {exc.verify_message}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise Undeliverable(f"smtp: login refused ({exc.smtp_code})") from exc
    except (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused) as exc:
        raise Undeliverable(f"smtp: {exc}") from exc


def _upgrade(smtp: smtplib.SMTP, server: SmtpServer, context: ssl.SSLContext) -> None:
    smtp.ehlo()
    if smtp.has_extn("starttls"):
        smtp.starttls(context=context)
        smtp.ehlo()
    elif server.tls == "starttls" or server.user is not None:
        raise Undeliverable(
            f"smtp: {server.host}:{server.port} does not offer STARTTLS"
            + (", and a password is not sent in the clear" if server.user else "")
        )
