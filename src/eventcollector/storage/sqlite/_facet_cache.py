"""Facet counts per whole hour, kept between calls, for what no rollup counts: a data
path's values, or any field's under a filter.

Such a facet reads every matching row (~0.5 us a row for a data path: 80-100 ms for a
day of 1M events, about a second at 10M). The same facet is asked again and again
(Explore refreshes, a dashboard, a second user), and an hour that is over rarely
changes. So each hour's counts are kept with the hour's version: the number of events
in it (``hour_totals``; every insert into the hour raises it) and the events ever
deleted from it (``event_meta``'s "deleted HOUR"; a cleanup raises the hours it deletes
from, so retention of old hours leaves the recent ones kept). A kept count is used only
while both are what they were when it was counted. Another process writing
the file changes them as this one does. A change by raw SQL does not, and the rollups
would be wrong after it too.

The edges, the partial hours at either end, are counted as they come, an edge of more
than half an hour as its hour less the rest. A filter that searches the full text or
names issues is counted in one pass instead (``hour_by_hour``). Values are kept up to
``MAX_KEPT_VALUES`` in all, the least recently used dropped first. A field with more than
``MAX_HOUR_VALUES`` distinct values in an hour (ids, say) is not kept for that hour.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from eventcollector.aggregation import Key, identity
from eventcollector.filters import And, Field, Filter, Not, Or, Text
from eventcollector.query import Query
from eventcollector.storage._hour_split import HourSplit, hour_start, hour_text
from eventcollector.storage.sqlite._reads import rest_of_hour
from eventcollector.storage.sqlite._tally import Counts, tally

__all__ = ["COUNT_DELETED", "MAX_HOUR_VALUES", "MAX_KEPT_VALUES", "FacetCache", "hour_by_hour"]

MAX_KEPT_VALUES = 200_000  # ~100 bytes each: ~20 MB
MAX_HOUR_VALUES = 1_000
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


@dataclass(slots=True)
class _Hour:
    version: _Version
    total: int
    counts: dict[Field, Counts]


class FacetCache:
    """Per (filters, hour): the events matched, each field's counts, and the version
    they were counted at."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Query, str], _Hour] = OrderedDict()
        self._values = 0
        self._lock = threading.Lock()  # facets run on several reader threads
        #: Hours answered from kept counts, and hours counted.
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget every kept count (the benchmark measures a first view with it)."""
        with self._lock:
            self._kept.clear()
            self._values = 0

    def counts(
        self,
        conn: sqlite3.Connection,
        query: Query,
        fields: Sequence[Field],
        split: HourSplit,
    ) -> tuple[int, list[Counts]]:
        """The events ``query`` matches and each field's counts over them: whole hours
        kept or counted, edges counted. ``split`` divides the query's time range (its
        edges' filters are not read: only their bounds)."""
        versions = _versions(conn, split)
        base = query.with_(since=None, until=None)
        total = 0
        merged: list[Counter[tuple[int, Key]]] = [Counter() for _ in fields]
        for hour, version in versions.items():
            if split.first_hour is not None and hour < split.first_hour:
                continue  # an edge's hour, read below
            if split.end_hour is not None and hour >= split.end_hour:
                continue
            total += _add(merged, self._hour(conn, base, fields, hour, version))
        for bounds in split.edges:
            edge = query.with_(since=bounds.since, until=bounds.until)
            rest = rest_of_hour(edge)
            if rest is None or rest[0] not in versions:
                total += _add(merged, tally(conn, edge, fields, _bound(versions, edge)))
                continue
            # More than half its hour: the hour's counts (kept, mostly) less the rest.
            hour, rest_query = rest
            total += _add(merged, self._hour(conn, base, fields, hour, versions[hour]))
            total -= _add(merged, tally(conn, rest_query, fields, versions[hour][0]), -1)
        return total, [[(key, n) for (_, key), n in c.items() if n > 0] for c in merged]

    def _hour(
        self,
        conn: sqlite3.Connection,
        base: Query,
        fields: Sequence[Field],
        hour: str,
        version: _Version,
    ) -> tuple[int, list[Counts]]:
        key = (base, hour)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept.version != version:
                kept = None
            missing = [f for f in fields if kept is None or f not in kept.counts]
            if kept is not None and not missing:
                self._kept.move_to_end(key)
                self.hits += 1
                return kept.total, [kept.counts[f] for f in fields]
            self.misses += 1
        start = hour_start(hour)
        in_hour = base.with_(since=start, until=start + _HOUR)
        total, counted = tally(conn, in_hour, missing, version[0])
        fresh = dict(zip(missing, counted, strict=True))
        self._keep(key, version, total, fresh)
        have = fresh if kept is None else {**kept.counts, **fresh}
        return total, [have[f] for f in fields]

    def _keep(
        self, key: tuple[Query, str], version: _Version, total: int, fresh: dict[Field, Counts]
    ) -> None:
        fresh = {f: c for f, c in fresh.items() if len(c) <= MAX_HOUR_VALUES}
        with self._lock:
            kept = self._kept.pop(key, None)
            if kept is not None and kept.version == version:
                fresh = {**kept.counts, **fresh}
            if kept is not None:
                self._values -= sum(len(c) for c in kept.counts.values())
            self._kept[key] = _Hour(version, total, fresh)
            self._values += sum(len(c) for c in fresh.values())
            while self._values > MAX_KEPT_VALUES and self._kept:
                _, dropped = self._kept.popitem(last=False)
                self._values -= sum(len(c) for c in dropped.counts.values())


def hour_by_hour(query: Query) -> bool:
    """Whether ``query``'s facets may be counted hour by hour: not when it searches the
    full text or names issues. Their conditions are sets computed over the whole store
    (an FTS5 match, an issue's events), once per statement, so once per hour."""
    return query.search is None and (query.where is None or not _has_sets(query.where))


def _has_sets(node: Filter) -> bool:
    if isinstance(node, Text):
        return True
    if isinstance(node, Not):
        return _has_sets(node.operand)
    if isinstance(node, And | Or):
        return any(_has_sets(n) for n in node.operands)
    return node.field.name == "fingerprint"


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


def _add(
    merged: list[Counter[tuple[int, Key]]], tallied: tuple[int, list[Counts]], sign: int = 1
) -> int:
    """Add (or subtract) one part's counts; its events."""
    total, counted = tallied
    for counter, pairs in zip(merged, counted, strict=True):
        for key, n in pairs:
            counter[identity(key)] += sign * n
    return total
