"""The SQLite rollups: the upserts that keep them in step with ``events`` (ingest adds,
retention subtracts, in the same transaction) and which rollup answers which part of a
read (``rollup_parts``, ``quarter_counts``, ``tag_counts``; the split into whole hours
and edges is ``_hour_split``'s).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from eventcollector.query import Query
from eventcollector.storage._hour_split import HourSplit
from eventcollector.storage.sqlite._schema import QUARTER

_KEYS = ("system", "event_type", "severity")
#: Each rollup table: its key columns, as the delta names them.
_ROLLUPS = {
    "event_counts": ("hour", *_KEYS),
    "day_counts": ("day", *_KEYS),
    "event_totals": _KEYS,
    "hour_totals": ("hour",),
}
_ROLLUP_TABLES = (*_ROLLUPS, "quarter_counts", "tag_counts")
_FROM_DELTA = {"hour": "hour", "day": "substr(hour, 1, 10)", **{k: k for k in _KEYS}}
# The rows are grouped once, by the finest rollup's keys, into this table; each rollup is
# then an upsert of those few groups. A GROUP BY per rollup over every row cost ~5 us a row.
_DELTA_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS rollup_delta(hour TEXT, system TEXT, event_type TEXT,"
    " severity TEXT, n INTEGER, d_n INTEGER, d_sum INTEGER)"
)


def _upsert_from_delta(table: str, keys: tuple[str, ...]) -> str:
    grouped = ", ".join(_FROM_DELTA[k] for k in keys)
    return (
        f"INSERT INTO {table}({', '.join(keys)}, n, d_n, d_sum)"
        f" SELECT {grouped}, sum(n), sum(d_n), sum(d_sum) FROM temp.rollup_delta"
        f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}"
        " ON CONFLICT DO UPDATE SET n = n + excluded.n, d_n = d_n + excluded.d_n,"
        " d_sum = d_sum + excluded.d_sum"
    )


_APPLY_DELTA = (
    *(_upsert_from_delta(table, keys) for table, keys in _ROLLUPS.items()),
    "DELETE FROM temp.rollup_delta",
)


#: Each event with each of its tags, an event without tags once (``TAG_KEY`` "").
TAGGED_EVENTS = "events e LEFT JOIN json_each(e.tags) j ON j.type = 'text'"
#: A tag as a facet key encodes it (``aggregation.decode_key``): "" for no tag.
TAG_KEY = "coalesce('s' || j.value, '')"


def rollup_update(rows: str, sign: str = "") -> tuple[str, str, str]:
    """The statements adding (sign "") or subtracting (sign "-") the ``rows`` of ``events
    e`` (``rows``: a constant WHERE clause, its values bound) to every rollup, which
    ``update_rollups`` runs: the rows grouped by hour into the delta, the quarter-hour
    counts (coarser keys, finer time: grouped apart, so the delta stays hourly) and the
    tag counts (a row per tag)."""
    values = f"{sign}count(*), {sign}count(e.duration_ms), {sign}coalesce(sum(e.duration_ms), 0)"
    return (
        "INSERT INTO temp.rollup_delta"
        f" SELECT substr(e.timestamp, 1, 13), e.system, e.event_type, e.severity, {values}"
        f" FROM events e {rows} GROUP BY 1, 2, 3, 4",
        "INSERT INTO quarter_counts(quarter, system, severity, n, d_n, d_sum)"
        f" SELECT {QUARTER.format(ts='e.timestamp')}, e.system, e.severity, {values}"
        f" FROM events e {rows} GROUP BY 1, 2, 3 ON CONFLICT DO UPDATE SET n = n + excluded.n,"
        " d_n = d_n + excluded.d_n, d_sum = d_sum + excluded.d_sum",
        "INSERT INTO tag_counts(hour, system, severity, tag, n)"
        f" SELECT substr(e.timestamp, 1, 13), e.system, e.severity, {TAG_KEY}, {sign}count(*)"
        f" FROM {TAGGED_EVENTS} {rows} GROUP BY 1, 2, 3, 4 ON CONFLICT DO UPDATE"
        " SET n = n + excluded.n",
    )


def update_rollups(
    conn: sqlite3.Connection, update: tuple[str, str, str], params: Sequence[Any]
) -> None:
    """Run a ``rollup_update`` for the rows that ``params`` select."""
    group, quarters, tags = update
    conn.execute(_DELTA_TABLE)
    conn.execute(group, params)
    for statement in _APPLY_DELTA:
        conn.execute(statement)
    conn.execute(quarters, params)
    conn.execute(tags, params)


_QUARTER_KEYS = ("system", "severity")


def quarter_serves(query: Query, key: str | None) -> bool:
    """Whether ``quarter_counts`` holds what a count by ``key`` under ``query`` needs (it
    has no event type)."""
    return not query.event_types and key in (None, *_QUARTER_KEYS)


def quarter_counts(
    conn: sqlite3.Connection, query: Query, first: str, end: str, key: str | None
) -> list[tuple[str, str | None, int]]:
    """(quarter, value of ``key`` or None, events) of the whole quarters from ``first`` to
    ``end`` ("YYYY-MM-DDTHH:MM", end excluded) under ``query``'s system and severity
    filters (``quarter_serves`` says when it may answer); ``key``: system, severity or
    None."""
    column = "NULL" if key is None else f"c.{_QUARTER_KEYS[_QUARTER_KEYS.index(key)]}"
    where_sql, params = _where(_dimension_filters(query), _time_range("c.quarter", first, end))
    return conn.execute(
        f"SELECT c.quarter, {column}, sum(c.n) FROM quarter_counts c{where_sql} GROUP BY 1, 2",
        params,
    ).fetchall()


def hour_counts(
    conn: sqlite3.Connection, query: Query, first: str, end: str, key: str
) -> list[tuple[str, str, int]]:
    """(hour, value of ``key``, events) of the whole hours from ``first`` to ``end``
    ("YYYY-MM-DDTHH", end excluded) under ``query``'s system, type and severity filters;
    ``key``: system, event_type or severity."""
    column = f"c.{_KEYS[_KEYS.index(key)]}"  # from the allow-list
    where_sql, params = _where(_dimension_filters(query), _time_range("c.hour", first, end))
    return conn.execute(
        f"SELECT c.hour, {column}, sum(c.n) FROM event_counts c{where_sql} GROUP BY 1, 2",
        params,
    ).fetchall()


def tag_counts(
    conn: sqlite3.Connection, query: Query, first: str | None, end: str | None
) -> list[tuple[str, int]]:
    """(tag as a facet key, events) of the whole hours from ``first`` to ``end``
    ("YYYY-MM-DDTHH", end excluded; None: unbounded) under ``query``'s system and
    severity filters (``quarter_serves(query, None)`` says when it may answer)."""
    where_sql, params = _where(_dimension_filters(query), _time_range("c.hour", first, end))
    return conn.execute(
        f"SELECT c.tag, sum(c.n) FROM tag_counts c{where_sql} GROUP BY 1", params
    ).fetchall()


def drop_empty_rollups(conn: sqlite3.Connection) -> None:
    """After subtracting events: the rollup rows whose count reached zero."""
    for table in _ROLLUP_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE n <= 0")


_DIMENSIONS = (
    ("c.system", "systems"),
    ("c.event_type", "event_types"),
    ("c.severity", "severities"),
)


def hour_rollup(
    conn: sqlite3.Connection, edge: Query, hour: str, columns: str, group: str = ""
) -> list[Any]:
    """``columns`` (constant SQL) of ``event_counts`` for one hour and the edge's filters."""
    where_sql, params = _where(_dimension_filters(edge), (["c.hour = ?"], [hour]))
    return conn.execute(
        f"SELECT {columns} FROM event_counts c{where_sql}{group}", params
    ).fetchall()


def rollup_parts(
    query: Query, split: HourSplit, field: str | None
) -> list[tuple[str, str, list[Any]]]:
    """(table, WHERE, params) for each rollup part covering the split's whole hours.

    The coarsest table with the needed columns serves each part: all-time totals for
    an unbounded range, per-hour totals without dimension filters, and otherwise whole
    days from ``day_counts`` plus the remaining hours from ``event_counts``.
    """
    first, end = split.first_hour, split.end_hour
    dims = _dimension_filters(query)
    if first is None and end is None and field != "hour":
        return [("event_totals", *_where(dims))]
    if not dims[0] and field in (None, "hour"):
        return [("hour_totals", *_where(_time_range("c.hour", first, end)))]
    if field == "hour":
        return [("event_counts", *_where(dims, _time_range("c.hour", first, end)))]
    first_day = None if first is None else _first_whole_day(first)
    end_day = None if end is None else end[:10]
    if first_day is not None and end_day is not None and first_day >= end_day:
        return [("event_counts", *_where(dims, _time_range("c.hour", first, end)))]
    parts = [("day_counts", *_where(dims, _time_range("c.day", first_day, end_day)))]
    if first is not None and first_day is not None and first < f"{first_day}T00":
        hours = _time_range("c.hour", first, f"{first_day}T00")
        parts.append(("event_counts", *_where(dims, hours)))
    if end is not None and end_day is not None and f"{end_day}T00" < end:
        parts.append(("event_counts", *_where(dims, _time_range("c.hour", f"{end_day}T00", end))))
    return parts


_Clauses = tuple[list[str], list[Any]]


def _dimension_filters(query: Query) -> _Clauses:
    clauses: list[str] = []
    params: list[Any] = []
    for column, name in _DIMENSIONS:
        values = getattr(query, name)
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    return clauses, params


def _time_range(column: str, first: str | None, end: str | None) -> _Clauses:
    clauses: list[str] = []
    params: list[Any] = []
    if first is not None:
        clauses.append(f"{column} >= ?")
        params.append(first)
    if end is not None:
        clauses.append(f"{column} < ?")
        params.append(end)
    return clauses, params


def _where(*parts: _Clauses) -> tuple[str, list[Any]]:
    clauses = [c for part in parts for c in part[0]]
    params = [p for part in parts for p in part[1]]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _first_whole_day(first_hour: str) -> str:
    """The first day starting at or after hour ``first_hour`` ("YYYY-MM-DDTHH")."""
    if first_hour.endswith("T00"):
        return first_hour[:10]
    return (date.fromisoformat(first_hour[:10]) + timedelta(days=1)).isoformat()
