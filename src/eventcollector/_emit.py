"""The bridge from synchronous code into the collector's loop (``EventCollector.emit``).

Code without an event loop (a logging handler, a script) records events without
waiting: the event is validated on the caller's thread, then stored by a task on
the collector's loop. With no loop running, a private loop on a daemon thread
serves, and its tasks are drained at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from eventcollector._pipeline import running_loop
from eventcollector.model import Event

__all__ = ["EmitBridge"]

log = logging.getLogger("eventcollector")

#: Seconds the exit hook waits for emitted events to be stored.
_EXIT_DRAIN_SECONDS = 10.0


class EmitBridge:
    """Runs one ``ingest`` task per emitted event on the collector's loop."""

    def __init__(
        self,
        ingest: Callable[[list[Event]], Coroutine[Any, Any, Any]],
        start: Callable[[], Coroutine[Any, Any, None]],
        home_loop: Callable[[], asyncio.AbstractEventLoop | None],
        counters: Counter[str],
    ) -> None:
        self._ingest = ingest
        self._start = start
        self._home_loop = home_loop  # the running collector's loop, else None
        self._counters = counters
        #: Emitted events not yet stored.
        self.tasks: set[asyncio.Future[Any]] = set()
        self._drain_at_exit = False

    def emit(self, event: Event) -> None:
        loop = self._home_loop()
        if loop is None:
            loop = _background_loop()
            asyncio.run_coroutine_threadsafe(self._start(), loop).result()
            if not self._drain_at_exit:
                self._drain_at_exit = True
                atexit.register(self._drain_sync, loop)
        if running_loop() is loop:
            # Spawn now: a callback scheduled for later would be missed by an
            # immediate flush() or stop() on this loop.
            self._spawn(event)
        else:
            loop.call_soon_threadsafe(self._spawn, event)

    def _spawn(self, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(self._ingest([event]))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._counters["emit_failures"] += 1
            log.error("could not store an emitted event: %s", task.exception())

    def _drain_sync(self, loop: asyncio.AbstractEventLoop) -> None:
        if not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._wait(), loop).result(_EXIT_DRAIN_SECONDS + 1)

    async def _wait(self) -> None:
        # Read the tasks on the loop, not on the exiting thread: the last emits' _spawn
        # callbacks may still be queued, and they run before this coroutine (FIFO).
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=_EXIT_DRAIN_SECONDS)
            if pending:
                log.error(
                    "%d emitted events were not stored within %.0f s of exit",
                    len(pending),
                    _EXIT_DRAIN_SECONDS,
                )


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
