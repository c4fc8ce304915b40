"""Group-committed ingest for ``PostgresStorage``: queued appends, writer tasks.

Concurrent ``append`` calls queue their events and a few writer tasks (one per
``MIN_ROWS_PER_TRANSACTION`` queued, at most ``max_writers``) each take a fair share of
the queue and store it in one transaction (``_ingest``: claim the ids in ``event_ids``,
which also takes their seqs, COPY the winners into the daily partitions of ``events``,
add them to the rollups and NOTIFY the other instances). An ``append`` returns only
once every part of it is committed. See docs/postgres.md
("Ingest").
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from eventcollector.issues import IssueChange
from eventcollector.model import Event
from eventcollector.storage.postgres import _sql as sql
from eventcollector.storage.postgres._connection import Runner
from eventcollector.storage.postgres._errors import translate
from eventcollector.storage.postgres._ingest import insert
from eventcollector.storage.postgres._schema import create_partitions, list_partitions

__all__ = ["MAX_ROWS_PER_TRANSACTION", "MIN_ROWS_PER_TRANSACTION", "Writer"]

#: Stop adding queued appends to a transaction once it holds this many rows.
MAX_ROWS_PER_TRANSACTION = 20_000
#: ... and take at least this many when there are (or all there are).
MIN_ROWS_PER_TRANSACTION = 200
_ATTEMPTS = 3
_RETRY_STATES = frozenset({"40001", "40P01"})


@dataclass(slots=True)
class _Job:
    """One ``append`` call; writers may store it in several parts."""

    events: Sequence[Event]
    future: asyncio.Future[list[bool]]
    results: list[bool]
    taken: int = 0  # events handed to writers so far
    left: int = 0  # events whose transaction has not ended

    def part_stored(self, lo: int, stored: list[bool]) -> None:
        self.results[lo : lo + len(stored)] = stored
        self.left -= len(stored)
        if not self.left and not self.future.done():
            self.future.set_result(self.results)


class _Turns:
    """Writers claim ids in the order they took their rows from the queue.

    Seqs are taken with the claim, so the parts of one ``append`` stored by parallel
    transactions still get their seqs in the order of the events.
    """

    def __init__(self) -> None:
        self._next = 0
        self._turn = 0
        self._ended: set[int] = set()
        self._waiters: dict[int, asyncio.Future[None]] = {}

    def take(self) -> int:
        ticket = self._next
        self._next += 1
        return ticket

    async def wait(self, ticket: int) -> None:
        if ticket <= self._turn:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[ticket] = waiter
        try:
            await waiter
        finally:
            self._waiters.pop(ticket, None)

    def end(self, ticket: int) -> None:
        """``ticket`` has claimed (or given up): the next may go. Idempotent."""
        if ticket < self._turn:
            return
        self._ended.add(ticket)
        while self._turn in self._ended:
            self._ended.discard(self._turn)
            self._turn += 1
        waiter = self._waiters.get(self._turn)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Writer:
    """The write path of one ``PostgresStorage``; see the module docstring."""

    def __init__(
        self,
        run: Runner,
        *,
        schema: str,
        channel: str,
        instance: str,
        notify: bool,
        max_writers: int,
    ) -> None:
        self.schema = schema
        self.channel = channel
        self.instance = instance
        self.notify = notify
        #: The partitions known to exist (set by ``PostgresStorage.open`` and cleanup).
        self.days: set[date] = set()
        #: Events queued or being written.
        self.pending = 0
        #: Told after each commit that created or regressed issues.
        self.on_issues: Callable[[list[IssueChange]], None] | None = None
        self._run = run
        self._max_writers = max_writers
        self._partition_lock = asyncio.Lock()
        self._jobs: deque[_Job] = deque()
        self._writers: set[asyncio.Task[None]] = set()
        self._running_writers = 0
        self._queued = 0  # events in self._jobs not yet taken by a writer
        self._turns = _Turns()

    async def append(self, events: Sequence[Event]) -> list[bool]:
        """Queue non-empty ``events``; per event True if new, once all are committed."""
        job = _Job(events, asyncio.get_running_loop().create_future(), [False] * len(events))
        job.left = len(events)
        self._jobs.append(job)
        self.pending += len(events)
        self._queued += len(events)
        # One writer per MIN_ROWS_PER_TRANSACTION queued, up to max_writers.
        wanted = min(self._max_writers, -(-self._queued // MIN_ROWS_PER_TRANSACTION))
        while self._running_writers < wanted:
            self._running_writers += 1
            task = asyncio.get_running_loop().create_task(self._write_loop())
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        return await job.future

    async def drain(self) -> None:
        """Wait until the writer tasks have stored everything queued."""
        while self._writers:
            await asyncio.gather(*self._writers, return_exceptions=True)

    async def _write_loop(self) -> None:
        try:
            while self._jobs:
                await self._write_next()
        finally:
            # No await between the last look at the queue and this: an append that
            # finds too few running writers starts one.
            self._running_writers -= 1

    async def _write_next(self) -> None:
        """Take a share of the queue and store it in one transaction."""
        # A fair share of what is queued (splitting a large append if need be), so
        # that the writers store it in parallel transactions, and the callers whose
        # events are committed first can go on meanwhile.
        share = -(-self._queued // self._max_writers)
        limit = min(MAX_ROWS_PER_TRANSACTION, max(MIN_ROWS_PER_TRANSACTION, share))
        parts: list[tuple[_Job, int, int]] = []
        rows = 0
        while self._jobs and rows < limit:
            job = self._jobs[0]
            lo = job.taken
            hi = min(len(job.events), lo + limit - rows)
            job.taken = hi
            if hi == len(job.events):
                self._jobs.popleft()
            parts.append((job, lo, hi))
            rows += hi - lo
        self._queued -= rows
        ticket = self._turns.take()
        try:
            stored = await self._write(
                [e for job, lo, hi in parts for e in job.events[lo:hi]], ticket
            )
        except Exception as exc:
            error = translate(exc, "write failed")
            for job, _, _ in parts:
                if not job.future.done():
                    job.future.set_exception(error)
        else:
            start = 0
            for job, lo, hi in parts:
                job.part_stored(lo, stored[start : start + hi - lo])
                start += hi - lo
        finally:
            self._turns.end(ticket)
            self.pending -= rows

    async def _write(self, events: list[Event], ticket: int) -> list[bool]:
        first: dict[str, int] = {}
        for i, event in enumerate(events):
            first.setdefault(event.id, i)
        unique = events if len(first) == len(events) else [events[i] for i in first.values()]
        days = {e.timestamp.astimezone(UTC).date() for e in unique}
        # Built before the transaction (shorter lock holds); the seqs are set once claimed.
        rows = [sql.to_record(0, e) for e in unique]
        for attempt in range(_ATTEMPTS):
            try:
                await self._ensure_days(days)
                await self._turns.wait(ticket)
                new_ids = await self._run(
                    lambda conn: insert(
                        conn,
                        unique,
                        rows,
                        claimed_ids=functools.partial(self._turns.end, ticket),
                        notify_as=self.instance if self.notify else None,
                        channel=self.channel,
                        on_issues=self.on_issues,
                    )
                )
                break
            except asyncpg.PostgresError as exc:
                state = getattr(exc, "sqlstate", "")
                if attempt + 1 == _ATTEMPTS:
                    raise
                if state == "23514" and "partition" in str(exc):
                    self.days = set()  # another instance dropped a partition: look again
                elif state not in _RETRY_STATES:
                    raise
        return [first[e.id] == i and e.id in new_ids for i, e in enumerate(events)]

    async def _ensure_days(self, days: set[date]) -> None:
        if days <= self.days:
            return
        async with self._partition_lock:
            if not self.days:
                self.days = set(await self._run(list_partitions))
            missing = days - self.days
            if missing:
                self.days = await self._run(
                    lambda conn: create_partitions(conn, self.schema, missing | self.days)
                )
