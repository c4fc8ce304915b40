"""Ingest figures, run in a child process so its peak RSS is the ingest's own.

``python -m benchmarks._ingest --db PATH --events N`` prints one JSON object:
concurrent ``collect()`` rate, sequential rate (with the bare loop-to-thread round
trip that bounds it), and the raw engine rate (pre-built rows ``executemany``d into
the same schema, in the same run) with their ratio. ``--error-share 0.05`` makes
exactly that share of the events errors, with messages from the labelled corpus
(``_error_corpus``), and the rest non-errors: the mix issue keeping is measured on.
``--alerts FILE`` runs an alert engine with the rules of FILE (intervals down to 1 s
allowed) beside both ingest phases: the A/B of alert evaluation's ingest cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import resource
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._data import generate
from benchmarks._error_corpus import corpus
from eventcollector import Event, EventCollector
from eventcollector.alert_rules import AlertRule, RuleLimits, load_rules
from eventcollector.alerts import AlertEngine
from eventcollector.storage.sqlite import SQLiteStorage
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._ingest import derive_side_tables

CONCURRENCY = 1_000
RAW_TRANSACTION_ROWS = 5_000
RAW_MAX_EVENTS = 1_000_000


class _Clock:
    """Wall time and this process's CPU time (all threads) since creation.

    CPU time per event is the steadier figure when other work shares the machine.
    """

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
            "cpu_us_per_event": round(cpu / n * 1e6, 1),
        }


def error_mix(source: Iterator[dict[str, Any]], share: float | None) -> Iterator[dict[str, Any]]:
    """``source`` with every 1/share-th event an error from the corpus, the others not."""
    if share is None:
        yield from source
        return
    every = round(1 / share)
    errors = [e for _, e in corpus(2_400)]
    for i, fields in enumerate(source):
        if i % every == 0:
            err = errors[i // every % len(errors)]
            fields = {**fields, "severity": err.severity.value, "title": err.title}
            fields["system"] = err.system.value
            fields["data"] = err.data
        elif fields["severity"] in ("error", "critical"):
            fields = {**fields, "severity": "warning"}
        yield fields


async def _engine(collector: EventCollector, rules: list[AlertRule] | None) -> AlertEngine | None:
    if rules is None:
        return None
    engine = AlertEngine(collector, file_rules=rules)
    await engine.start()
    return engine


async def concurrent_ingest(
    db: Path, n: int, share: float | None = None, rules: list[AlertRule] | None = None
) -> dict[str, Any]:
    source = error_mix(generate(n), share)
    async with EventCollector(db_path=db) as collector:
        engine = await _engine(collector, rules)

        async def caller() -> None:
            for fields in source:  # shared generator: callers take turns
                await collector.collect(**fields)

        clock = _Clock()
        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
        report = clock.report(n)
        if engine is not None:
            await engine.stop()
    return report


async def sequential_ingest(
    db: Path, n: int, share: float | None = None, rules: list[AlertRule] | None = None
) -> dict[str, Any]:
    async with EventCollector(db_path=db) as collector:
        engine = await _engine(collector, rules)
        clock = _Clock()
        for fields in error_mix(generate(n, seed=11), share):
            await collector.collect(**fields)
        report = clock.report(n)
        if engine is not None:
            await engine.stop()
    return report


async def thread_round_trip(n: int = 5_000) -> dict[str, Any]:
    """The bare cost of what every sequential ``collect()`` waits for: the event loop
    hands a job to a thread, which hands the result back (``queue`` and
    ``call_soon_threadsafe``, as the writer does), with no work in between.

    It bounds one sequential caller from above, whatever the storage does.
    """
    jobs: queue.SimpleQueue[asyncio.Future[None] | None] = queue.SimpleQueue()
    loop = asyncio.get_running_loop()

    def worker() -> None:
        while (future := jobs.get()) is not None:
            loop.call_soon_threadsafe(future.set_result, None)

    thread = threading.Thread(target=worker)
    thread.start()
    started = time.perf_counter()
    for _ in range(n):
        future = loop.create_future()
        jobs.put(future)
        await future
    micros = (time.perf_counter() - started) / n * 1e6
    jobs.put(None)
    thread.join()
    return {"round_trip_us": round(micros, 1), "ceiling_per_s": round(1e6 / micros)}


def raw_engine_rate(db: Path, n: int) -> dict[str, Any]:
    """Pre-built rows executemany'd into ``events`` in 5,000-row transactions, with the
    side tables derived by the very statements the storage's insert runs.

    This is the engine's work for our schema with no Python per event: the bound that
    ``collect()`` is compared with.
    """
    storage = SQLiteStorage(db)
    storage.open_sync()
    storage.close_sync()
    events = [Event.create(**f) for f in generate(n, seed=13)]
    chunks = [
        [sql.to_row(e, lo + i + 1) for i, e in enumerate(events[lo : lo + RAW_TRANSACTION_ROWS])]
        for lo in range(0, n, RAW_TRANSACTION_ROWS)
    ]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    clock = _Clock()
    for rows in chunks:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql.INSERT_EVENT, rows)
        derive_side_tables(conn, rows[0][0], rows[-1][0])
        conn.execute("COMMIT")
    conn.close()
    return clock.report(n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--sequential", type=int, default=20_000)
    parser.add_argument("--raw-db", type=Path)
    parser.add_argument("--error-share", type=float, help="e.g. 0.05: that share are errors")
    parser.add_argument("--alerts", type=Path, help="alert rules (TOML) evaluated meanwhile")
    args = parser.parse_args()
    share = args.error_share
    rules = None if args.alerts is None else load_rules(args.alerts, RuleLimits.lowered(1.0))
    report: dict[str, Any] = {"alert_rules": 0 if rules is None else len(rules)}
    report["concurrent_collect"] = asyncio.run(
        concurrent_ingest(args.db, args.events, share, rules)
    )
    report["peak_rss_mb_after_concurrent"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    seq_db = args.db.with_name("sequential.db")
    report["sequential_collect"] = asyncio.run(
        sequential_ingest(seq_db, args.sequential, share, rules)
    )
    report["thread_round_trip"] = asyncio.run(thread_round_trip())
    if args.raw_db is not None:
        # Pre-built rows live in memory: past 1M events they would dwarf what is measured.
        raw = raw_engine_rate(args.raw_db, min(args.events, RAW_MAX_EVENTS))
        report["raw_engine"] = raw
        report["collect_to_raw_ratio"] = round(
            report["concurrent_collect"]["events_per_s"] / raw["events_per_s"], 3
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
