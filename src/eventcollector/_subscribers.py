"""Fan-out of committed events to subscribers, isolated from ingest.

Each subscriber has its own bounded queue. Publishing only enqueues (never
awaits a subscriber), so a slow or failing subscriber cannot stop or slow
ingestion: its queue fills, further events for it are dropped and counted, and
its exceptions are logged. Async callables run as tasks on the collector's loop;
plain callables run on a thread of their own, so one that blocks does not stall
the loop either.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from eventcollector.model import Event
from eventcollector.query import Query

log = logging.getLogger("eventcollector.subscribers")

Subscriber = Callable[[Event], Awaitable[Any] | Any]

DEFAULT_QUEUE_SIZE = 100_000
T = TypeVar("T", Event, bytes)
_DROP_LOG_INTERVAL = 10.0


def _is_async(callback: Subscriber) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - async callable objects
    )


class _CallbackSubscriber:
    """One callback with its queue and its worker (a task or a thread)."""

    def __init__(self, callback: Subscriber, query: Query | None, maxsize: int) -> None:
        self.callback = callback
        self.query = query
        self.dropped = 0
        self.failures = 0
        self._last_drop_log = 0.0
        self._is_async = _is_async(callback)
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._maxsize = maxsize
        self._aqueue: asyncio.Queue[Event | None] | None = None
        self._tqueue: queue.Queue[Event | None] | None = None
        if not self._is_async:
            self._tqueue = queue.Queue(maxsize)
            self._thread = threading.Thread(
                target=self._run_thread, name="eventcollector-subscriber", daemon=True
            )
            self._thread.start()

    def start_on_loop(self) -> None:
        """Start an async subscriber's task; call on the collector's loop."""
        if self._is_async and self._task is None:
            self._aqueue = asyncio.Queue(self._maxsize)
            self._task = asyncio.get_running_loop().create_task(self._run_async())

    def offer(self, event: Event) -> None:
        if self.query is not None and not self.query.matches(event):
            return
        try:
            if self._aqueue is not None:
                self._aqueue.put_nowait(event)
            elif self._tqueue is not None:
                self._tqueue.put_nowait(event)
        except (asyncio.QueueFull, queue.Full):
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log > _DROP_LOG_INTERVAL:
                self._last_drop_log = now
                log.warning(
                    "subscriber %r is too slow: %d events dropped so far",
                    self.callback,
                    self.dropped,
                )

    def _failed(self) -> None:
        self.failures += 1
        log.exception("subscriber %r raised; it stays subscribed", self.callback)

    async def _run_async(self) -> None:
        assert self._aqueue is not None
        while (event := await self._aqueue.get()) is not None:
            try:
                await self.callback(event)
            except Exception:
                self._failed()

    def _run_thread(self) -> None:
        assert self._tqueue is not None
        while (event := self._tqueue.get()) is not None:
            try:
                self.callback(event)
            except Exception:
                self._failed()

    async def close(self, timeout: float) -> None:
        """Let the worker finish what is queued (up to ``timeout``), then stop it."""
        if self._aqueue is not None and self._task is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._aqueue.put_nowait(None)
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
        elif self._tqueue is not None and self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._tqueue.put_nowait(None)
            await asyncio.to_thread(self._thread.join, timeout)


@dataclass(slots=True)
class Missed:
    """Marks that a stream dropped ``count`` events because its consumer lagged."""

    count: int


class _Stream(Generic[T]):
    """A bounded live feed for one consumer: when the consumer falls more than
    ``maxsize`` items behind, newer ones are dropped and the next item it reads is
    ``Missed(count)``."""

    def __init__(self, query: Query | None, maxsize: int) -> None:
        self.query = query
        self.missed = 0
        self.closed = False
        self._queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize)
        self._missed_unreported = 0

    def wants(self, event: Event) -> bool:
        return not self.closed and (self.query is None or self.query.matches(event))

    def _put(self, item: T) -> bool:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.miss()
            return False
        return True

    def miss(self) -> None:
        self.missed += 1
        self._missed_unreported += 1

    def _taken(self, item: T) -> None:
        """Called as the consumer takes ``item``."""

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[T | Missed]:
        while not self.closed or not self._queue.empty():
            if self._missed_unreported:
                yield Missed(self._missed_unreported)
                self._missed_unreported = 0
            item = await self._queue.get()
            if item is None:
                return
            self._taken(item)
            yield item


class EventStream(_Stream[Event]):
    """A bounded live feed of events (``tail``, an embedding application)."""

    def offer(self, event: Event) -> None:
        if self.wants(event):
            self._put(event)


class JsonStream(_Stream[bytes]):
    """A live feed of events as their JSON (the server's SSE and WebSocket streams),
    bounded in events and in bytes: a stalled consumer holds at most ``max_bytes``
    whatever the events' size, so the event bound can be high enough for a consumer
    that keeps up to get a whole large batch. Each event is encoded once for every
    stream that wants it (``SubscriberHub``)."""

    def __init__(self, query: Query | None, maxsize: int, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes: must be at least 1")
        super().__init__(query, maxsize)
        self.max_bytes = max_bytes
        self.queued_bytes = 0

    def full(self) -> bool:
        """No room for one more event: a stalled consumer's events are not even encoded."""
        return self.queued_bytes >= self.max_bytes or self._queue.full()

    def offer_encoded(self, encoded: bytes) -> None:
        if self.queued_bytes + len(encoded) > self.max_bytes:
            self.miss()
        elif self._put(encoded):
            self.queued_bytes += len(encoded)

    def _taken(self, item: bytes) -> None:
        self.queued_bytes -= len(item)


class SubscriberHub:
    """All subscribers of one collector; publishing is non-blocking."""

    def __init__(self) -> None:
        self._callbacks: dict[Subscriber, _CallbackSubscriber] = {}
        self._streams: set[EventStream] = set()
        self._json_streams: set[JsonStream] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run async subscribers on ``loop`` (the collector's); call on that loop."""
        self._loop = loop
        for sub in self._callbacks.values():
            sub.start_on_loop()

    @property
    def count(self) -> int:
        return len(self._callbacks) + len(self._streams) + len(self._json_streams)

    @property
    def dropped(self) -> int:
        streams: list[_Stream[Any]] = [*self._streams, *self._json_streams]
        return sum(s.dropped for s in self._callbacks.values()) + sum(s.missed for s in streams)

    def subscribe(
        self, callback: Subscriber, query: Query | None = None, maxsize: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        if not callable(callback):
            raise ValueError("subscriber: must be callable")
        if callback in self._callbacks:
            return
        sub = _CallbackSubscriber(callback, query, maxsize)
        self._callbacks[callback] = sub
        # Async subscribers start on the collector's loop, now or when it starts.
        if self._loop is not None:
            if _on_loop(self._loop):
                sub.start_on_loop()
            else:
                self._loop.call_soon_threadsafe(sub.start_on_loop)

    def unsubscribe(self, callback: Subscriber) -> bool:
        sub = self._callbacks.pop(callback, None)
        if sub is None:
            return False
        # Let it finish in the background; unsubscribe itself never waits.
        if sub._task is not None:
            sub._task.cancel()
        elif sub._tqueue is not None:
            with contextlib.suppress(queue.Full):
                sub._tqueue.put_nowait(None)
        return True

    def open_stream(self, query: Query | None, maxsize: int = DEFAULT_QUEUE_SIZE) -> EventStream:
        stream = EventStream(query, maxsize)
        self._streams.add(stream)
        return stream

    def open_json_stream(self, query: Query | None, maxsize: int, max_bytes: int) -> JsonStream:
        stream = JsonStream(query, maxsize, max_bytes)
        self._json_streams.add(stream)
        return stream

    def close_stream(self, stream: EventStream | JsonStream) -> None:
        stream.close()
        if isinstance(stream, JsonStream):
            self._json_streams.discard(stream)
        else:
            self._streams.discard(stream)

    def publish(self, events: Iterable[Event]) -> None:
        """Offer committed events to every subscriber, from any thread."""
        if not self._callbacks and not self._streams and not self._json_streams:
            return
        if self._loop is not None and not _on_loop(self._loop):
            try:
                self._loop.call_soon_threadsafe(self._offer, list(events))
            except RuntimeError:
                log.debug("collector loop is closed; not publishing")
            return
        self._offer(events)

    def _offer(self, events: Iterable[Event]) -> None:
        for event in events:
            for sub in tuple(self._callbacks.values()):
                sub.offer(event)
            for stream in tuple(self._streams):
                stream.offer(event)
            encoded = None
            for json_stream in tuple(self._json_streams):
                if not json_stream.wants(event):
                    continue
                if json_stream.full():
                    json_stream.miss()
                else:
                    # A copy of exactly its size: orjson's own bytes keep its whole
                    # output buffer (32 KiB for a 4 KiB event), and a stream holds them.
                    encoded = encoded or bytes(memoryview(event.to_json()))
                    json_stream.offer_encoded(encoded)

    async def close(self, timeout: float = 5.0) -> None:
        subs = list(self._callbacks.values())
        self._callbacks.clear()
        streams: list[EventStream | JsonStream] = [*self._streams, *self._json_streams]
        for stream in streams:
            self.close_stream(stream)
        await asyncio.gather(*(s.close(timeout) for s in subs))


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
