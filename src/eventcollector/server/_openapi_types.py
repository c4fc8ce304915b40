"""The wire types of the OpenAPI document, as msgspec types its schemas are generated
from (``openapi`` lists the paths). They describe the wire format only: the server
validates with the library's own model (``Event.from_dict``) and never decodes into them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from eventcollector.model import LIMITS
from eventcollector.server import _openapi_alerts

__all__ = ["NAME_PATTERN", "NOT_BLANK", "NO_SPACE_OR_COMMA", "TYPES"]

_SEVERITY = Literal["debug", "info", "warning", "error", "critical"]
# The model's rules (eventcollector.model), as JSON Schema: what a schema allows, the
# server accepts (tests/server/test_openapi.py checks it).
NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]*$"
NO_SPACE_OR_COMMA = "^[^\\s\\x00-\\x1f\\x7f,]+$"
NOT_BLANK = "\\S"


def _token(length: int) -> Any:
    return Annotated[str, msgspec.Meta(pattern=NO_SPACE_OR_COMMA, max_length=length)]


_Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=LIMITS.name_length)]
_Timestamp = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    system: _Name
    event_type: _Name
    title: Annotated[str, msgspec.Meta(pattern=NOT_BLANK, max_length=LIMITS.title_length)]
    id: _token(LIMITS.id_length) | None = None  # type: ignore[valid-type]
    #: At most five minutes in the future (the server's clock).
    timestamp: _Timestamp | None = None
    severity: _SEVERITY = "info"
    # null is taken for "none" in these four, as the model does.
    description: Annotated[str, msgspec.Meta(max_length=LIMITS.description_length)] | None = ""
    data: dict[str, Any] | None = {}
    tags: (
        Annotated[
            list[_token(LIMITS.tag_length)],  # type: ignore[valid-type]
            msgspec.Meta(max_length=LIMITS.tag_count),
        ]
        | None
    ) = []
    correlation_id: _token(LIMITS.correlation_id_length) | None = None  # type: ignore[valid-type]
    source_component: _token(LIMITS.source_component_length) | None = None  # type: ignore[valid-type]
    #: Milliseconds; a fraction is cut off.
    duration_ms: Annotated[float, msgspec.Meta(ge=0, le=LIMITS.max_duration_ms)] | None = None
    metadata: dict[str, Any] | None = {}


class Event(msgspec.Struct):
    id: str
    timestamp: str
    system: str
    event_type: str
    severity: _SEVERITY
    title: str
    description: str
    data: dict[str, Any]
    tags: list[str]
    correlation_id: str | None
    source_component: str | None
    duration_ms: int | None
    metadata: dict[str, Any]


class Rejection(msgspec.Struct):
    index: int
    error: str


class IngestResult(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[Rejection]
    ids: list[str | None]


class IngestRejected(IngestResult):
    """The 400 of a body whose every event was rejected: the result plus the error."""

    error: str


class EventPage(msgspec.Struct):
    events: list[Event]
    next_cursor: str | None


class Count(msgspec.Struct):
    count: int


class GroupCounts(msgspec.Struct):
    field: str
    counts: dict[str, int]


class DurationStats(msgspec.Struct):
    count: int
    min: int | None
    max: int | None
    avg: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class Trace(msgspec.Struct):
    correlation_id: str
    events: list[Event]
    span_ms: float | None


class Statistics(msgspec.Struct):
    total_events: int
    by_system: dict[str, int]
    by_severity: dict[str, int]
    by_event_type: dict[str, int]
    last_hour_count: int


class CleanupRequest(msgspec.Struct, forbid_unknown_fields=True):
    retention_days: float


class Deleted(msgspec.Struct):
    deleted: int


class Error(msgspec.Struct, omit_defaults=True):
    error: str
    #: The limit refused or run past (``max_batch``, ``query_timeout``, ...) and its value.
    limit: str | None = None
    max: float | None = None


class AggregateRow(msgspec.Struct, omit_defaults=True):
    key: dict[str, str | int | float | bool | None]
    values: dict[str, int | float | None]
    #: Present with an interval: the bucket's start.
    bucket: str | None = None
    #: The keys whose value is the group of everything outside the top N (value null).
    other: list[str] = []


class Aggregate(msgspec.Struct):
    by: list[str]
    interval: str | None
    metrics: list[str]
    rows: list[AggregateRow]


class FacetValue(msgspec.Struct):
    value: str | int | float | bool | None
    count: int


class Facet(msgspec.Struct):
    field: str
    values: list[FacetValue]
    other: int


class Facets(msgspec.Struct):
    facets: list[Facet]


class StreamEvent(msgspec.Struct, tag="event", tag_field="type"):
    event: Event


class StreamMissed(msgspec.Struct, tag="missed", tag_field="type"):
    count: int


_STATUS = Literal["unresolved", "resolved", "ignored", "muted"]


class Issue(msgspec.Struct):
    id: int
    fingerprint: str
    title: str
    systems: list[str]
    event_type: str
    error_type: str
    count: int
    first_seen: str
    last_seen: str
    last_event_id: str
    status: _STATUS
    muted_until: str | None
    regressed: bool


class IssuePage(msgspec.Struct):
    issues: list[Issue]
    next_offset: int | None


class IssueEvents(msgspec.Struct):
    issue_id: int
    events: list[Event]


class IssueActivity(msgspec.Struct):
    interval: Literal["1h", "1d"]
    #: The start of every bucket, oldest first.
    buckets: list[_Timestamp]
    #: Issue id (as text) -> one count per bucket.
    issues: dict[str, list[int]]


class IssueStatusChange(msgspec.Struct, forbid_unknown_fields=True):
    status: _STATUS
    #: ISO 8601: the end of a mute.
    until: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})] | None = None


TYPES: tuple[Any, ...] = (
    Issue,
    IssuePage,
    IssueEvents,
    IssueActivity,
    IssueStatusChange,
    EventIn,
    Event,
    IngestResult,
    IngestRejected,
    EventPage,
    Count,
    GroupCounts,
    DurationStats,
    Trace,
    Statistics,
    CleanupRequest,
    Deleted,
    Error,
    Aggregate,
    Facets,
    StreamEvent | StreamMissed,
    *_openapi_alerts.TYPES,
)
