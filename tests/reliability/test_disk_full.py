"""Property 3: a full disk gives an error, never a false acknowledgement, and recovers.

The database lives on a small tmpfs (mounting needs root; skipped otherwise). A
filler file takes part of the space; ingest runs until the disk is full; then the
filler is deleted and ingest must work again without a restart.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from _common import event
from eventcollector import Event
from eventcollector.query import Query
from eventcollector.storage.base import StorageError, StorageUnavailable
from eventcollector.storage.sqlite import SQLiteStorage

from ._support import Server

SIZE = "8m"
# Freed once full: room for the journal's last events to move into events (their rows,
# index entries and WAL frames once more; see guarantees.md section 3).
FILLER_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"needs permission to mount a tmpfs (root): {done.stderr.strip()}")
    try:
        (mnt / "filler").write_bytes(b"\0" * FILLER_BYTES)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _ids_in_file(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        query = "SELECT id FROM events UNION ALL SELECT id FROM event_journal"
        return {row[0] for row in conn.execute(query)}
    finally:
        conn.close()


def _batch(n: int) -> list[Event]:
    return [
        Event.create(
            system="deployer",
            event_type="test.run",
            title="disk full",
            id=f"df-{uuid.uuid4().hex}",
            description="x" * 2000,
        )
        for _ in range(n)
    ]


async def test_full_disk_raises_storage_unavailable_and_recovers(small_disk: Path) -> None:
    store = SQLiteStorage(small_disk / "events.db")
    await store.open()
    acked: list[str] = []
    try:
        failure: StorageError | None = None
        for _ in range(10_000):
            events = _batch(20)
            try:
                result = await store.append(events)
            except StorageError as exc:
                failure = exc
                break
            assert result == [True] * len(events)
            acked.extend(e.id for e in events)
        assert failure is not None, "the disk never filled up"
        assert isinstance(failure, StorageUnavailable), repr(failure)
        assert "full" in str(failure)
        # A second attempt while still full fails the same way: the writer is alive.
        with pytest.raises(StorageUnavailable):
            await store.append(_batch(20))
        # Nothing acknowledged is missing from the file: the newest small commits may
        # wait in event_journal, which cannot be moved into events while the disk is full.
        assert _ids_in_file(small_disk / "events.db") >= set(acked)
        # Reads still answer meanwhile (from events) and health says what waits.
        assert await store.count(Query(ids=tuple(acked[:1]))) == 1
        (small_disk / "filler").unlink()
        events = _batch(20)
        assert await store.append(events) == [True] * 20
        acked.extend(e.id for e in events)
        # With room again, reads move the journal first: everything acknowledged is seen.
        for start in range(0, len(acked), 500):
            ids = tuple(acked[start : start + 500])
            assert await store.count(Query(ids=ids)) == len(ids)
        assert await store.count(Query()) == len(acked)
        assert (await store.health())["journaled_events"] == 0
    finally:
        with contextlib.suppress(StorageError):
            await store.close()


def test_full_disk_over_http_is_503_and_every_200_is_stored(small_disk: Path) -> None:
    server = Server(small_disk.parent, "--rate-limit", "0", db=str(small_disk / "events.db"))
    acked: list[str] = []
    statuses: set[int] = set()
    try:
        with server.client() as c:
            for _ in range(10_000):
                ids = [f"h-{uuid.uuid4().hex}" for _ in range(20)]
                body = orjson.dumps([event(id=i, description="y" * 2000) for i in ids])
                r = c.post("/v1/events", content=body)
                statuses.add(r.status_code)
                if r.status_code == 200:
                    acked.extend(ids)
                    continue
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"]
                assert r.json()["error"].startswith("storage:")
                break
            assert 503 in statuses, "the disk never filled up"
            (small_disk / "filler").unlink()
            ids = [f"after-{i}" for i in range(20)]
            r = c.post("/v1/events", content=orjson.dumps([event(id=i) for i in ids]))
            assert r.status_code == 200, r.text
            acked.extend(ids)
            for start in range(0, len(acked), 200):
                chunk = ",".join(acked[start : start + 200])
                got = c.get("/v1/events/count", params={"id": chunk}).json()["count"]
                assert got == len(acked[start : start + 200])
            assert c.get("/health").json()["storage"]["journaled_events"] == 0
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
