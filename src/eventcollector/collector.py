"""``EventCollector``: validates, stores and fans out events; answers queries.

The collector sits above an injected ``Storage``. ``collect()`` returns once the
event is durable (for the embedded store) and only then offers it to
subscribers. It starts itself on first use, because the spec's examples call
``collect()`` on ``get_event_collector()`` without ``start()``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self

from eventcollector._subscribers import EventStream, Subscriber, SubscriberHub
from eventcollector.model import Event, EventType, Severity, System
from eventcollector.query import DurationStats, GroupField, Query, group_field
from eventcollector.storage import Storage, StorageError, open_storage
from eventcollector.storage.base import QueuedStore

__all__ = ["DEFAULT_MAX_PENDING", "EventCollector", "QueueFull"]

log = logging.getLogger("eventcollector")

#: Events accepted but not yet committed before ``collect()`` waits (or the server answers 503).
DEFAULT_MAX_PENDING = 100_000


class _CommitFuture(asyncio.Future[list[bool]]):
    """Shared by every caller of one batch: a cancelled caller must not cancel it for all.

    Refusing ``cancel`` makes a cancelled caller's task raise CancelledError once the
    batch is done, which is when its event has been handed over anyway.
    """

    def cancel(self, msg: Any = None) -> bool:
        return False


class _Batch:
    __slots__ = ("done", "events", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.events: list[Event] = []
        self.done = _CommitFuture(loop=loop)  # per event of ``events``: stored as new


class QueueFull(RuntimeError):
    """The ingest queue is at its bound; retry later."""


class EventCollector:
    """Collect events into a storage backend and query them back.

    ``EventCollector(db_path="data/events.db")`` uses embedded SQLite;
    ``db_path="postgresql://..."`` (or ``db_url=``) uses PostgreSQL;
    ``url="http://collector:8765"`` sends to a collector server;
    ``storage=`` injects any ``Storage``.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        storage: Storage | QueuedStore | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        targets = [t for t in (db_path, db_url, url, storage) if t is not None]
        if len(targets) > 1:
            raise ValueError("db_path, db_url, url and storage: give only one")
        if storage is None:
            if url is not None:
                storage = _remote_storage(url, api_key)
            else:
                from eventcollector.config import default_db_path

                storage = open_storage(db_path or db_url or default_db_path())
        if max_pending < 1:
            raise ValueError("max_pending: must be at least 1")
        self._storage: Storage | QueuedStore = storage
        # Checked once: isinstance against a runtime-checkable protocol costs ~25 µs.
        self._queued: QueuedStore | None = None
        self._durable: Storage | None = None
        if isinstance(storage, QueuedStore):
            self._queued = storage
        else:
            self._durable = storage
        self.max_pending = max_pending
        self._hub = SubscriberHub()
        self._running = False
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0
        self._space: asyncio.Condition | None = None
        self._started_at: float | None = None
        self._background: set[asyncio.Future[Any]] = set()
        self._open_batch: _Batch | None = None
        self.counters: Counter[str] = Counter()
        self._drain_at_exit = False

    @property
    def storage(self) -> Storage | QueuedStore:
        """The backend this collector writes to."""
        return self._storage

    @property
    def db_path(self) -> str:
        """The file path for SQLite, else the storage URL."""
        return str(getattr(self._storage, "path", self._storage.url))

    @property
    def running(self) -> bool:
        return self._running

    @property
    def pending(self) -> int:
        """Events accepted but not yet committed."""
        return self._pending

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Open the storage and start delivering to subscribers; safe to call twice."""
        if self._running:
            return
        await self._storage.open()
        with self._start_lock:
            if self._running:
                return
            self._loop = asyncio.get_running_loop()
            self._space = asyncio.Condition()
            self._hub.bind(self._loop)
            self._started_at = time.monotonic()
            self._running = True
        # Backends shared by several servers (PostgreSQL) feed in events stored elsewhere.
        listen = getattr(self._storage, "listen", None)
        if listen is not None:
            await listen(self._hub.publish)

    async def stop(self) -> None:
        """Wait for accepted events to be stored, stop subscribers, close the storage."""
        if not self._running:
            return
        if self._background:  # while still running, so that they do not restart it
            await asyncio.gather(*self._background, return_exceptions=True)
        self._running = False
        await self._hub.close()
        await self._storage.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _ensure_started(self) -> None:
        if not self._running:
            await self.start()

    # -- ingest --------------------------------------------------------------

    async def collect(
        self,
        system: System | str,
        event_type: EventType | str,
        title: str,
        severity: Severity | str = Severity.INFO,
        description: str = "",
        data: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        correlation_id: str | None = None,
        source_component: str | None = None,
        duration_ms: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | str | None = None,
        id: str | None = None,
    ) -> Event:
        """Validate, store and publish one event; returns it once it is durable.

        Raises ``ValueError`` naming the field for invalid input.
        """
        event = Event.create(
            system=system,
            event_type=event_type,
            title=title,
            severity=severity,
            description=description,
            data=data,
            tags=tags,
            correlation_id=correlation_id,
            source_component=source_component,
            duration_ms=duration_ms,
            metadata=metadata,
            timestamp=timestamp,
            id=id,
        )
        await self.ingest((event,))
        return event

    async def ingest(self, events: Sequence[Event], *, wait: bool = True) -> list[bool]:
        """Store validated events; per event True if new, False if a duplicate id.

        With ``wait=False`` a full queue raises ``QueueFull`` instead of waiting.
        """
        if not events:
            return []
        if not self._running:
            await self.start()
        n = len(events)
        if self._pending + n > self.max_pending and self._pending:
            if not wait:
                self.counters["rejected_queue_full"] += n
                raise QueueFull(f"ingest queue is full ({self._pending} of {self.max_pending})")
            await self._wait_for_space(n)
        self._pending += n
        try:
            batch, start = self._join_batch(events)
            stored = await batch.done
        finally:
            self._pending -= n
            self._notify_space()
        return stored[start : start + n]

    def _join_batch(self, events: Sequence[Event]) -> tuple[_Batch, int]:
        """Join the batch of ``ingest()`` calls made in this loop iteration; where ours start.

        One append and one future serve the whole batch: per call that saves a write
        job, a future and a thread hand-off, most of the cost of a ``collect()`` or of
        a single-event HTTP request.
        """
        loop = asyncio.get_running_loop()
        batch = self._open_batch
        if batch is None or batch.loop is not loop:
            batch = self._open_batch = _Batch(loop)
            loop.call_soon(self._seal, batch)
        start = len(batch.events)
        batch.events.extend(events)
        return batch, start

    def _seal(self, batch: _Batch) -> None:
        if self._open_batch is batch:
            self._open_batch = None
        if self._queued is not None:  # delivered later: nothing to wait for, no duplicates known
            try:
                self._queued.submit(batch.events)
            except Exception as exc:
                batch.done.set_exception(exc)
                return
            self._finish(batch, [True] * len(batch.events))
            return
        storage = self._durable
        assert storage is not None
        # A storage that can queue without awaiting gets the batch now (no task, no loop
        # iteration in between: measured, several µs of CPU per event less).
        enqueue = getattr(self._storage, "enqueue_append", None)
        try:
            stored: asyncio.Future[list[bool]] = (
                batch.loop.create_task(storage.append(batch.events))
                if enqueue is None
                else enqueue(batch.events)
            )
        except Exception as exc:  # the storage is closed, say
            batch.done.set_exception(exc)
            return
        stored.add_done_callback(partial(self._committed, batch))
        self._background.add(stored)
        stored.add_done_callback(self._background.discard)

    def _committed(self, batch: _Batch, stored: asyncio.Future[list[bool]]) -> None:
        if stored.cancelled():
            batch.done.set_exception(StorageError("the write was cancelled"))
        elif (exc := stored.exception()) is not None:
            batch.done.set_exception(exc)
        else:
            self._finish(batch, stored.result())

    def _finish(self, batch: _Batch, stored: list[bool]) -> None:
        events = batch.events
        fresh = events if all(stored) else [e for e, new in zip(events, stored, strict=True) if new]
        self.counters["accepted"] += len(fresh)
        self.counters["duplicates"] += len(events) - len(fresh)
        self._hub.publish(fresh)
        batch.done.set_result(stored)

    async def _wait_for_space(self, n: int) -> None:
        space = self._space
        if space is None or asyncio.get_running_loop() is not self._loop:
            return  # another loop: the storage's own queue absorbs it
        async with space:
            await space.wait_for(lambda: self._pending + n <= self.max_pending or not self._pending)

    def _notify_space(self) -> None:
        space = self._space
        if space is None or not space._waiters or self._loop is None:  # cheap checks first
            return
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            task = self._loop.create_task(_notify(space))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def emit(self, **fields: Any) -> Event:
        """Record an event without waiting: validates now, stores in the background.

        For synchronous code; thread-safe. Raises ``ValueError`` for invalid input.
        Call ``await collector.stop()`` (or ``flush()``) to wait for what was emitted.
        """
        event = Event.create(**fields)
        loop = self._loop
        if loop is None or loop.is_closed() or not self._running:
            loop = _background_loop()
            asyncio.run_coroutine_threadsafe(self._ensure_started(), loop).result()
            if not self._drain_at_exit:
                self._drain_at_exit = True
                atexit.register(self._drain_sync, loop)
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            # Spawn now: a callback scheduled for later would be missed by an
            # immediate flush() or stop() on this loop.
            self._spawn_ingest(event)
        else:
            loop.call_soon_threadsafe(self._spawn_ingest, event)
        return event

    def _spawn_ingest(self, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(self.ingest([event]))
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.counters["emit_failures"] += 1
            log.error("could not store an emitted event: %s", task.exception())

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until events accepted so far (including ``emit``-ted ones) are stored."""
        loop = self._loop
        if loop is not None and loop is not asyncio.get_running_loop() and loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._drain(timeout), loop))
        else:
            await self._drain(timeout)
        flush_storage = getattr(self._storage, "flush", None)
        if flush_storage is not None:
            await flush_storage(timeout)

    def _drain_sync(self, loop: asyncio.AbstractEventLoop, timeout: float = 10.0) -> None:
        if not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._drain(timeout), loop).result(timeout + 1)

    async def _drain(self, timeout: float | None) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)

    # -- subscribers ---------------------------------------------------------

    def subscribe(self, callback: Subscriber, query: Query | None = None) -> None:
        """Call ``callback(event)`` for each new event (sync or async; errors are logged)."""
        self._hub.subscribe(callback, query)

    def unsubscribe(self, callback: Subscriber) -> bool:
        """Stop calling ``callback``; False if it was not subscribed."""
        return self._hub.unsubscribe(callback)

    def open_stream(self, query: Query | None = None, maxsize: int = 10_000) -> EventStream:
        """A bounded async iterator of new events matching ``query`` (for live streams)."""
        return self._hub.open_stream(query, maxsize)

    def close_stream(self, stream: EventStream) -> None:
        self._hub.close_stream(stream)

    @property
    def subscriber_count(self) -> int:
        return self._hub.count

    # -- reads ---------------------------------------------------------------

    async def query(self, query: Query) -> list[Event]:
        """Events matching a ``Query`` (see ``EventQueryBuilder`` for the fluent form)."""
        await self._ensure_started()
        return await self._storage.query(query)

    async def count(self, query: Query) -> int:
        await self._ensure_started()
        return await self._storage.count(query)

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        field = group_field(field)
        await self._ensure_started()
        return await self._storage.group_count(query, field)

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        await self._ensure_started()
        return await self._storage.duration_stats(query, percentiles=percentiles)

    async def get_event(self, event_id: str) -> Event | None:
        """The event with this id, or None."""
        found = await self.query(Query(ids=(event_id,), limit=1))
        return found[0] if found else None

    async def get_statistics(self) -> dict[str, Any]:
        """Totals: the spec's keys plus ``by_event_type``."""
        await self._ensure_started()
        everything = Query()
        last_hour = Query(since=datetime.now(UTC) - timedelta(hours=1))
        by_system, by_severity, by_type, last_hour_count = await asyncio.gather(
            self._storage.group_count(everything, "system"),
            self._storage.group_count(everything, "severity"),
            self._storage.group_count(everything, "event_type"),
            self._storage.count(last_hour),
        )
        return {
            "total_events": sum(by_system.values()),
            "by_system": by_system,
            "by_severity": by_severity,
            "by_event_type": by_type,
            "last_hour_count": last_hour_count,
        }

    async def health_check(self) -> dict[str, Any]:
        """Status ("healthy"/"unhealthy"), the spec's keys, storage details and counters."""
        report: dict[str, Any] = {
            "status": "healthy",
            "running": self._running,
            "db_path": self.db_path,
            "subscriber_count": self._hub.count,
            "pending_events": self._pending,
            "events_accepted": self.counters["accepted"],
            "events_duplicate": self.counters["duplicates"],
            "subscriber_dropped": self._hub.dropped,
        }
        try:
            await self._ensure_started()
            report["running"] = self._running
            if self._started_at is not None:
                report["uptime_seconds"] = round(time.monotonic() - self._started_at, 3)
            report["storage"] = await self._storage.health()
        except (StorageError, OSError, ValueError) as exc:
            report["status"] = "unhealthy"
            report["error"] = str(exc)
            # A remote client's delivery counters matter most while its server is down.
            client_stats = getattr(self._storage, "client_stats", None)
            if client_stats is not None:
                report["client"] = client_stats()
        return report

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None
    ) -> int:
        """Delete events older than ``retention_days`` before ``now``; returns how many.

        Pass ``now`` to delete exactly what an archive taken with the same cutoff holds.
        """
        await self._ensure_started()
        if now is None:
            return await self._storage.cleanup_old_events(retention_days)
        return await self._storage.cleanup_old_events(retention_days, now=now)


async def _notify(space: asyncio.Condition) -> None:
    async with space:
        space.notify_all()


def _remote_storage(url: str, api_key: str | None) -> QueuedStore:
    try:
        module = importlib.import_module("eventcollector.client")
        client_class = module.HTTPStorage
    except ImportError as exc:
        raise ImportError(
            "sending to a collector server needs the 'client' extra: "
            f"pip install 'eventcollector[client]' ({exc})"
        ) from exc
    storage: QueuedStore = client_class(url, api_key=api_key)
    return storage


_background: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """A private event loop on a daemon thread, for ``emit`` from code without one."""
    global _background
    with _background_lock:
        if _background is None or _background.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="eventcollector-loop", daemon=True
            ).start()
            _background = loop
        return _background
