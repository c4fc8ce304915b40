"""Subscribers and live streams: delivery, isolation of failing and slow ones, filters."""

from __future__ import annotations

import asyncio
import logging
import threading
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
