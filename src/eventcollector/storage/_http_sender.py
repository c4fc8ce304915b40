"""The remote client's write path: a bounded buffer, a sender thread and a spooler thread.

``submit()`` only appends to an in-memory deque under a lock and returns; it never
touches the network or the disk, and never raises. Two daemon threads do the rest:

* the **sender** owns a synchronous ``httpx.Client`` and posts gzip'd NDJSON batches
  (size- or time-triggered; ``_http_delivery`` posts one and reads the answer). Its
  next batch is, in this order: a batch that failed and is kept in memory (only
  without a spool), the spool's oldest lines, the buffer. So events reach the server
  in the order they were submitted.
* the **spooler** (``_http_spooler``) moves the buffer to the spool file while the
  server is down (or the buffer is half full because the server is slow), so that a
  sender stuck in a request that will time out never makes the buffer overflow.

Threads, not an asyncio task: host code may block its event loop, use several loops
or none, and the events of a crashing loop must still leave. Threads are also what
the Sentry and OpenTelemetry SDKs use for the same job. ``_http_process`` closes every
sender at interpreter exit and resets them in forked children.

Accounting (all under one lock)::

    emitted + recovered == delivered + rejected + dropped + spooled + buffered + in_flight

``recovered`` counts events found in the spool at start (earlier runs, dead processes).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from eventcollector.model import Event
from eventcollector.storage import _http_process
from eventcollector.storage._http_common import INSIDE_CLIENT, event_line, log
from eventcollector.storage._http_delivery import Result, deliver
from eventcollector.storage._http_retry import backoff_delay
from eventcollector.storage._http_spooler import _Spooler
from eventcollector.storage._spool import Spool

__all__ = ["INSIDE_CLIENT", "Sender", "SenderConfig"]

_LOG_EVERY = 10.0  # seconds between repeated warnings of one kind


@dataclass(frozen=True, slots=True)
class SenderConfig:
    url: str
    headers: dict[str, str]
    batch_size: int = 500
    batch_bytes: int = 4 << 20
    flush_interval: float = 1.0
    max_buffer: int = 100_000
    timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    gzip: bool = True
    spool_dir: Path | None = None
    spool_max_bytes: int = 256 << 20
    exit_timeout: float = 5.0
    transport: httpx.BaseTransport | None = None


class Sender:
    """The write path of one ``HTTPStorage``; see the module docstring."""

    def __init__(self, config: SenderConfig) -> None:
        self.config = config
        self._reset()
        _http_process.track(self)

    def _reset(self) -> None:
        """Fresh state: at construction and in a forked child (whose threads are gone)."""
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._spool_lock = threading.Lock()
        self._buffer: deque[Event] = deque()
        self._first_at = 0.0
        self._threads: list[threading.Thread] = []
        self._alive = 0
        self._started = False
        self._stop = False
        self._closed = False
        self._down = False
        self._attempt = 0
        self._next_try = 0.0
        self._not_before = 0.0
        self._probe = False
        self._flushers = 0
        self._failures = 0
        self._in_flight = 0
        self._spooling = 0
        self._memory_retry: list[bytes] | None = None
        self._spool: Spool | None = None
        self._spool_state = "off" if self.config.spool_dir is None else "opening"
        self._client: httpx.Client | None = None
        self.counters: Counter[str] = Counter()
        self.dropped_by_reason: Counter[str] = Counter()
        self.rejected_by_reason: Counter[str] = Counter()
        self.last_error: str | None = None
        self.last_rejection: str | None = None
        self._logged: dict[str, float] = {}

    # -- host side -----------------------------------------------------------

    def submit(self, events: Sequence[Event]) -> None:
        """Queue events for sending; never blocks on I/O, never raises for the network."""
        n = len(events)
        if not n:
            return
        with self._lock:
            self.counters["emitted"] += n
            if self._closed:
                self._drop(n, "closed")
                return
            if not self._started:
                self._start()
            buffer = self._buffer
            before = len(buffer)
            room = self.config.max_buffer - before
            if room < n:
                self._drop(n - max(room, 0), "buffer_full")
                events = events[: max(room, 0)]
            buffer.extend(events)
            after = len(buffer)
            if before == 0:
                self._first_at = time.monotonic()
            batch, high = self.config.batch_size, self.config.max_buffer // 2
            if before == 0 or before < batch <= after or before < high <= after:
                self._cv.notify_all()

    def flush(self, timeout: float | None = None, *, patient: bool | None = None) -> bool:
        """Send what is buffered now; True once all is delivered (or refused for good).

        While the server fails, a ``patient`` flush (the default when a timeout is given)
        keeps retrying as long as the next retry is due before the timeout; otherwise it
        returns False once an attempt made after the call failed and everything else is
        in the spool. It tries at once, skipping our own backoff but never the server's
        Retry-After.
        """
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        patient = timeout is not None if patient is None else patient
        with self._cv:
            if not self._started or self._closed:  # no threads to wait for
                return self._settled(-1, None) is True
            start = self._failures
            self._flushers += 1
            self._probe = True
            self._cv.notify_all()
            try:
                while (settled := self._settled(start, deadline if patient else None)) is None:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cv.wait(remaining)
                return settled
            finally:
                self._flushers -= 1

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush, then stop the threads; what is left goes to the spool or is dropped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            started = self._started
        if started:  # a down server is not waited for: the spool keeps the rest
            self.flush(timeout, patient=False)
        with self._cv:
            self._stop = self._closed = True
            self._cv.notify_all()
            threads = list(self._threads)
        for thread in threads:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.1)
            thread.join(remaining)
        with self._cv:
            if self._buffer:  # no spool, or the spooler did not finish in time
                self._drop(len(self._buffer), "shutdown")
                self._buffer.clear()

    def reopen(self) -> None:
        """Accept events again after ``close`` (the collector may be started twice)."""
        with self._lock:
            if not self._closed or any(t.is_alive() for t in self._threads):
                return
            self._stop = self._closed = self._started = False
            self._threads = []
            self._spool = None
            self._spool_state = "off" if self.config.spool_dir is None else "opening"

    def stats(self) -> dict[str, Any]:
        """The counters (see the module docstring for how they add up)."""
        with self._lock:
            spool = self._spool
            return {
                "emitted": self.counters["emitted"],
                "delivered": self.counters["delivered"],
                "rejected": self.counters["rejected"],
                "dropped": self.counters["dropped"],
                "spooled": spool.count if spool is not None else 0,
                "buffered": len(self._buffer),
                "in_flight": self._in_flight + self._spooling,
                "recovered": self.counters["recovered"],
                "requests": self.counters["requests"],
                "retries": self.counters["retries"],
                "server_reachable": not self._down,
                "last_error": self.last_error,
                "last_rejection": self.last_rejection,
                "dropped_by_reason": dict(self.dropped_by_reason),
                "rejected_by_reason": dict(self.rejected_by_reason),
                "spool": self._spool_state,
                "spool_dir": None if spool is None or spool.dir is None else str(spool.dir),
                "spool_bytes": spool.size if spool is not None else 0,
            }

    # -- shared helpers (called with the lock held) ----------------------------

    def _drop(self, n: int, reason: str) -> None:
        self.counters["dropped"] += n
        self.dropped_by_reason[reason] += n
        self._warn(f"drop:{reason}", "dropped %d event(s): %s", n, reason)

    def _warn(self, kind: str, message: str, *args: Any) -> None:
        """A warning at most every ``_LOG_EVERY`` seconds per kind (a flood stays one line)."""
        now = time.monotonic()
        if now - self._logged.get(kind, -_LOG_EVERY) >= _LOG_EVERY:
            self._logged[kind] = now
            log.warning(message, *args)

    def _start(self) -> None:
        self._started = True
        self._threads = [
            threading.Thread(target=self._run_sender, name="eventcollector-sender", daemon=True),
            threading.Thread(target=_Spooler(self).run, name="eventcollector-spooler", daemon=True),
        ]
        self._alive = len(self._threads)
        for thread in self._threads:
            thread.start()

    def _settled(self, start_failures: int, retry_until: float | None) -> bool | None:
        """For flush: True all sent, False the rest is parked (server down), None wait."""
        if self._spool_state == "opening" and self._started:
            return None
        moving = bool(self._buffer) or self._spooling or self._in_flight
        spooled = self._spool.count if self._spool is not None else 0
        if not moving and not spooled:
            return True
        # With a spool, everything must be on disk; without one the buffer has to wait.
        parked = not self._buffer or self._spool_state != "ready"
        stuck = self._down and self._failures > start_failures
        if stuck and retry_until is not None and self._next_try < retry_until:
            return None  # another attempt is due before the caller's timeout
        if (
            stuck
            and parked
            and not self._spooling
            and self._in_flight == len(self._memory_retry or ())
        ):
            return False
        return None

    # -- sender thread ---------------------------------------------------------

    def _run_sender(self) -> None:
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
            while (job := self._next_job()) is not None:
                self._send(*job)
        except Exception:  # a bug here must not leave the host's events silently stuck
            log.exception("eventcollector sender thread failed")
        finally:
            client.close()
            self._thread_done()

    def _next_job(self) -> tuple[str, list[Event] | None] | None:
        cfg = self.config
        with self._cv:
            while True:
                if self._stop:
                    return None
                if self._spool_state == "opening":
                    self._cv.wait(0.1)
                    continue
                now = time.monotonic()
                wait_until = self._not_before if self._probe else self._next_try
                if self._down and now < wait_until:
                    self._cv.wait(wait_until - now)
                    continue
                if self._memory_retry is not None:
                    self._probe = False
                    return ("memory", None)
                if self._spooling:  # let the spooler finish so order holds
                    self._cv.wait(0.1)
                    continue
                if self._spool is not None and self._spool.count > 0:
                    self._probe = False
                    return ("spool", None)
                buffer = self._buffer
                if buffer and not (self._down and self._spool_state == "ready"):
                    due = (
                        len(buffer) >= cfg.batch_size
                        or self._flushers
                        or now - self._first_at >= cfg.flush_interval
                    )
                    if due:
                        n = min(len(buffer), cfg.batch_size)
                        events = [buffer.popleft() for _ in range(n)]
                        self._first_at = now
                        self._in_flight += n
                        self._probe = False
                        return ("buffer", events)
                    self._cv.wait(self._first_at + cfg.flush_interval - now)
                    continue
                self._cv.wait(cfg.flush_interval)

    def _send(self, kind: str, events: list[Event] | None) -> None:
        cfg = self.config
        if kind == "spool":
            assert self._spool is not None
            with self._spool_lock:
                lines = self._spool.peek(cfg.batch_size, cfg.batch_bytes)
                if not lines:  # counted lines that cannot be read back (torn by a crash)
                    self._spool.reset()
                    return
        elif kind == "memory":
            lines = self._memory_retry or []
        else:
            lines = [event_line(e) for e in events or ()]
        result = deliver(self, lines)
        if kind == "spool":
            self._settle_spool(lines, result)
        else:
            self._settle_memory(lines, result)

    def _settle_spool(self, lines: list[bytes], result: Result) -> None:
        assert self._spool is not None
        if not result.retry or len(result.remaining) < len(lines):
            with self._spool_lock:
                self._spool.commit()
                if result.retry:  # part of a split batch got through; the rest goes first
                    self._spool.prepend(result.remaining)
        self._account(result)

    def _settle_memory(self, lines: list[bytes], result: Result) -> None:
        written = 0
        spool = self._spool if self._spool_state == "ready" else None
        if result.retry and spool is not None:
            with self._spool_lock:
                written = self._safe_spool(spool.prepend, result.remaining)
        with self._cv:
            self._in_flight -= len(lines)
            self._memory_retry = None
            if result.retry:
                if spool is None:
                    self._memory_retry = result.remaining
                    self._in_flight += len(result.remaining)
                elif written < len(result.remaining):
                    self._drop(len(result.remaining) - written, "spool_full")
        self._account(result)

    def _account(self, result: Result) -> None:
        with self._cv:
            self.counters["delivered"] += result.delivered
            self.counters["rejected"] += result.rejected
            if result.retry:
                self._failures += 1
                self._attempt += 1
                self.counters["retries"] += 1
                self.last_error = result.error
                delay = backoff_delay(
                    self._attempt,
                    base=self.config.backoff_base,
                    cap=self.config.backoff_max,
                    retry_after=result.retry_after,
                )
                now = time.monotonic()
                self._next_try = now + delay
                # A flush may skip our own backoff, never the server's Retry-After.
                self._not_before = now + (result.retry_after or 0.0)
                if not self._down:
                    log.warning(
                        "collector server %s unavailable (%s); retrying in %.1fs%s",
                        self.config.url,
                        result.error,
                        delay,
                        ", spooling events" if self._spool_state == "ready" else "",
                    )
                self._down = True
            else:
                if self._down:
                    log.warning("collector server %s reachable again", self.config.url)
                self._down = False
                self._attempt = 0
            self._cv.notify_all()

    # -- used by both threads ---------------------------------------------------

    def _safe_spool(self, write: Any, lines: list[bytes]) -> int:
        """Write to the spool; a disk error drops those events (counted) instead of raising."""
        try:
            written: int = write(lines)
        except OSError as exc:
            with self._lock:
                self._warn("spool_error", "cannot write the spool: %s", exc)
            return 0
        return written

    def _thread_done(self) -> None:
        """The last thread to finish after close releases the spool."""
        with self._cv:
            self._alive -= 1
            last = self._alive == 0 and self._stop
            spool = self._spool if last else None
            self._cv.notify_all()
        if spool is not None:
            with self._spool_lock:
                spool.close()

    # -- fork ----------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        spool, client = self._spool, self._client
        if spool is not None:
            spool.forget_after_fork()
        if client is not None:
            # Its sockets are the parent's; closing them here could disturb its connections
            # and its pool lock may be held by a thread that no longer exists. Keep it alive.
            _http_process.abandon(client)
        closed = self._closed
        self._reset()
        self._closed = closed
