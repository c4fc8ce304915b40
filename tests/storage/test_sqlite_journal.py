"""Small commits go to ``event_journal`` first (``_sqlite_writes``): what users must not notice.

Every read through the library sees a journaled event as soon as its append returned,
with its tags, words and counts; insertion order and duplicate detection hold across
the journal and ``events``; raw SQL sees the event in ``events`` once the writer has
been idle a moment, after ``flush()``, or after a crash and the next open.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from _common import make_event
from eventcollector.query import Query
from eventcollector.storage.sqlite import SQLiteStorage
from eventcollector.storage.sqlite import _writer as _sqlite_writer
from eventcollector.storage.sqlite._ingest import JOURNAL_BELOW, JOURNAL_MAX


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(tmp_path / "events.db")
    await store.open()
    yield store
    await store.close()


def _raw_counts(path: str) -> tuple[int, int]:
    """(rows in events, rows in event_journal), as the sqlite3 shell sees them."""
    conn = sqlite3.connect(path)
    try:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        journal = conn.execute("SELECT count(*) FROM event_journal").fetchone()[0]
        return int(events), int(journal)
    finally:
        conn.close()


async def test_a_small_append_is_journaled_and_every_read_sees_it(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_writer, "IDLE_SECONDS", 60.0)  # no idle settle meanwhile
    event = make_event(title="journaled walrus", tags=["zoo"], duration_ms=7)
    assert await storage.append([event]) == [True]
    assert _raw_counts(storage.path) == (0, 1)
    # The first read moves the journal, so search, tags and rollups agree with it.
    assert await storage.query(Query(search="walrus")) == [event]
    assert _raw_counts(storage.path) == (1, 0)
    assert await storage.count(Query(tags_all=("zoo",))) == 1
    assert await storage.group_count(Query(), "system") == {"mahavishnu": 1}
    stats = await storage.duration_stats(Query())
    assert stats.count == 1


async def test_the_writer_settles_the_journal_when_idle(storage: SQLiteStorage) -> None:
    await storage.append([make_event(), make_event()])
    deadline = time.monotonic() + 5
    while _raw_counts(storage.path) != (2, 0):
        assert time.monotonic() < deadline, _raw_counts(storage.path)
        await asyncio.sleep(0.02)


async def test_flush_settles_now(storage: SQLiteStorage) -> None:
    await storage.append([make_event()])
    assert await storage.flush() is True
    assert _raw_counts(storage.path) == (1, 0)


async def test_insertion_order_holds_across_journal_and_large_batches(
    storage: SQLiteStorage,
) -> None:
    small = [make_event(title=f"small {i}") for i in range(3)]
    large = [make_event(title=f"large {i}") for i in range(JOURNAL_BELOW + 5)]
    later = [make_event(title="later")]
    for batch in ([small[0]], small[1:], large, later):
        await storage.append(batch)
    events, _ = await storage.read_after(0, Query(), limit=1_000)
    assert [e.title for e in events] == [e.title for e in small + large + later]


async def test_duplicates_are_found_in_the_journal_and_in_events(
    storage: SQLiteStorage,
) -> None:
    first = make_event(id="dup-1")
    assert await storage.append([first]) == [True]
    assert await storage.append([first, make_event(id="dup-2"), first]) == [False, True, False]
    await storage.flush()
    assert await storage.append([first]) == [False]  # now in events
    assert await storage.count(Query()) == 2


async def test_the_journal_is_settled_before_it_outgrows_its_bound(
    storage: SQLiteStorage,
) -> None:
    per_call = JOURNAL_BELOW - 1
    for _ in range(JOURNAL_MAX // per_call + 2):
        await storage.append([make_event() for _ in range(per_call)])
    assert _raw_counts(storage.path)[1] <= JOURNAL_MAX


async def test_another_process_reads_journaled_events(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    await storage.append([make_event(title="seen elsewhere")])
    other = SQLiteStorage(storage.path)  # its own connections and writer, as another process
    await other.open()
    try:
        assert [e.title for e in await other.query(Query())] == ["seen elsewhere"]
    finally:
        await other.close()


_CRASH = """
import asyncio, os, sys
from eventcollector.storage.sqlite import SQLiteStorage
from eventcollector.model import Event

async def main():
    storage = SQLiteStorage(sys.argv[1])
    await storage.open()
    for i in range(5):
        await storage.append([Event.create(system="crashy", event_type="x.y", title=f"e{i}")])
    print("committed", flush=True)
    os._exit(0)  # no close: nothing settles the journal

asyncio.run(main())
"""


async def test_journaled_events_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    command = [sys.executable, "-c", _CRASH, str(path)]
    out = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "committed", out.stderr
    assert _raw_counts(str(path))[0] + _raw_counts(str(path))[1] == 5
    storage = SQLiteStorage(path)
    await storage.open()
    try:
        assert [e.title for e in await storage.query(Query(ascending=True))] == [
            f"e{i}" for i in range(5)
        ]
    finally:
        await storage.close()
    assert _raw_counts(str(path)) == (5, 0)


async def test_cleanup_settles_the_journal_first(storage: SQLiteStorage) -> None:
    await storage.append([make_event(timestamp="2020-01-01T00:00:00Z"), make_event()])
    assert await storage.cleanup_old_events(30) == 1
    assert await storage.count(Query()) == 1
    assert await storage.group_count(Query(), "system") == {"mahavishnu": 1}
