"""Aggregations and facets in SQLite (semantics: ``eventcollector.aggregation``).

One statement per aggregation over a derived table of the matching events: the inner
SELECT extracts each key and metric value once (JSON paths bound), the outer one
encodes keys as text (see ``aggregation.decode_key``), folds values outside the top N
into "~" and groups. Top values of the system, event type, severity and component come
from ``group_count`` (rollups where the filters allow); others from a ranked GROUP BY.
Percentiles are computed in Python from each group's values (one JSON array per group).
Counts by time bucket (a histogram) come from ``_bucket_counts`` where its shape allows.
Facets of the other fields are counted in Python from one pass over the rows, or, for an
indexed data path over a time range alone, in its index (``_walk_path``).
A tag facet over a time range (and systems and severities) reads the whole hours from
the ``tag_counts`` rollup and counts the tags of the partial hours at either end. Under
other filters it counts the matching events' tags with ``json_each`` over their own
``tags`` column, or, when they are a large share of the store, from ``event_tags``:
keyed (tag, event), it has no way from an event to its tags but a scan of every pair
(``_tag_facet``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
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
    Ranked,
    add_count,
    decode_key,
    facet,
    field_text,
    finish,
    group_id,
    identity,
    percentile,
    rank,
    ranked_counts,
    ranked_encoded,
    tag_facet,
)
from eventcollector.filters import Field, Text, search_terms, terms
from eventcollector.query import GROUP_FIELDS, Query
from eventcollector.storage._hour_split import hour_start, hour_text, split_by_hours
from eventcollector.storage._sql_common import AGGREGATE_COLUMNS, metric_columns
from eventcollector.storage._where import JSON_COLUMNS
from eventcollector.storage.sqlite import _reads as reads
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._bucket_counts import bucket_counts
from eventcollector.storage.sqlite._dialect import Expansions
from eventcollector.storage.sqlite._hour_cache import (
    Counters,
    HourCache,
    facet_counts,
    hourly_groups,
)
from eventcollector.storage.sqlite._rollups import (
    TAG_KEY,
    TAGGED_EVENTS,
    hour_counts,
    quarter_serves,
    tag_counts,
)
from eventcollector.storage.sqlite._select import expanded_match
from eventcollector.storage.sqlite._tally import CHUNK_ROWS, Counts, integral, set_bounds, tally

__all__ = ["aggregate", "facets"]

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


def _top_values(conn: sqlite3.Connection, query: Query, field: Field, top: int) -> Ranked:
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
    tops = [_top_values(conn, query, field, spec.top) for field in spec.by]
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
    expansions = _expanded(conn, query)

    def count(part: Query) -> Groups:
        return _grouped(conn, part, spec, seconds, every_value, expansions)

    hours = split_by_hours(_rolled_up_part(query))
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


# The top tags of the matching events (an untagged one under ''; the LEFT JOIN keeps it)
# and, on each row, the number of (event, tag) pairs. ``j.type`` skips what a database
# made by the spec's implementation may hold besides strings.
_TAG_COUNTS = (
    f"SELECT k, n, total FROM (SELECT {TAG_KEY} AS k, count(*) AS n,"
    " rank() OVER (ORDER BY count(*) DESC) AS r, sum(count(*)) OVER () AS total"
    f" FROM {TAGGED_EVENTS}{{where}} GROUP BY 1) WHERE r <= ?"
)
# Every tag of the edge of a range that ``tag_counts`` answers (rows of an hour at most).
_EDGE_TAG_COUNTS = f"SELECT {TAG_KEY}, count(*) FROM {TAGGED_EVENTS}{{where}} GROUP BY 1"
# The same from ``event_tags`` (untagged events apart): every pair of the store read in
# tag order (no sort), each probing the set of matching rowids.
_SIDE_TAG_COUNTS = (
    "SELECT k, n, total FROM (SELECT 's' || t.tag AS k, count(*) AS n,"
    " rank() OVER (ORDER BY count(*) DESC) AS r, sum(count(*)) OVER () AS total"
    " FROM event_tags t WHERE t.event_rowid IN (SELECT e.rowid FROM events e{where})"
    " GROUP BY t.tag) WHERE r <= ?"
)
_UNTAGGED = "SELECT count(*) FROM (SELECT e.tags FROM events e{where}) WHERE tags = '[]'"
_HOUR = timedelta(hours=1)
_HOUR_SECONDS = 3_600
#: Above this share of the store's events, reading every ``event_tags`` pair costs less
#: than ``json_each`` over the matching rows (measured: even at about a third).
_SIDE_TABLE_SHARE = 0.4


def _tag_facet(conn: sqlite3.Connection, query: Query, top: int, matching: int) -> Facet:
    rolled_up = _rolled_up_tags(conn, query)
    if rolled_up is not None:
        pairs = sum(rolled_up.values())
        return tag_facet([(k, n, pairs) for k, n in rolled_up.items() if n], top)
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


def _rolled_up_tags(conn: sqlite3.Connection, query: Query) -> Counter[str] | None:
    """Per tag (as a facet key) the events of ``query``: whole hours from ``tag_counts``,
    the partial hours at either end from their rows; None when the rollup cannot say."""
    if not quarter_serves(query, None):  # tag_counts has the same keys as quarter_counts
        return None
    split = split_by_hours(query)
    if split is None:
        return None
    counts = Counter(dict(tag_counts(conn, query, split.first_hour, split.end_hour)))
    for edge in split.edges:
        if (rest := reads.rest_of_hour(edge)) is None:
            counts.update(_edge_tags(conn, edge))
            continue
        # More than half its hour: the hour's counts less the rest of the hour's tags.
        hour, rest_query = rest
        counts.update(dict(tag_counts(conn, query, hour, hour_text(hour_start(hour) + _HOUR))))
        counts.subtract(_edge_tags(conn, rest_query))
    return counts


def _edge_tags(conn: sqlite3.Connection, edge: Query) -> dict[str, int]:
    where_sql, params = sql.where(edge)
    return dict(conn.execute(_EDGE_TAG_COUNTS.format(where=where_sql), params))


def facets(
    conn: sqlite3.Connection,
    query: Query,
    fields: Sequence[Field],
    top: int,
    literals: Mapping[Field, str] | None = None,
    cache: HourCache | None = None,
) -> list[Facet]:
    """``literals``: the indexed data paths' expression text (see ``_indexes``);
    ``cache``: the counts of whole hours kept between calls (``_hour_cache``)."""
    split = split_by_hours(query)
    if split is None:
        # A filter no rollup answers: every field from one pass over the matching rows,
        # which evaluates the filter once, not once per field (and once more to count);
        # hour by hour where whole hours can be kept.
        rolled_up = _rolled_up_part(query)
        hours = split_by_hours(rolled_up)
        expansions = _expanded(conn, query)
        tallied = None
        if cache is not None and hours is not None:
            tallied = facet_counts(cache, conn, query, fields, hours, expansions)
        if tallied is None:
            candidates = _candidates(conn, query, rolled_up)
            tallied = tally(conn, query, fields, candidates, expansions)
        total, counted = tallied
        return [
            facet(field_text(f), c, sum(n for _, n in c) if f == TAG else total, top)
            for f, c in zip(fields, counted, strict=True)
        ]
    total = reads.count(conn, query)
    found: dict[Field, list[tuple[Key, int]]] = {}
    walkable = reads.walkable(query)
    if literals and walkable:
        for f in fields:
            if f in literals and (walked := _walk_path(conn, query, literals[f], total)):
                found[f] = walked
    # Kept per hour: the rollup dimensions (summed from the rollups once an hour, not on
    # every call), the component (over a time range alone, walked in its index hour by
    # hour, which reads no rows) and the fields counted from the rows.
    hourly = [f for f in fields if f not in found and f != TAG]
    kept = None
    if cache is not None and hourly:
        counters = Counters(
            _ROLLED_UP_FIELDS,
            _rolled_up_counts,
            frozenset({_COMPONENT}) if walkable else frozenset(),
            _walked_components,
        )
        kept = facet_counts(cache, conn, query, hourly, split, counters=counters)
    if kept is not None:
        found.update(zip(hourly, kept[1], strict=True))
    scanned = [
        f for f in fields if f not in found and f != TAG and (f.path or f.name not in GROUP_FIELDS)
    ]
    if scanned:
        _, counted = tally(conn, query, scanned, total)
        found.update(zip(scanned, counted, strict=True))
    out = []
    for f in fields:
        if f == TAG:
            out.append(_tag_facet(conn, query, top, total))
            continue
        if f in found:
            counts = found[f]
        else:
            counts = [(v, n) for v, _, n in _top_values(conn, query, f, top)]
        out.append(facet(field_text(f), counts, total, top))
    return out


_COMPONENT = Field("source_component")
#: The fields the hourly rollups count by.
_ROLLED_UP_FIELDS = frozenset(Field(name) for name in ("system", "event_type", "severity"))


def _rolled_up_counts(conn: sqlite3.Connection, query: Query, field: Field) -> dict[str, Counts]:
    """One rollup dimension's counts in each hour of ``query``'s whole hours."""
    split = split_by_hours(query)
    assert split is not None
    assert split.first_hour is not None
    assert split.end_hour is not None
    by_hour: dict[str, Counts] = {}
    for hour, value, n in hour_counts(conn, query, split.first_hour, split.end_hour, field.name):
        by_hour.setdefault(hour, []).append((value, n))
    return by_hour


def _walked_components(conn: sqlite3.Connection, query: Query, field: Field) -> Counts:
    """The components of a time range alone (in ``idx_events_component``), None counted."""
    return [(k or None, n) for k, n in reads.group_count(conn, query, "source_component").items()]


def _expanded(conn: sqlite3.Connection, query: Query) -> Expansions | None:
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


def _candidates(conn: sqlite3.Connection, query: Query, rolled_up: Query) -> int:
    """At most the events ``query`` matches: the rollups' count of ``rolled_up`` when it
    is small enough for one pass, else the exact count: a filter that matches few of many
    stays one statement (ranged passes for ``database timeout`` over a day of 10M events
    measured 5.2 s against 1.6 s)."""
    upper = reads.count(conn, rolled_up)
    return upper if upper <= CHUNK_ROWS else reads.count(conn, query)


def _rolled_up_part(query: Query) -> Query:
    """The filters of ``query`` that the rollups count: an upper bound on its events."""
    return Query(
        systems=query.systems,
        event_types=query.event_types,
        severities=query.severities,
        since=query.since,
        until=query.until,
    )


_JSON_KEYS: dict[str, Key] = {"true": True, "false": False, "object": None, "array": None}


def _walk_path(
    conn: sqlite3.Connection, query: Query, literal: str, total: int
) -> list[tuple[Key, int]] | None:
    """An indexed data path's values counted in its index (``reads.walk_index``), as the
    reference keys them. The index holds ``json_extract``'s value, where true is 1 and
    an object is its JSON text: such values are split by their JSON type over their own
    index range. Null, missing and objects are the rest of ``total``."""
    expression = f"json_extract(data, {literal})"  # the index's own text
    walked = reads.walk_index(conn, query, expression)
    if walked is None:
        return None
    counts: Counter[tuple[int, Any]] = Counter()
    where_sql, params = sql.where(query)
    split = (
        f"SELECT json_type(e.data, {literal}), count(*) FROM events e"
        f"{where_sql or ' WHERE 1'} AND {expression} = ? GROUP BY 1"
    )
    for value, n in walked:
        ambiguous = value in (0, 1) if type(value) is not str else value[:1] in ("{", "[")
        if not ambiguous:
            counts[identity(integral(value))] += n
            continue
        for kind, m in conn.execute(split, [*params, value]):
            key = _JSON_KEYS.get(kind, value)
            counts[identity(integral(key))] += m
    counts[identity(None)] = total - sum(n for (kind, _), n in counts.items() if kind)
    return [(key, n) for (_, key), n in counts.items() if n]
