"""The SQLite rollups: the upserts that keep them in step with ``events`` (ingest adds,
retention subtracts, in the same transaction) and which rollup answers which part of a
read (``rollup_parts``; the split into whole hours and edges is ``_hour_split``'s).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from eventcollector.query import Query
from eventcollector.storage._hour_split import HourSplit

_KEYS = ("system", "event_type", "severity")
#: Each rollup table: its key columns, as the delta names them (``day`` is cut from ``hour``).
_ROLLUPS = {
    "event_counts": ("hour", *_KEYS),
    "day_counts": ("day", *_KEYS),
    "event_totals": _KEYS,
    "hour_totals": ("hour",),
}
_ROLLUP_TABLES = tuple(_ROLLUPS)
_FROM_DELTA = {"hour": "hour", "day": "substr(hour, 1, 10)", **{k: k for k in _KEYS}}
# The rows are grouped once, by the finest rollup's keys, into this table; each rollup is
# then an upsert of those few groups. Four GROUP BYs over every row cost ~5 us a row.
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


def rollup_update(rows: str, sign: str = "") -> str:
    """The statement grouping the ``rows`` of ``events e`` (``rows``: a constant WHERE
    clause, its values bound) to be added (sign "") or subtracted (sign "-") from every
    rollup by ``update_rollups``."""
    values = f"{sign}count(*), {sign}count(e.duration_ms), {sign}coalesce(sum(e.duration_ms), 0)"
    return (
        "INSERT INTO temp.rollup_delta"
        f" SELECT substr(e.timestamp, 1, 13), e.system, e.event_type, e.severity, {values}"
        f" FROM events e {rows} GROUP BY 1, 2, 3, 4"
    )


def update_rollups(conn: sqlite3.Connection, group: str, params: Sequence[Any]) -> None:
    """Group the rows that ``params`` select with ``group`` (a ``rollup_update``), then
    apply the groups to every rollup."""
    conn.execute(_DELTA_TABLE)
    conn.execute(group, params)
    for statement in _APPLY_DELTA:
        conn.execute(statement)


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
