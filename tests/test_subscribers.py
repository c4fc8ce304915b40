"""Subscribers and live streams: delivery, isolation of failing and slow ones, filters."""

from __future__ import annotations

import asyncio
import logging
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventcollector import Event, EventCollector, Query, Severity
from eventcollector._subscribers import Missed

WAIT = 10.0  # generous: only bounds a hang, never measures speed


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate()`` holds (polling), failing after a generous bound."""
    async with asyncio.timeout(WAIT):
        while not predicate():  # noqa: ASYNC110 - predicates span threads
            await asyncio.sleep(0.005)


async def collect_n(collector: EventCollector, n: int, **fields: Any) -> list[Event]:
    return [
        await collector.collect(
            **{"system": "mahavishnu", "event_type": "b", "title": f"event {i}", **fields}
        )
        for i in range(n)
    ]


async def test_sync_subscriber_receives_events(collector: EventCollector) -> None:
    received: list[Event] = []
    collector.subscribe(received.append)
    events = await collect_n(collector, 3)
    await eventually(lambda: len(received) == 3)
    assert received == events
    assert collector.subscriber_count == 1


async def test_async_subscriber_receives_events(collector: EventCollector) -> None:
    received: list[Event] = []

    async def subscriber(event: Event) -> None:
        received.append(event)

    collector.subscribe(subscriber)
    events = await collect_n(collector, 3)
    await eventually(lambda: len(received) == 3)
    assert received == events


async def test_subscriber_registered_before_start(db_path: Path) -> None:
    received: list[Event] = []

    async def subscriber(event: Event) -> None:
        received.append(event)

    collector = EventCollector(db_path)
    collector.subscribe(subscriber)
    try:
        event = await collector.collect(system="a", event_type="b", title="lazy")
        await eventually(lambda: received == [event])
    finally:
        await collector.stop()


async def test_duplicates_are_not_published(
    collector: EventCollector, make_event: Callable[..., Event]
) -> None:
    received: list[Event] = []
    collector.subscribe(received.append)
    event = make_event()
    await collector.ingest([event])
    await collector.ingest([event])
    marker = await collector.collect(system="a", event_type="b", title="marker")
    await eventually(lambda: marker in received)
    assert received == [event, marker]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_raising_subscriber_is_logged_and_isolated(
    collector: EventCollector, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    good: list[Event] = []

    def boom_sync(event: Event) -> None:
        raise RuntimeError(f"boom {event.title}")

    async def boom_async(event: Event) -> None:
        raise RuntimeError(f"boom {event.title}")

    collector.subscribe(boom_sync if kind == "sync" else boom_async)
    collector.subscribe(good.append)
    with caplog.at_level(logging.ERROR, logger="eventcollector"):
        events = await collect_n(collector, 3)
        await eventually(lambda: len(good) == 3)
        await eventually(lambda: len(caplog.records) >= 3)
    assert good == events
    assert await collector.count(Query()) == 3
    failures = [r for r in caplog.records if r.exc_info and "boom" in str(r.exc_info[1])]
    assert len(failures) == 3
    assert (await collector.health_check())["status"] == "healthy"


async def test_slow_async_subscriber_does_not_hold_up_collect(collector: EventCollector) -> None:
    gate = asyncio.Event()
    received: list[Event] = []

    async def slow(event: Event) -> None:
        await gate.wait()
        received.append(event)

    collector.subscribe(slow)
    events = await collect_n(collector, 50)  # completes while the subscriber is stuck
    assert received == []
    assert await collector.count(Query()) == 50
    gate.set()
    await eventually(lambda: len(received) == 50)
    assert received == events


async def test_blocking_sync_subscriber_does_not_hold_up_collect(
    collector: EventCollector,
) -> None:
    gate = threading.Event()
    received: list[Event] = []

    def blocking(event: Event) -> None:
        gate.wait()
        received.append(event)

    collector.subscribe(blocking)
    try:
        events = await collect_n(collector, 50)
        assert received == []
        assert await collector.count(Query()) == 50
    finally:
        gate.set()
    await eventually(lambda: len(received) == 50)
    assert received == events


async def test_unsubscribe(collector: EventCollector) -> None:
    received: list[Event] = []
    kept: list[Event] = []
    collector.subscribe(received.append)
    collector.subscribe(kept.append)
    first = await collector.collect(system="a", event_type="b", title="first")
    await eventually(lambda: received == [first])
    assert collector.unsubscribe(received.append) is True
    assert collector.unsubscribe(received.append) is False
    second = await collector.collect(system="a", event_type="b", title="second")
    await eventually(lambda: kept == [first, second])
    assert received == [first]
    assert collector.subscriber_count == 1


async def test_subscription_with_a_query_filter(collector: EventCollector) -> None:
    errors: list[Event] = []
    everything: list[Event] = []
    collector.subscribe(errors.append, Query(severities=("error", "critical")))
    collector.subscribe(everything.append)
    await collect_n(collector, 2)
    error = await collector.collect(system="a", event_type="b", title="bad", severity="error")
    await eventually(lambda: len(everything) == 3)
    await eventually(lambda: errors == [error])
    assert all(e.severity in (Severity.ERROR, Severity.CRITICAL) for e in errors)


def test_subscribe_rejects_non_callables(db_path: Path) -> None:
    collector = EventCollector(db_path)
    with pytest.raises(ValueError, match=r"^subscriber: "):
        # A wrong type on purpose: the check under test.
        collector.subscribe("not callable")  # type: ignore[arg-type]


# -- streams -------------------------------------------------------------------


async def test_stream_yields_events(collector: EventCollector) -> None:
    stream = collector.open_stream(Query(systems=("akosha",)), maxsize=10)
    await collector.collect(system="mahavishnu", event_type="b", title="filtered out")
    wanted = await collector.collect(system="akosha", event_type="b", title="wanted")
    items = stream.__aiter__()
    assert await anext(items) == wanted
    collector.close_stream(stream)
    assert [item async for item in items] == []


async def test_stream_reports_missed_events_when_the_consumer_lags(
    collector: EventCollector,
) -> None:
    stream = collector.open_stream(maxsize=2)
    first = await collect_n(collector, 5)  # the consumer reads nothing meanwhile
    assert stream.missed == 3
    items = stream.__aiter__()
    backlog = [await anext(items) for _ in range(3)]
    assert Missed(3) in backlog
    assert [i for i in backlog if isinstance(i, Event)] == first[:2]
    later = await collector.collect(system="a", event_type="b", title="later")
    assert await anext(items) == later
    assert (await collector.health_check())["subscriber_dropped"] == 3
    collector.close_stream(stream)


async def test_stop_closes_streams(db_path: Path) -> None:
    collector = EventCollector(db_path)
    await collector.start()
    stream = collector.open_stream()
    event = await collector.collect(system="a", event_type="b", title="t")
    await collector.stop()
    assert [item async for item in stream] == [event]


async def test_json_streams_share_one_encoding_and_bound_bytes(collector: EventCollector) -> None:
    size = len(Event.create(system="a", event_type="b", title="t" * 500).to_json())
    roomy = collector.open_json_stream(None, maxsize=100, max_bytes=10 * size)
    tight = collector.open_json_stream(None, maxsize=100, max_bytes=int(2.5 * size))
    picky = collector.open_json_stream(Query(systems=("akosha",)), maxsize=100, max_bytes=10**6)
    events = [
        await collector.collect(system="a", event_type="b", title="t" * 500, id=f"j-{i}")
        for i in range(4)
    ]
    assert (roomy.missed, tight.missed, picky.missed) == (0, 2, 0)
    assert tight.queued_bytes == 2 * len(events[0].to_json())
    wide, narrow = roomy.__aiter__(), tight.__aiter__()
    got = [await anext(wide) for _ in range(4)]
    assert got == [e.to_json() for e in events]
    assert await anext(narrow) == Missed(2)  # told first, as for event streams
    first = await anext(narrow)
    assert first is got[0]  # encoded once for both streams
    assert tight.queued_bytes == len(events[1].to_json())
    await anext(narrow)  # taken items make room again
    assert tight.queued_bytes == 0
    later = await collector.collect(system="akosha", event_type="b", title="later")
    assert await anext(narrow) == later.to_json()
    assert await anext(picky.__aiter__()) == later.to_json()
    assert (await collector.health_check())["subscriber_dropped"] == 2
    for stream in (roomy, tight, picky):
        collector.close_stream(stream)
    assert collector.subscriber_count == 0


def test_json_stream_refuses_a_byte_bound_below_one(db_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        EventCollector(db_path).open_json_stream(None, maxsize=1, max_bytes=0)


async def test_json_streams_hold_no_more_memory_than_their_bytes(
    collector: EventCollector,
) -> None:
    stream = collector.open_json_stream(None, maxsize=1_000, max_bytes=10**8)
    events = [
        Event.create(system="a", event_type="b", title="t", description=f"{i}" + "d" * 4_000)
        for i in range(200)
    ]
    tracemalloc.start()
    try:
        await collector.ingest(events)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.queued_bytes > 200 * 4_000
    assert held < 1.5 * stream.queued_bytes  # orjson's own bytes held 32 KiB each here
    collector.close_stream(stream)
