"""PostgreSQL reads beyond selecting events (one statement from ``_sql.select``):
counts, groupings and duration sums answered from the rollups whenever the filters
allow it (whole hours from the rollups, the partial hours at the edges from
``events``), duration statistics, and ``read_after`` for followers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

from eventcollector.model import Event
from eventcollector.query import GROUP_FIELDS, DurationStats, GroupField, Query
from eventcollector.storage._hour_split import hour_key, hour_text, split_by_hours
from eventcollector.storage.postgres._dialect import Params
from eventcollector.storage.postgres._rollups import rollup_parts
from eventcollector.storage.postgres._sql import (
    COLUMNS,
    GROUP_EXPRESSIONS,
    from_row,
    where,
)

T = TypeVar("T")

#: read_after waits this long at most for running writers.
_SETTLE_SECONDS = 5.0


async def snapshot(conn: Any, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run several reads in one consistent snapshot (the read's own when one is open:
    ``_connection.ReadBudget``)."""
    if conn.is_in_transaction():
        return await fn(conn, *args)
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


def counted_from_rollups(query: Query, field: str) -> bool:
    """Whether ``group_count`` answers ``field`` from the hourly counts (else a scan)."""
    return _in_rollups(field) and split_by_hours(query) is not None


def _in_rollups(field: str) -> bool:
    return field in GROUP_FIELDS and field != "source_component"


async def group_count(conn: Any, query: Query, field: GroupField) -> Counter[str]:
    split = split_by_hours(query)
    result: Counter[str] = Counter()
    p = Params()
    expr = GROUP_EXPRESSIONS[field]
    if split is None or not _in_rollups(field):
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
            key = hour_key(hour_text(key.astimezone(UTC)))
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


async def duration_stats(conn: Any, query: Query, percentiles: bool) -> DurationStats:
    """min/max/avg and p50/p95/p99 (linear interpolation) of duration_ms; without
    ``percentiles`` only count and average, from the rollups when the filters allow it."""
    if not percentiles:
        summed = await snapshot(conn, duration_sum, query)
        if summed is not None:
            n, total = summed
            return DurationStats(n, None, None, total / n if n else None, None, None, None)
    p = Params()
    where_sql = where(query, p)
    where_sql += (" AND" if where_sql else " WHERE") + " e.duration_ms IS NOT NULL"
    pct = (
        "percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY e.duration_ms)"
        if percentiles
        else "NULL::float8[]"
    )
    statement = (
        "SELECT count(*), min(e.duration_ms), max(e.duration_ms), avg(e.duration_ms)::float8,"
        f" {pct} FROM events e{where_sql}"
    )
    n, lo, hi, avg, values = await conn.fetchrow(statement, *p.values)
    if not n:
        return DurationStats(0, None, None, None, None, None, None)
    if values is None:
        return DurationStats(n, lo, hi, avg, None, None, None)
    return DurationStats(n, lo, hi, avg, values[0], values[1], values[2])


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


async def read_after(conn: Any, position: int, query: Query, limit: int) -> tuple[list[Event], int]:
    """Events after seq ``position`` matching ``query``, and the next position (see
    ``PostgresStorage.read_after`` for why the end waits for running writers)."""
    end = int(await conn.fetchval(LAST_SEQ))  # first: see the docstring
    writers = await conn.fetchval(WRITERS)
    deadline = asyncio.get_running_loop().time() + _SETTLE_SECONDS
    while writers:
        if asyncio.get_running_loop().time() > deadline:
            return [], max(position, -1)
        await asyncio.sleep(0.002)
        writers = await conn.fetchval(STILL_RUNNING, writers)
    if position < 0 or position >= end:
        return [], end
    statement, params = select_after(query, position, end, limit)
    rows = await conn.fetch(statement, *params)
    if len(rows) == limit:
        end = int(rows[-1][0])
    return [from_row(r) for r in rows], end
