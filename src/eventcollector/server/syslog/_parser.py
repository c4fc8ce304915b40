"""One syslog message (RFC 5424 or RFC 3164) -> one validated ``Event``.

RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD...] MSG``.
RFC 3164 is a convention more than a format: ``<PRI>`` then, each optional, a
``Mmm dd hh:mm:ss`` timestamp (the sender's local time, no year), a hostname (only
after a timestamp) and a ``TAG[pid]:``; what Python's ``SysLogHandler`` sends
(``<PRI>ident: message``) is read the same way. A message that does not start
with a valid ``<PRI>``, or whose RFC 5424 header or structured data is broken,
raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from eventcollector.model import LIMITS, Event
from eventcollector.server.ingest._names import UNKNOWN_SERVICE, first_line, name_token

__all__ = ["FACILITIES", "parse_message"]

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    *(f"local{n}" for n in range(8)),
)  # fmt: skip
# Emergency, alert, critical, error, warning, notice, informational, debug.
_SEVERITIES = ("critical", "critical", "critical", "error", "warning", "info", "info", "debug")
_PRI = re.compile(r"<(\d{1,3})>")
_BSD_TIME = re.compile(r"([A-Z][a-z]{2}) ([ \d]?\d) (\d\d):(\d\d):(\d\d) ")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_TAG = re.compile(r"([\w./\-]{1,48})(?:\[([^\]\s]{1,128})\])?: ?")
_SD_NAME = re.compile(r'[^\s="\]]{1,32}')
_SD_PARAM = re.compile(r' ([^\s="\]]{1,32})="((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r"\\([\"\\\]])")


def parse_message(raw: bytes, now: datetime) -> Event:
    """The event of one message (without framing); ``ValueError`` if it is malformed."""
    text = raw.decode("utf-8", "replace").replace("\x00", "").rstrip("\r\n")
    pri = _PRI.match(text)
    if pri is None:
        raise ValueError("pri: the message does not start with <PRI>")
    value = int(pri.group(1))
    if value > 191:
        raise ValueError(f"pri: {value} is above 191")
    facility, level = FACILITIES[value >> 3], value & 7
    rest = text[pri.end() :]
    fields = _rfc5424(rest[2:], now) if rest.startswith("1 ") else _rfc3164(rest, now)
    message: str = fields["message"]
    event_type = name_token(fields["msgid"] or "") or f"syslog.{facility}"
    metadata = {key: fields[key] for key in ("hostname", "procid") if fields[key] is not None}
    return Event.create(
        system=name_token(fields["app"] or "") or UNKNOWN_SERVICE,
        event_type=event_type,
        severity=_SEVERITIES[level],
        title=first_line(message) or event_type,
        description=message[: LIMITS.description_length],
        data=fields["data"],
        metadata={**metadata, "facility": facility},
        timestamp=fields["timestamp"],
        now=now,
    )


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _rfc5424(rest: str, now: datetime) -> dict[str, Any]:
    parts = rest.split(" ", 5)
    if len(parts) < 6:
        raise ValueError("rfc5424: the header needs TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD")
    stamp, hostname, app, procid, msgid, tail = parts
    timestamp = now
    if stamp != "-":
        try:
            timestamp = datetime.fromisoformat(stamp)
        except ValueError:
            raise ValueError(f"timestamp: not an RFC 5424 timestamp: {stamp[:40]!r}") from None
    if tail.startswith("-"):
        data: dict[str, Any] = {}
        message = tail[2:]
    else:
        data, message = _structured_data(tail)
    return {
        "timestamp": timestamp,
        "hostname": _nil(hostname),
        "app": _nil(app),
        "procid": _nil(procid),
        "msgid": _nil(msgid),
        "data": data,
        "message": message.removeprefix("\ufeff"),
    }


def _structured_data(text: str) -> tuple[dict[str, Any], str]:
    """``[id name="value" ...]...`` as ``{id: {name: value}}``, and the message after it."""
    data: dict[str, Any] = {}
    pos = 0
    while text.startswith("[", pos):
        element = _SD_NAME.match(text, pos + 1)
        if element is None:
            raise ValueError("structured_data: an element without an SD-ID")
        params: dict[str, str] = data.setdefault(element.group(), {})
        pos = element.end()
        while (param := _SD_PARAM.match(text, pos)) is not None:
            params[param.group(1)] = _SD_ESCAPE.sub(r"\1", param.group(2))
            pos = param.end()
        if not text.startswith("]", pos):
            raise ValueError(f"structured_data: element {element.group()!r} is not closed")
        pos += 1
    if pos == 0:
        raise ValueError("structured_data: expected '-' or '['")
    if pos < len(text) and text[pos] != " ":
        raise ValueError("structured_data: expected a space before the message")
    return data, text[pos + 1 :]


def _rfc3164(rest: str, now: datetime) -> dict[str, Any]:
    timestamp = now
    hostname = None
    stamp = _BSD_TIME.match(rest)
    if stamp is not None:
        timestamp = _bsd_time(stamp, now)
        rest = rest[stamp.end() :]
        if _TAG.match(rest) is None:  # "host tag: msg" rather than "tag: msg"
            hostname, _, rest = rest.partition(" ")
    tag = _TAG.match(rest)
    app = procid = None
    if tag is not None:
        app, procid = tag.group(1), tag.group(2)
        rest = rest[tag.end() :]
    return {
        "timestamp": timestamp,
        "hostname": hostname,
        "app": app,
        "procid": procid,
        "msgid": None,
        "data": {},
        "message": rest,
    }


def _bsd_time(match: re.Match[str], now: datetime) -> datetime:
    month = _MONTHS.get(match.group(1))
    if month is None:
        raise ValueError(f"timestamp: unknown month {match.group(1)!r}")
    day, hour, minute, second = (int(g) for g in match.groups()[1:])
    local_now = now.astimezone()
    try:
        stamp = local_now.replace(
            month=month, day=day, hour=hour, minute=minute, second=second, microsecond=0
        )
        if stamp - local_now > timedelta(days=1):  # December's message read in January
            stamp = stamp.replace(year=stamp.year - 1)
    except ValueError:  # Feb 30, or Feb 29 of last year
        raise ValueError(f"timestamp: not a date: {match.group().strip()!r}") from None
    return stamp.astimezone(UTC)
