"""A facet's counts per whole hour, kept between calls for the fields no rollup counts.

A data path's facet reads every matching row's JSON (~0.5 us a row: 80-100 ms for a day
of 1M events, about a second at 10M). The same facet is asked again and again (Explore
refreshes, a dashboard, a second user), and an hour that is over rarely changes. So
each hour's counts are kept with the hour's version: the number of events in it
(``hour_totals``; every insert into the hour raises it) and the events ever deleted
(``event_meta``'s ``deleted_events``; every cleanup raises it). A kept count is used
only while both are what they were when it was counted. Another process writing the file
changes them as this one does. A change by raw SQL does not, and the rollups would be
wrong after it too.

Only queries that the rollups answer (systems, types, severities and a time range) come
here. Their edges, the partial hours at either end, are counted as they come, an edge of
more than half an hour as its hour less the rest. Values are kept up to
``MAX_KEPT_VALUES`` in all (least recently used go first). An hour with more than
``MAX_HOUR_VALUES`` distinct values of a field (ids, say) is not kept.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from eventcollector.aggregation import Key, identity
from eventcollector.filters import Field
from eventcollector.query import Query
from eventcollector.storage._hour_split import HourSplit, hour_start, hour_text
from eventcollector.storage.sqlite._reads import rest_of_hour
from eventcollector.storage.sqlite._tally import Counts, tally

__all__ = ["COUNT_DELETED", "MAX_HOUR_VALUES", "MAX_KEPT_VALUES", "FacetCache"]

MAX_KEPT_VALUES = 200_000  # ~100 bytes each: ~20 MB
MAX_HOUR_VALUES = 1_000
_HOUR = timedelta(hours=1)
_DELETED = "SELECT value FROM event_meta WHERE key = 'deleted_events'"
#: Run by cleanup in the transaction that deletes (parameter: how many).
COUNT_DELETED = (
    "INSERT INTO event_meta(key, value) VALUES ('deleted_events', ?)"
    " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value"
)

_Key = tuple[Any, ...]
_Version = tuple[int, int]


class FacetCache:
    """Per (filters, field, hour): the counts and the version they were counted at."""

    def __init__(self) -> None:
        self._kept: OrderedDict[_Key, tuple[_Version, Counts]] = OrderedDict()
        self._values = 0
        self._lock = threading.Lock()  # facets run on several reader threads
        #: Lookups answered from kept counts, and lookups that counted the hour.
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget every kept count (the benchmark measures a first view with it)."""
        with self._lock:
            self._kept.clear()
            self._values = 0

    def get(self, key: _Key, version: _Version) -> Counts | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != version:
                self.misses += 1
                return None
            self._kept.move_to_end(key)
            self.hits += 1
            return kept[1]

    def put(self, key: _Key, version: _Version, counts: Counts) -> None:
        if len(counts) > MAX_HOUR_VALUES:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._values -= len(old[1])
            self._kept[key] = (version, counts)
            self._values += len(counts)
            while self._values > MAX_KEPT_VALUES:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._values -= len(dropped)

    def counts(
        self,
        conn: sqlite3.Connection,
        query: Query,
        fields: Sequence[Field],
        split: HourSplit,
    ) -> list[Counts]:
        """Per field, its values' counts over ``query`` (one the rollups answer, as
        ``split`` divides it): whole hours kept or counted, edges counted."""
        versions = _versions(conn, split)
        merged: list[Counter[tuple[int, Key]]] = [Counter() for _ in fields]
        for hour, version in versions.items():
            if split.first_hour is not None and hour < split.first_hour:
                continue  # an edge's hour, read below
            if split.end_hour is not None and hour >= split.end_hour:
                continue
            _add(merged, self._hour(conn, query, fields, hour, version))
        for edge in split.edges:
            rest = rest_of_hour(edge)
            if rest is None or rest[0] not in versions:
                _add(merged, tally(conn, edge, fields, _bound(versions, edge))[1])
                continue
            # More than half its hour: the hour's counts (kept, mostly) less the rest.
            hour, rest_query = rest
            _add(merged, self._hour(conn, query, fields, hour, versions[hour]))
            _add(merged, tally(conn, rest_query, fields, versions[hour][0])[1], -1)
        return [[(key, n) for (_, key), n in c.items() if n > 0] for c in merged]

    def _hour(
        self,
        conn: sqlite3.Connection,
        query: Query,
        fields: Sequence[Field],
        hour: str,
        version: _Version,
    ) -> list[Counts]:
        base = (query.systems, query.event_types, query.severities)
        keys = [(base, f, hour) for f in fields]
        kept = [self.get(key, version) for key in keys]
        if all(k is not None for k in kept):
            return kept  # type: ignore[return-value]
        start = hour_start(hour)
        _, counted = tally(conn, query.with_(since=start, until=start + _HOUR), fields, version[0])
        for key, counts in zip(keys, counted, strict=True):
            self.put(key, version, counts)
        return counted


def _versions(conn: sqlite3.Connection, split: HourSplit) -> dict[str, _Version]:
    """Each hour with events that the split or its edges touch: (events, deleted)."""
    (deleted,) = conn.execute(_DELETED).fetchone() or (0,)
    edge_hours = [hour_text(edge.since) for edge in split.edges if edge.since is not None]
    low = "" if split.first_hour is None else min([split.first_hour, *edge_hours])
    high = "~" if split.end_hour is None else max([split.end_hour, *edge_hours])
    rows = conn.execute(
        "SELECT hour, n FROM hour_totals WHERE hour >= ? AND hour <= ?", (low, high)
    )
    return {hour: (int(n), int(deleted)) for hour, n in rows}


def _bound(versions: dict[str, _Version], edge: Query) -> int:
    """At most the events of the edge's hour (it lies within one)."""
    assert edge.since is not None
    return versions.get(hour_text(edge.since), (0, 0))[0]


def _add(merged: list[Counter[tuple[int, Key]]], counted: list[Counts], sign: int = 1) -> None:
    for counter, pairs in zip(merged, counted, strict=True):
        for key, n in pairs:
            counter[identity(key)] += sign * n
