"""EventCollector: lifecycle, durable collect, idempotent ingest, stats, cleanup, backpressure."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventcollector import (
    LIMITS,
    Event,
    EventCollector,
    EventQueryBuilder,
    EventType,
    Query,
    QueueFull,
    Severity,
    System,
)
from eventcollector.storage.sqlite import SQLiteStorage

EventFactory = Callable[..., Event]


async def test_start_stop_and_running(db_path: Path) -> None:
    collector = EventCollector(db_path=str(db_path))
    assert not collector.running
    await collector.start()
    await collector.start()  # idempotent
    assert collector.running
    await collector.stop()
    await collector.stop()  # idempotent
    assert not collector.running
    assert db_path.stat().st_size > 0  # noqa: ASYNC240


async def test_async_with(db_path: Path) -> None:
    async with EventCollector(db_path) as collector:
        assert collector.running
        await collector.collect(system="a", event_type="b", title="t")
    assert not collector.running


async def test_lazy_start_on_first_collect(db_path: Path) -> None:
    collector = EventCollector(db_path)
    try:
        event = await collector.collect(
            system="mahavishnu", event_type="lifecycle.start", title="up"
        )
        assert collector.running
        assert await collector.get_event(event.id) == event
    finally:
        await collector.stop()


async def test_spec_keywords_and_defaults(collector: EventCollector) -> None:
    event = await collector.collect(
        system=System.MAHAVISHNU,
        event_type=EventType.WORKFLOW_STARTED,
        severity=Severity.INFO,
        title="Workflow started",
        description="RAG pipeline workflow",
        data={"workflow_id": "wf_123"},
        tags=["workflow", "rag"],
        correlation_id="corr_abc",
        source_component="orchestrator",
        duration_ms=1500,
        metadata={"key": "value"},
    )
    assert await collector.get_event(event.id) == event
    plain = await collector.collect(system="crackerjack", event_type="test.run", title="plain")
    assert plain.severity is Severity.INFO
    assert plain.description == ""
    assert plain.system is System.CRACKERJACK


async def test_collect_is_durable_across_restart(db_path: Path) -> None:
    async with EventCollector(db_path) as first:
        events = [
            await first.collect(system="a", event_type="b", title=f"event {i}", tags=["t"])
            for i in range(5)
        ]
    async with EventCollector(db_path) as second:
        assert await second.query(Query(ascending=True)) == events
        assert await EventQueryBuilder(second).tags(["t"]).search("event").count() == 5
        stats = await second.get_statistics()
        assert stats["total_events"] == 5


async def test_collect_with_explicit_timestamp(collector: EventCollector) -> None:
    then = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
    event = await collector.collect(system="a", event_type="b", title="t", timestamp=then)
    assert event.timestamp == then
    stored = await collector.get_event(event.id)
    assert stored is not None
    assert stored.timestamp == then
    iso = await collector.collect(system="a", event_type="b", title="t", timestamp="2024-06-01")
    assert iso.timestamp == datetime(2024, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"^timestamp: "):
        await collector.collect(
            system="a", event_type="b", title="t", timestamp=datetime.now(UTC) + timedelta(hours=1)
        )


async def test_ingest_is_idempotent_by_id(
    collector: EventCollector, make_event: EventFactory
) -> None:
    one, two = make_event(id="evt-1"), make_event(id="evt-2")
    assert await collector.ingest([one]) == [True]
    assert await collector.ingest([one]) == [False]
    assert await collector.ingest([two, one, two]) == [True, False, False]
    assert await collector.ingest([]) == []
    assert await collector.count(Query()) == 2
    assert await collector.count(Query(ids=("evt-1",))) == 1
    health = await collector.health_check()
    assert health["events_accepted"] == 2
    assert health["events_duplicate"] == 3


async def test_collect_with_an_existing_id_keeps_the_first(collector: EventCollector) -> None:
    first = await collector.collect(system="a", event_type="b", title="first", id="same")
    await collector.collect(system="a", event_type="b", title="second", id="same")
    assert await collector.get_event("same") == first
    assert await collector.count(Query()) == 1


async def test_concurrent_collects_are_all_stored(collector: EventCollector) -> None:
    events = await asyncio.gather(
        *(collector.collect(system="a", event_type="b", title=f"e{i}") for i in range(200))
    )
    assert {e.id for e in await collector.query(Query())} == {e.id for e in events}


async def test_get_statistics(collector: EventCollector, make_event: EventFactory) -> None:
    old = datetime.now(UTC) - timedelta(hours=3)
    await collector.ingest(
        [
            make_event(system="mahavishnu", severity="error", timestamp=old),
            make_event(system="mahavishnu"),
            make_event(system="crackerjack", event_type="test.run"),
        ]
    )
    stats = await collector.get_statistics()
    assert {"total_events", "by_system", "by_severity", "last_hour_count"} <= set(stats)
    assert stats["total_events"] == 3
    assert stats["by_system"] == {"mahavishnu": 2, "crackerjack": 1}
    assert stats["by_severity"] == {"info": 2, "error": 1}
    assert stats["last_hour_count"] == 2
    assert stats["by_event_type"] == {"workflow.started": 2, "test.run": 1}


async def test_statistics_of_an_empty_store(collector: EventCollector) -> None:
    stats = await collector.get_statistics()
    assert stats["total_events"] == 0
    assert stats["by_system"] == {}
    assert stats["by_severity"] == {}
    assert stats["last_hour_count"] == 0


async def test_health_check(collector: EventCollector, db_path: Path) -> None:
    collector.subscribe(lambda event: None)
    health = await collector.health_check()
    assert {"status", "running", "db_path", "subscriber_count"} <= set(health)
    assert health["status"] == "healthy"
    assert health["running"] is True
    assert health["db_path"] == str(db_path)
    assert health["subscriber_count"] == 1
    assert health["storage"]["journal_mode"] == "wal"
    assert health["storage"]["db_path"] == str(db_path)


async def test_health_check_reports_an_unusable_store(tmp_path: Path) -> None:
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not an sqlite database" * 100)
    collector = EventCollector(not_a_db)
    health = await collector.health_check()
    assert health["status"] == "unhealthy"
    assert "error" in health
    await collector.stop()


async def _seed_ages(collector: EventCollector, make_event: EventFactory) -> list[Event]:
    now = datetime.now(UTC)
    events = [
        make_event(title=f"old {days}", tags=["old"], timestamp=now - timedelta(days=days))
        for days in (31, 45, 400)
    ] + [make_event(title="recent", tags=["new"], timestamp=now - timedelta(days=1))]
    await collector.ingest(events)
    return events


async def test_cleanup_old_events(collector: EventCollector, make_event: EventFactory) -> None:
    events = await _seed_ages(collector, make_event)
    assert await collector.cleanup_old_events(retention_days=30) == 3
    assert await collector.query(Query()) == [events[-1]]
    # Side tables follow: tags, full text and statistics no longer see the old events.
    assert await EventQueryBuilder(collector).tags(["old"]).count() == 0
    assert await EventQueryBuilder(collector).search("old").count() == 0
    assert (await collector.get_statistics())["total_events"] == 1
    assert await collector.cleanup_old_events(retention_days=30) == 0


async def test_cleanup_via_storage_as_the_spec_writes_it(
    collector: EventCollector, make_event: EventFactory
) -> None:
    await _seed_ages(collector, make_event)
    deleted = await collector._storage.cleanup_old_events(retention_days=30)
    assert deleted == 3
    assert await collector.count(Query()) == 1


async def test_cleanup_rejects_negative_retention(collector: EventCollector) -> None:
    with pytest.raises(ValueError, match=r"^retention_days: "):
        await collector.cleanup_old_events(retention_days=-1)


async def test_database_inspection_sql_works(collector: EventCollector, db_path: Path) -> None:
    await collector.collect(system="mahavishnu", event_type="b", title="t", severity="error")
    # A lone event waits in event_journal until the writer idles (50 ms); flush() moves it now.
    await collector.flush()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
        assert conn.execute("SELECT system, COUNT(*) FROM events GROUP BY system").fetchall() == [
            ("mahavishnu", 1)
        ]
        assert conn.execute(
            "SELECT severity, COUNT(*) FROM events GROUP BY severity"
        ).fetchall() == [("error", 1)]
        row = conn.execute("SELECT * FROM events ORDER BY timestamp DESC LIMIT 10").fetchone()
        assert row[5] == "t"
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


# -- backpressure ----------------------------------------------------------------


async def test_ingest_without_wait_raises_queue_full(
    db_path: Path, make_event: EventFactory
) -> None:
    async with EventCollector(db_path, max_pending=2) as collector:
        # Two events in flight: the task runs up to its wait for the commit, which
        # cannot be delivered before this coroutine yields again.
        in_flight = asyncio.create_task(collector.ingest([make_event(), make_event()]))
        await asyncio.sleep(0)
        assert collector.pending == 2
        with pytest.raises(QueueFull):
            await collector.ingest([make_event()], wait=False)
        assert collector.counters["rejected_queue_full"] == 1
        # Waiting ingest is admitted once there is room.
        waiting = asyncio.create_task(collector.ingest([make_event()]))
        assert await in_flight == [True, True]
        assert await waiting == [True]
        assert collector.pending == 0
        # Without anything in flight even a batch larger than the bound is accepted.
        assert await collector.ingest([make_event() for _ in range(5)], wait=False) == [True] * 5
        assert await collector.count(Query()) == 8


def test_max_pending_must_be_positive(db_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^max_pending: "):
        EventCollector(db_path, max_pending=0)


# -- emit ----------------------------------------------------------------------


async def test_emit_from_sync_code_then_flush(collector: EventCollector) -> None:
    def sync_code() -> Event:
        return collector.emit(system="mahavishnu", event_type="workflow.started", title="sync")

    event = sync_code()
    await collector.flush()
    assert await collector.get_event(event.id) == event


async def test_emit_from_another_thread_then_flush(collector: EventCollector) -> None:
    emitted = await asyncio.to_thread(
        lambda: [collector.emit(system="a", event_type="b", title=f"t{i}") for i in range(20)]
    )
    await collector.flush()
    assert {e.id for e in await collector.query(Query())} == {e.id for e in emitted}


async def test_emit_validates_immediately(collector: EventCollector) -> None:
    with pytest.raises(ValueError, match=r"^severity: "):
        collector.emit(system="a", event_type="b", title="t", severity="nope")


async def test_stop_drains_emitted_events(db_path: Path) -> None:
    collector = EventCollector(db_path)
    await collector.start()
    emitted = [collector.emit(system="a", event_type="b", title=f"t{i}") for i in range(10)]
    await collector.stop()
    assert not collector.running
    async with EventCollector(db_path) as reopened:
        assert await reopened.count(Query()) == len(emitted)


def test_emit_without_any_event_loop(db_path: Path) -> None:
    collector = EventCollector(db_path)
    event = collector.emit(system="a", event_type="b", title="from plain sync code")
    loop = collector._loop
    assert loop is not None
    try:
        asyncio.run(collector.flush())
        found = asyncio.run_coroutine_threadsafe(collector.get_event(event.id), loop).result(10)
        assert found == event
    finally:
        asyncio.run_coroutine_threadsafe(collector.stop(), loop).result(10)
    assert not collector.running


_EMIT_THEN_EXIT = """
import sys
from eventcollector import EventCollector
collector = EventCollector(sys.argv[1])
for i in range(int(sys.argv[2])):
    collector.emit(system="a", event_type="b", title=f"t{i}")
"""


def test_every_event_emitted_right_before_exit_is_stored(db_path: Path) -> None:
    # The exit hook once read the pending tasks on the exiting thread, before the loop
    # had run the last emits' callbacks: those events were dropped without an error.
    n = 3000
    done = subprocess.run(
        [sys.executable, "-c", _EMIT_THEN_EXIT, str(db_path), str(n)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    async def stored() -> int:  # through the library: the newest may wait in the journal
        async with EventCollector(db_path) as reopened:
            return await reopened.count(Query())

    assert asyncio.run(stored()) == n


async def test_concurrent_collects_share_a_batch_and_one_cancelled_caller_spares_the_rest(
    db_path: Path,
) -> None:
    async with EventCollector(db_path=db_path) as collector:
        calls = [
            asyncio.ensure_future(collector.collect(system="s", event_type="t", title=f"e{i}"))
            for i in range(50)
        ]
        await asyncio.sleep(0)  # every call has joined the batch
        calls[7].cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[7], asyncio.CancelledError)
        others = [r for i, r in enumerate(results) if i != 7]
        assert all(isinstance(r, Event) for r in others)
        # The cancelled caller's event had been handed over: it is stored too.
        assert await EventQueryBuilder(collector).count() == 50
        assert isinstance(others[0], Event)
        assert await collector.get_event(others[0].id) == others[0]


async def test_the_longest_durations_sum_in_the_rollups(collector: EventCollector) -> None:
    # Near 2**63 two durations overflowed the rollups' integer sums and wedged every later
    # commit of the journal; the limit keeps any realistic count of them summable.
    longest = LIMITS.max_duration_ms
    for i in range(3):
        await collector.collect(system="akosha", event_type="test.run", title=f"long {i}",
                                duration_ms=longest)  # fmt: skip
    await collector.flush()
    stats = await collector.duration_stats(Query())
    assert stats.count == 3
    assert stats.max == longest
    assert await collector.count(Query()) == 3


def test_query_timeout_reaches_the_store_it_opens(db_path: Path) -> None:
    collector = EventCollector(db_path, query_timeout=2.5)
    assert isinstance(collector.storage, SQLiteStorage)
    assert collector.storage.query_timeout == 2.5
    with pytest.raises(ValueError, match=r"^query_timeout: set it on the server"):
        EventCollector(url="http://127.0.0.1:1", query_timeout=2.5)
