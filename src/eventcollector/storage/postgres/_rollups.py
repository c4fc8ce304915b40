"""The PostgreSQL rollups: the data-modifying CTEs that keep them in step with
``events`` (ingest adds, retention subtracts, in the same transaction) and which
rollup answers which part of a read (``rollup_parts``, the same routing as SQLite's;
the split into whole hours and edges is ``_hour_split``'s).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from eventcollector.query import Query
from eventcollector.storage._hour_split import HourSplit
from eventcollector.storage.postgres._dialect import Params
from eventcollector.storage.postgres._schema import day_start
from eventcollector.storage.postgres._sql import in_clause

# Rollup table -> (key columns, key expressions over a source of hourly rows).
_ROLLUPS = {
    "event_counts": (
        ("hour", "system", "event_type", "severity"),
        "hour, system, event_type, severity",
    ),
    "day_counts": (
        ("day", "system", "event_type", "severity"),
        "(hour AT TIME ZONE 'UTC')::date, system, event_type, severity",
    ),
    "event_totals": (("system", "event_type", "severity"), "system, event_type, severity"),
    "hour_totals": (("hour",), "hour"),
}


def add_to_rollups(source: str) -> str:
    """Data-modifying CTEs (``r0`` .. ``r3``) adding the rows of CTE ``source`` to every rollup.

    ``source`` has columns (hour, system, event_type, severity, n, d_n, d_sum), text in
    ``COLLATE "C"``, one row per key; negative values remove events. Every writer (ingest
    and retention) takes the rollup rows in one order, so concurrent transactions cannot
    deadlock on them: table by table (each CTE first reads all of the previous one), keys
    sorted within a table.
    """
    ctes = []
    for i, (table, (keys, expressions)) in enumerate(_ROLLUPS.items()):
        positions = ", ".join(str(j + 1) for j in range(len(keys)))
        columns = ", ".join(keys)
        after = f" WHERE (SELECT count(*) FROM r{i - 1}) > 0" if i else ""
        ctes.append(
            f"r{i} AS (INSERT INTO {table} AS c ({columns}, n, d_n, d_sum)"
            f" SELECT {expressions}, sum(n), sum(d_n), sum(d_sum) FROM {source}{after}"
            f" GROUP BY {positions} ORDER BY {positions}"
            f" ON CONFLICT ({columns}) DO UPDATE SET n = c.n + excluded.n,"
            " d_n = c.d_n + excluded.d_n, d_sum = c.d_sum + excluded.d_sum RETURNING 1)"
        )
    return ", ".join(ctes)


async def drop_empty_rollups(conn: Any, day: date) -> None:
    """After removing events of ``day``: the rollup rows whose count reached zero (in the
    tables' order; those rows are already locked by the removal)."""
    lo = day_start(day)
    hi = lo + timedelta(days=1)
    await conn.execute("DELETE FROM event_counts WHERE n <= 0 AND hour >= $1 AND hour < $2", lo, hi)
    await conn.execute("DELETE FROM day_counts WHERE n <= 0 AND day = $1", day)
    await conn.execute("DELETE FROM event_totals WHERE n <= 0")
    await conn.execute("DELETE FROM hour_totals WHERE n <= 0 AND hour >= $1 AND hour < $2", lo, hi)


def rollup_parts(
    query: Query, split: HourSplit, field: str | None, p: Params
) -> list[tuple[str, str]]:
    """(table, WHERE over ``c``) for each rollup part covering the split's whole hours.

    The coarsest table with the needed columns serves each part, as in SQLite: all-time
    totals for an unbounded range, per-hour totals without dimension filters, and
    otherwise whole days from ``day_counts`` plus the remaining hours from ``event_counts``.
    """
    first = None if split.first_hour is None else _hour_start(split.first_hour)
    end = None if split.end_hour is None else _hour_start(split.end_hour)
    dims: list[str] = []
    for column, values in (
        ("c.system", query.systems),
        ("c.event_type", query.event_types),
        ("c.severity", query.severities),
    ):
        if values:
            in_clause(column, values, dims, p)
    if first is None and end is None and field != "hour":
        return [("event_totals", _where(dims))]
    if not dims and field in (None, "hour"):
        return [("hour_totals", _where(_range("c.hour", first, end, p)))]
    if field == "hour":
        return [("event_counts", _where(dims + _range("c.hour", first, end, p)))]
    first_day = None if first is None else _first_whole_day(first)
    end_day = None if end is None else end.date()
    if first_day is not None and end_day is not None and first_day >= end_day:
        return [("event_counts", _where(dims + _range("c.hour", first, end, p)))]
    parts = [("day_counts", _where(dims + _range("c.day", first_day, end_day, p)))]
    if first is not None and first_day is not None and first < day_start(first_day):
        hours = _range("c.hour", first, day_start(first_day), p)
        parts.append(("event_counts", _where(dims + hours)))
    if end is not None and end_day is not None and day_start(end_day) < end:
        hours = _range("c.hour", day_start(end_day), end, p)
        parts.append(("event_counts", _where(dims + hours)))
    return parts


def _range(column: str, first: Any, end: Any, p: Params) -> list[str]:
    clauses = []
    if first is not None:
        clauses.append(f"{column} >= {p.add(first)}")
    if end is not None:
        clauses.append(f"{column} < {p.add(end)}")
    return clauses


def _where(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def _first_whole_day(first: datetime) -> date:
    """The first day starting at or after the hour ``first``."""
    return first.date() if first.hour == 0 else first.date() + timedelta(days=1)


def _hour_start(prefix: str) -> datetime:
    """A rollup hour from ``_hour_split``'s "YYYY-MM-DDTHH" text."""
    return datetime.strptime(prefix, "%Y-%m-%dT%H").replace(tzinfo=UTC)
