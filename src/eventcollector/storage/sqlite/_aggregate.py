"""Aggregations and facets in SQLite (semantics: ``eventcollector.aggregation``).

One statement per aggregation over a derived table of the matching events: the inner
SELECT extracts each key and metric value once (JSON paths bound), the outer one
encodes keys as text (see ``aggregation.decode_key``), folds values outside the top N
into "~" and groups. Top values of the system, event type, severity and component come
from ``group_count`` (rollups where the filters allow); others from a ranked GROUP BY.
Percentiles are computed in Python from each group's values (one JSON array per group).
A tag facet counts the matching events' tags with ``json_each`` over their own
``tags`` column, or, when they are a large share of the store, from ``event_tags``:
keyed (tag, event), it has no way from an event to its tags but a scan of every pair
(``_tag_facet``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from eventcollector.aggregation import (
    INTERVALS,
    OTHER,
    PERCENTILES,
    TAG,
    AggregateResult,
    AggregateSpec,
    Facet,
    Groups,
    Key,
    Metric,
    decode_key,
    facet,
    field_text,
    finish,
    floor_bucket,
    group_id,
    percentile,
    ranked_counts,
    ranked_encoded,
    tag_facet,
)
from eventcollector.filters import Field
from eventcollector.query import GROUP_FIELDS, Query
from eventcollector.storage._hour_split import rollup_eligible
from eventcollector.storage._sql_common import AGGREGATE_COLUMNS, metric_columns
from eventcollector.storage.sqlite import _reads as reads
from eventcollector.storage.sqlite import _sql as sql

__all__ = ["aggregate", "facets"]

_ROOTS = {"data": "e.data", "metadata": "e.metadata"}
# A JSON scalar as key text: s<string>, n<number> (1.0 as 1, so numbers are one kind), b0/b1.
_ENCODE = (
    "CASE {t} WHEN 'text' THEN 's' || {v} WHEN 'integer' THEN 'n' || {v}"
    " WHEN 'real' THEN 'n' || iif({v} = CAST({v} AS INTEGER), CAST({v} AS INTEGER), {v})"
    " WHEN 'true' THEN 'b1' WHEN 'false' THEN 'b0' ELSE '' END"
)
# Bucket -> its start as text (cut from the fixed-width ISO timestamp: no date functions).
_MINUTE = "CAST(substr(e.timestamp, 15, 2) AS INTEGER)"
_BUCKETS = {
    60: "substr(e.timestamp, 1, 16)",
    300: f"substr(e.timestamp, 1, 14) || printf('%02d', {_MINUTE} / 5 * 5)",
    900: f"substr(e.timestamp, 1, 14) || printf('%02d', {_MINUTE} / 15 * 15)",
    3_600: "substr(e.timestamp, 1, 13)",
    86_400: "substr(e.timestamp, 1, 10)",
}
assert set(_BUCKETS) == set(INTERVALS.values())
_BUCKET_SUFFIX = {10: "T00:00", 13: ":00", 16: ""}


def _path(field: Field) -> str:
    if any('"' in key for key in field.path):
        raise ValueError(f"by: a key with '\"' cannot be grouped in SQLite ({field_text(field)})")
    return "$" + "".join(f'."{key}"' for key in field.path)


class _Select:
    """The inner SELECT's columns (each value extracted once) and their parameters."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.params: list[Any] = []

    def key(self, field: Field) -> str:
        """The outer expression of ``field``'s encoded key."""
        i = len(self.columns)
        if not field.path:
            self.columns.append(f"{AGGREGATE_COLUMNS[field.name]} AS c{i}")
            return f"coalesce('s' || c{i}, '')"
        root, path = _ROOTS[field.name], _path(field)
        self.columns.append(f"json_type({root}, ?) AS t{i}, {root} ->> ? AS c{i}")
        self.params += [path, path]
        return _ENCODE.format(t=f"t{i}", v=f"c{i}")

    def number(self, field: Field) -> str:
        """The outer column of ``field``'s numeric value (NULL unless a number)."""
        i = len(self.columns)
        if not field.path:
            self.columns.append(f"{AGGREGATE_COLUMNS[field.name]} AS c{i}")
        else:
            root, path = _ROOTS[field.name], _path(field)
            self.columns.append(
                f"CASE WHEN json_type({root}, ?) IN ('integer', 'real')"
                f" THEN {root} ->> ? END AS c{i}"
            )
            self.params += [path, path]
        return f"c{i}"

    def source(self, query: Query) -> tuple[str, list[Any]]:
        where_sql, params = sql.where(query)
        columns = ", ".join(self.columns) or "1"
        return f"(SELECT {columns} FROM events e{where_sql})", [*self.params, *params]


_Ranked = list[tuple[Key, str, int]]


def _top_values(conn: sqlite3.Connection, query: Query, field: Field, top: int) -> _Ranked:
    """The top values (value, encoded, count), ranked as ``aggregation.rank`` does."""
    if not field.path and field.name in GROUP_FIELDS:
        counts = reads.group_count(conn, query, field.name)  # type: ignore[arg-type]
        return ranked_counts(counts, top)
    select = _Select()
    key = select.key(field)
    source, params = select.source(query)
    rows = conn.execute(
        f"SELECT k, n FROM (SELECT {key} AS k, count(*) AS n,"
        f" rank() OVER (ORDER BY count(*) DESC) AS r FROM {source} GROUP BY 1) WHERE r <= ?",
        [*params, top],
    ).fetchall()
    return ranked_encoded(rows, top)


def aggregate(
    conn: sqlite3.Connection, query: Query, spec: AggregateSpec, now: datetime
) -> AggregateResult:
    seconds = spec.bucket_seconds(query.since, query.until, now)
    tops = [_top_values(conn, query, field, spec.top) for field in spec.by]
    orders = [[v for v, _, _ in ranked] + [OTHER] for ranked in tops]
    until = query.until or now
    if seconds is not None and _counts_by_ranges(query, spec, seconds, until, tops):
        groups = _range_counts(conn, query, spec, seconds, until, tops)
    else:
        groups = _grouped(conn, query, spec, seconds, tops)
    return finish(spec, seconds, query.since, until, groups, orders)


#: Key field -> the query filter that holds it (each has a (field, timestamp) index).
_INDEXED = {"system": "systems", "event_type": "event_types", "severity": "severities"}


#: Above this many range counts, one GROUP BY costs less.
_MAX_RANGE_COUNTS = 2_000


def _counts_by_ranges(
    query: Query, spec: AggregateSpec, seconds: int, until: datetime, tops: list[_Ranked]
) -> bool:
    """Whether ``spec`` is counts by bucket and at most one indexed key, over a bounded
    range with only system, event type and severity filters, in few enough ranges."""
    if query.since is None:
        return False
    buckets = (until - floor_bucket(query.since, seconds)).total_seconds() / seconds
    ranges = buckets * (len(tops[0]) + 1 if tops else 1)
    return (
        ranges <= _MAX_RANGE_COUNTS
        and spec.metrics == (Metric("count"),)
        and len(spec.by) <= 1
        and all(not f.path and f.name in _INDEXED for f in spec.by)
        and query.where is None
        and rollup_eligible(query)
    )


def _range_counts(
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    seconds: int,
    until: datetime,
    tops: list[_Ranked],
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


def _grouped(
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    seconds: int | None,
    tops: list[_Ranked],
) -> Groups:
    select = _Select()
    outer: list[str] = []
    outer_params: list[Any] = []
    if seconds is not None:
        select.columns.append(f"{_BUCKETS[seconds]} AS b")
        outer.append("b")
    for field, ranked in zip(spec.by, tops, strict=True):
        key = select.key(field)
        if len(ranked) == spec.top:  # there may be more values: fold the rest
            marks = ", ".join("?" * len(ranked))
            key = f"CASE WHEN {key} IN ({marks}) THEN {key} ELSE '~' END"
            outer_params += [enc for _, enc, _ in ranked]
        outer.append(key)
    keys = len(outer)
    outer += metric_columns(
        spec.metrics,
        select.key,
        select.number,
        lambda column, _: f"json_group_array({column}) FILTER (WHERE {column} IS NOT NULL)",
    )
    source, params = select.source(query)
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(keys))}" if keys else ""
    rows = conn.execute(
        f"SELECT {', '.join(outer)} FROM {source}{group}", [*outer_params, *params]
    ).fetchall()
    if not keys and rows[0][-1] == 0:  # one row over no events: no group
        rows = []
    groups: Groups = {}
    offset = int(seconds is not None)
    for row in rows:
        bucket = _bucket(row[0]) if seconds is not None else None
        key_values = tuple(decode_key(k) for k in row[offset:keys])
        metrics = zip(spec.metrics, row[keys:-1], strict=True)
        groups[group_id(bucket, key_values)] = (
            key_values,
            tuple(_value(metric.op, v) for metric, v in metrics),
        )
    return groups


def _bucket(text: str) -> datetime:
    return datetime.fromisoformat(text + _BUCKET_SUFFIX[len(text)]).replace(tzinfo=UTC)


def _percentile(column: str, q: float) -> str:
    """A group's values as one JSON array: the percentile is computed in Python."""
    return f"json_group_array({column}) FILTER (WHERE {column} IS NOT NULL)"


def _value(op: str, raw: Any) -> Any:
    if op not in PERCENTILES:
        return raw
    ordered = sorted(orjson.loads(raw))
    return percentile(ordered, PERCENTILES[op]) if ordered else None


# The top tags of the matching events (an untagged one under ''; the LEFT JOIN keeps it)
# and, on each row, the number of (event, tag) pairs. ``j.type`` skips what a database
# made by the spec's implementation may hold besides strings.
_TAG_COUNTS = (
    "SELECT k, n, total FROM (SELECT coalesce('s' || j.value, '') AS k, count(*) AS n,"
    " rank() OVER (ORDER BY count(*) DESC) AS r, sum(count(*)) OVER () AS total"
    " FROM events e LEFT JOIN json_each(e.tags) j ON j.type = 'text'{where} GROUP BY 1)"
    " WHERE r <= ?"
)
# The same from ``event_tags`` (untagged events apart): every pair of the store read in
# tag order (no sort), each probing the set of matching rowids.
_SIDE_TAG_COUNTS = (
    "SELECT k, n, total FROM (SELECT 's' || t.tag AS k, count(*) AS n,"
    " rank() OVER (ORDER BY count(*) DESC) AS r, sum(count(*)) OVER () AS total"
    " FROM event_tags t WHERE t.event_rowid IN (SELECT e.rowid FROM events e{where})"
    " GROUP BY t.tag) WHERE r <= ?"
)
_UNTAGGED = "SELECT count(*) FROM (SELECT e.tags FROM events e{where}) WHERE tags = '[]'"
#: Above this share of the store's events, reading every ``event_tags`` pair costs less
#: than ``json_each`` over the matching rows (measured: even at about a third).
_SIDE_TABLE_SHARE = 0.4


def _tag_facet(conn: sqlite3.Connection, query: Query, top: int, matching: int) -> Facet:
    where_sql, params = sql.where(query)
    if matching <= _SIDE_TABLE_SHARE * reads.count(conn, Query()):
        rows = conn.execute(_TAG_COUNTS.format(where=where_sql), [*params, top]).fetchall()
        return tag_facet(rows, top)
    rows = conn.execute(_SIDE_TAG_COUNTS.format(where=where_sql), [*params, top]).fetchall()
    untagged = int(conn.execute(_UNTAGGED.format(where=where_sql), params).fetchone()[0])
    if untagged:  # a value of its own: the top N of tags and null hold the top N of all
        pairs = rows[0][2] if rows else 0
        rows = [(k, n, pairs + untagged) for k, n, _ in [*rows, ("", untagged, 0)]]
    return tag_facet(rows, top)


def facets(
    conn: sqlite3.Connection, query: Query, fields: Sequence[Field], top: int
) -> list[Facet]:
    total = reads.count(conn, query)
    return [
        _tag_facet(conn, query, top, total)
        if f == TAG
        else facet(
            field_text(f), [(v, n) for v, _, n in _top_values(conn, query, f, top)], total, top
        )
        for f in fields
    ]
