"""What the acknowledgement path allows on this machine, whatever the storage does
(issue 17's targets measured against their ceilings).

``python -m benchmarks._ceilings --workdir DIR [--http-events 100000] [--events 200000]
[--sequential 20000] [--rounds 2]`` prints one JSON object. In alternating rounds:

- HTTP batches of 1,000 (``_http_client``, 4 connections) into ``eventcollector serve``
  as the README starts it; into the same server with the SQLite write replaced by a
  one-table append (``append``: the rows into a table with no index, the cheapest
  durable commit SQLite has); with no write at all (``none``: HTTP, JSON, validation and
  the writer's empty transaction); and into the spec's design (``_spec_server``);
- ``collect()``, concurrent (1,000 callers) and sequential, with no write at all,
  against the literal seed build.

The ``none`` and ``append`` variants are measuring instruments, never a way to run the
server: they acknowledge events they do not keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._http import free_port, post_batches, start_server

_APPEND_TABLE = "ceiling_append"


def _write_nothing(tx: Any, batches: list[Sequence[Any]], announce: Any = None) -> list[list[bool]]:
    return [[True] * len(batch) for batch in batches]


def _append_only(tx: Any, batches: list[Sequence[Any]], announce: Any = None) -> list[list[bool]]:
    from eventcollector.storage.sqlite import _sql as sql

    flat = [event for batch in batches for event in batch]
    first = tx.reserve_rowids(len(flat))
    tx.conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_APPEND_TABLE}(seq INTEGER PRIMARY KEY, {sql.EVENT_COLUMNS})"
    )
    tx.conn.executemany(
        f"INSERT INTO {_APPEND_TABLE}(seq, {sql.EVENT_COLUMNS}) VALUES ({', '.join('?' * 14)})",
        [sql.to_row(event, first + i) for i, event in enumerate(flat)],
    )
    return [[True] * len(batch) for batch in batches]


_VARIANTS = {"none": _write_nothing, "append": _append_only}


def _patch(variant: str) -> None:
    from eventcollector.storage.sqlite import _storage

    _storage.insert_batches = _VARIANTS[variant]  # type: ignore[attr-defined]


def _serve(variant: str, args: list[str]) -> None:
    """``eventcollector serve ARGS`` with the SQLite write replaced by ``variant``."""
    _patch(variant)
    from eventcollector.cli.app import main

    sys.argv = ["eventcollector", "serve", *args]
    main()


def _http(work: Path, events: int, rounds: int) -> dict[str, list[int]]:
    sides = {
        "ours": "eventcollector serve",
        "ours_append_only": "benchmarks._ceilings serve append",
        "ours_no_write": "benchmarks._ceilings serve none",
        "spec": "benchmarks._spec_server",
    }
    rates: dict[str, list[int]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side, module in sides.items():
            for stale in work.glob(f"{side}.db*"):
                stale.unlink()
            port = free_port()
            server = start_server(work / f"{side}.db", port, module)
            try:
                rates[side].append(int(post_batches(port, events)["events_per_s"]))
            finally:
                server.terminate()
                server.wait(timeout=60)
    return rates


def _collect(work: Path, events: int, sequential: int, rounds: int) -> dict[str, Any]:
    from benchmarks._anchors import seed_concurrent, seed_sequential
    from benchmarks._ingest import concurrent_ingest, sequential_ingest

    _patch("none")
    out: dict[str, list[int]] = {
        "concurrent_no_write": [],
        "concurrent_seed": [],
        "sequential_no_write": [],
        "sequential_seed": [],
    }
    for _ in range(rounds):
        for stale in work.glob("collect-*.db*"):
            stale.unlink()
        runs = {
            "concurrent_no_write": concurrent_ingest(work / "collect-ours.db", events),
            "concurrent_seed": seed_concurrent(work / "collect-seed.db", events),
            "sequential_no_write": sequential_ingest(work / "collect-ours-seq.db", sequential),
            "sequential_seed": seed_sequential(work / "collect-seed-seq.db", sequential),
        }
        for name, run in runs.items():
            out[name].append(int(asyncio.run(run)["events_per_s"]))
    return out


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        _serve(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--http-events", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--sequential", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    report = {
        "http_batch_1000_events_per_s": _http(work, args.http_events, args.rounds),
        "collect_events_per_s": _collect(work, args.events, args.sequential, args.rounds),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
