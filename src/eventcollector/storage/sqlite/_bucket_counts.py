"""Counts by time bucket without a GROUP BY over the range's rows, for a count by at
most one of system, event type and severity under time, system, type and severity
filters (a histogram): whole quarter hours from ``quarter_counts``, or one index range
count per bucket and value. SQLite's GROUP BY would sort every row of the range.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from eventcollector.aggregation import (
    OTHER,
    AggregateSpec,
    Groups,
    Key,
    Metric,
    Ranked,
    add_count,
    floor_bucket,
    group_id,
)
from eventcollector.query import Query
from eventcollector.storage._hour_split import rollup_eligible
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._rollups import quarter_counts, quarter_serves

__all__ = ["bucket_counts"]


def bucket_counts(
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    seconds: int,
    until: datetime,
    tops: list[Ranked],
) -> Groups | None:
    """The groups of ``spec`` by buckets of ``seconds``, or None when this shape of
    query needs the general GROUP BY."""
    if not _countable(query, spec):
        return None
    groups = None
    if seconds % _QUARTER_SECONDS == 0:
        groups = _quarter_groups(conn, query, spec, seconds, until, tops)
    if groups is None and _few_ranges(query, seconds, until, tops):
        groups = _range_counts(conn, query, spec, seconds, until, tops)
    return groups


_QUARTER_SECONDS = 900


def _quarter_groups(
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    seconds: int,
    until: datetime,
    tops: list[Ranked],
) -> Groups | None:
    """Counts per bucket (of whole quarter hours) from ``quarter_counts``, the range's
    edges (under a quarter each) counted in the index as ``_range_counts`` does; None
    for a range within one quarter."""
    assert query.since is not None
    since = query.since
    first = floor_bucket(since, _QUARTER_SECONDS)
    if first < since:
        first += timedelta(seconds=_QUARTER_SECONDS)
    end = floor_bucket(until, _QUARTER_SECONDS)
    if first >= end:
        return None
    name = spec.by[0].name if spec.by else None
    if not quarter_serves(query, name):
        return None
    kept = {value for value, _, _ in tops[0]} if spec.by else set()
    fold = bool(spec.by) and len(tops[0]) == spec.top
    groups: Groups = {}
    for quarter, value, n in quarter_counts(conn, query, _minute(first), _minute(end), name):
        bucket = floor_bucket(datetime.fromisoformat(f"{quarter}:00+00:00"), seconds)
        if name is None:
            add_count(groups, bucket, (), int(n))
        else:
            add_count(groups, bucket, (value if value in kept or not fold else OTHER,), int(n))
    for lo, hi in ((since, first), (end, until)):
        if lo < hi:  # within one quarter, so within one bucket
            edge = query.with_(since=lo, until=hi)
            bucket = floor_bucket(lo, seconds)
            for keys, values in _range_counts(conn, edge, spec, seconds, hi, tops).values():
                add_count(groups, bucket, keys, int(values[0] or 0))
    return {gid: group for gid, group in groups.items() if group[1][0]}


def _minute(ts: datetime) -> str:
    """A quarter's key: "YYYY-MM-DDTHH:MM" (UTC)."""
    return ts.astimezone(UTC).isoformat()[:16]


#: Key field -> the query filter that holds it (each has a (field, timestamp) index).
_INDEXED = {"system": "systems", "event_type": "event_types", "severity": "severities"}


#: Above this many range counts, one GROUP BY costs less.
_MAX_RANGE_COUNTS = 2_000


def _countable(query: Query, spec: AggregateSpec) -> bool:
    """Whether ``spec`` is counts by bucket and at most one indexed key, over a bounded
    range with only system, event type and severity filters."""
    return (
        query.since is not None
        and spec.metrics == (Metric("count"),)
        and len(spec.by) <= 1
        and all(not f.path and f.name in _INDEXED for f in spec.by)
        and query.where is None
        and rollup_eligible(query)
    )


def _few_ranges(query: Query, seconds: int, until: datetime, tops: list[Ranked]) -> bool:
    assert query.since is not None
    buckets = (until - floor_bucket(query.since, seconds)).total_seconds() / seconds
    return buckets * (len(tops[0]) + 1 if tops else 1) <= _MAX_RANGE_COUNTS


def _range_counts(
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    seconds: int,
    until: datetime,
    tops: list[Ranked],
) -> Groups:
    """One index range count per (value, bucket): SQLite's GROUP BY would sort every
    row of the range first (a day of 1M events: ~140k rows), a range count reads
    only the ``(field, timestamp)`` index."""
    assert query.since is not None
    since, step = query.since, timedelta(seconds=seconds)
    buckets = []
    bucket = floor_bucket(since, seconds)
    while bucket < until:
        buckets.append(bucket)
        bucket += step

    def count(narrowed: Query, bucket: datetime) -> int:
        window = narrowed.with_(since=max(bucket, since), until=min(bucket + step, until))
        where_sql, params = sql.where(window)
        return int(conn.execute(f"SELECT count(*) FROM events e{where_sql}", params).fetchone()[0])

    counts: dict[tuple[datetime, Key], int] = {}
    if not spec.by:
        counts = {(b, None): count(query, b) for b in buckets}
    else:
        name = _INDEXED[spec.by[0].name]
        for value, _, _ in tops[0]:
            narrowed = query.with_(**{name: (value,)})
            counts.update({(b, value): count(narrowed, b) for b in buckets})
        if len(tops[0]) == spec.top:  # the rest: each bucket's whole count less the kept
            for b in buckets:
                kept = sum(counts[(b, value)] for value, _, _ in tops[0])
                counts[(b, OTHER)] = count(query, b) - kept
    groups: Groups = {}
    for (b, value), n in counts.items():
        if n:
            keys = (value,) if spec.by else ()
            groups[group_id(b, keys)] = (keys, (n,))
    return groups
