"""Error issues: what a stored issue is, how issues are asked for, what ingest tells.

Error and critical events are grouped by ``fingerprint`` (v1) into issues, kept on
ingest by each backend in the transaction that stores the events (docs/issues.md).
This module is the backend-agnostic part: the ``Issue`` record, ``IssueQuery``, the
status rules, ``sightings`` (one insert's events folded per fingerprint, which the
backends upsert set-based) and ``IssueChange`` (a new or regressed issue, announced
after commit, for alert rules to hook on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from eventcollector.fingerprint import error_type, fingerprint, message
from eventcollector.model import Event, Severity, format_timestamp, parse_timestamp

__all__ = [
    "ISSUE_ORDERS",
    "ISSUE_SEVERITIES",
    "ISSUE_STATUSES",
    "Issue",
    "IssueChange",
    "IssueQuery",
    "IssuesCallback",
    "Sighting",
    "check_status_change",
    "sightings",
]

#: Events of these severities are grouped into issues.
ISSUE_SEVERITIES = frozenset({Severity.ERROR, Severity.CRITICAL})
#: ``muted`` lasts until ``muted_until``; then the issue reads (and stays) unresolved.
ISSUE_STATUSES = ("unresolved", "resolved", "ignored", "muted")
ISSUE_ORDERS = ("last_seen", "first_seen", "count")
MAX_ISSUE_LIMIT = 10_000
#: An issue's title is its first message, cut to this many characters.
_TITLE_CHARS = 500


@dataclass(frozen=True, slots=True)
class Issue:
    """One fingerprint's errors: counts, times, status."""

    id: int
    fingerprint: str
    title: str
    systems: tuple[str, ...]
    event_type: str
    error_type: str
    count: int
    first_seen: datetime
    last_seen: datetime
    last_event_id: str
    status: str
    muted_until: datetime | None
    regressed: bool

    @classmethod
    def stored(cls, row: Mapping[str, Any] | Sequence[Any], now: datetime | None = None) -> Issue:
        """From a stored row (columns in ``ISSUE_COLUMNS`` order); a mute that has
        expired reads as unresolved."""
        values = list(row.values()) if isinstance(row, Mapping) else list(row)
        ident, fp, title, systems, etype, xtype, count, first, last, last_id = values[:10]
        status, muted_until, regressed = values[10:13]
        first, last = _time(first), _time(last)
        until = None if muted_until is None else _time(muted_until)
        if status == "muted" and (until is None or until <= (now or datetime.now(UTC))):
            status, until = "unresolved", None
        return cls(
            int(ident), fp, title, tuple(systems), etype, xtype, int(count), first, last,
            last_id, status, until, bool(regressed),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "title": self.title,
            "systems": list(self.systems),
            "event_type": self.event_type,
            "error_type": self.error_type,
            "count": self.count,
            "first_seen": format_timestamp(self.first_seen),
            "last_seen": format_timestamp(self.last_seen),
            "last_event_id": self.last_event_id,
            "status": self.status,
            "muted_until": None if self.muted_until is None else format_timestamp(self.muted_until),
            "regressed": self.regressed,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Issue:
        """The inverse of ``to_dict`` (the remote client's answers)."""
        until = payload.get("muted_until")
        return cls(
            id=int(payload["id"]),
            fingerprint=str(payload["fingerprint"]),
            title=str(payload["title"]),
            systems=tuple(payload["systems"]),
            event_type=str(payload["event_type"]),
            error_type=str(payload["error_type"]),
            count=int(payload["count"]),
            first_seen=parse_timestamp(payload["first_seen"], "first_seen"),
            last_seen=parse_timestamp(payload["last_seen"], "last_seen"),
            last_event_id=str(payload["last_event_id"]),
            status=str(payload["status"]),
            muted_until=None if until is None else parse_timestamp(until, "muted_until"),
            regressed=bool(payload["regressed"]),
        )


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else parse_timestamp(value, "timestamp")


@dataclass(frozen=True, slots=True)
class IssueQuery:
    """Which issues (``seen_since``: last seen at or after), in what order (newest
    ``last_seen`` first by default), which page."""

    status: str | None = None
    system: str | None = None
    seen_since: datetime | None = None
    order_by: str = "last_seen"
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in ISSUE_STATUSES:
            raise ValueError(f"status: one of {', '.join(ISSUE_STATUSES)}, got {self.status!r}")
        if self.system is not None and not (isinstance(self.system, str) and self.system):
            raise ValueError("system: expected a non-empty string")
        if self.seen_since is not None and self.seen_since.tzinfo is None:
            raise ValueError("seen_since: needs a time zone")
        if self.order_by not in ISSUE_ORDERS:
            raise ValueError(f"order_by: one of {', '.join(ISSUE_ORDERS)}, got {self.order_by!r}")
        for name, value, low, high in (
            ("limit", self.limit, 0, MAX_ISSUE_LIMIT),
            ("offset", self.offset, 0, 10**9),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name}: expected an integer from {low} to {high}")


@dataclass(frozen=True, slots=True)
class IssueChange:
    """What ingest tells after commit: an issue was created, or a resolved one came back."""

    kind: Literal["new", "regressed"]
    issue_id: int
    fingerprint: str


IssuesCallback = Callable[[list[IssueChange]], Any]


def check_status_change(
    status: str, until: datetime | None, now: datetime | None = None
) -> datetime | None:
    """ValueError unless ``status`` (with ``until`` for muted) is a valid change; the
    ``muted_until`` to store."""
    if status not in ISSUE_STATUSES:
        raise ValueError(f"status: one of {', '.join(ISSUE_STATUSES)}, got {status!r}")
    if status != "muted":
        if until is not None:
            raise ValueError("until: only for status 'muted'")
        return None
    if until is None:
        raise ValueError("until: required for status 'muted'")
    if until.tzinfo is None:
        raise ValueError("until: needs a time zone")
    if until <= (now or datetime.now(UTC)):
        raise ValueError("until: must be in the future")
    return until.astimezone(UTC)


@dataclass(slots=True)
class Sighting:
    """One fingerprint's events within one insert, folded for one upsert."""

    fingerprint: str
    title: str
    systems: list[str]
    event_type: str
    error_type: str
    first_seen: datetime
    last_seen: datetime
    last_event_id: str
    count: int = 1
    members: list[int] = field(default_factory=list)


def sightings(events: Sequence[Event], stored: Sequence[bool] | None = None) -> list[Sighting]:
    """The error events among ``events`` (those ``stored`` says are new) per
    fingerprint, in order of first appearance; ``members`` are their indexes."""
    found: dict[str, Sighting] = {}
    for i, event in enumerate(events):
        if event.severity not in ISSUE_SEVERITIES or (stored is not None and not stored[i]):
            continue
        fp = fingerprint(event)
        seen = found.get(fp)
        if seen is None:
            found[fp] = Sighting(
                fp,
                message(event)[:_TITLE_CHARS],
                [event.system.value],
                event.event_type.value,
                error_type(event),
                event.timestamp,
                event.timestamp,
                event.id,
                members=[i],
            )
            continue
        seen.count += 1
        seen.members.append(i)
        if event.system.value not in seen.systems:
            seen.systems.append(event.system.value)
        seen.first_seen = min(seen.first_seen, event.timestamp)
        if event.timestamp >= seen.last_seen:
            seen.last_seen, seen.last_event_id = event.timestamp, event.id
    for seen in found.values():
        seen.systems.sort()
    return list(found.values())
