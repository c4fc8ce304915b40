"""Counts of whole hours kept between calls, for what no rollup counts: a facet's
values (of a data path, or of any field under a filter) and an aggregate's groups
under a filter.

Such a call reads every matching row (a data path facet: ~0.5 us a row, 80-100 ms for a
day of 1M events, about a second at 10M). The same call comes again and again (Explore
refreshes, a dashboard, a second user), and an hour that is over rarely changes. So
what each hour counted is kept with the hour's version: the number of events in it
(``hour_totals``; every insert into the hour raises it) and the events ever deleted from
it (``event_meta``'s "deleted HOUR"; a cleanup raises the hours it deletes from, so
retention of old hours leaves the recent ones kept). A kept value is used only while
both are what they were when it was counted. Another process writing the file changes
them as this one does. A change by raw SQL does not, and the rollups would be wrong
after it too.

The edges, the partial hours at either end, are counted as they come (a facet's edge of
more than half an hour as its hour less the rest). Up to
``MAX_KEPT_VALUES`` values are kept in all, the least recently used dropped first. An
hour with more than ``MAX_HOUR_VALUES`` distinct values of a field, or groups, is not
kept (ids, say), and a range of more than ``MAX_HOURS`` hours is counted in one pass.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from eventcollector.aggregation import Groups
from eventcollector.filters import Field
from eventcollector.query import Query
from eventcollector.storage._hour_split import HourSplit, hour_start, hour_text
from eventcollector.storage.sqlite._dialect import Expansions
from eventcollector.storage.sqlite._reads import rest_of_hour
from eventcollector.storage.sqlite._tally import Counts, Merged, add_counts, merged_counts, tally

__all__ = [
    "COUNT_DELETED",
    "MAX_HOURS",
    "MAX_HOUR_VALUES",
    "MAX_KEPT_VALUES",
    "HourCache",
    "RolledUp",
    "facet_counts",
    "hourly_groups",
]

MAX_KEPT_VALUES = 200_000  # ~100 bytes a facet value, ~300 a group: 20-60 MB
MAX_HOUR_VALUES = 1_000
#: A range of more hours with events is counted in one pass: a statement an hour would
#: cost more than it saves, and their values would not all stay kept.
MAX_HOURS = 31 * 24
_HOUR = timedelta(hours=1)
#: ``event_meta`` keys "deleted HOUR": the events ever deleted from that hour.
_DELETED_PREFIX = "deleted "
_DELETED = "SELECT substr(key, 9), value FROM event_meta WHERE key >= ? AND key <= ?"
#: Run by cleanup before it deletes (parameter: a JSON array of the rowids).
COUNT_DELETED = (
    f"INSERT INTO event_meta(key, value) SELECT '{_DELETED_PREFIX}' || substr(e.timestamp, 1, 13),"
    " count(*) FROM events e WHERE e.rowid IN (SELECT value FROM json_each(?)) GROUP BY 1"
    " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value"
)

_Version = tuple[int, int]


class HourCache:
    """Values counted from one hour's rows (a facet's counts, an aggregate's groups), each
    with the version of the hour it was counted at, least recently used dropped first."""

    def __init__(self) -> None:
        self._kept: OrderedDict[Hashable, tuple[_Version, Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # reads run on several reader threads
        #: Lookups answered, and lookups that found nothing current.
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget every kept value (the benchmark measures a first view with it)."""
        with self._lock:
            self._kept.clear()
            self._size = 0

    def stats(self) -> dict[str, int]:
        """For /health: what is kept, and how often it answered."""
        with self._lock:
            return {
                "hours": len(self._kept),
                "values": self._size,
                "hits": self.hits,
                "misses": self.misses,
            }

    def get(self, key: Hashable, version: _Version) -> Any:
        """The value kept under ``key`` at ``version``, else None."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != version:
                self.misses += 1
                return None
            self._kept.move_to_end(key)
            self.hits += 1
            return kept[1]

    def put(self, key: Hashable, version: _Version, value: Any, size: int) -> None:
        """Keep ``value`` (``size``: its count of values, for the bound)."""
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._size -= old[2]
            self._kept[key] = (version, value, size)
            self._size += size
            while self._size > MAX_KEPT_VALUES and self._kept:
                _, (_, _, dropped) = self._kept.popitem(last=False)
                self._size -= dropped


@dataclass(frozen=True, slots=True)
class _Facets:
    total: int
    counts: dict[Field, Counts]


#: Counts one field's values over a query's whole hour from the rollups.
RolledUp = Callable[[sqlite3.Connection, Query, Field], Counts]


def facet_counts(
    cache: HourCache,
    conn: sqlite3.Connection,
    query: Query,
    fields: Sequence[Field],
    split: HourSplit,
    expansions: Expansions | None = None,
    rolled_up: tuple[frozenset[Field], RolledUp] | None = None,
) -> tuple[int, list[Counts]] | None:
    """The events ``query`` matches and each field's counts over them: whole hours kept
    or counted, edges counted; None past ``MAX_HOURS``. ``split`` divides the query's
    time range (its edges' filters are not read: only their bounds); ``expansions`` as for
    ``tally``; ``rolled_up``: the fields whose whole hours the rollups count, and how
    (instead of a pass over the hour's rows)."""
    versions = _versions(conn, split)
    hours = _whole_hours(versions, split)
    if hours is None:
        return None
    base = query.with_(since=None, until=None)
    total = 0
    merged: Merged = [Counter() for _ in fields]
    for hour, version in hours:
        kept = _facet_hour(cache, conn, base, fields, hour, version, expansions, rolled_up)
        total += _add(merged, kept)
    for bounds in split.edges:
        edge = query.with_(since=bounds.since, until=bounds.until)
        rest = rest_of_hour(edge)
        if rest is None or rest[0] not in versions:
            total += _add(merged, tally(conn, edge, fields, _bound(versions, edge), expansions))
            continue
        # More than half its hour: the hour's counts (kept, mostly) less the rest.
        hour, rest_query = rest
        total += _add(
            merged,
            _facet_hour(cache, conn, base, fields, hour, versions[hour], expansions, rolled_up),
        )
        total -= _add(merged, tally(conn, rest_query, fields, versions[hour][0], expansions), -1)
    return total, merged_counts(merged)


def _facet_hour(
    cache: HourCache,
    conn: sqlite3.Connection,
    base: Query,
    fields: Sequence[Field],
    hour: str,
    version: _Version,
    expansions: Expansions | None,
    rolled_up: tuple[frozenset[Field], RolledUp] | None,
) -> tuple[int, list[Counts]]:
    key = ("facets", base, hour)
    kept: _Facets | None = cache.get(key, version)
    missing = [f for f in fields if kept is None or f not in kept.counts]
    if kept is not None and not missing:
        return kept.total, [kept.counts[f] for f in fields]
    hour_query = _in_hour(base, hour)
    fresh: dict[Field, Counts] = {}
    dims, count_rolled_up = rolled_up if rolled_up is not None else (frozenset(), None)
    scanned = [f for f in missing if f not in dims]
    total = None
    if scanned:
        total, counted = tally(conn, hour_query, scanned, version[0], expansions)
        fresh.update(zip(scanned, counted, strict=True))
    if count_rolled_up is not None:
        for f in missing:
            if f in dims:
                fresh[f] = count_rolled_up(conn, hour_query, f)
                if total is None:  # every event has a value of each rollup dimension
                    total = sum(n for _, n in fresh[f])
    assert total is not None  # some field is missing
    known = {f: c for f, c in fresh.items() if len(c) <= MAX_HOUR_VALUES}
    if kept is not None:
        known = {**kept.counts, **known}
    if known:
        cache.put(key, version, _Facets(total, known), sum(len(c) for c in known.values()))
    return total, [fresh[f] if f in fresh else known[f] for f in fields]


def hourly_groups(
    cache: HourCache,
    conn: sqlite3.Connection,
    query: Query,
    split: HourSplit,
    shape: Hashable,
    count: Callable[[Query], Groups],
) -> Groups | None:
    """An aggregate's groups over ``query``, in buckets within an hour: each whole
    hour's kept or counted by ``count`` (``shape`` names what it counts), the edges
    counted; None past ``MAX_HOURS``. A bucket lies within one hour, so the hours'
    groups never overlap."""
    versions = _versions(conn, split)
    hours = _whole_hours(versions, split)
    if hours is None:
        return None
    base = query.with_(since=None, until=None)
    groups: Groups = {}
    for hour, version in hours:
        key = ("groups", shape, base, hour)
        counted: Groups | None = cache.get(key, version)
        if counted is None:
            counted = count(_in_hour(base, hour))
            if len(counted) <= MAX_HOUR_VALUES:
                cache.put(key, version, counted, len(counted))
        groups.update(counted)
    for bounds in split.edges:
        groups.update(count(query.with_(since=bounds.since, until=bounds.until)))
    return groups


def _whole_hours(
    versions: dict[str, _Version], split: HourSplit
) -> list[tuple[str, _Version]] | None:
    """The split's whole hours with events; None when they are more than ``MAX_HOURS``."""
    hours = [
        (hour, version)
        for hour, version in versions.items()
        if (split.first_hour is None or hour >= split.first_hour)
        and (split.end_hour is None or hour < split.end_hour)
    ]
    return None if len(hours) > MAX_HOURS else hours


def _versions(conn: sqlite3.Connection, split: HourSplit) -> dict[str, _Version]:
    """Each hour with events that the split or its edges touch: (events, deleted)."""
    edge_hours = [hour_text(edge.since) for edge in split.edges if edge.since is not None]
    low = "" if split.first_hour is None else min([split.first_hour, *edge_hours])
    high = "~" if split.end_hour is None else max([split.end_hour, *edge_hours])
    deleted = dict(conn.execute(_DELETED, (_DELETED_PREFIX + low, _DELETED_PREFIX + high)))
    rows = conn.execute(
        "SELECT hour, n FROM hour_totals WHERE hour >= ? AND hour <= ?", (low, high)
    )
    return {hour: (int(n), int(deleted.get(hour, 0))) for hour, n in rows}


def _bound(versions: dict[str, _Version], edge: Query) -> int:
    """At most the events of the edge's hour (it lies within one)."""
    assert edge.since is not None
    return versions.get(hour_text(edge.since), (0, 0))[0]


def _add(merged: Merged, tallied: tuple[int, list[Counts]], sign: int = 1) -> int:
    """Add (or subtract) one part's counts; its events."""
    total, counted = tallied
    add_counts(merged, counted, sign)
    return total


def _in_hour(base: Query, hour: str) -> Query:
    start = hour_start(hour)
    return base.with_(since=start, until=start + _HOUR)
