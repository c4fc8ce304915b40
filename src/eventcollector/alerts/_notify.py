"""Notifiers: webhook (signed JSON), Slack-compatible incoming webhook, e-mail.

Each notice goes to every target of its rule in a task of its own, so a slow or
dead receiver delays nothing else: bounded timeouts, a bounded number of retries
with exponential backoff (transport errors, 429 and 5xx; other 4xx are final), and
one history record per target saying whether it arrived. HTTP needs httpx (in the
``server`` extra); e-mail uses smtplib in a thread (``_email``: TLS and login).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import orjson

from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState, format_duration
from eventcollector.alerts._email import SmtpServer, Undeliverable
from eventcollector.alerts._email import send as send_email
from eventcollector.model import Event, format_timestamp

if TYPE_CHECKING:
    import httpx

__all__ = ["SIGNATURE_HEADER", "Notice", "Notifier", "NotifySettings", "sign"]

log = logging.getLogger("eventcollector.alerts")

SIGNATURE_HEADER = "X-Eventcollector-Signature"
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Delivery bounds and the SMTP server (``serve --smtp-host`` and friends)."""

    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0
    smtp: SmtpServer = field(default_factory=SmtpServer)
    smtp_from: str = "eventcollector@localhost"
    #: Where links in notices point (``serve --public-url``).
    base_url: str | None = None

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("notify-timeout: must be positive")
        if not 0 <= self.retries <= 10:
            raise ValueError("notify-retries: from 0 to 10")
        if self.backoff < 0:
            raise ValueError("notify-backoff: must not be negative")


@dataclass(frozen=True, slots=True)
class Notice:
    """What one notification says."""

    rule: AlertRule
    state: AlertState
    kind: str  # firing, repeat, resolved
    at: datetime
    samples: tuple[Event, ...] = ()
    link: str | None = None
    issue: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body (docs/alerts.md, Webhook)."""
        rule = self.rule
        return {
            "rule": rule.name,
            "state": self.state.state,
            "notice": self.kind,
            "value": self.state.value,
            "condition": None if rule.condition is None else str(rule.condition),
            "threshold": None if rule.condition is None else rule.condition.threshold,
            "trigger": rule.trigger,
            "filter": rule.filter,
            "window": None if rule.window is None else format_duration(rule.window),
            "group_by": None if rule.group_by is None else self.group_by_text(),
            "group": self.state.group if rule.group_by is not None else None,
            "since": format_timestamp(self.state.since),
            "at": format_timestamp(self.at),
            "link": self.link,
            "issue": self.issue,
            "sample_event_ids": [e.id for e in self.samples],
            "sample_events": [e.to_dict() for e in self.samples],
            **self.extra,
        }

    def group_by_text(self) -> str:
        from eventcollector.aggregation import field_text

        assert self.rule.group_by is not None
        return field_text(self.rule.group_by)

    def text(self) -> str:
        """One line for Slack and the e-mail subject."""
        rule, state = self.rule, self.state
        what = str(rule.condition) if rule.condition is not None else f"trigger {rule.trigger}"
        window = "" if rule.window is None else f" over {format_duration(rule.window)}"
        group = f" [{self.group_by_text()}={state.group}]" if rule.group_by is not None else ""
        issue = f" issue #{self.issue['id']}: {self.issue['title']}" if self.issue else ""
        value = "" if state.value is None else f" (value {state.value:g})"
        line = f"[{state.state.upper()}] {rule.name}{group}: {what}{window}{value}{issue}"
        return f"{line} {self.link}" if self.link else line


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    """Sends notices; ``deliver`` returns the history records of one notice."""

    def __init__(self, settings: NotifySettings | None = None) -> None:
        self.settings = settings or NotifySettings()
        self._client: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, notice: Notice) -> list[AlertRecord]:
        results = await asyncio.gather(*(self._one(notice, t) for t in notice.rule.notify))
        return list(results)

    async def _one(self, notice: Notice, target: str) -> AlertRecord:
        kind, _, where = target.partition(":")
        send: Callable[[], Awaitable[None]]
        if kind == "email":
            send = lambda: asyncio.to_thread(self._email, notice, where)  # noqa: E731
        else:
            body = (
                orjson.dumps(notice.payload())
                if kind == "webhook"
                else orjson.dumps({"text": notice.text()})
            )
            headers = {"Content-Type": "application/json"}
            if kind == "webhook" and notice.rule.secret is not None:
                headers[SIGNATURE_HEADER] = sign(body, notice.rule.secret)
            send = lambda: self._post(where, body, headers)  # noqa: E731
        error = await self._with_retries(send)
        state = notice.state
        if error is not None:
            log.warning("alert %r: notifying %s failed: %s", notice.rule.name, target, error)
        return AlertRecord(
            state.rule,
            state.group,
            notice.at,
            "notified" if error is None else "notify_failed",
            state.state,
            state.value,
            target,
            error,
            tuple(e.id for e in notice.samples),
        )

    async def _with_retries(self, send: Callable[[], Awaitable[None]]) -> str | None:
        """None once sent; else the last error, after the retries."""
        error = "not sent"
        for attempt in range(self.settings.retries + 1):
            if attempt:
                await asyncio.sleep(self.settings.backoff * 2 ** (attempt - 1))
            try:
                await send()
                return None
            except (_Final, Undeliverable) as exc:
                return str(exc)
            except Exception as exc:  # transport errors, timeouts, SMTP errors: retried
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return f"{error} (after {self.settings.retries + 1} attempts)"

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        client = self._http()
        response = await client.post(url, content=body, headers=headers)
        if response.status_code < 300:
            return
        if response.status_code in _RETRY_STATUS:
            raise _Retry(f"HTTP {response.status_code}")
        raise _Final(f"HTTP {response.status_code}")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            try:
                import httpx
            except ImportError as exc:
                raise _Final(
                    "webhook and slack notifications need httpx, in the 'server' extra: "
                    "pip install 'eventcollector[server]'"
                ) from exc
            self._client = httpx.AsyncClient(timeout=self.settings.timeout)
        return self._client

    def _email(self, notice: Notice, address: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["Subject"] = f"[eventcollector] {notice.text()}"[:200]
        message["From"] = s.smtp_from
        message["To"] = address
        message.set_content(
            notice.text()
            + "\n\n"
            + orjson.dumps(notice.payload(), option=orjson.OPT_INDENT_2).decode()
        )
        send_email(s.smtp, message, s.timeout)


class _Retry(Exception):
    """A failure worth another attempt."""


class _Final(Exception):
    """A failure no retry will mend (a 4xx answer, httpx missing)."""
