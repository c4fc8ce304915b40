"""A backend-agnostic description of which events to read, and in what order.

``Query`` is plain data: the builder, the HTTP layer and the CLI produce it, and
each storage backend compiles it to its own SQL from allow-listed identifiers,
with every value bound as a parameter. ``matches`` is the reference semantics
in plain Python; live streams filter with it and the tests compare backends to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from eventcollector.filters import MAX_LIST_VALUES, Filter, Text, is_filter, matches, search_terms
from eventcollector.model import LIMITS, Event, EventType, Severity, System, parse_timestamp

__all__ = [
    "GROUP_FIELDS",
    "ORDER_FIELDS",
    "DurationStats",
    "GroupField",
    "Query",
    "search_terms",
]

#: Fields ``order_by`` accepts; anything else is a ``ValueError``.
ORDER_FIELDS = frozenset(
    {"timestamp", "system", "event_type", "severity", "duration_ms", "title", "source_component"}
)

GroupField = Literal["system", "event_type", "severity", "source_component", "hour"]
#: Fields the storage can count events by ("hour" buckets by the UTC hour).
GROUP_FIELDS: frozenset[str] = frozenset(GroupField.__args__)  # type: ignore[attr-defined]

MAX_LIMIT = 100_000
#: The most values one list filter (systems, tags, ids, ...) may hold, as in a filter's list.
MAX_FILTER_VALUES = MAX_LIST_VALUES
_LIST_FIELDS = (
    "systems",
    "event_types",
    "severities",
    "tags_all",
    "tags_any",
    "source_components",
    "ids",
)


class Query(msgspec.Struct, frozen=True, gc=False):
    """Filters (all combined with AND), order and paging.

    ``where`` is a parsed filter (``filters.parse_filter``), ANDed with the fields.
    A msgspec Struct, not a frozen dataclass: as immutable, and built in a fifth of
    the time (a query is built per request and again by planning).
    """

    systems: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str | None = None
    source_components: tuple[str, ...] = ()
    search: str | None = None
    min_duration_ms: int | None = None
    ids: tuple[str, ...] = ()
    where: Filter | None = None
    order_by: str = "timestamp"
    ascending: bool = False
    limit: int | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        if self.order_by not in ORDER_FIELDS:
            allowed = ", ".join(sorted(ORDER_FIELDS))
            raise ValueError(f"order_by: unknown field {self.order_by!r} (one of {allowed})")
        if self.limit is not None and not 0 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit: must be between 0 and {MAX_LIMIT}")
        if self.offset < 0:
            raise ValueError("offset: must not be negative")
        if self.min_duration_ms is not None and not (
            0 <= self.min_duration_ms <= LIMITS.max_duration_ms
        ):  # beyond it nothing can match, and past 2**63 SQLite cannot bind it
            raise ValueError(f"min_duration_ms: must be between 0 and {LIMITS.max_duration_ms}")
        lists = (
            self.systems,
            self.event_types,
            self.severities,
            self.tags_all,
            self.tags_any,
            self.source_components,
            self.ids,
        )
        if max(map(len, lists)) > MAX_FILTER_VALUES:  # one check for the common case
            for name, values in zip(_LIST_FIELDS, lists, strict=True):
                if len(values) > MAX_FILTER_VALUES:
                    raise ValueError(f"{name}: more than {MAX_FILTER_VALUES} values")
        if self.where is not None and not is_filter(self.where):
            raise ValueError("where: expected a parsed filter (filters.parse_filter)")

    def with_(self, **changes: Any) -> Query:
        """A copy with some fields changed (validated again)."""
        return msgspec.structs.replace(self, **changes)

    @property
    def unbounded(self) -> Query:
        """The same filters without order, limit or offset (for counts)."""
        return self.with_(limit=None, offset=0, order_by="timestamp", ascending=False)

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes every filter: the reference semantics."""
        if self.systems and event.system.value not in self.systems:
            return False
        if self.event_types and event.event_type.value not in self.event_types:
            return False
        if self.severities and event.severity.value not in self.severities:
            return False
        if self.tags_all and not set(self.tags_all).issubset(event.tags):
            return False
        if self.tags_any and set(self.tags_any).isdisjoint(event.tags):
            return False
        if self.since is not None and event.timestamp < self.since:
            return False
        if self.until is not None and event.timestamp >= self.until:
            return False
        if self.correlation_id is not None and event.correlation_id != self.correlation_id:
            return False
        if self.source_components and event.source_component not in self.source_components:
            return False
        if self.min_duration_ms is not None and (
            event.duration_ms is None or event.duration_ms < self.min_duration_ms
        ):
            return False
        if self.ids and event.id not in self.ids:
            return False
        if self.search is not None and not matches(Text(tuple(search_terms(self.search))), event):
            return False
        return self.where is None or matches(self.where, event)


def group_field(field: str) -> GroupField:
    """``field`` if events can be counted by it; else a ValueError naming the allowed ones.

    Backends put the field in SQL (from their own allow-list), so every entry checks it.
    """
    if field not in GROUP_FIELDS:
        raise ValueError(
            f"field: unknown field {field!r} (one of {', '.join(sorted(GROUP_FIELDS))})"
        )
    return field  # type: ignore[return-value]


def sort_value(event: Event, field: str) -> Any:
    """The value ``order_by=field`` sorts on: severities by rank, other enums by value.

    Together with ``Query.matches`` this is the reference semantics: results are
    ordered by this value (None last in both directions), ties in insertion order.
    """
    value = getattr(event, field)
    if isinstance(value, Severity):
        return value.rank
    return value.value if isinstance(value, System | EventType) else value


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Summary of ``duration_ms`` over the events that have one."""

    count: int
    min: int | None
    max: int | None
    avg: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "avg": self.avg,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
        }


def normalise_names(
    values: Any, kind: type[System] | type[EventType] | type[Severity]
) -> tuple[str, ...]:
    """Validate enum members or strings and return their values."""
    if isinstance(values, str):
        values = [values]
    field_name = {System: "system", EventType: "event_type", Severity: "severity"}[kind]
    out = []
    for v in values:
        try:
            out.append(kind(v).value)
        except ValueError:
            raise ValueError(f"{field_name}: unknown or malformed value {v!r}") from None
    return tuple(dict.fromkeys(out))


def time_bound(value: datetime | str | None, field_name: str) -> datetime | None:
    """A filter bound as aware UTC (naive datetimes are UTC)."""
    return None if value is None else parse_timestamp(value, field_name)
