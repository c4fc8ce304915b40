"""Aggregations in SQLite (semantics: ``eventcollector.aggregation``); facets are
``_facets``'s, on the helpers at the end of this module.

One statement per aggregation over a derived table of the matching events: the inner
SELECT extracts each key and metric value once (JSON paths bound), the outer one
encodes keys as text (see ``aggregation.decode_key``), folds values outside the top N
into "~" and groups. Top values of the system, event type, severity and component come
from ``group_count`` (rollups where the filters allow); others from a ranked GROUP BY.
Percentiles are computed in Python from each group's values (one JSON array per group).
Counts by time bucket (a histogram) come from ``_bucket_counts`` where its shape allows.
Under a filter no rollup answers, every value of the keys is counted in one pass and
folded into the top N afterwards; whole hours are kept between calls (``_hour_cache``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson

from eventcollector.aggregation import (
    INTERVALS,
    OTHER,
    PERCENTILES,
    AggregateResult,
    AggregateSpec,
    Groups,
    Key,
    Metric,
    Ranked,
    add_count,
    decode_key,
    finish,
    group_id,
    identity,
    percentile,
    rank,
    ranked_counts,
    ranked_encoded,
)
from eventcollector.filters import Field, Text, search_terms, terms
from eventcollector.query import GROUP_FIELDS, Query
from eventcollector.storage._hour_split import split_by_hours
from eventcollector.storage._sql_common import AGGREGATE_COLUMNS, metric_columns
from eventcollector.storage._where import JSON_COLUMNS
from eventcollector.storage.sqlite import _reads as reads
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._bucket_counts import bucket_counts
from eventcollector.storage.sqlite._dialect import Expansions
from eventcollector.storage.sqlite._hour_cache import (
    HourCache,
    hourly_groups,
)
from eventcollector.storage.sqlite._select import expanded_match
from eventcollector.storage.sqlite._tally import set_bounds

__all__ = ["aggregate", "expanded", "rolled_up_part", "top_values"]

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
_HOUR_SECONDS = 3_600


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
        root, path = JSON_COLUMNS[field.name], sql.key_path(field)
        self.columns.append(f"json_type({root}, ?) AS t{i}, {root} ->> ? AS c{i}")
        self.params += [path, path]
        return _ENCODE.format(t=f"t{i}", v=f"c{i}")

    def number(self, field: Field) -> str:
        """The outer column of ``field``'s numeric value (NULL unless a number)."""
        i = len(self.columns)
        if not field.path:
            self.columns.append(f"{AGGREGATE_COLUMNS[field.name]} AS c{i}")
        else:
            root, path = JSON_COLUMNS[field.name], sql.key_path(field)
            self.columns.append(
                f"CASE WHEN json_type({root}, ?) IN ('integer', 'real')"
                f" THEN {root} ->> ? END AS c{i}"
            )
            self.params += [path, path]
        return f"c{i}"

    def source(
        self,
        query: Query,
        rowids: tuple[int, int] | None = None,
        expansions: Expansions | None = None,
    ) -> tuple[str, list[Any]]:
        where_sql, params = sql.where(query, expansions=expansions, rowids=rowids)
        columns = ", ".join(self.columns) or "1"
        return f"(SELECT {columns} FROM events e{where_sql})", [*self.params, *params]


def top_values(conn: sqlite3.Connection, query: Query, field: Field, top: int) -> Ranked:
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
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    now: datetime,
    cache: HourCache | None = None,
) -> AggregateResult:
    """``cache``: the groups of whole hours kept between calls (``_hour_cache``)."""
    seconds = spec.bucket_seconds(query.since, query.until, now)
    until = query.until or now
    if spec.by and spec.metrics == (Metric("count"),) and split_by_hours(query) is None:
        folded, ranks = _fold(spec, _every_value(conn, query, spec, seconds, cache))
        return finish(spec, seconds, query.since, until, folded, ranks)
    tops = [top_values(conn, query, field, spec.top) for field in spec.by]
    orders = [[v for v, _, _ in ranked] + [OTHER] for ranked in tops]
    groups = None
    if seconds is not None:
        groups = bucket_counts(conn, query, spec, seconds, until, tops)
    if groups is None:
        groups = _grouped(conn, query, spec, seconds, tops)
    return finish(spec, seconds, query.since, until, groups, orders)


def _every_value(
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    seconds: int | None,
    cache: HourCache | None,
) -> Groups:
    """Counts by every value of the keys, under a filter no rollup answers: ranking the
    keys first would evaluate it over every row once more. By hour where the buckets lie
    within hours and the hours' groups can be kept."""
    every_value: list[Ranked] = [[]] * len(spec.by)
    expansions = expanded(conn, query)

    def count(part: Query) -> Groups:
        return _grouped(conn, part, spec, seconds, every_value, expansions)

    hours = split_by_hours(rolled_up_part(query))
    within_hours = seconds is not None and _HOUR_SECONDS % seconds == 0
    if cache is not None and hours is not None and within_hours:
        groups = hourly_groups(cache, conn, query, hours, (spec.by, seconds), count)
        if groups is not None:
            return groups
    return count(query)


def _fold(spec: AggregateSpec, groups: Groups) -> tuple[Groups, list[list[Key]]]:
    """Counts of every value folded into each key's top ``spec.top`` (ranked as
    ``aggregation.rank`` ranks) and ``OTHER``; with each key's order of values."""
    totals: list[Counter[tuple[int, Any]]] = [Counter() for _ in spec.by]
    values: list[dict[tuple[int, Any], Key]] = [{} for _ in spec.by]
    for (_, ids), (keys, (n, *_)) in groups.items():
        for i, (ident, key) in enumerate(zip(ids, keys, strict=True)):
            totals[i][ident] += int(n or 0)
            values[i][ident] = key
    orders = [
        [v for v, _ in rank([(values[i][ident], n) for ident, n in totals[i].items()], spec.top)]
        for i in range(len(spec.by))
    ]
    kept = [{identity(v) for v in order} for order in orders]
    folded: Groups = {}
    for (bucket, ids), (values_of_group, (n, *_)) in groups.items():
        keys = tuple(
            k if ident in kept[i] else OTHER
            for i, (ident, k) in enumerate(zip(ids, values_of_group, strict=True))
        )
        add_count(folded, bucket, keys, int(n or 0))
    return folded, [[*order, OTHER] for order in orders]


def _grouped(
    conn: sqlite3.Connection,
    query: Query,
    spec: AggregateSpec,
    seconds: int | None,
    tops: list[Ranked],
    expansions: Expansions | None = None,
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
    source, params = select.source(query, set_bounds(conn, query), expansions)
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


def _value(op: str, raw: Any) -> Any:
    if op not in PERCENTILES:
        return raw
    ordered = sorted(orjson.loads(raw))
    return percentile(ordered, PERCENTILES[op]) if ordered else None


def expanded(conn: sqlite3.Connection, query: Query) -> Expansions | None:
    """The full-text words of ``query`` (its search and every term of its filter), each
    with its prefixes replaced by the words they start: statements over parts of the
    range (hours, rowid ranges) then read the posting lists lazily, where a prefix query
    merges every word's list each time. Phrases keep their prefixes."""
    texts = [] if query.search is None else [tuple(search_terms(query.search))]
    if query.where is not None:
        texts += [
            t.words
            for t in terms(query.where)
            if isinstance(t, Text) and (not t.phrase or len(t.words) == 1)
        ]
    expansions = {}
    for words in texts:
        if words and (match := expanded_match(conn, " ".join(words))) is not None:
            expansions[words] = match
    return expansions or None


def rolled_up_part(query: Query) -> Query:
    """The filters of ``query`` that the rollups count: an upper bound on its events."""
    return Query(
        systems=query.systems,
        event_types=query.event_types,
        severities=query.severities,
        since=query.since,
        until=query.until,
    )
