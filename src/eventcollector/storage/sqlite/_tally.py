"""Facet values counted in Python from one pass over the matching rows.

A GROUP BY per field would read every row's JSON once per field and twice per row
(type and value), then sort (a day of 1M events: ~500 vs ~100 ms). One statement
instead returns, per field, a JSON array of the matching rows' values, which counts in
C, and evaluates the filter once per row for every field. Past ``CHUNK_ROWS``
candidate events it runs once per range of that many rowids, so that the values held
at once stay bounded.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from eventcollector.aggregation import TAG, Key, identity
from eventcollector.filters import Field, Text, terms
from eventcollector.query import Query
from eventcollector.storage._sql_common import AGGREGATE_COLUMNS
from eventcollector.storage._where import JSON_COLUMNS
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._dialect import Expansions
from eventcollector.storage.sqlite._select import rowid_span

__all__ = [
    "CHUNK_ROWS",
    "Counts",
    "Merged",
    "add_counts",
    "has_sets",
    "integral",
    "merged_counts",
    "set_bounds",
    "tally",
]

#: Rows tallied by one statement: as Python objects their values take ~420 bytes an
#: event for five fields (tracemalloc: 53 MiB at 126k events), so at most ~85 MiB.
CHUNK_ROWS = 200_000

Counts = list[tuple[Key, int]]
#: Per field, counts by ``aggregation.identity`` of the value (True and 1 apart).
Merged = list[Counter[tuple[int, Key]]]


def tally(
    conn: sqlite3.Connection,
    query: Query,
    fields: Sequence[Field],
    candidates: int,
    expansions: Expansions | None = None,
) -> tuple[int, list[Counts]]:
    """The matching events, and per field its values' counts. A tag is counted once
    per (event, tag), an event without tags under None, as ``aggregation.tag_facet``
    counts them. ``candidates`` bounds the matching events from above (a rollup's count);
    ``expansions``: full-text words with their prefixes expanded (``SQLiteDialect``)."""
    if not fields:
        return 0, []
    try:
        return _tally(conn, query, fields, candidates, expansions, _TAG_LIST)
    except _OtherTagText:
        return _tally(conn, query, fields, candidates, expansions, _TAG_LIST_PARSED)


def _tally(
    conn: sqlite3.Connection,
    query: Query,
    fields: Sequence[Field],
    candidates: int,
    expansions: Expansions | None,
    tag_list: str,
) -> tuple[int, list[Counts]]:
    columns, params = [], []
    for f in fields:
        if f == TAG:
            columns.append(tag_list)
        elif f.path:
            columns.append(f"json_group_array({JSON_COLUMNS[f.name]} -> ?)")  # strings stay strings
            params.append(sql.key_path(f))
        else:
            columns.append(f"json_group_array({AGGREGATE_COLUMNS[f.name]})")
    select = f"SELECT count(*), {', '.join(columns)} FROM events e"
    if candidates <= CHUNK_ROWS:
        where_sql, where_params = sql.where(
            query, expansions=expansions, rowids=set_bounds(conn, query)
        )
        row = conn.execute(select + where_sql, [*params, *where_params]).fetchone()
        return _decoded(fields, row)
    # NOT INDEXED: each range is read by rowid; an index of the filter's (on timestamp,
    # say) would otherwise be walked whole for every range.
    first, last = rowid_span(conn, query)
    # A filter's sets are computed again for each range: only its part of them.
    same_where = None if has_sets(query) else sql.where(query, expansions=expansions)
    total = 0
    merged: Merged = [Counter() for _ in fields]
    for low in range(first, last + 1, CHUNK_ROWS):
        bounds = (low, min(low + CHUNK_ROWS - 1, last))
        where_sql, where_params = same_where or sql.where(
            query, expansions=expansions, rowids=bounds
        )
        ranged = f"{select} NOT INDEXED{where_sql or ' WHERE 1'} AND e.rowid BETWEEN ? AND ?"
        row = conn.execute(ranged, [*params, *where_params, *bounds]).fetchone()
        matched, counted = _decoded(fields, row)
        total += matched
        add_counts(merged, counted)
    return total, merged_counts(merged)


def set_bounds(conn: sqlite3.Connection, query: Query) -> tuple[int, int] | None:
    """For a query with a time range whose filter computes sets over the whole store
    (a full-text match, an issue's events): the rowids its events may have, so that a
    statement computes only its part of them (see ``SQLiteDialect``)."""
    if (query.since is None and query.until is None) or not has_sets(query):
        return None
    return rowid_span(conn, query)


def has_sets(query: Query) -> bool:
    """Whether ``query`` searches the full text or names issues."""
    if query.search is not None:
        return True
    return query.where is not None and any(
        isinstance(t, Text) or t.field.name == "fingerprint" for t in terms(query.where)
    )


def add_counts(merged: Merged, counted: list[Counts], sign: int = 1) -> None:
    """Add (``sign`` -1: subtract) one part's counts per field to ``merged``."""
    for counter, pairs in zip(merged, counted, strict=True):
        for key, n in pairs:
            counter[identity(key)] += sign * n


def merged_counts(merged: Merged) -> list[Counts]:
    """Per field, the values that ``merged`` counts above zero."""
    return [[(key, n) for (_, key), n in c.items() if n > 0] for c in merged]


def _decoded(fields: Sequence[Field], row: tuple[Any, ...]) -> tuple[int, list[Counts]]:
    counted = [
        _tag_pairs(text) if f == TAG else _counted(orjson.loads(text))
        for f, text in zip(fields, row[1:], strict=True)
    ]
    return int(row[0]), counted


# Every tag of the matching events as one flat JSON list, cut from the arrays as stored
# (SQLite then parses no JSON: json() or json_each cost ~1 us an event); then the events
# without tags, and those whose array is written otherwise. Ingest and the spec's code
# write an empty array as "[]", any other as '["' ... '"]'; a file written otherwise is
# read again with _TAG_LIST_PARSED.
_TAG_LIST = (
    "coalesce(group_concat(CASE WHEN e.tags <> '[]'"
    " THEN substr(e.tags, 2, length(e.tags) - 2) END), '')"
    " || char(31) || coalesce(sum(e.tags = '[]'), 0)"
    " || char(31) || coalesce(sum(e.tags <> '[]' AND e.tags NOT GLOB '[[]\"*\"]'), 0)"
)
_TAG_LIST_PARSED = (
    "coalesce(group_concat(CASE WHEN json_array_length(e.tags) > 0"
    " THEN substr(json(e.tags), 2, length(json(e.tags)) - 2) END), '')"
    " || char(31) || coalesce(sum(json_array_length(e.tags) = 0), 0) || char(31) || 0"
)


class _OtherTagText(Exception):
    """Some tags array is not written as ingest writes them (see _TAG_LIST)."""


def _tag_pairs(encoded: str) -> Counts:
    joined, untagged, other = encoded.rsplit("\x1f", 2)
    if other != "0":
        raise _OtherTagText
    counts: Counter[Key] = Counter(orjson.loads(f"[{joined}]"))
    if untagged != "0":
        counts[None] = int(untagged)
    return list(counts.items())


def _counted(values: Sequence[Any]) -> Counts:
    """(key, count) of JSON values as ``aggregation_reference.key_value`` keys them:
    scalars as themselves (an integral number as an int), objects and arrays as null;
    true and 1 stay apart."""
    try:
        counts = Counter(values)
    except TypeError:  # an object or array (unhashable): the exact count, slower
        return _counted([v if type(v) in _SCALARS else None for v in values])
    if any(k == 0 or k == 1 for k in counts if type(k) is not str):
        # Counter merged true with 1 (or false with 0): count by kind.
        kinds = Counter(identity(v) for v in values)
        return [(integral(v), n) for (_, v), n in kinds.items()]
    return [(integral(k), n) for k, n in counts.items()]


_SCALARS = (str, int, float, bool, type(None))
_INT64 = 2**63


def integral(value: Any) -> Key:
    """A JSON number as the SQL encoding keys it (1.0 is the number 1), within SQLite's
    integers; any other value as itself."""
    if type(value) is float and value.is_integer() and -_INT64 <= value < _INT64:
        return int(value)
    return value  # type: ignore[no-any-return]
