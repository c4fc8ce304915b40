"""PostgreSQL backend figures: ingest against a raw COPY into the same schema, query latencies.

``run_postgres(url, events)`` works in fresh schemas of the database at ``url`` (one
per measurement, so each starts empty with the same partitions and indexes) and drops
them at the end:

- ``raw_copy``: pre-built rows ``copy_records_to_table``d straight into ``events``
  (every index in place) from one connection, ``RAW_TRANSACTION_ROWS`` (1,000, the
  size of a batch append) per transaction: the engine's rate for this schema, with
  none of the backend's work (no id claim, no rollups, no notifications). Measured
  before and after the backend (``raw_copy_again``); the ratios use the mean, since
  other load on a shared machine drifts;
- ``raw_copy_all_tables``: the same plus the ``event_ids`` rows and the hourly
  ``event_counts`` upsert the schema keeps: what a hand-written loader would do;
- ``concurrent_collect``: ``EventCollector.collect()`` from ``CONCURRENCY`` tasks,
  each call returning once committed (group commit in ``PostgresStorage.append``);
- ``batch_ingest``: ``EventCollector.ingest()`` of ``BATCH`` events from
  ``BATCH_CALLERS`` concurrent callers;
- ``ratio_to_raw_copy`` (the issue's figure, target >= 0.6) by rate and by CPU
  (client + server CPU per event of the raw COPY over ours; the server's is read
  from /proc for the backends with this run's application_name, so only when the
  server runs on this host);
- ``queries``: ``benchmarks._queries.query_latencies`` over the collect schema.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from benchmarks._data import generate
from benchmarks._queries import query_latencies
from eventcollector import Event, EventCollector
from eventcollector.storage.postgres import PostgresStorage
from eventcollector.storage.postgres import _sql as sql
from eventcollector.storage.postgres._schema import create_partitions

CONCURRENCY = 1_000
BATCH = 1_000
BATCH_CALLERS = 4
RAW_TRANSACTION_ROWS = BATCH  # the transaction size of a batch append
QUERY_REPEAT = 20


class _Clock:
    """Wall time, this process's CPU time and the CPU time of the database backends
    serving ``application_name`` (read from /proc: only when the server runs on this
    host, else ``server_cpu_us_per_event`` is None).

    CPU per event is the steadier figure when other work shares the machine.
    """

    def __init__(self, admin: Any, application_name: str) -> None:
        self.admin = admin
        self.application_name = application_name
        self.server: dict[int, float] = {}
        self.wall = self.cpu = 0.0

    async def start(self) -> _Clock:
        self.server = await self._server_cpu()
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        return self

    async def _server_cpu(self) -> dict[int, float]:
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", self.application_name
        )
        cpu = {}
        for (pid,) in rows:
            seconds = _process_cpu(pid)
            if seconds is not None:
                cpu[pid] = seconds
        return cpu

    async def report(self, n: int) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        after = await self._server_cpu()
        server = sum(v - self.server.get(pid, 0.0) for pid, v in after.items()) if after else None
        return {
            "events": n,
            "seconds": round(wall, 3),
            "events_per_s": round(n / wall),
            "client_cpu_us_per_event": round(cpu / n * 1e6, 1),
            "server_cpu_us_per_event": None if server is None else round(server / n * 1e6, 1),
        }


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process on this host, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _prepare(url: str, schema: str, stamps: list[datetime]) -> None:
    """Create the schema (migrations) and the partitions the timestamps fall into."""
    store = PostgresStorage(url, schema=schema, notify=False)
    await store.open()
    try:
        days = {t.astimezone(UTC).date() for t in stamps}
        await store._run(lambda conn: create_partitions(conn, schema, days))
    finally:
        await store.close()


class _Bench:
    """The database, an admin connection and the application_name measured connections use."""

    def __init__(self, url: str, admin: Any) -> None:
        self.url = url
        self.admin = admin
        self.tag = uuid.uuid4().hex[:8]
        self.application_name = f"eventcollector_bench_{self.tag}"
        self.schemas: list[str] = []

    def schema(self, purpose: str) -> str:
        name = f"bench_{purpose}_{self.tag}"
        self.schemas.append(name)
        return name

    def clock(self) -> Awaitable[_Clock]:
        return _Clock(self.admin, self.application_name).start()

    def storage(self, schema: str) -> PostgresStorage:
        return PostgresStorage(self.url, schema=schema, application_name=self.application_name)

    async def connect(self, schema: str) -> Any:
        settings = {"search_path": f'"{schema}"', "timezone": "UTC"}
        settings["application_name"] = self.application_name
        return await asyncpg.connect(self.url, server_settings=settings)

    async def drop(self, *schemas: str) -> None:
        for schema in schemas:
            await self.admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


_UPSERT_COUNTS = (
    "INSERT INTO event_counts(hour, system, event_type, severity, n)"
    " SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
    " ON CONFLICT (hour, system, event_type, severity) DO UPDATE"
    " SET n = event_counts.n + excluded.n"
)


def _chunks(events: list[Event]) -> list[tuple[list[Any], list[Any], list[list[Any]]]]:
    """Per transaction: the ``events`` rows, the ``event_ids`` rows, the rollup arrays."""
    rows = [sql.to_record(i + 1, e) for i, e in enumerate(events)]
    chunks = []
    for lo in range(0, len(rows), RAW_TRANSACTION_ROWS):
        chunk = rows[lo : lo + RAW_TRANSACTION_ROWS]
        counts = Counter(
            (r[2].replace(minute=0, second=0, microsecond=0), r[3], r[4], r[5]) for r in chunk
        )
        keys = sorted(counts)
        rollup = [[k[j] for k in keys] for j in range(4)] + [[counts[k] for k in keys]]
        chunks.append((chunk, [(r[1], r[2]) for r in chunk], rollup))
    return chunks


async def raw_copy(bench: _Bench, events: list[Event], *, all_tables: bool) -> dict[str, Any]:
    """Pre-built rows COPYed into ``events`` (and, with ``all_tables``, ``event_ids`` and
    the rollup upsert), ``RAW_TRANSACTION_ROWS`` per transaction, one connection."""
    schema = bench.schema("raw")
    await _prepare(bench.url, schema, [e.timestamp for e in events])
    chunks = _chunks(events)
    conn = await bench.connect(schema)
    try:
        clock = await bench.clock()
        for rows, ids, rollup in chunks:
            async with conn.transaction():
                if all_tables:
                    await conn.copy_records_to_table(
                        "event_ids", records=ids, columns=("id", "timestamp")
                    )
                await conn.copy_records_to_table("events", records=rows, columns=sql.EVENT_COLUMNS)
                if all_tables:
                    await conn.execute(_UPSERT_COUNTS, *rollup)
        return await clock.report(len(events))
    finally:
        await conn.close()
        await bench.drop(schema)


async def concurrent_collect(bench: _Bench, schema: str, n: int) -> dict[str, Any]:
    fields = list(generate(n, seed=17))
    await _prepare(bench.url, schema, [f["timestamp"] for f in fields])
    source = iter(fields)
    async with EventCollector(storage=bench.storage(schema)) as collector:

        async def caller() -> None:
            for fields in source:  # shared iterator: callers take turns
                await collector.collect(**fields)

        clock = await bench.clock()
        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
        return await clock.report(n)


async def batch_ingest(bench: _Bench, events: list[Event]) -> dict[str, Any]:
    schema = bench.schema("batch")
    await _prepare(bench.url, schema, [e.timestamp for e in events])
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    try:
        async with EventCollector(storage=bench.storage(schema)) as collector:

            async def caller() -> None:
                while batches:
                    await collector.ingest(batches.pop(0))

            clock = await bench.clock()
            await asyncio.gather(*(caller() for _ in range(BATCH_CALLERS)))
            return await clock.report(len(events))
    finally:
        await bench.drop(schema)


def _ratios(figure: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    def cpu(f: dict[str, Any]) -> float | None:
        server = f["server_cpu_us_per_event"]
        return None if server is None else float(f["client_cpu_us_per_event"] + server)

    ours, theirs = cpu(figure), cpu(raw)
    return {
        "rate": round(figure["events_per_s"] / raw["events_per_s"], 3),
        "cpu": None if ours is None or theirs is None else round(theirs / ours, 3),
    }


def _mean(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (a + b) / 2


async def _run(url: str, n: int) -> dict[str, Any]:
    admin = await asyncpg.connect(url)
    bench = _Bench(url, admin)
    report: dict[str, Any] = {"events": n}
    try:
        events = [Event.create(**f) for f in generate(n, seed=13)]
        report["raw_copy"] = await raw_copy(bench, events, all_tables=False)
        report["raw_copy_all_tables"] = await raw_copy(bench, events, all_tables=True)
        collect_schema = bench.schema("collect")
        report["concurrent_collect"] = await concurrent_collect(bench, collect_schema, n)
        batch = [Event.create(**f) for f in generate(n, seed=19)]
        report["batch_ingest"] = await batch_ingest(bench, batch)
        # Measured again after the backend ran: other load on the machine drifts.
        report["raw_copy_again"] = await raw_copy(bench, events, all_tables=False)
        raw = {
            key: _mean(report["raw_copy"][key], report["raw_copy_again"][key])
            for key in ("events_per_s", "client_cpu_us_per_event", "server_cpu_us_per_event")
        }
        # The figure: against the raw COPY into ``events`` (the mean of the two
        # runs); also against the raw load of every table the schema keeps.
        report["ratio_to_raw_copy"] = {
            "concurrent_collect": _ratios(report["concurrent_collect"], raw),
            "batch_ingest": _ratios(report["batch_ingest"], raw),
        }
        report["ratio_to_raw_copy_all_tables"] = {
            "concurrent_collect": _ratios(
                report["concurrent_collect"], report["raw_copy_all_tables"]
            ),
            "batch_ingest": _ratios(report["batch_ingest"], report["raw_copy_all_tables"]),
        }
        await admin.execute(f'ANALYZE "{collect_schema}".events')
        report["queries"] = await query_latencies(bench.storage(collect_schema), QUERY_REPEAT)
    finally:
        await bench.drop(*bench.schemas)
        await admin.close()
    return report


async def _run_filter_queries(url: str, n: int, repeat: int) -> dict[str, Any]:
    admin = await asyncpg.connect(url)
    bench = _Bench(url, admin)
    try:
        schema = bench.schema("filters")
        events = [Event.create(**f) for f in generate(n, seed=13)]
        await _prepare(url, schema, [e.timestamp for e in events])
        async with EventCollector(storage=bench.storage(schema)) as collector:
            for start in range(0, n, BATCH * 10):
                await collector.ingest(events[start : start + BATCH * 10])
        await admin.execute(f'ANALYZE "{schema}".events')
        figures = await query_latencies(bench.storage(schema), repeat, only_filters=True)
        return {"events": n, **figures}
    finally:
        await bench.drop(*bench.schemas)
        await admin.close()


def run_postgres_filter_queries(url: str, events: int, repeat: int) -> dict[str, Any]:
    """Issue 12's query figures on PostgreSQL over ``events`` events in a fresh schema."""
    return asyncio.run(_run_filter_queries(url, events, repeat))


def run_postgres(url: str, events: int) -> dict[str, Any]:
    """Every PostgreSQL figure for ``events`` events; the schemas are dropped afterwards."""
    return asyncio.run(_run(url, events))
