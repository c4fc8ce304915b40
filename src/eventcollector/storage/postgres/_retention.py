"""Retention for PostgreSQL: drop the partitions of whole days past the cutoff, delete
the rest of the day the cutoff falls in by chunks; the ids and rollups with them, in the
same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from eventcollector.query import Query
from eventcollector.storage.postgres._dialect import Params
from eventcollector.storage.postgres._rollups import add_to_rollups, drop_empty_rollups
from eventcollector.storage.postgres._schema import day_start, list_partitions, partition_name
from eventcollector.storage.postgres._sql import where

CLEANUP_CHUNK = 10_000

Run = Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]


async def cleanup(run: Run, days: set[date], victims: Query, cutoff: datetime, whole: bool) -> int:
    """Delete ``victims`` (the events before ``cutoff``, and matching a filter unless
    ``whole``); the number deleted. ``run`` runs a step on a pooled connection; ``days``
    are the partitions the writer knows of, kept in step.

    Whole days past the cutoff are dropped as partitions; the rest is deleted in chunks,
    day by day (a filtered cleanup also in whole days, from the filter's own lower time
    bound), and a whole day that this left empty is then dropped."""
    deleted = 0
    for day in sorted(await run(list_partitions)):
        day_end = day_start(day) + timedelta(days=1)
        if victims.since is not None and day_end <= victims.since:
            continue  # the filter selects nothing this old
        whole_day = day_end <= cutoff
        if whole and whole_day:
            deleted += await run(functools.partial(drop_partition, day=day))
            days.discard(day)
        elif day_start(day) < cutoff:  # also each day, for a filtered cleanup
            from_day = 0
            while True:
                n = await run(functools.partial(delete_chunk, day=day, query=victims))
                from_day += n
                if n < CLEANUP_CHUNK:
                    break
            deleted += from_day
            # A filtered cleanup (retention archiving deletes by id) may empty a day.
            emptied = whole_day and from_day
            if emptied and await run(functools.partial(drop_if_empty, day=day)):
                days.discard(day)
    return deleted


async def drop_partition(conn: Any, day: date) -> int:
    """Drop one whole day: its partition, its ids, and its counts from every rollup;
    rows dropped."""
    name = partition_name(day)
    lo, hi = day_start(day), day_start(day) + timedelta(days=1)
    async with conn.transaction():
        # Parent first, then the partition: the order inserts take their locks in.
        await conn.execute("LOCK TABLE ONLY events IN ACCESS EXCLUSIVE MODE")
        if await conn.fetchval("SELECT to_regclass($1)", name) is None:
            return 0
        n = int(await conn.fetchval(f'SELECT count(*) FROM "{name}"'))
        await conn.execute("DELETE FROM event_ids WHERE timestamp >= $1 AND timestamp < $2", lo, hi)
        await conn.execute(
            "DELETE FROM event_issues WHERE timestamp >= $1 AND timestamp < $2", lo, hi
        )
        # The day's hourly rollup rows, subtracted from every rollup (themselves included).
        await conn.execute(
            "WITH gone AS (SELECT hour, system, event_type, severity, -n AS n, -d_n AS d_n,"
            " -d_sum AS d_sum FROM event_counts WHERE hour >= $1 AND hour < $2),"
            f" {add_to_rollups('gone')} SELECT 1",
            lo,
            hi,
        )
        await drop_empty_rollups(conn, day)
        await conn.execute(f'DROP TABLE "{name}"')
        return n


async def drop_if_empty(conn: Any, day: date) -> bool:
    """Drop one day's partition if a filtered cleanup left it empty; whether it did.

    Looked at first without a lock, so a day that still holds events costs no
    exclusive lock on ``events``; then again under the lock, before the drop.
    """
    name = partition_name(day)
    empty = f'SELECT NOT EXISTS (SELECT 1 FROM "{name}")'
    if await conn.fetchval("SELECT to_regclass($1)", name) is None or not await conn.fetchval(
        empty
    ):
        return False
    async with conn.transaction():
        await conn.execute("LOCK TABLE ONLY events IN ACCESS EXCLUSIVE MODE")
        if await conn.fetchval("SELECT to_regclass($1)", name) is None:
            return False
        if not await conn.fetchval(empty):
            return False
        await conn.execute(f'DROP TABLE "{name}"')
        return True


async def delete_chunk(conn: Any, day: date, query: Query) -> int:
    """Delete up to CLEANUP_CHUNK rows ``query`` matches (its ``until`` is the cutoff,
    its ``where`` an optional filter) from one partition."""
    name = partition_name(day)
    p = Params()
    where_sql = where(query, p)
    limit = p.add(CLEANUP_CHUNK)
    async with conn.transaction():
        if await conn.fetchval("SELECT to_regclass($1)", name) is None:
            return 0
        n = await conn.fetchval(
            f"""WITH gone_rows AS (
                DELETE FROM "{name}" WHERE ctid = ANY(ARRAY(
                    SELECT e.ctid FROM "{name}" e{where_sql} LIMIT {limit}))
                RETURNING id, timestamp, system, event_type, severity, duration_ms
            ), ids AS (
                DELETE FROM event_ids i WHERE i.id IN (SELECT id FROM gone_rows)
            ), links AS (
                DELETE FROM event_issues l WHERE l.event_id IN (SELECT id FROM gone_rows)
            ), gone AS (
                SELECT date_trunc('hour', timestamp, 'UTC') AS hour, system, event_type,
                severity, -count(*) AS n, -count(duration_ms) AS d_n,
                -coalesce(sum(duration_ms), 0) AS d_sum
                FROM gone_rows GROUP BY 1, 2, 3, 4
            ), {add_to_rollups("gone")}
            SELECT count(*) FROM gone_rows""",
            *p.values,
        )
        await drop_empty_rollups(conn, day)
        return int(n)
