"""The ingest pipeline: batching of concurrent calls, commit futures, backpressure.

Every ``ingest()`` call made in one loop iteration joins one batch; the batch is
sealed when the loop comes round and handed to the store as one write. Per call
that saves a write job, a future and a thread hand-off, most of the cost of a
``collect()`` or of a single-event HTTP request.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from eventcollector.model import Event
from eventcollector.storage.base import EnqueueAppend, QueuedStore, Storage, StorageError

__all__ = ["IngestPipeline", "QueueFull", "WriteBatch", "batch_writer", "running_loop"]

#: Starts the write of one sealed batch; its future gives per event "stored as new".
WriteBatch = Callable[[list[Event]], "asyncio.Future[list[bool]]"]


class QueueFull(RuntimeError):
    """The ingest queue is at its bound; retry later."""


def batch_writer(storage: Storage | QueuedStore) -> WriteBatch:
    """How a sealed batch reaches ``storage``: the one place that looks at its kind.

    A queued store (the remote client) takes events for later delivery and cannot
    tell duplicates, so every event reads as new. A store that can queue without
    awaiting gets the batch synchronously (measured: several µs of CPU per event
    less than a task and a loop iteration in between).
    """
    if isinstance(storage, QueuedStore):
        return partial(_submitted, storage)
    if isinstance(storage, EnqueueAppend):
        return storage.enqueue_append
    return partial(_append_task, storage)


def _submitted(storage: QueuedStore, events: list[Event]) -> asyncio.Future[list[bool]]:
    storage.submit(events)
    done: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
    done.set_result([True] * len(events))
    return done


def _append_task(storage: Storage, events: list[Event]) -> asyncio.Future[list[bool]]:
    return asyncio.get_running_loop().create_task(storage.append(events))


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


class IngestPipeline:
    """Batches ``ingest()`` calls into writes, bounded by ``max_pending`` events.

    ``publish`` is called with the events a write stored as new, before their
    callers resume.
    """

    def __init__(
        self, write: WriteBatch, publish: Callable[[list[Event]], None], max_pending: int
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending: must be at least 1")
        self.max_pending = max_pending
        self.pending = 0
        self.counters: Counter[str] = Counter()
        #: Writes not yet settled; the collector waits for them before closing the store.
        self.writes: set[asyncio.Future[Any]] = set()
        self._write = write
        self._publish = publish
        self._open_batch: _Batch | None = None
        self._waiters: list[asyncio.Future[None]] = []
        #: The loop callers wait on; a caller on another loop (``emit`` from a thread's
        #: own loop) is not held back: the store's own queue absorbs it.
        self.home: asyncio.AbstractEventLoop | None = None

    async def ingest(self, events: Sequence[Event], *, wait: bool) -> list[bool]:
        n = len(events)
        while self.pending + n > self.max_pending and self.pending:
            if not wait:
                self.counters["rejected_queue_full"] += n
                raise QueueFull(f"ingest queue is full ({self.pending} of {self.max_pending})")
            if running_loop() is not self.home:
                break
            await self._wait_for_space()
        self.pending += n
        try:
            batch, start = self._join_batch(events)
            stored = await batch.done
        finally:
            self.pending -= n
            self._wake_waiters()
        return stored[start : start + n]

    async def _wait_for_space(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:  # cancelled before it was woken
                self._waiters.remove(waiter)

    def _wake_waiters(self) -> None:
        if not self._waiters:  # the common case, on every ingest
            return
        # Every waiter checks the bound again itself, as Condition.wait_for would.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            loop = waiter.get_loop()
            if running_loop() is loop:
                waiter.set_result(None)
            else:
                loop.call_soon_threadsafe(_wake, waiter)

    def _join_batch(self, events: Sequence[Event]) -> tuple[_Batch, int]:
        """Join the batch of ``ingest()`` calls made in this loop iteration; where ours start."""
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
        try:
            stored = self._write(batch.events)
        except Exception as exc:  # the storage is closed, say
            batch.done.set_exception(exc)
            return
        stored.add_done_callback(partial(self._committed, batch))
        self.writes.add(stored)
        stored.add_done_callback(self.writes.discard)

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
        self._publish(fresh)
        batch.done.set_result(stored)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, else None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
