"""Issue 17's anchors: eventcollector beside the spec's literal design, as ratios in one run.

``python -m benchmarks._anchors --workdir DIR [--events 200000] [--sequential 200000]
[--http-events 100000]`` prints one JSON object; every figure is measured for both
sides in the same minutes, ours first, and given as a ratio (ours / theirs, or theirs /
ours for times, so that above 1 always means eventcollector is ahead):

- HTTP batches of 1,000 (``benchmarks._http_client``, 4 keep-alive connections) and
  single-event POSTs (wrk, 32 connections): ``eventcollector serve`` with the README's
  settings (no options but the database and port: no rate limit without keys) against
  the spec's design behind Starlette (``benchmarks._spec_server``);
- concurrent (1,000 callers) and sequential ``collect()``: ``EventCollector`` against
  the literal seed build (``benchmarks._spec_design.SeedCollector``);
- over the two stores the concurrent runs filled: the complex query (system + severity +
  24 h + tag, up to 1,000) against the seed's, and returning 1,000 events (one system,
  newest first) in µs per event above SQLite's own time for the same rows (the same
  SELECT through a plain ``sqlite3`` cursor, rows as tuples).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._data import generate
from benchmarks._http import free_port, post_batches, start_server, wrk
from benchmarks._ingest import CONCURRENCY, _Clock, concurrent_ingest, sequential_ingest
from benchmarks._queries import _time, complex_query, simple_query
from benchmarks._spec_design import SeedCollector, open_db
from eventcollector import EventCollector
from eventcollector.storage.sqlite import _sql as sql

REPEAT = 30


async def seed_concurrent(db: Path, n: int) -> dict[str, Any]:
    source = generate(n)
    conn = await open_db(db)
    seed = SeedCollector(conn)

    async def caller() -> None:
        for fields in source:
            await seed.collect(**fields)

    clock = _Clock()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    report = clock.report(n)
    await conn.close()
    return report


async def seed_sequential(db: Path, n: int) -> dict[str, Any]:
    conn = await open_db(db)
    seed = SeedCollector(conn)
    clock = _Clock()
    for fields in generate(n, seed=11):
        await seed.collect(**fields)
    report = clock.report(n)
    await conn.close()
    return report


async def _p50_ms(fn: Callable[[], Awaitable[Any]]) -> tuple[float, int]:
    timed = await _time(fn, REPEAT)
    return float(timed["p50_ms"]), int(timed["rows"])


def _raw_select_ms(db: Path, repeat: int = REPEAT) -> float:
    """SQLite's own time for the 1,000 newest events of one system, as tuples."""
    conn = sqlite3.connect(db)
    statement = (
        f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE system = ?"
        " ORDER BY timestamp DESC, rowid DESC LIMIT 1000"
    )
    samples = []
    for i in range(repeat + 3):
        started = time.perf_counter()
        conn.execute(statement, ("mahavishnu",)).fetchall()
        if i >= 3:
            samples.append((time.perf_counter() - started) * 1000)
    conn.close()
    return statistics.median(samples)


async def queries(ours: Path, theirs: Path) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(days=1)
    async with EventCollector(db_path=ours) as c:
        complex_ms, complex_rows = await _p50_ms(lambda: complex_query(c))
        simple_ms, simple_rows = await _p50_ms(lambda: simple_query(c))
    conn = await open_db(theirs)
    seed = SeedCollector(conn)
    seed_complex_ms, seed_rows = await _p50_ms(
        lambda: seed.query(
            system="mahavishnu", severity="error", since=since, tags=["production"], limit=1000
        )
    )
    seed_simple_ms, _ = await _p50_ms(lambda: seed.query(system="mahavishnu", limit=1000))
    await conn.close()
    raw_ms = _raw_select_ms(ours)
    return {
        "complex_query": {
            "ours_ms": round(complex_ms, 2),
            "ours_rows": complex_rows,
            "seed_ms": round(seed_complex_ms, 2),
            "seed_rows": seed_rows,
            "ratio": round(seed_complex_ms / complex_ms, 2),
        },
        "return_1000": {
            "ours_ms": round(simple_ms, 2),
            "rows": simple_rows,
            "sqlite_own_ms": round(raw_ms, 2),
            "us_per_event_above_sqlite": round((simple_ms - raw_ms) / simple_rows * 1000, 2),
            "seed_ms": round(seed_simple_ms, 2),
        },
    }


def _ratio(ours: dict[str, Any], theirs: dict[str, Any], key: str) -> float | None:
    if not ours.get(key) or not theirs.get(key):
        return None
    return round(float(ours[key]) / float(theirs[key]), 2)


def http(workdir: Path, events: int) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for side, module in (("ours", "eventcollector serve"), ("spec", "benchmarks._spec_server")):
        port = free_port()
        server = start_server(workdir / f"http-{side}.db", port, module)
        try:
            report[side] = {"batch_1000": post_batches(port, events), "single": wrk(port)}
        finally:
            server.terminate()
            server.wait(timeout=60)
    ours, spec = report["ours"], report["spec"]
    report["batch_1000_ratio"] = _ratio(ours["batch_1000"], spec["batch_1000"], "stored_per_s")
    report["single_ratio"] = _ratio(ours["single"], spec["single"], "requests_per_s")
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--sequential", type=int, default=200_000)
    parser.add_argument("--http-events", type=int, default=100_000)
    parser.add_argument("--skip", default="", help="comma list of http, collect, queries")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("*.db*"):
        stale.unlink()
    report: dict[str, Any] = {}
    if "http" not in skip:
        report["http"] = http(work, args.http_events)
    ours_db, seed_db = work / "ours.db", work / "seed.db"
    if "collect" not in skip:
        conc = asyncio.run(concurrent_ingest(ours_db, args.events))
        seed_conc = asyncio.run(seed_concurrent(seed_db, args.events))
        seq = asyncio.run(sequential_ingest(work / "ours-seq.db", args.sequential))
        seed_seq = asyncio.run(seed_sequential(work / "seed-seq.db", args.sequential))
        report["collect"] = {
            "concurrent": {"ours": conc, "seed": seed_conc},
            "concurrent_ratio": _ratio(conc, seed_conc, "events_per_s"),
            "sequential": {"ours": seq, "seed": seed_seq},
            "sequential_ratio": _ratio(seq, seed_seq, "events_per_s"),
        }
    if "queries" not in skip and ours_db.exists() and seed_db.exists():
        report["queries"] = asyncio.run(queries(ours_db, seed_db))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
