"""The remote client's write path: a bounded buffer, a sender thread and a spooler thread.

``submit()`` only appends to an in-memory deque under a lock and returns; it never
touches the network or the disk, and never raises. Two daemon threads do the rest:

* the **sender** owns a synchronous ``httpx.Client`` and posts gzip'd NDJSON batches
  (size- or time-triggered; ``_delivery`` posts one and reads the answer), in the
  order ``DeliveryState.next_job`` picks, so events reach the server in the order they
  were submitted.
* the **spooler** (``_spooler``) moves the buffer to the spool file while the server
  is down (or the buffer is half full because the server is slow), so that a sender
  stuck in a request that will time out never makes the buffer overflow.

What they share (buffer, counters, spool, retry schedule) is one ``DeliveryState``
(``_state``, which also states the accounting). Threads, not an asyncio task: host
code may block its event loop, use several loops or none, and the events of a crashing
loop must still leave. Threads are also what the Sentry and OpenTelemetry SDKs use for
the same job. ``_process`` closes every sender at interpreter exit and resets them in
forked children.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from eventcollector.client import _process, _spooler
from eventcollector.client._delivery import deliver, event_line
from eventcollector.client._inside import INSIDE_CLIENT, log
from eventcollector.client._state import DeliveryState, Job, SenderConfig
from eventcollector.model import Event

__all__ = ["Sender", "SenderConfig"]


class Sender:
    """The write path of one ``HTTPStorage``; see the module docstring."""

    def __init__(self, config: SenderConfig) -> None:
        self.config = config
        self._state = DeliveryState(config)
        self._threads: list[threading.Thread] = []
        self._client: httpx.Client | None = None
        _process.track(self)

    # -- host side -----------------------------------------------------------

    def submit(self, events: Sequence[Event]) -> None:
        """Queue events for sending; never blocks on I/O, never raises for the network."""
        self._state.submit(events, self._start)

    def flush(self, timeout: float | None = None, *, patient: bool | None = None) -> bool:
        """Send what is buffered now; True once all is delivered (or refused for good).

        While the server fails, a ``patient`` flush (the default when a timeout is given)
        keeps retrying as long as the next retry is due before the timeout; otherwise it
        returns False once an attempt made after the call failed and everything else is
        in the spool. It tries at once, skipping our own backoff but never the server's
        Retry-After.
        """
        patient = timeout is not None if patient is None else patient
        return self._state.flush(timeout, patient=patient)

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush, then stop the threads; what is left goes to the spool or is dropped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self._state
        is_open, started = state.open_and_started()
        if not is_open:
            return
        if started:  # a down server is not waited for: the spool keeps the rest
            self.flush(timeout, patient=False)
        state.stop()
        for thread in list(self._threads):
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.1)
            thread.join(remaining)
        state.drop_unsent()

    def close_at_exit(self) -> None:
        """``close`` with the configured ``exit_timeout`` (interpreter exit)."""
        self.close(self.config.exit_timeout)

    def reopen(self) -> None:
        """Accept events again after ``close`` (the collector may be started twice)."""
        if not any(t.is_alive() for t in self._threads):
            self._state.reopen()

    def stats(self) -> dict[str, Any]:
        """The counters (see ``_state`` for how they add up)."""
        return self._state.stats()

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child: the parent's threads do not exist here."""
        client = self._client
        if client is not None:
            # Its sockets are the parent's; closing them here could disturb its connections
            # and its pool lock may be held by a thread that no longer exists. Keep it alive.
            _process.abandon(client)
        self._client = None
        self._threads = []
        self._state = self._state.for_forked_child()

    # -- threads -----------------------------------------------------------------

    def _start(self) -> int:
        """Start the sender and spooler threads (under the state's lock); how many."""
        state = self._state
        self._threads = [
            threading.Thread(
                target=self._run_sender, args=(state,), name="eventcollector-sender", daemon=True
            ),
            threading.Thread(
                target=_spooler.run, args=(state,), name="eventcollector-spooler", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        return len(self._threads)

    def _run_sender(self, state: DeliveryState) -> None:
        INSIDE_CLIENT.set(True)
        timeout = httpx.Timeout(self.config.timeout, connect=min(self.config.timeout, 5.0))
        client = httpx.Client(
            base_url=self.config.url,
            headers=self.config.headers,
            timeout=timeout,
            transport=self.config.transport,
        )
        self._client = client
        try:
            while (job := state.next_job()) is not None:
                _send(client, state, job)
        except Exception:  # a bug here must not leave the host's events silently stuck
            log.exception("eventcollector sender thread failed")
        finally:
            client.close()
            state.thread_done()


def _send(client: httpx.Client, state: DeliveryState, job: Job) -> None:
    kind, events = job
    if kind == "spool":
        lines = state.spool_batch()
        if not lines:
            return
    elif kind == "memory":
        lines = state.memory_batch()
    else:
        lines = [event_line(e) for e in events or ()]
    result = deliver(client, state, lines)
    if kind == "spool":
        state.settle_spool(lines, result)
    else:
        state.settle_memory(lines, result)
