"""What the remote client's host side, sender thread and spooler thread share.

``DeliveryState`` holds the buffer, the spool handle, the retry schedule and the
counters behind one lock (with its condition); every method takes the lock itself, so
the threads (``_sender``, ``_spooler``) and ``_delivery`` never touch the fields. Its
waits decide the next job of each thread: the sender's next batch is a batch kept in
memory after a failure (only without a spool), else the spool's oldest lines, else the
buffer, so events reach the server in the order they were submitted; the spooler
moves the buffer to the spool while the server is down (or the buffer half full).

Accounting (all under the one lock)::

    emitted + recovered == delivered + rejected + dropped + spooled + buffered + in_flight

``recovered`` counts events found in the spool at start (earlier runs, dead processes).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from eventcollector.client._inside import log
from eventcollector.client._retry import backoff_delay
from eventcollector.client._spool import Spool
from eventcollector.model import Event

if TYPE_CHECKING:
    import httpx

__all__ = ["DeliveryState", "Job", "Result", "SenderConfig"]

_LOG_EVERY = 10.0  # seconds between repeated warnings of one kind

#: The sender's next job: a batch of the buffer (its events), the spool's oldest lines,
#: or the batch kept in memory after a failure.
Job = tuple[Literal["buffer", "spool", "memory"], list[Event] | None]


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


@dataclass(slots=True)
class Result:
    """What one delivery did with a batch; ``remaining`` is what to retry."""

    delivered: int = 0
    rejected: int = 0
    retry: bool = False
    retry_after: float | None = None
    error: str = ""
    remaining: list[bytes] = field(default_factory=list)


class DeliveryState:
    """The shared state of one sender; see the module docstring."""

    def __init__(self, config: SenderConfig, *, closed: bool = False) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._spool_lock = threading.Lock()  # the spool is not thread-safe
        self._buffer: deque[Event] = deque()
        self._first_at = 0.0
        self._alive = 0
        self._started = False
        self._stop = False
        self._closed = closed
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
        self._spool_state = "off" if config.spool_dir is None else "opening"
        self._counters: Counter[str] = Counter()
        self._dropped_by_reason: Counter[str] = Counter()
        self._rejected_by_reason: Counter[str] = Counter()
        self._last_error: str | None = None
        self._last_rejection: str | None = None
        self._logged: dict[str, float] = {}

    # -- host side -----------------------------------------------------------

    def submit(self, events: Sequence[Event], start: Callable[[], int]) -> None:
        """Buffer events (dropping what does not fit); ``start`` the threads on first use.

        ``start`` runs under the lock and returns how many threads it started.
        """
        n = len(events)
        if not n:
            return
        with self._lock:
            self._counters["emitted"] += n
            if self._closed:
                self._drop(n, "closed")
                return
            if not self._started:
                self._started = True
                self._alive = start()
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

    def flush(self, timeout: float | None, *, patient: bool) -> bool:
        """Wait until all is delivered (True) or parked while the server fails (False).

        A ``patient`` flush keeps waiting while the next retry is due before the timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
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

    def open_and_started(self) -> tuple[bool, bool]:
        """(not closed yet, threads started): what ``close`` has to do."""
        with self._lock:
            return not self._closed, self._started

    def stop(self) -> None:
        """Refuse new events and tell the threads to finish."""
        with self._cv:
            self._stop = self._closed = True
            self._cv.notify_all()

    def drop_unsent(self) -> None:
        """After the threads stopped: what is still buffered is dropped (and counted)."""
        with self._cv:
            if self._buffer:  # no spool, or the spooler did not finish in time
                self._drop(len(self._buffer), "shutdown")
                self._buffer.clear()

    def reopen(self) -> None:
        """Accept events again after ``stop`` (the caller made sure the threads ended)."""
        with self._lock:
            if not self._closed:
                return
            self._stop = self._closed = self._started = False
            self._spool = None
            self._spool_state = "off" if self.config.spool_dir is None else "opening"

    def for_forked_child(self) -> DeliveryState:
        """A fresh state for a forked child, which has none of the parent's threads.

        No lock: a thread that no longer exists may hold it. The parent's spool is
        forgotten, not closed (its files and lock belong to the parent).
        """
        if self._spool is not None:
            self._spool.forget_after_fork()
        return DeliveryState(self.config, closed=self._closed)

    def stats(self) -> dict[str, Any]:
        """The counters (see the module docstring for how they add up)."""
        with self._lock:
            spool = self._spool
            counters = self._counters
            return {
                "emitted": counters["emitted"],
                "delivered": counters["delivered"],
                "rejected": counters["rejected"],
                "dropped": counters["dropped"],
                "spooled": spool.count if spool is not None else 0,
                "buffered": len(self._buffer),
                "in_flight": self._in_flight + self._spooling,
                "recovered": counters["recovered"],
                "requests": counters["requests"],
                "retries": counters["retries"],
                "server_reachable": not self._down,
                "last_error": self._last_error,
                "last_rejection": self._last_rejection,
                "dropped_by_reason": dict(self._dropped_by_reason),
                "rejected_by_reason": dict(self._rejected_by_reason),
                "spool": self._spool_state,
                "spool_dir": None if spool is None or spool.dir is None else str(spool.dir),
                "spool_bytes": spool.size if spool is not None else 0,
            }

    # -- sender thread ---------------------------------------------------------

    def next_job(self) -> Job | None:
        """Wait for the sender's next job (see the module docstring); None to stop."""
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

    def memory_batch(self) -> list[bytes]:
        """The batch kept in memory after a failure (a ``memory`` job)."""
        with self._lock:
            return self._memory_retry or []

    def spool_batch(self) -> list[bytes]:
        """The spool's oldest lines (a ``spool`` job); empty if they cannot be read back."""
        assert self._spool is not None
        with self._spool_lock:
            lines = self._spool.peek(self.config.batch_size, self.config.batch_bytes)
            if not lines:  # counted lines that cannot be read back (torn by a crash)
                self._spool.reset()
            return lines

    def count_request(self) -> None:
        with self._lock:
            self._counters["requests"] += 1

    def count_rejected(self, n: int, reason: str, message: str) -> None:
        """The server refused ``n`` events for good (they are counted by ``settle_*``)."""
        with self._lock:
            self._rejected_by_reason[reason] += n
            self._last_rejection = message
            self._warn(f"reject:{reason}", "collector server refused %d event(s): %s", n, message)

    def settle_spool(self, lines: list[bytes], result: Result) -> None:
        """Account for a ``spool`` job: committed unless all of it is to be retried."""
        assert self._spool is not None
        if not result.retry or len(result.remaining) < len(lines):
            with self._spool_lock:
                self._spool.commit()
                if result.retry:  # part of a split batch got through; the rest goes first
                    self._spool.prepend(result.remaining)
        self._account(result)

    def settle_memory(self, lines: list[bytes], result: Result) -> None:
        """Account for a ``buffer`` or ``memory`` job: the rest is spooled or kept."""
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
            self._counters["delivered"] += result.delivered
            self._counters["rejected"] += result.rejected
            if result.retry:
                self._failures += 1
                self._attempt += 1
                self._counters["retries"] += 1
                self._last_error = result.error
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

    # -- spooler thread --------------------------------------------------------

    def spool_opened(self, spool: Spool | None) -> None:
        """The spooler opened ``spool`` (None: it could not)."""
        with self._cv:
            if spool is None:
                self._spool_state = "failed"
            else:
                self._spool = spool
                self._spool_state = "ready"
                self._counters["recovered"] += spool.adopted
            self._cv.notify_all()

    def next_chunk(self, size: int, linger: float) -> list[Event] | None:
        """Wait for up to ``size`` buffered events to spool; None to stop.

        While the server is down the spooler gathers ``linger`` seconds, so that each
        spool write carries many events.
        """
        high = max(self.config.max_buffer // 2, 1)
        with self._cv:
            while True:
                if self._spool_state != "ready":
                    return None  # no spool: the buffer is all there is
                buffer = self._buffer
                if buffer and (self._down or len(buffer) >= high or self._stop):
                    lingering = time.monotonic() - self._first_at < linger
                    if len(buffer) < size and lingering and not (self._flushers or self._stop):
                        self._cv.wait(linger)
                        continue
                    n = min(len(buffer), size)
                    events = [buffer.popleft() for _ in range(n)]
                    self._first_at = time.monotonic()
                    self._spooling += n
                    return events
                if self._stop:
                    return None
                self._cv.wait(0.5 if buffer else None)

    def spool_lines(self, lines: list[bytes]) -> None:
        """Append a chunk from ``next_chunk`` to the spool; what does not fit is dropped."""
        assert self._spool is not None
        with self._spool_lock:
            written = self._safe_spool(self._spool.append, lines)
        with self._cv:
            self._spooling -= len(lines)
            if written < len(lines):
                self._drop(len(lines) - written, "spool_full")
            self._cv.notify_all()

    # -- both threads ------------------------------------------------------------

    def thread_done(self) -> None:
        """A thread ends; the last one to finish after ``stop`` releases the spool."""
        with self._cv:
            self._alive -= 1
            last = self._alive == 0 and self._stop
            spool = self._spool if last else None
            self._cv.notify_all()
        if spool is not None:
            with self._spool_lock:
                spool.close()

    # -- helpers ---------------------------------------------------------------------

    def _safe_spool(self, write: Callable[[list[bytes]], int], lines: list[bytes]) -> int:
        """Write to the spool; a disk error drops those events (counted) instead of raising."""
        try:
            return write(lines)
        except OSError as exc:
            with self._lock:
                self._warn("spool_error", "cannot write the spool: %s", exc)
            return 0

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

    def _drop(self, n: int, reason: str) -> None:
        """Count dropped events (the lock is held)."""
        self._counters["dropped"] += n
        self._dropped_by_reason[reason] += n
        self._warn(f"drop:{reason}", "dropped %d event(s): %s", n, reason)

    def _warn(self, kind: str, message: str, *args: Any) -> None:
        """A warning at most every ``_LOG_EVERY`` seconds per kind (the lock is held)."""
        now = time.monotonic()
        if now - self._logged.get(kind, -_LOG_EVERY) >= _LOG_EVERY:
            self._logged[kind] = now
            log.warning(message, *args)
