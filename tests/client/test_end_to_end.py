"""The remote client against the real ``eventcollector serve`` in a subprocess.

Remote answers are compared with the embedded collector reading the server's own
SQLite file, so every filter, aggregate and the analyzer are checked as round trips.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventcollector import EventCollector
from eventcollector.analyzer import EventAnalyzer
from eventcollector.builder import EventQueryBuilder
from eventcollector.client import HTTPStorage
from eventcollector.filters import parse_filter
from eventcollector.query import Query
from eventcollector.storage.base import StorageUnavailable

from ._support import Server, make_storage


@pytest.fixture
async def remote(server: Server, spool_dir: Path) -> AsyncIterator[EventCollector]:
    collector = EventCollector(url=server.url)
    try:
        yield collector
    finally:
        await collector.stop()


@pytest.fixture
async def local(server: Server) -> AsyncIterator[EventCollector]:
    """The embedded collector on the server's database file (the reference)."""
    collector = EventCollector(server.db)
    try:
        yield collector
    finally:
        await collector.stop()


def unique_system() -> str:
    return "s" + uuid.uuid4().hex[:12]


async def seed(collector: EventCollector, system: str, n: int) -> list[str]:
    now = datetime.now(UTC)
    ids = []
    for i in range(n):
        event = await collector.collect(
            system=system,
            event_type=("test.failed", "test.passed", "workflow.started")[i % 3],
            title=f"Database check {i}" if i % 4 == 0 else f"Run number {i}",
            description="connection refused" if i % 7 == 0 else "",
            severity=("debug", "info", "warning", "error", "critical")[i % 5],
            tags=["ci", f"shard-{i % 3}"] + (["flaky"] if i % 6 == 0 else []),
            correlation_id=f"trace-{system}-{i % 4}",
            source_component=("api", "worker", None)[i % 3],
            duration_ms=None if i % 8 == 0 else i * 7,
            timestamp=now - timedelta(minutes=n - i),
            data={"i": i},
        )
        ids.append(event.id)
    # The API's flush() returns None (no count, no flag); the test checks that value.
    assert await collector.flush(10) is None  # type: ignore[func-returns-value]
    return ids


async def test_whole_api_round_trips(remote: EventCollector, local: EventCollector) -> None:
    assert isinstance(remote.storage, HTTPStorage)
    system = unique_system()
    ids = await seed(remote, system, 120)
    stats = remote.storage.client_stats()
    assert stats["delivered"] == stats["emitted"] == 120

    def builders(target: EventCollector) -> list[EventQueryBuilder]:
        b = lambda: EventQueryBuilder(target).system(system)  # noqa: E731
        now = datetime.now(UTC)
        return [
            b(),
            b().event_type("test.failed"),
            b().severities(["error", "critical"]),
            b().min_severity("warning"),
            b().tags(["ci", "flaky"]),
            b().any_tags(["shard-1", "flaky"]),
            b().time_range(since=now - timedelta(minutes=60), until=now - timedelta(minutes=30)),
            b().correlation_id(f"trace-{system}-2"),
            b().source_component("worker"),
            b().source_components(["api", "worker"]),
            b().search("datab"),
            b().search("connection refused"),
            b().min_duration(300),
            b().ids(ids[5:9]),
            b().order_by("duration_ms", ascending=True),
            b().order_by("title").limit(17).offset(3),
            b().order_by("timestamp", ascending=True).limit(50).offset(60),
        ]

    for remote_q, local_q in zip(builders(remote), builders(local), strict=True):
        got = [e.id for e in await remote_q.execute()]
        want = [e.id for e in await local_q.execute()]
        assert got == want, remote_q.build()
        assert await remote_q.count() == await local_q.count()

    everything = Query(systems=(system,))
    for field in ("system", "event_type", "severity", "source_component", "hour"):
        assert await remote.group_count(everything, field) == await local.group_count(
            everything, field
        )
    assert await remote.duration_stats(everything) == await local.duration_stats(everything)
    got_event = await remote.get_event(ids[3])
    assert got_event is not None
    assert got_event == await local.get_event(ids[3])
    assert got_event.data == {"i": 3}

    analyzer, reference = EventAnalyzer(remote), EventAnalyzer(local)
    trace = f"trace-{system}-1"
    assert [e.id for e in await analyzer.trace_correlation(trace)] == [
        e.id for e in await reference.trace_correlation(trace)
    ]
    errors = await analyzer.analyze_errors(hours=24)
    assert errors["total_errors"] == (await reference.analyze_errors(hours=24))["total_errors"]
    assert (await analyzer.generate_report(hours=24)).keys()

    remote_stats, local_stats = await remote.get_statistics(), await local.get_statistics()
    assert remote_stats["by_system"][system] == 120
    assert remote_stats == local_stats

    health = await remote.health_check()
    assert health["status"] == "healthy"
    assert health["storage"]["server"]["status"] == "healthy"
    assert health["storage"]["client"]["delivered"] == 120


async def test_paging_beyond_the_server_page_size(
    remote: EventCollector, local: EventCollector
) -> None:
    system = unique_system()
    storage = remote.storage
    assert isinstance(storage, HTTPStorage)
    from eventcollector.model import Event

    now = datetime.now(UTC)
    events = [
        Event.create(
            system=system,
            event_type="test.run",
            title=f"e{i}",
            timestamp=now - timedelta(seconds=i // 3),  # ties: 3 events per timestamp
        )
        for i in range(2_500)
    ]
    storage.submit(events)
    assert await storage.flush(20)
    for query in (
        Query(systems=(system,)),
        Query(systems=(system,), limit=1_700),
        Query(systems=(system,), ascending=True, limit=2_100, offset=250),
        Query(systems=(system,), order_by="title", limit=1_200, offset=10),
    ):
        got = [e.id for e in await remote.query(query)]
        assert got == [e.id for e in await local.query(query)], query
        assert len(got) == min(query.limit or 2_500, 2_500 - query.offset)


async def test_bad_input_is_a_value_error_with_the_servers_message(
    remote: EventCollector,
) -> None:
    with pytest.raises(ValueError, match="field"):
        # Not a group field on purpose: the server's check under test.
        await remote.group_count(Query(), "bogus")  # type: ignore[arg-type]


async def test_cleanup_old_events_remotely(remote: EventCollector, local: EventCollector) -> None:
    system = unique_system()
    old = datetime.now(UTC) - timedelta(days=40)
    for _ in range(5):
        await remote.collect(system=system, event_type="test.run", title="old", timestamp=old)
    await remote.collect(system=system, event_type="test.run", title="new")
    await remote.flush(10)
    deleted = await remote.cleanup_old_events(30)
    assert deleted >= 5
    assert await local.count(Query(systems=(system,))) == 1


async def test_reads_raise_storage_unavailable_when_the_server_is_gone(
    spool_dir: Path,
) -> None:
    from _common import free_port

    collector = EventCollector(url=f"http://127.0.0.1:{free_port()}")
    try:
        await collector.collect(system="akosha", event_type="test.run", title="still fine")
        with pytest.raises(StorageUnavailable):
            await collector.count(Query())
        health = await collector.health_check()
        assert health["status"] == "unhealthy"
        assert "emitted=1" in health["error"]
    finally:
        await collector.stop()


def test_restart_loses_and_duplicates_nothing(tmp_path: Path, spool_dir: Path) -> None:
    (tmp_path / "srv").mkdir()
    server = Server(tmp_path / "srv", "--rate-limit", "0")
    storage = make_storage(server.url, spool_dir, batch_size=200)
    sent: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        from eventcollector.model import Event

        i = 0
        while not stop.is_set():
            event = Event.create(system="akosha", event_type="test.run", title=f"n{i}")
            storage.submit([event])
            sent.append(event.id)
            i += 1
            if i % 100 == 0:
                stop.wait(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        stop.wait(0.5)
        server.kill()  # SIGKILL mid-stream: some batches are in flight
        stop.wait(1.0)  # keep collecting while it is down: events spool
        assert storage.client_stats()["server_reachable"] is False
        server.start()
        stop.wait(0.5)
    finally:
        stop.set()
        producer.join()
    try:
        assert storage.flush_sync(30)
        stats = storage.client_stats()
        assert stats["delivered"] == stats["emitted"] == len(sent)
        assert stats["retries"] >= 1
        assert stats["dropped"] == stats["rejected"] == stats["spooled"] == 0
        stored = asyncio.run(_stored_ids(server.db))
        assert len(stored) == len(set(stored))
        assert set(stored) == set(sent)
    finally:
        storage.close_sync(5)
        server.stop()


async def _stored_ids(db: Path) -> list[str]:
    collector = EventCollector(db)
    try:
        return [e.id for e in await collector.query(Query(systems=("akosha",)))]
    finally:
        await collector.stop()


async def test_cleanup_with_a_filter_remotely(
    remote: EventCollector, local: EventCollector
) -> None:
    system = unique_system()
    old = datetime.now(UTC) - timedelta(days=40)
    for title in ("old noise", "old keep"):
        await remote.collect(system=system, event_type="test.run", title=title, timestamp=old)
    await remote.flush(10)
    node = parse_filter(f'system:{system} title:"old noise"')
    assert await remote.cleanup_old_events(30, where=node) == 1
    assert [e.title for e in await local.query(Query(systems=(system,)))] == ["old keep"]
