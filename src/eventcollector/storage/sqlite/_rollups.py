"""The SQLite rollups: the upserts that keep them in step with ``events`` (ingest adds,
retention subtracts, in the same transaction) and which rollup answers which part of a
read (``rollup_parts``; the split into whole hours and edges is ``_hour_split``'s).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from typing import Any

from eventcollector.query import Query
from eventcollector.storage._hour_split import HourSplit

_HOUR = "substr(e.timestamp, 1, 13)"
_DAY = "substr(e.timestamp, 1, 10)"
_KEYS = {"system": "e.system", "event_type": "e.event_type", "severity": "e.severity"}
#: Each rollup table: key column -> the expression computing it from an ``events e`` row.
_ROLLUPS = {
    "event_counts": {"hour": _HOUR, **_KEYS},
    "day_counts": {"day": _DAY, **_KEYS},
    "event_totals": _KEYS,
    "hour_totals": {"hour": _HOUR},
}
_ROLLUP_TABLES = tuple(_ROLLUPS)


def add_to_rollups(rows: str, sign: str = "") -> tuple[str, ...]:
    """Upserts adding (sign "") or subtracting (sign "-") the ``rows`` of ``events e``
    (``rows``: a constant WHERE clause, its values bound) to every rollup."""
    values = f"{sign}count(*), {sign}count(e.duration_ms), {sign}coalesce(sum(e.duration_ms), 0)"
    return tuple(
        f"INSERT INTO {table}({', '.join(keys)}, n, d_n, d_sum)"
        f" SELECT {', '.join(keys.values())}, {values} FROM events e {rows}"
        f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}"
        " ON CONFLICT DO UPDATE SET n = n + excluded.n, d_n = d_n + excluded.d_n,"
        " d_sum = d_sum + excluded.d_sum"
        for table, keys in _ROLLUPS.items()
    )


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
