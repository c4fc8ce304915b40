"""Compile a ``Query`` to PostgreSQL: identifiers from allow-lists, every value bound."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import orjson

from eventcollector.model import Event
from eventcollector.query import GroupField, Query, search_terms
from eventcollector.storage._rollup import HourSplit, hour_key, split_by_hours
from eventcollector.storage._sql_common import (
    NULLABLE,
    ORDER_COLUMNS,
    group_expressions,
    stored_event,
)

T = TypeVar("T")

COLUMNS = (
    "e.seq, e.id, e.timestamp, e.system, e.event_type, e.severity, e.title, e.description,"
    " e.data::text, e.tags, e.correlation_id, e.source_component, e.duration_ms, e.metadata::text"
)


# Sessions run with TimeZone = UTC, so date_trunc gives UTC hours.
GROUP_EXPRESSIONS = group_expressions("date_trunc('hour', e.timestamp)")
# Columns of ``events`` that COPY fills, in ``to_record`` order (``search`` is generated).
EVENT_COLUMNS = (
    "seq",
    "id",
    "timestamp",
    "system",
    "event_type",
    "severity",
    "title",
    "description",
    "data",
    "tags",
    "correlation_id",
    "source_component",
    "duration_ms",
    "metadata",
)
# Claim ids (in id order: one lock order for every writer, so no deadlocks) and take one
# insertion position (seq) per claimed id. The claim's insert gives the transaction its
# xid before any seq is taken (``read_after`` relies on it).
CLAIM_IDS = (
    "WITH claimed AS ("
    " INSERT INTO event_ids(id, timestamp)"
    " SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS new(id, timestamp) ORDER BY 1"
    " ON CONFLICT DO NOTHING RETURNING id"
    ") SELECT id, nextval('events_seq') FROM claimed"
)
# Rollup table -> (key columns, key expressions over a source of hourly rows).
ROLLUPS = {
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
    for i, (table, (keys, expressions)) in enumerate(ROLLUPS.items()):
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
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    hi = lo + timedelta(days=1)
    await conn.execute("DELETE FROM event_counts WHERE n <= 0 AND hour >= $1 AND hour < $2", lo, hi)
    await conn.execute("DELETE FROM day_counts WHERE n <= 0 AND day = $1", day)
    await conn.execute("DELETE FROM event_totals WHERE n <= 0")
    await conn.execute("DELETE FROM hour_totals WHERE n <= 0 AND hour >= $1 AND hour < $2", lo, hi)


# The rollups of the stored events and the notifications for the other instances
# ($6: none when empty).
ADD_COUNTS = (
    "WITH counted AS ("
    " SELECT date_trunc('hour', t, 'UTC') AS hour, s COLLATE \"C\" AS system,"
    ' y COLLATE "C" AS event_type, v COLLATE "C" AS severity, count(*) AS n,'
    " count(d) AS d_n, coalesce(sum(d), 0) AS d_sum"
    " FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
    " AS new(t, s, y, v, d) GROUP BY 1, 2, 3, 4"
    f"), {add_to_rollups('counted')}"
    " SELECT pg_notify($7, payload) FROM unnest($6::text[]) AS payload"
)


# -- followers --------------------------------------------------------------------

LAST_SEQ = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq"
# Transactions (other than ours) that write event_ids: ingest holds this lock from its
# claim, before it takes any seq, until it commits.
WRITERS = (
    "SELECT array_agg(DISTINCT virtualtransaction) FROM pg_locks"
    " WHERE locktype = 'relation' AND relation = 'event_ids'::regclass"
    " AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()"
)
STILL_RUNNING = (
    "SELECT array_agg(virtualxid) FROM pg_locks"
    " WHERE locktype = 'virtualxid' AND virtualxid = ANY($1::text[])"
)


def select_after(query: Query, position: int, end: int, limit: int) -> tuple[str, list[Any]]:
    """Matching events with ``position < seq <= end`` in seq order, at most ``limit``.

    The seq range is read first (``events_seq_idx``: only the new rows of each
    partition); the subquery's OFFSET 0 keeps the planner from preferring a filter's
    own index, which could walk every matching event ever stored.
    """
    p = Params()
    lo, hi = p.add(position), p.add(end)
    where_sql = where(query, p)
    statement = (
        f"SELECT {COLUMNS} FROM (SELECT * FROM events WHERE seq > {lo} AND seq <= {hi}"
        f" OFFSET 0) e{where_sql} ORDER BY e.seq LIMIT {p.add(limit)}"
    )
    return statement, p.values


class Params:
    """Numbered placeholders ($1, $2, ...) for bound values."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def tsquery_text(text: str) -> str:
    """``to_tsquery`` input: every word a prefix; words are letters and digits only."""
    terms = search_terms(text)
    if not terms:
        raise ValueError("search: no words to search for")
    return " & ".join(f"{t}:*" for t in terms)


def _in(column: str, values: tuple[str, ...], clauses: list[str], p: Params) -> None:
    if len(values) == 1:
        clauses.append(f"{column} = {p.add(values[0])}")
    else:
        clauses.append(f"{column} = ANY({p.add(list(values))}::text[])")


def where(query: Query, p: Params) -> str:
    """The WHERE clause (with leading keyword, or empty); values go to ``p``."""
    clauses: list[str] = []
    if query.systems:
        _in("e.system", query.systems, clauses, p)
    if query.severities:
        _in("e.severity", query.severities, clauses, p)
    if query.event_types:
        _in("e.event_type", query.event_types, clauses, p)
    if query.since is not None:
        clauses.append(f"e.timestamp >= {p.add(query.since)}")
    if query.until is not None:
        clauses.append(f"e.timestamp < {p.add(query.until)}")
    if query.correlation_id is not None:
        clauses.append(f"e.correlation_id = {p.add(query.correlation_id)}")
    if query.source_components:
        _in("e.source_component", query.source_components, clauses, p)
    if query.min_duration_ms is not None:
        clauses.append(f"e.duration_ms >= {p.add(query.min_duration_ms)}")
    if query.ids:
        _in("e.id", query.ids, clauses, p)
    if query.tags_all:
        clauses.append(f"e.tags @> {p.add(list(query.tags_all))}::text[]")
    if query.tags_any:
        clauses.append(f"e.tags && {p.add(list(query.tags_any))}::text[]")
    if query.search is not None:
        clauses.append(
            f"e.search @@ to_tsquery('simple'::regconfig, {p.add(tsquery_text(query.search))})"
        )
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def select(query: Query) -> tuple[str, list[Any]]:
    """The full SELECT for ``query``: ordered (ties by insertion order, NULLs last), paged."""
    p = Params()
    where_sql = where(query, p)
    direction = "ASC" if query.ascending else "DESC"
    column = ORDER_COLUMNS[query.order_by]
    # NULLS LAST only where NULLs can be: on a NOT NULL column it would not match a
    # backward index scan (NULLS FIRST), and "newest first, limit N" would sort everything.
    nulls = " NULLS LAST" if query.order_by in NULLABLE else ""
    sql = (
        f"SELECT {COLUMNS} FROM events e{where_sql}"
        f" ORDER BY {column} {direction}{nulls}, e.seq {direction}"
    )
    if query.limit is not None:
        sql += f" LIMIT {p.add(query.limit)}"
    if query.offset:
        sql += f" OFFSET {p.add(query.offset)}"
    return sql, p.values


def rollup_parts(
    query: Query, split: HourSplit, field: str | None, p: Params
) -> list[tuple[str, str]]:
    """(table, WHERE over ``c``) for each rollup part covering the split's whole hours.

    The coarsest table with the needed columns serves each part, as in SQLite: all-time
    totals for an unbounded range, per-hour totals without dimension filters, and
    otherwise whole days from ``day_counts`` plus the remaining hours from ``event_counts``.
    """
    first = None if split.first_hour is None else hour_start(split.first_hour)
    end = None if split.end_hour is None else hour_start(split.end_hour)
    dims: list[str] = []
    for column, values in (
        ("c.system", query.systems),
        ("c.event_type", query.event_types),
        ("c.severity", query.severities),
    ):
        if values:
            _in(column, values, dims, p)
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
    if first is not None and first_day is not None and first < _day_start(first_day):
        hours = _range("c.hour", first, _day_start(first_day), p)
        parts.append(("event_counts", _where(dims + hours)))
    if end is not None and end_day is not None and _day_start(end_day) < end:
        hours = _range("c.hour", _day_start(end_day), end, p)
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


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def hour_start(prefix: str) -> datetime:
    """A rollup hour from ``_rollup``'s "YYYY-MM-DDTHH" text."""
    return datetime.strptime(prefix, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def to_record(seq: int, event: Event) -> list[Any]:
    """A row of ``events`` (``EVENT_COLUMNS``) for COPY (a list: ingest builds the rows
    before it has claimed the seqs, then sets them)."""
    return [
        seq,
        event.id,
        event.timestamp,
        event.system.value,
        event.event_type.value,
        event.severity.value,
        event.title,
        event.description,
        orjson.dumps(event.data).decode(),
        event.tags,
        event.correlation_id,
        event.source_component,
        event.duration_ms,
        orjson.dumps(event.metadata).decode(),
    ]


def from_row(row: Any) -> Event:
    """An ``Event`` from a row selected with ``COLUMNS`` (trusted: no validation)."""
    return stored_event(row, row[2], list(row[9]))


# -- reads that take several statements ------------------------------------------


async def snapshot(conn: Any, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run several reads in one consistent snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await fn(conn, *args)


async def count(conn: Any, query: Query) -> int:
    """Whole hours from the rollups, the partial hours at the edges from ``events``."""
    split = split_by_hours(query)
    p = Params()
    if split is None:
        where_sql = where(query, p)
        return int(await conn.fetchval(f"SELECT count(*) FROM events e{where_sql}", *p.values))
    parts = [f"SELECT sum(c.n) FROM {t} c{w}" for t, w in rollup_parts(query, split, None, p)]
    parts += [f"SELECT count(*) FROM events e{where(edge, p)}" for edge in split.edges]
    statement = f"SELECT coalesce(sum(n), 0) FROM ({' UNION ALL '.join(parts)}) AS t(n)"
    return int(await conn.fetchval(statement, *p.values))


async def group_count(conn: Any, query: Query, field: GroupField) -> Counter[str]:
    split = split_by_hours(query)
    result: Counter[str] = Counter()
    p = Params()
    expr = GROUP_EXPRESSIONS[field]
    if split is None or field == "source_component":
        where_sql = where(query, p)
        statement = f"SELECT {expr}, count(*) FROM events e{where_sql} GROUP BY 1"
    else:
        parts = [
            f"SELECT c.{field}, sum(c.n) FROM {table} c{where_sql} GROUP BY 1"
            for table, where_sql in rollup_parts(query, split, field, p)
        ]
        parts += [
            f"SELECT {expr}, count(*) FROM events e{where(edge, p)} GROUP BY 1"
            for edge in split.edges
        ]
        statement = " UNION ALL ".join(parts)
    for key, n in await conn.fetch(statement, *p.values):
        if field == "hour":
            key = hour_key(key.astimezone(UTC).strftime("%Y-%m-%dT%H"))
        result[key] += int(n)
    return result


async def duration_sum(conn: Any, query: Query) -> tuple[int, int] | None:
    """(events with a duration, their durations' sum) from the rollups and the edges,
    or None when the filters need the events."""
    split = split_by_hours(query)
    if split is None:
        return None
    p = Params()
    parts = [
        f"SELECT sum(c.d_n), sum(c.d_sum) FROM {t} c{w}"
        for t, w in rollup_parts(query, split, None, p)
    ]
    parts += [
        f"SELECT count(e.duration_ms), sum(e.duration_ms) FROM events e{where(edge, p)}"
        for edge in split.edges
    ]
    statement = (
        "SELECT coalesce(sum(d_n), 0), coalesce(sum(d_sum), 0)"
        f" FROM ({' UNION ALL '.join(parts)}) AS t(d_n, d_sum)"
    )
    n, total = await conn.fetchrow(statement, *p.values)
    return int(n), int(total)
