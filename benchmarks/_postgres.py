"""PostgreSQL backend figures: ingest against a raw COPY into the same schema, query latencies.

``run_postgres(url, events)`` works in fresh schemas of the database at ``url`` (one
per measurement, so each starts empty with the same partitions and indexes) and drops
them at the end:

- ``raw_copy``: pre-built rows ``copy_records_to_table``d straight into ``events``
  (every index in place), ``RAW_TRANSACTION_ROWS`` per transaction: the engine's
  rate for this schema, with none of the backend's work (no id claim, no staging, no
  rollups, no notifications);
- ``raw_copy_all_tables``: the same plus the ``event_ids`` rows and the hourly
  ``event_counts`` upsert the schema needs: what a hand-written loader of this
  schema would do;
- ``concurrent_collect``: ``EventCollector.collect()`` from ``CONCURRENCY`` tasks,
  each call returning once committed (group commit in ``PostgresStorage.append``);
- ``batch_ingest``: ``EventCollector.ingest()`` of ``BATCH`` events from
  ``BATCH_CALLERS`` concurrent callers;
- ratios of both to ``raw_copy`` (the issue's figure: >= 0.6);
- ``queries``: ``benchmarks._queries.query_latencies`` over the collect schema.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from benchmarks._data import generate
from benchmarks._queries import query_latencies
from eventcollector import Event, EventCollector
from eventcollector.storage import _postgres_sql as sql
from eventcollector.storage._postgres_schema import create_partitions
from eventcollector.storage.postgres import PostgresStorage

CONCURRENCY = 1_000
BATCH = 1_000
BATCH_CALLERS = 4
RAW_TRANSACTION_ROWS = BATCH  # the transaction size of a batch append
QUERY_REPEAT = 20
_EVENT_COLUMNS = ("seq", *sql.STAGING_COLUMNS[1:])


class _Clock:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def report(self, n: int) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return {
            "events": n,
            "seconds": round(wall, 3),
            "events_per_s": round(n / wall),
            "client_cpu_us_per_event": round(cpu / n * 1e6, 1),
        }


def _schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


async def _prepare(url: str, schema: str, stamps: list[datetime]) -> None:
    """Create the schema (migrations) and the partitions the timestamps fall into."""
    store = PostgresStorage(url, schema=schema, notify=False)
    await store.open()
    try:
        days = {t.astimezone(UTC).date() for t in stamps}
        await store._run(lambda conn: create_partitions(conn, schema, days))
    finally:
        await store.close()


async def _connect(url: str, schema: str) -> Any:
    return await asyncpg.connect(
        url, server_settings={"search_path": f'"{schema}"', "timezone": "UTC"}
    )


async def raw_copy(url: str, schema: str, events: list[Event], all_tables: bool) -> dict[str, Any]:
    await _prepare(url, schema, [e.timestamp for e in events])
    rows = [(i + 1, *sql.to_record(i, e)[1:]) for i, e in enumerate(events)]
    conn = await _connect(url, schema)
    try:
        clock = _Clock()
        for lo in range(0, len(rows), RAW_TRANSACTION_ROWS):
            chunk = rows[lo : lo + RAW_TRANSACTION_ROWS]
            async with conn.transaction():
                if all_tables:
                    await conn.copy_records_to_table(
                        "event_ids",
                        records=[(r[1], r[2]) for r in chunk],
                        columns=("id", "timestamp"),
                    )
                await conn.copy_records_to_table("events", records=chunk, columns=_EVENT_COLUMNS)
                if all_tables:
                    counts = Counter(
                        (r[2].replace(minute=0, second=0, microsecond=0), r[3], r[4], r[5])
                        for r in chunk
                    )
                    keys = sorted(counts)
                    await conn.execute(
                        sql.ADD_COUNTS,
                        *([k[j] for k in keys] for j in range(4)),
                        [counts[k] for k in keys],
                    )
        return clock.report(len(rows))
    finally:
        await conn.close()


async def concurrent_collect(url: str, schema: str, n: int) -> dict[str, Any]:
    fields = list(generate(n, seed=17))
    await _prepare(url, schema, [f["timestamp"] for f in fields])
    source = iter(fields)
    async with EventCollector(storage=PostgresStorage(url, schema=schema)) as collector:

        async def caller() -> None:
            for fields in source:  # shared generator: callers take turns
                await collector.collect(**fields)

        clock = _Clock()
        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
        return clock.report(n)


async def batch_ingest(url: str, schema: str, events: list[Event]) -> dict[str, Any]:
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    async with EventCollector(storage=PostgresStorage(url, schema=schema)) as collector:

        async def caller() -> None:
            while batches:
                await collector.ingest(batches.pop(0))

        clock = _Clock()
        await asyncio.gather(*(caller() for _ in range(BATCH_CALLERS)))
        return clock.report(len(events))


async def _analyze(url: str, schema: str) -> None:
    conn = await _connect(url, schema)
    try:
        await conn.execute("ANALYZE events")
        await conn.execute("ANALYZE event_ids")
        await conn.execute("ANALYZE event_counts")
    finally:
        await conn.close()


async def _drop(url: str, schemas: list[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _run(url: str, n: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    schemas = {p: f"bench_{p}_{tag}" for p in ("raw", "raw_all", "collect", "batch")}
    report: dict[str, Any] = {"events": n}
    try:
        events = [Event.create(**f) for f in generate(n, seed=13)]
        report["raw_copy"] = await raw_copy(url, schemas["raw"], events, all_tables=False)
        report["raw_copy_all_tables"] = await raw_copy(
            url, schemas["raw_all"], events, all_tables=True
        )
        await _drop(url, [schemas["raw"], schemas["raw_all"]])
        report["concurrent_collect"] = await concurrent_collect(url, schemas["collect"], n)
        batch = [Event.create(**f) for f in generate(n, seed=19)]
        await _prepare(url, schemas["batch"], [e.timestamp for e in batch])
        report["batch_ingest"] = await batch_ingest(url, schemas["batch"], batch)
        await _drop(url, [schemas["batch"]])
        raw = report["raw_copy"]["events_per_s"]
        report["collect_to_raw_copy_ratio"] = round(
            report["concurrent_collect"]["events_per_s"] / raw, 3
        )
        report["batch_to_raw_copy_ratio"] = round(report["batch_ingest"]["events_per_s"] / raw, 3)
        await _analyze(url, schemas["collect"])
        report["queries"] = await query_latencies(
            PostgresStorage(url, schema=schemas["collect"]), QUERY_REPEAT
        )
    finally:
        await _drop(url, list(schemas.values()))
    return report


def run_postgres(url: str, events: int) -> dict[str, Any]:
    """Every PostgreSQL figure for ``events`` events; the schemas are dropped afterwards."""
    return asyncio.run(_run(url, events))
