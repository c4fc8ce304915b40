"""The event model: the spec's enums and ``Event``, with validation.

``System`` and ``EventType`` are open sets: any well-formed name is accepted and
behaves like a member (``System("deployer").value == "deployer"``), so a new
component can log without a code change. ``Severity`` is closed: its order
matters for filtering and alerting, so an unknown severity is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Self

import orjson

from eventcollector._ids import new_event_id

__all__ = [
    "LIMITS",
    "Event",
    "EventType",
    "Limits",
    "Severity",
    "System",
    "format_timestamp",
    "parse_timestamp",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits for one event; every one is named in the error that enforces it."""

    name_length: int = 128
    title_length: int = 1_000
    description_length: int = 65_536
    data_bytes: int = 262_144
    metadata_bytes: int = 65_536
    tag_count: int = 64
    tag_length: int = 128
    id_length: int = 128
    correlation_id_length: int = 256
    source_component_length: int = 128
    max_future_skew: timedelta = timedelta(minutes=5)
    #: One year. The rollups sum durations in 64-bit integers: near 2**63 two events
    #: overflowed the sum and wedged every later commit; a year keeps 290 million
    #: maximal durations per rollup row below it.
    max_duration_ms: int = 31_536_000_000


LIMITS = Limits()

# Lower-case dotted names ("workflow.started", "session_buddy", "deploy-bot").
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.\-]*")
# Tags, ids and components: no whitespace, control characters or commas (commas
# separate values in the CLI and in URL parameters).
_TOKEN_RE = re.compile(r"[^\s\x00-\x1f\x7f,]+")
# A NUL escape in JSON text, not preceded by an escaped backslash.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Open enums create members on demand; past this many we stop caching them so that
# a flood of distinct names cannot grow memory without bound.
_MAX_DYNAMIC_MEMBERS = 10_000


class _OpenStrEnum(StrEnum):
    """A str enum that accepts any well-formed name as a (pseudo-)member."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str) or not _valid_name(value):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper().replace(".", "_").replace("-", "_")
        member._value_ = value
        if len(cls._value2member_map_) < _MAX_DYNAMIC_MEMBERS:
            cls._value2member_map_.setdefault(value, member)
        return member


def _valid_name(value: str) -> bool:
    return len(value) <= LIMITS.name_length and _NAME_RE.fullmatch(value) is not None


class System(_OpenStrEnum):
    """The component an event comes from; any lower-case name is accepted."""

    MAHAVISHNU = "mahavishnu"
    CRACKERJACK = "crackerjack"
    SESSION_BUDDY = "session_buddy"
    AKOSHA = "akosha"
    ONEIRIC = "oneiric"


class EventType(_OpenStrEnum):
    """What happened; any lower-case dotted name is accepted."""

    LIFECYCLE_START = "lifecycle.start"
    LIFECYCLE_STOP = "lifecycle.stop"
    LIFECYCLE_RESTART = "lifecycle.restart"
    WORKFLOW_STARTED = "workflow.started"
    WORKFLOW_COMPLETED = "workflow.completed"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_CANCELLED = "workflow.cancelled"
    QUALITY_CHECK_STARTED = "quality_check.started"
    QUALITY_CHECK_COMPLETED = "quality_check.completed"
    TEST_RUN = "test.run"
    TEST_PASSED = "test.passed"
    TEST_FAILED = "test.failed"
    SESSION_CREATED = "session.created"
    SESSION_UPDATED = "session.updated"
    SESSION_DELETED = "session.deleted"
    # Used by the spec's own integration examples but missing from its enum.
    SESSION_RESTORED = "session.restored"
    CODE_INDEXED = "code.indexed"
    CODE_INDEX_FAILED = "code.index_failed"
    ANALYTICS_QUERY = "analytics.query"
    INSIGHT_DETECTED = "insight.detected"
    CONFIG_CHANGED = "config.changed"
    CONFIG_RELOADED = "config.reloaded"
    # Used by the spec's own integration examples but missing from its enum.
    CONFIG_VALIDATED = "config.validated"
    ERROR_OCCURRED = "error.occurred"
    ERROR_RECOVERED = "error.recovered"


class Severity(StrEnum):
    """How serious an event is, in increasing order."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @classmethod
    def _missing_(cls, value: object) -> Severity | None:
        # Accept "ERROR" and the logging module's "warn" spelling.
        if isinstance(value, str):
            lowered = value.lower()
            return cls.WARNING if lowered == "warn" else cls._value2member_map_.get(lowered)  # type: ignore[return-value]
        return None

    @property
    def rank(self) -> int:
        """0 for debug up to 4 for critical."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


def format_timestamp(ts: datetime) -> str:
    """Fixed-width ISO 8601 UTC with microseconds, so text order is time order."""
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    # orjson is ~6x faster than isoformat() but leaves out zero microseconds.
    text = orjson.dumps(ts)[1:-1].decode()
    return text if ts.microsecond else f"{text[:19]}.000000{text[19:]}"


def parse_timestamp(value: str | datetime, field_name: str = "timestamp") -> datetime:
    """An aware UTC datetime from ISO 8601 text or a datetime; naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{field_name}: not an ISO 8601 date-time: {value!r}") from None
    elif not isinstance(value, datetime):
        raise ValueError(f"{field_name}: expected a datetime or ISO 8601 string")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _enum(kind: type[_OpenStrEnum] | type[Severity], value: Any, field_name: str) -> Any:
    # A dict lookup first: Enum's own call path costs several times more per event.
    if isinstance(value, str):
        member = kind._value2member_map_.get(value)
        if member is not None:
            return member
    try:
        return kind(value)
    except ValueError:
        if kind is Severity:
            allowed = ", ".join(s.value for s in Severity)
            raise ValueError(f"severity: unknown severity {value!r} (one of {allowed})") from None
        raise ValueError(
            f"{field_name}: {value!r} is not a valid name (lower-case letters, digits, "
            f"'_', '.', '-'; at most {LIMITS.name_length} characters)"
        ) from None


def _text(value: object, field_name: str, limit: int, *, required: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field_name}: expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"{field_name}: must not be empty")
    if len(value) > limit:
        raise ValueError(f"{field_name}: longer than {limit} characters")
    if "\x00" in value:
        raise ValueError(f"{field_name}: contains a NUL character")
    return value


def _token(value: object, field_name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _is_token(value):
        raise ValueError(f"{field_name}: must be a non-empty string without whitespace or commas")
    if len(value) > limit:
        raise ValueError(f"{field_name}: longer than {limit} characters")
    return value


def _is_token(value: str) -> bool:
    # Printable ASCII without space or comma is the common case; str methods decide
    # it faster than the expression, which handles the rest of Unicode.
    if value.isascii() and value.isprintable():
        return bool(value) and " " not in value and "," not in value
    return _TOKEN_RE.fullmatch(value) is not None


def _json_object(value: object, field_name: str, limit: int) -> dict[str, Any]:
    if value is None or (type(value) is dict and not value):
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):  # the ABC check is slow
        raise ValueError(f"{field_name}: expected an object (dict), got {type(value).__name__}")
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ValueError(f"{field_name}: not JSON-serialisable ({exc})") from None
    if len(encoded) > limit:
        raise ValueError(f"{field_name}: larger than {limit} bytes as JSON")
    if b"\\u0000" in encoded and _JSON_NUL.search(encoded):
        # PostgreSQL's jsonb cannot hold it, and no backend may store what another refuses.
        raise ValueError(f"{field_name}: contains a NUL character (\\u0000)")
    # Store what JSON gives back, so the event equals itself after a round trip.
    result: dict[str, Any] = orjson.loads(encoded)
    return result


def _tags(value: object) -> list[str]:
    if value is None:
        return []
    # list and tuple first: an isinstance check against the Iterable ABC is slow.
    if not isinstance(value, list | tuple) and (
        isinstance(value, str | dict) or not isinstance(value, Iterable)
    ):
        raise ValueError("tags: expected a list of strings")
    # Drop repeats, keep order (one tag cannot repeat: the common case skips the dict).
    try:
        tags = (
            list(value)
            if isinstance(value, list | tuple) and len(value) < 2
            else list(dict.fromkeys(value))
        )
    except TypeError:  # an unhashable item (a list or an object) cannot be a tag
        raise ValueError("tags: expected a list of strings") from None
    if len(tags) > LIMITS.tag_count:
        raise ValueError(f"tags: more than {LIMITS.tag_count} tags")
    for tag in tags:
        if tag is None:  # _token lets None through (optional fields); a tag must be a string
            raise ValueError("tags: expected a list of strings, got null")
        _token(tag, "tags", LIMITS.tag_length)
    return tags


def _duration(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("duration_ms: expected a number of milliseconds")
    if not 0 <= value <= LIMITS.max_duration_ms:  # NaN compares false: refused too
        raise ValueError(f"duration_ms: must be between 0 and {LIMITS.max_duration_ms} (a year)")
    return int(value)


@dataclass(slots=True)
class Event:
    """One thing that happened in one system, as the spec defines it."""

    id: str
    timestamp: datetime
    system: System
    event_type: EventType
    severity: Severity
    title: str
    description: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    correlation_id: str | None = None
    source_component: str | None = None
    duration_ms: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        *,
        system: System | str,
        event_type: EventType | str,
        title: str,
        severity: Severity | str = Severity.INFO,
        description: str = "",
        data: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        correlation_id: str | None = None,
        source_component: str | None = None,
        duration_ms: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | str | None = None,
        id: str | None = None,
        now: datetime | None = None,
    ) -> Event:
        """A validated event; raises ``ValueError`` naming the first bad field."""
        now = now or datetime.now(UTC)
        if timestamp is None:
            ts = now
        else:
            ts = parse_timestamp(timestamp)
            if ts - now > LIMITS.max_future_skew:
                raise ValueError(
                    f"timestamp: {format_timestamp(ts)} is more than "
                    f"{LIMITS.max_future_skew} in the future"
                )
        return cls(
            id=new_event_id() if id is None else _token(id, "id", LIMITS.id_length) or "",
            timestamp=ts,
            system=_enum(System, system, "system"),
            event_type=_enum(EventType, event_type, "event_type"),
            severity=_enum(Severity, severity, "severity"),
            title=_text(title, "title", LIMITS.title_length, required=True),
            description=_text(
                "" if description is None else description,
                "description",
                LIMITS.description_length,
                required=False,
            ),
            data=_json_object(data, "data", LIMITS.data_bytes),
            tags=_tags(tags),
            correlation_id=_token(correlation_id, "correlation_id", LIMITS.correlation_id_length),
            source_component=_token(
                source_component, "source_component", LIMITS.source_component_length
            ),
            duration_ms=_duration(duration_ms),
            metadata=_json_object(metadata, "metadata", LIMITS.metadata_bytes),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: enums as their values, the timestamp as ISO 8601 UTC."""
        return {
            "id": self.id,
            "timestamp": format_timestamp(self.timestamp),
            "system": self.system.value,
            "event_type": self.event_type.value,
            "severity": self.severity.value,
            "title": self.title,
            "description": self.description,
            "data": self.data,
            "tags": list(self.tags),
            "correlation_id": self.correlation_id,
            "source_component": self.source_component,
            "duration_ms": self.duration_ms,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any], *, now: datetime | None = None) -> Event:
        """Validate and build an event from ``to_dict()`` output or an ingest payload.

        ``id`` and ``timestamp`` are optional (a new id, now); unknown keys are refused.
        """
        if not isinstance(payload, Mapping):
            raise ValueError("event: expected a JSON object")
        if not _FIELDS.issuperset(payload):
            unknown = set(payload) - _FIELDS
            raise ValueError(f"{sorted(unknown)[0]}: unknown field")
        for required in ("system", "event_type", "title"):
            if required not in payload:
                raise ValueError(f"{required}: required field is missing")
        return cls.create(**payload, now=now)

    def to_json(self) -> bytes:
        """The event as compact JSON bytes."""
        return orjson.dumps(self.to_dict())


_FIELDS = frozenset(Event.__dataclass_fields__)
