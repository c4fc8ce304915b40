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
    "Counters",
    "HourCache",
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
_Hours = list[tuple[str, _Version]]


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

    def peek(self, key: Hashable, version: _Version) -> Any:
        """``get`` without counting a hit or a miss, or marking the value used."""
        with self._lock:
            kept = self._kept.get(key)
            return None if kept is None or kept[0] != version else kept[1]

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


@dataclass(frozen=True, slots=True)
class Counters:
    """How some fields of a whole hour are counted without a pass over its rows:
    ``rolled_up(conn, query, first, end, field)`` counts one field over every hour from
    ``first`` to ``end`` (hour keys, end excluded) under ``query``'s filters at once, by
    hour; ``walked`` one field over one hour (in an index)."""

    rolled_up_fields: frozenset[Field]
    rolled_up: Callable[[sqlite3.Connection, Query, str, str, Field], dict[str, Counts]]
    walked_fields: frozenset[Field]
    walked: Callable[[sqlite3.Connection, Query, Field], Counts]


def facet_counts(
    cache: HourCache,
    conn: sqlite3.Connection,
    query: Query,
    fields: Sequence[Field],
    split: HourSplit,
    expansions: Expansions | None = None,
    counters: Counters | None = None,
) -> tuple[int, list[Counts]] | None:
    """The events ``query`` matches and each field's counts over them: whole hours kept
    or counted, edges counted; None past ``MAX_HOURS``. ``split`` divides the query's
    time range (its edges' filters are not read: only their bounds); ``expansions`` as for
    ``tally``; ``counters``: the fields of a whole hour counted otherwise than from its
    rows (the rollups' for every hour not kept, one statement a field)."""
    versions = _versions(conn, split)
    hours = _whole_hours(versions, split)
    if hours is None:
        return None
    base = query.with_(since=None, until=None)
    # (edge, None): counted from its rows; (hour, rest): the hour less the rest of it.
    edges: list[tuple[Query, None] | tuple[str, Query]] = []
    for bounds in split.edges:
        edge = query.with_(since=bounds.since, until=bounds.until)
        rest = rest_of_hour(edge)
        if rest is None or rest[0] not in versions:
            edges.append((edge, None))
        else:  # more than half its hour: the hour's counts (kept, mostly) less the rest
            edges.append(rest)
    counted = _Hour(cache, conn, base, fields, expansions, counters)
    counted.roll_up(hours + [(part, versions[part]) for part, _ in edges if isinstance(part, str)])
    total = 0
    merged: Merged = [Counter() for _ in fields]
    for hour, version in hours:
        total += _add(merged, counted(hour, version))
    for part, rest_query in edges:
        if rest_query is None:
            assert isinstance(part, Query)
            total += _add(merged, tally(conn, part, fields, _bound(versions, part), expansions))
            continue
        assert isinstance(part, str)
        total += _add(merged, counted(part, versions[part]))
        less = tally(conn, rest_query, fields, versions[part][0], expansions)
        total -= _add(merged, less, -1)
    return total, merged_counts(merged)


class _Hour:
    """One whole hour's facet counts, kept or counted (and then kept). The rolled-up
    fields of the hours not kept are counted for all of them at once (``roll_up``)."""

    def __init__(
        self,
        cache: HourCache,
        conn: sqlite3.Connection,
        base: Query,
        fields: Sequence[Field],
        expansions: Expansions | None,
        counters: Counters | None,
    ) -> None:
        self.cache, self.conn, self.base = cache, conn, base
        self.fields, self.expansions, self.counters = fields, expansions, counters
        rolled, walked = (
            (counters.rolled_up_fields, counters.walked_fields) if counters else ((), ())
        )
        self.walked = [f for f in fields if f in walked]
        #: Per rolled-up field, its counts by hour over the hours in ``rolled_hours``.
        self.rolled_up: dict[Field, dict[str, Counts]] = {f: {} for f in fields if f in rolled}
        self.rolled_hours: set[str] = set()

    def roll_up(self, hours: _Hours) -> None:
        """Count the rolled-up fields of every hour of ``hours`` not kept with them."""
        missing = [hour for hour, version in hours if not self._kept_rolled(hour, version)]
        self._roll_up([hour for hour, _ in hours], missing)

    def _roll_up(self, hours: list[str], missing: list[str]) -> None:
        # One statement a field over the span of the missing hours.
        if not (self.rolled_up and missing and self.counters is not None):
            return
        first, last = min(missing), max(missing)
        end = hour_text(hour_start(last) + _HOUR)
        for f, by_hour in self.rolled_up.items():
            by_hour.update(self.counters.rolled_up(self.conn, self.base, first, end, f))
        self.rolled_hours.update(hour for hour in hours if first <= hour <= last)

    def _kept_rolled(self, hour: str, version: _Version) -> bool:
        kept: _Facets | None = self.cache.peek(("facets", self.base, hour), version)
        return kept is not None and all(f in kept.counts for f in self.rolled_up)

    def __call__(self, hour: str, version: _Version) -> tuple[int, list[Counts]]:
        key = ("facets", self.base, hour)
        kept: _Facets | None = self.cache.get(key, version)
        fields = self.fields
        missing = [f for f in fields if kept is None or f not in kept.counts]
        if kept is not None and not missing:
            return kept.total, [kept.counts[f] for f in fields]
        rolled = [f for f in missing if f in self.rolled_up]
        if rolled and hour not in self.rolled_hours:  # dropped since roll_up looked
            self._roll_up([hour], [hour])
        fresh = {f: self.rolled_up[f].get(hour, []) for f in rolled}
        hour_query = _in_hour(self.base, hour)
        for f in missing:
            if f in self.walked and self.counters is not None:
                fresh[f] = self.counters.walked(self.conn, hour_query, f)
        scanned = [f for f in missing if f not in fresh]
        if scanned:
            total, counted = tally(self.conn, hour_query, scanned, version[0], self.expansions)
            fresh.update(zip(scanned, counted, strict=True))
        else:  # every event has a value of each counted field (None included)
            total = sum(n for _, n in next(iter(fresh.values())))
        known = {f: c for f, c in fresh.items() if len(c) <= MAX_HOUR_VALUES}
        if kept is not None:
            known = {**kept.counts, **known}
        if known:
            size = sum(len(c) for c in known.values())
            self.cache.put(key, version, _Facets(total, known), size)
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
