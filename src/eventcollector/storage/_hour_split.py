"""Answer counts from per-hour rollups: whole hours from the rollup, edges exactly.

A count filtered only by system, event type, severity and time needs no scan of
events: the hours the range covers entirely are summed from the rollup table,
and the partial hours at either end (at most two) are counted from the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eventcollector.query import Query

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class HourSplit:
    """Rollup hours in [first_hour, end_hour) (None = unbounded) plus exact edge queries."""

    first_hour: str | None
    end_hour: str | None
    edges: tuple[Query, ...]


def rollup_eligible(query: Query) -> bool:
    """True when only system, event type, severity and time filters are set (a filter
    the rollups cannot answer: what ``_where.lift`` could not move into those fields)."""
    return not (
        query.where is not None
        or query.tags_all
        or query.tags_any
        or query.correlation_id is not None
        or query.source_components
        or query.search is not None
        or query.min_duration_ms is not None
        or query.ids
    )


def split_by_hours(query: Query) -> HourSplit | None:
    """How to answer ``query``'s count from rollups, or None when it cannot be."""
    if not rollup_eligible(query):
        return None
    start = None if query.since is None else _ceil_hour(query.since)
    end = None if query.until is None else _floor_hour(query.until)
    if start is not None and end is not None and start >= end:
        return None
    edges = []
    if query.since is not None and start is not None and query.since < start:
        edges.append(query.with_(until=start))
    if query.until is not None and end is not None and end < query.until:
        edges.append(query.with_(since=end))
    return HourSplit(
        None if start is None else hour_text(start),
        None if end is None else hour_text(end),
        tuple(edges),
    )


def hour_start(prefix: str) -> datetime:
    """The start of the hour whose key is ``prefix`` ("YYYY-MM-DDTHH")."""
    return datetime.fromisoformat(hour_key(prefix))


def hour_key(prefix: str) -> str:
    """The ISO 8601 start of an hour from its 13-character prefix "YYYY-MM-DDTHH"."""
    return f"{prefix}:00:00+00:00"


def _floor_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(ts: datetime) -> datetime:
    floor = _floor_hour(ts)
    return floor if floor == ts else floor + _HOUR


def hour_text(ts: datetime) -> str:
    """``YYYY-MM-DDTHH``, the rollups' hour key (strftime's %Y drops zeros before 1000)."""
    return ts.isoformat(timespec="hours")[:13]
