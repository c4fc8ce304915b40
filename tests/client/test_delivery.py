"""The write path against a real HTTP peer: batching, retries, spool, bounds, counters."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from _common import free_port, wait_until
from eventcollector.client import HTTPStorage
from eventcollector.client._delivery import event_line
from eventcollector.model import Event, EventType, Severity, System

from ._support import Peer, make_storage


def events(n: int, prefix: str = "e") -> list[Event]:
    return [
        Event.create(system="akosha", event_type="test.run", title=f"{prefix} {i}")
        for i in range(n)
    ]


def balanced(stats: dict[str, Any]) -> bool:
    """emitted + recovered == delivered + rejected + dropped + spooled + buffered + in_flight."""
    parts = ("delivered", "rejected", "dropped", "spooled", "buffered", "in_flight")
    return bool(stats["emitted"] + stats["recovered"] == sum(stats[k] for k in parts))


@pytest.fixture
def storages() -> Iterator[list[HTTPStorage]]:
    """Clients made by a test, closed after it whatever happens."""
    made: list[HTTPStorage] = []
    yield made
    for storage in made:
        storage.close_sync(1.0)


def test_batched_gzip_ndjson_in_order_with_the_key(
    peer: Peer, spool_dir: Path, storages: list[HTTPStorage]
) -> None:
    storage = make_storage(peer.url, spool_dir, api_key="eck_k_secret", batch_size=300)
    storages.append(storage)
    sent = events(1_000)
    for event in sent:
        storage.submit([event])
    assert storage.flush_sync(10)
    assert peer.ids() == [e.id for e in sent]
    log = peer.state()["log"]
    assert all(entry["n"] <= 300 for entry in log)
    assert {entry["encoding"] for entry in log} == {"gzip"}
    assert {entry["auth"] for entry in log} == {"Bearer eck_k_secret"}
    stats = storage.client_stats()
    assert stats["emitted"] == stats["delivered"] == 1_000
    assert balanced(stats)


def test_submit_never_waits_for_a_slow_server(
    peer: Peer, spool_dir: Path, storages: list[HTTPStorage]
) -> None:
    peer.script(delay=0.3)
    storage = make_storage(peer.url, spool_dir, batch_size=500)
    storages.append(storage)
    sent = events(2_000)
    start = time.perf_counter()
    for event in sent:
        storage.submit([event])
    assert time.perf_counter() - start < 0.5
    assert storage.flush_sync(20)
    assert sorted(peer.ids()) == sorted(e.id for e in sent)


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_retryable_statuses_are_retried(
    peer: Peer, spool_dir: Path, storages: list[HTTPStorage], status: int
) -> None:
    peer.script({"status": status, "times": 2})
    storage = make_storage(peer.url, spool_dir)
    storages.append(storage)
    sent = events(20)
    storage.submit(sent)
    assert storage.flush_sync(10)
    assert peer.ids() == [e.id for e in sent]
    assert [entry["status"] for entry in peer.state()["log"]] == [status, status, 200]
    stats = storage.client_stats()
    assert stats["retries"] == 2
    assert stats["delivered"] == 20
    assert balanced(stats)


@pytest.mark.parametrize("status", [500, 401, 403, 404, 415])
def test_other_failures_are_not_retried_but_counted(
    peer: Peer, spool_dir: Path, storages: list[HTTPStorage], status: int
) -> None:
    peer.script({"status": status})
    storage = make_storage(peer.url, spool_dir)
    storages.append(storage)
    storage.submit(events(10))
    assert storage.flush_sync(10)
    stats = storage.client_stats()
    assert stats["rejected"] == 10
    assert stats["rejected_by_reason"] == {f"http_{status}": 10}
    assert stats["retries"] == 0
    assert str(status) in stats["last_rejection"]
    later = events(5)
    storage.submit(later)
    assert storage.flush_sync(10)
    assert peer.ids() == [e.id for e in later]
    assert len(peer.state()["log"]) == 2  # one request each: nothing was retried
    assert balanced(storage.client_stats())


def test_retry_after_is_honoured_even_by_flush(
    peer: Peer, spool_dir: Path, storages: list[HTTPStorage]
) -> None:
    peer.script({"status": 503, "retry_after": "1", "times": 1})
    storage = make_storage(peer.url, spool_dir, backoff_base=0.01, backoff_max=0.02)
    storages.append(storage)
    storage.submit(events(3))
    assert storage.flush_sync(10)  # asks for an immediate try: must still wait 1 s
    log = peer.state()["log"]
    assert [entry["status"] for entry in log] == [503, 200]
    assert log[1]["t"] - log[0]["t"] >= 0.95


def test_events_the_server_refuses_are_counted_the_rest_delivered(
    peer: Peer, spool_dir: Path, storages: list[HTTPStorage]
) -> None:
    storage = make_storage(peer.url, spool_dir)
    storages.append(storage)
    good = events(4)
    # Built without validation, as a newer client version might send: the peer refuses it.
    bad = Event(
        id="bad-1",
        timestamp=datetime.now(UTC),
        system=System.AKOSHA,
        event_type=EventType.TEST_RUN,
        severity=Severity.INFO,
        title=" ",
    )
    storage.submit([*good[:2], bad, *good[2:]])
    assert storage.flush_sync(10)
    assert peer.ids() == [e.id for e in good]
    stats = storage.client_stats()
    assert (stats["delivered"], stats["rejected"]) == (4, 1)
    assert "title" in stats["last_rejection"]


def test_too_large_batches_are_split(
    peer: Peer, spool_dir: Path, storages: list[HTTPStorage]
) -> None:
    peer.script({"status": 413, "times": 1})
    storage = make_storage(peer.url, spool_dir)
    storages.append(storage)
    sent = events(10)
    storage.submit(sent)
    assert storage.flush_sync(10)
    assert peer.ids() == [e.id for e in sent]
    assert [entry["n"] for entry in peer.state()["log"]] == [10, 5, 5]


def test_server_down_spools_then_replays_in_order(
    spool_dir: Path, storages: list[HTTPStorage]
) -> None:
    port = free_port()
    storage = make_storage(f"http://127.0.0.1:{port}", spool_dir)
    storages.append(storage)
    first = events(300, "down")
    for event in first:
        storage.submit([event])
    assert storage.flush_sync(0.5) is False  # refused until the deadline
    wait_until(lambda: storage.client_stats()["spooled"] == 300)  # parked on disk
    stats = storage.client_stats()
    assert not stats["server_reachable"]
    assert balanced(stats)
    peer = Peer(port)
    try:
        second = events(50, "up")
        storage.submit(second)
        assert storage.flush_sync(10)
        assert peer.ids() == [e.id for e in first + second]
        stats = storage.client_stats()
        assert (stats["delivered"], stats["spooled"], stats["spool_bytes"]) == (350, 0, 0)
        assert stats["server_reachable"]
    finally:
        peer.stop()


def test_spool_outlives_the_process_and_is_replayed_by_the_next(
    spool_dir: Path, storages: list[HTTPStorage]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = make_storage(url, spool_dir)
    sent = events(120)
    first.submit(sent)
    first.close_sync(3)  # server down: close parks everything in the spool
    stats = first.client_stats()
    assert (stats["spooled"], stats["dropped"]) == (120, 0)

    peer = Peer(port)
    try:
        second = make_storage(url, spool_dir)
        storages.append(second)
        second.submit(events(1, "new"))
        assert second.flush_sync(10)
        stats = second.client_stats()
        assert (stats["recovered"], stats["delivered"]) == (120, 121)
        assert peer.ids()[:120] == [e.id for e in sent]
    finally:
        peer.stop()


def test_full_buffer_without_spool_drops_newest_and_counts(storages: list[HTTPStorage]) -> None:
    storage = make_storage(f"http://127.0.0.1:{free_port()}", None, max_buffer=100)
    storages.append(storage)
    sent = events(1_000)
    for event in sent:
        storage.submit([event])
    stats = storage.client_stats()
    assert stats["dropped"] >= 800
    assert stats["dropped_by_reason"]["buffer_full"] == stats["dropped"]
    assert balanced(stats)


def test_full_spool_drops_newest_and_counts(spool_dir: Path, storages: list[HTTPStorage]) -> None:
    storage = make_storage(f"http://127.0.0.1:{free_port()}", spool_dir, spool_max_bytes=20_000)
    storages.append(storage)
    storage.submit(events(1_000))
    storage.close_sync(3)
    stats = storage.client_stats()
    assert 0 < stats["spooled"] < 1_000
    assert stats["spool_bytes"] <= 20_000
    assert stats["dropped_by_reason"].get("spool_full") == stats["dropped"]
    assert stats["spooled"] + stats["dropped"] == 1_000
    assert balanced(stats)


def test_closed_client_drops_and_counts(peer: Peer, spool_dir: Path) -> None:
    storage = make_storage(peer.url, spool_dir)
    storage.submit(events(2))
    storage.close_sync(5)
    storage.submit(events(3))
    stats = storage.client_stats()
    assert (stats["delivered"], stats["dropped"]) == (2, 3)
    assert stats["dropped_by_reason"] == {"closed": 3}
    wait_until(lambda: len(peer.ids()) == 2)


def test_event_lines_hold_no_more_memory_than_their_bytes() -> None:
    # orjson's bytes keep its output buffer (4 KiB for a 300-byte event); lines wait in
    # memory while the server is away, so each is a copy of its own size.
    events = [Event.create(system="akosha", event_type="t", title="x" * 300) for _ in range(500)]
    tracemalloc.start()
    try:
        lines = [event_line(e) for e in events]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1.5 * sum(len(line) for line in lines) + 64 * len(lines)
