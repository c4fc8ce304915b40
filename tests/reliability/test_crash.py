"""Properties 1 and 2: what was acknowledged survives ``kill -9``.

1. The real server is killed with SIGKILL at random moments while several clients
   post batches with their own ids; every id answered 2xx is stored after restart,
   once, and ``PRAGMA integrity_check`` is ok. The same on PostgreSQL (a fresh schema;
   ``event_ids`` and the hourly counts agree with ``events``).
2. Writer processes using the embedded collector are killed mid-stream: for each
   writer, what is stored is a prefix of its sequence that contains everything it
   saw acknowledged (at most the one batch in flight beyond it).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from _common import admin, event, with_schema

from ._support import Server

SLOW = pytest.mark.skipif(
    os.environ.get("EVENTCOLLECTOR_SLOW") != "1",
    reason="long variant: set EVENTCOLLECTOR_SLOW=1 (CI runs the whole suite)",
)


def _stored_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # Stored means in events or, for a small commit not yet settled when the process
        # was killed, in event_journal (the next open moves it; see guarantees.md).
        return {
            row[0]
            for row in conn.execute("SELECT id FROM events UNION ALL SELECT id FROM event_journal")
        }
    finally:
        conn.close()


def _sqlite_stored(db: str) -> list[str]:
    return sorted(_stored_ids(Path(db)))


def _postgres_stored(base: str, schema: str) -> list[str]:
    """Every stored id (repeats included) of ``schema``, checking that ``event_ids`` and
    the hourly counts agree with ``events``."""
    rows = asyncio.run(admin(base, f'SELECT id FROM "{schema}".events'))
    ids = sorted(row[0] for row in rows)
    claimed = asyncio.run(admin(base, f'SELECT id FROM "{schema}".event_ids'))
    assert sorted(row[0] for row in claimed) == sorted(set(ids))
    counted = asyncio.run(admin(base, f'SELECT sum(n) FROM "{schema}".event_counts'))
    assert counted[0][0] == len(ids)
    return ids


def _post_until_acknowledged(
    server: Server, name: str, total: int, batch: int, acked: list[str], stop: threading.Event
) -> None:
    """Post ``total`` events in batches; retry a batch until a 2xx, recording its ids."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for start in range(0, total, batch):
            ids = [f"{name}-{i}" for i in range(start, min(start + batch, total))]
            body = orjson.dumps([event(id=i, title=f"crash {i}") for i in ids])
            while not stop.is_set():
                try:
                    r = client.post("/v1/events", content=body)
                except httpx.TransportError:
                    time.sleep(0.05)  # the server is down: same batch again
                    continue
                if r.status_code == 200:
                    assert r.json()["ids"] == ids
                    acked.extend(ids)
                    break
                assert r.status_code == 503, r.text  # only "try again" is allowed
                time.sleep(0.05)


def _kill_restart_during_ingest(
    tmp_path: Path,
    *,
    clients: int,
    per_client: int,
    kills: int,
    db: str | None = None,
    stored_ids: Callable[[str], list[str]] = _sqlite_stored,
) -> None:
    """Ingest from ``clients`` threads into the server on ``db`` (default: a SQLite file
    under ``tmp_path``), SIGKILL and restart it ``kills`` times at random moments, then
    check with ``stored_ids(db)`` (every stored id, repeats included) that every
    acknowledged id is stored exactly once."""
    server = Server(tmp_path, "--rate-limit", "0", db=db)
    acked: list[list[str]] = [[] for _ in range(clients)]
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_post_until_acknowledged,
            args=(server, f"c{k}", per_client, 100, acked[k], stop),
        )
        for k in range(clients)
    ]
    total = clients * per_client
    rng = random.Random()
    try:
        for t in threads:
            t.start()
        for n in range(kills):
            # A random moment while ingest is going on.
            goal = total * (n + rng.random()) / (kills + 1)
            deadline = time.monotonic() + 120
            while sum(map(len, acked)) < goal and any(t.is_alive() for t in threads):
                assert time.monotonic() < deadline, "ingest made no progress"
                time.sleep(0.005)
            time.sleep(rng.random() * 0.05)
            server.kill9()
            time.sleep(rng.random() * 0.3)
            server.start()
        for t in threads:
            t.join(180)
            assert not t.is_alive(), "a client never got its batch acknowledged"
    finally:
        stop.set()
        log = server.stop()
    assert "Traceback" not in log, log
    stored = stored_ids(server.db)
    acknowledged = {i for ids in acked for i in ids}
    assert len(acknowledged) == total
    assert acknowledged - set(stored) == set()
    assert len(stored) == len(set(stored)) == total  # nothing stored twice


def test_kill9_server_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    _kill_restart_during_ingest(tmp_path, clients=4, per_client=5_000, kills=3)


@pytest.mark.postgres
def test_postgres_kill9_server_during_ingest_loses_nothing_acknowledged(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    base, schema = pg_schema
    _kill_restart_during_ingest(
        tmp_path,
        clients=4,
        per_client=2_500,
        kills=3,
        db=with_schema(base, schema),
        stored_ids=lambda _db: _postgres_stored(base, schema),
    )


@pytest.mark.slow
@SLOW
def test_kill9_server_during_100k_ingest(tmp_path: Path) -> None:
    _kill_restart_during_ingest(tmp_path, clients=8, per_client=12_500, kills=10)


WRITER = r"""
import asyncio, sys
from eventcollector import Event, EventCollector

async def main(path, name, batch, synchronous):
    from eventcollector.storage.sqlite import SQLiteStorage
    collector = EventCollector(storage=SQLiteStorage(path, synchronous=synchronous))
    await collector.start()
    i = 0
    while True:
        events = [Event.create(system="mahavishnu", event_type="test.run",
                               title=f"{name} {k}", id=f"{name}-{k:07d}")
                  for k in range(i, i + batch)]
        await collector.ingest(events)
        i += batch
        sys.stdout.write(f"{i}\n")  # acknowledged: events [0, i) of this writer
        sys.stdout.flush()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
"""


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_kill9_writers_store_a_prefix_of_what_they_acknowledged(
    tmp_path: Path, synchronous: str
) -> None:
    db = tmp_path / "prefix.db"
    rng = random.Random()
    batch = 25
    writers = 3
    for round_ in range(3):
        names = [f"r{round_}w{k}" for k in range(writers)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(db), name, str(batch), synchronous],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in names
        ]
        # Each writer's first acknowledgement (start-up time varies with the machine's
        # load), then a random moment of ingest.
        first = [proc.stdout.readline() if proc.stdout else "" for proc in procs]
        time.sleep(rng.random() * 1.5)
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
        acknowledged = {}
        for name, proc, head in zip(names, procs, first, strict=True):
            # Read through the same buffered pipe the first line came from: communicate()
            # reads the raw descriptors and would miss what readline() buffered.
            assert proc.stdout is not None
            assert proc.stderr is not None
            out, err = proc.stdout.read(), proc.stderr.read()
            proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
            lines = (head + out).split()
            acknowledged[name] = int(lines[-1]) if lines else 0
            assert "locked" not in err, err
        stored = _stored_ids(db)
        for name in names:
            mine = sorted(i for i in stored if i.startswith(f"{name}-"))
            n = len(mine)
            # A prefix: exactly events 0 .. n-1 of this writer.
            assert mine == [f"{name}-{k:07d}" for k in range(n)]
            # Everything acknowledged, plus at most the batch in flight at the kill.
            assert acknowledged[name] <= n <= acknowledged[name] + batch, (name, n)
        assert sum(acknowledged.values()) > 0
