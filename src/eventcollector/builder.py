"""``EventQueryBuilder``: the spec's fluent query API over a ``Query``.

Each method records a filter and returns the builder, so calls chain; nothing
touches storage until ``execute()`` or ``count()``. It works with anything that
answers ``query(Query)`` and ``count(Query)``: the embedded collector or a remote one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Self

from eventcollector.filters import Filter, all_of, parse_filter
from eventcollector.model import Event, EventType, Severity, System
from eventcollector.query import Query, normalise_names, time_bound

__all__ = ["EventQueryBuilder", "QueryTarget"]


class QueryTarget(Protocol):
    async def query(self, query: Query) -> list[Event]: ...
    async def count(self, query: Query) -> int: ...


class EventQueryBuilder:
    """Build a query fluently; ``await builder.execute()`` runs it (newest first)."""

    def __init__(self, collector: QueryTarget) -> None:
        self._collector = collector
        self._fields: dict[str, Any] = {}

    def _set(self, **fields: Any) -> Self:
        candidate = {**self._fields, **fields}
        Query(**candidate)  # validate now, so the error points at the call that caused it
        self._fields = candidate
        return self

    # -- filters -------------------------------------------------------------

    def system(self, system: System | str) -> Self:
        return self._set(systems=normalise_names(system, System))

    def systems(self, systems: Iterable[System | str]) -> Self:
        return self._set(systems=normalise_names(list(systems), System))

    def event_type(self, event_type: EventType | str) -> Self:
        return self._set(event_types=normalise_names(event_type, EventType))

    def event_types(self, event_types: Iterable[EventType | str]) -> Self:
        return self._set(event_types=normalise_names(list(event_types), EventType))

    def severity(self, severity: Severity | str) -> Self:
        return self._set(severities=normalise_names(severity, Severity))

    def severities(self, severities: Iterable[Severity | str]) -> Self:
        return self._set(severities=normalise_names(list(severities), Severity))

    def min_severity(self, severity: Severity | str) -> Self:
        """This severity or anything more serious."""
        floor = normalise_names(severity, Severity)[0]
        return self._set(
            severities=tuple(s.value for s in Severity if s.rank >= Severity(floor).rank)
        )

    def tags(self, tags: Iterable[str]) -> Self:
        """Events carrying every one of ``tags``."""
        return self._set(tags_all=_strings(tags, "tags"))

    def any_tags(self, tags: Iterable[str]) -> Self:
        """Events carrying at least one of ``tags``."""
        return self._set(tags_any=_strings(tags, "any_tags"))

    def time_range(
        self,
        *,
        minutes: float | None = None,
        hours: float | None = None,
        days: float | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> Self:
        """The last N minutes/hours/days, or an explicit [since, until) (naive = UTC)."""
        relative = [v for v in (minutes, hours, days) if v is not None]
        if relative and since is not None:
            raise ValueError("time_range: give minutes/hours/days or since, not both")
        if any(v < 0 for v in relative):
            raise ValueError("time_range: minutes, hours and days must not be negative")
        if relative:
            window = timedelta(minutes=minutes or 0, hours=hours or 0, days=days or 0)
            since = datetime.now(UTC) - window
        start, end = time_bound(since, "since"), time_bound(until, "until")
        if start is not None and end is not None and end < start:
            raise ValueError("time_range: until is before since")
        return self._set(since=start, until=end)

    def correlation_id(self, correlation_id: str) -> Self:
        return self._set(correlation_id=_strings([correlation_id], "correlation_id")[0])

    def source_component(self, component: str) -> Self:
        return self._set(source_components=_strings([component], "source_component"))

    def source_components(self, components: Iterable[str]) -> Self:
        return self._set(source_components=_strings(components, "source_components"))

    def search(self, text: str) -> Self:
        """Full text over title and description: each word must start a word there."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("search: must be a non-empty string")
        return self._set(search=text)

    def min_duration(self, duration_ms: int) -> Self:
        """Events that took at least ``duration_ms``."""
        return self._set(min_duration_ms=int(duration_ms))

    def ids(self, ids: Iterable[str]) -> Self:
        return self._set(ids=_strings(ids, "ids"))

    def where(self, text: str | Filter) -> Self:
        """Events matching a filter (docs/filters.md), ANDed with every other call,
        another ``where`` included: ``.where("severity:>=error data.repo:acme/*")``."""
        node = parse_filter(text) if isinstance(text, str) else text
        previous = self._fields.get("where")
        return self._set(where=node if previous is None else all_of(previous, node))

    # -- order and paging ----------------------------------------------------

    def order_by(self, field: str, ascending: bool = False) -> Self:
        """Sort by one of ``query.ORDER_FIELDS``; anything else is a ``ValueError``."""
        return self._set(order_by=field, ascending=bool(ascending))

    def limit(self, n: int) -> Self:
        return self._set(limit=_int(n, "limit"))

    def offset(self, n: int) -> Self:
        return self._set(offset=_int(n, "offset"))

    # -- execution -----------------------------------------------------------

    def build(self) -> Query:
        """The ``Query`` this builder describes."""
        return Query(**self._fields)

    async def execute(self) -> list[Event]:
        """The matching events."""
        return await self._collector.query(self.build())

    async def count(self) -> int:
        """How many events match (limit and offset ignored)."""
        return await self._collector.count(self.build())

    async def first(self) -> Event | None:
        """The first matching event, or None."""
        found = await self._collector.query(self.build().with_(limit=1))
        return found[0] if found else None


def _strings(values: Iterable[str], name: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    out = tuple(dict.fromkeys(values))
    if not all(isinstance(v, str) and v for v in out):
        raise ValueError(f"{name}: expected non-empty strings")
    return out


def _int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an integer")
    return value
