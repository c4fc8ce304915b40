"""Properties 4 and 5: many writers and long readers on one file; the WAL stays bounded.

4. Eight writer processes (embedded collectors), the HTTP server and reader
   processes running whole-table queries share one SQLite file: no caller sees
   "database is locked" or a 500, nothing is lost or duplicated.
5. While the server ingests steadily, ``eventcollector export`` pages through the
   whole table and a live stream is open: the WAL file stays under a bound because
   checkpoints run on their own thread and every read is a short transaction.
   (A database on a network filesystem is refused: tests/storage/test_sqlite.py::
   test_network_filesystem_is_refused.)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from _common import cli, event
from eventcollector.storage.sqlite._checkpointer import WAL_HARD_LIMIT_BYTES

from ._support import Server

WRITER = r"""
import asyncio, sys
from eventcollector import EventCollector

async def main(path, name, n):
    async with EventCollector(path) as collector:
        for start in range(0, n, 25):
            await asyncio.gather(*(
                collector.collect(system="mahavishnu", event_type="test.run",
                                  title=f"{name} {i}", id=f"{name}-{i}", tags=[name],
                                  description="contention " * 20)
                for i in range(start, start + 25)
            ))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""

READER = r"""
import asyncio, sys, time
from eventcollector import EventCollector
from eventcollector.query import Query

async def main(path, seconds):
    async with EventCollector(path) as collector:
        deadline = time.monotonic() + seconds
        rounds = 0
        while time.monotonic() < deadline:
            # Whole-table reads: a large page, a full-text search, aggregates.
            await collector.query(Query(limit=5000))
            await collector.query(Query(search="contention", limit=2000))
            await collector.group_count(Query(), "system")
            await collector.duration_stats(Query())
            rounds += 1
        print(rounds)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""

WRITERS = 8
PER_WRITER = 600


def test_eight_writers_server_and_long_readers_on_one_file(tmp_path: Path) -> None:
    server = Server(tmp_path, "--rate-limit", "0")
    db = server.db
    http_acked: list[str] = []
    statuses: list[int] = []

    def http_writer() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            for b in range(40):
                ids = [f"http-{b}-{i}" for i in range(50)]
                r = c.post("/v1/events", content=orjson.dumps([event(id=i) for i in ids]))
                statuses.append(r.status_code)
                if r.status_code == 200:
                    http_acked.extend(ids)
                r = c.get("/v1/events", params={"limit": "1000", "search": "contention"})
                statuses.append(r.status_code)

    readers: list[subprocess.Popen[str]] = []
    writers: list[subprocess.Popen[str]] = []
    thread = threading.Thread(target=http_writer)
    try:
        readers = [
            subprocess.Popen(
                [sys.executable, "-c", READER, db, "8"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, db, f"p{k}", str(PER_WRITER)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(WRITERS)
        ]
        thread.start()
        for proc in writers + readers:
            _out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            assert "locked" not in err
            assert "busy" not in err
        thread.join(180)
    finally:
        for proc in writers + readers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        log = server.stop()
    assert "Traceback" not in log, log
    assert set(statuses) == {200}, sorted(set(statuses))
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = [row[0] for row in conn.execute("SELECT id FROM events")]
    finally:
        conn.close()
    expected = {f"p{k}-{i}" for k in range(WRITERS) for i in range(PER_WRITER)}
    expected |= set(http_acked)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected


#: The bound asserted: the checkpointer empties the WAL once it passes the hard limit
#: (32 MiB); twice that leaves room for what is written between two looks at it.
#: The test writes several times this much.
WAL_BOUND = 2 * WAL_HARD_LIMIT_BYTES


def test_wal_stays_bounded_during_export_and_stream(tmp_path: Path) -> None:
    server = Server(tmp_path, "--rate-limit", "0")
    wal = Path(server.db + "-wal")
    stop = threading.Event()
    sizes: list[int] = []
    written = [0]

    def ingest() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            n = 0
            while not stop.is_set():
                body = orjson.dumps([event(description="w" * 1500) for _ in range(500)])
                assert c.post("/v1/events", content=body).status_code == 200
                n += 1
                written[0] = n * 500 * 1700

    def watch() -> None:
        while not stop.is_set():
            sizes.append(wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.02)

    def stream() -> None:
        with (
            contextlib.suppress(httpx.HTTPError),  # ends when the server stops
            httpx.Client(base_url=server.url, timeout=60) as c,
            c.stream("GET", "/v1/stream", params={"system": "nothing"}) as r,
        ):
            assert r.status_code == 200
            for _ in r.iter_raw():
                if stop.is_set():
                    return

    threads = [threading.Thread(target=f, daemon=True) for f in (ingest, watch, stream)]
    try:
        for t in threads:
            t.start()
        # Exports page through the whole (growing) table while ingest goes on.
        deadline = time.monotonic() + 4
        exports = 0
        while time.monotonic() < deadline or written[0] < 2 * WAL_BOUND:
            assert time.monotonic() < deadline + 60, "ingest too slow to test the WAL"
            done = cli(
                "export", "--db", server.db, "-o", str(tmp_path / "export.jsonl"), timeout=120
            )
            assert done.returncode == 0, done.stderr
            exports += 1
        assert exports >= 1
    finally:
        stop.set()
        for t in threads[:2]:
            t.join(30)
        log = server.stop()
    assert "Traceback" not in log, log
    assert written[0] >= 2 * WAL_BOUND
    assert max(sizes) < WAL_BOUND, f"WAL reached {max(sizes)} bytes"
    print(f"WAL max {max(sizes) / 2**20:.1f} MiB while writing {written[0] / 2**20:.0f} MiB")
    assert os.path.getsize(tmp_path / "export.jsonl") > 0
