"""The single SQLite writer thread: group commit over a queue of write jobs.

Every write (ingest, cleanup, migrations) runs here, never on the event loop.
The thread takes whatever jobs are queued, runs them in one ``BEGIN IMMEDIATE``
transaction (each under its own savepoint, so one failing job fails alone),
commits once, then settles every caller's future with one wake-up per event
loop. Concurrent callers therefore share transactions without waiting on each
other, and a caller's future resolves only after its rows are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from eventcollector.storage.base import StorageError, StorageUnavailable
from eventcollector.storage.sqlite._errors import is_busy, storage_error

log = logging.getLogger("eventcollector.storage.sqlite")

#: Stop adding jobs to a transaction once it holds this many rows.
MAX_ROWS_PER_TRANSACTION = 20_000
#: How long to keep retrying while another process holds the write lock.
BUSY_RETRY_SECONDS = 60.0
#: How long the queue stays empty before the idle job runs; after it failed, how long.
IDLE_SECONDS = 0.05
IDLE_RETRY_SECONDS = 1.0


# Above every rowid in events, every one the journal holds for it, and every one
# cleanup has deleted (event_meta): rowids are never reused.
_NEXT_ROWID = (
    "SELECT max(coalesce((SELECT max(rowid) FROM events), 0),"
    " coalesce((SELECT max(seq) FROM event_journal), 0),"
    " coalesce((SELECT value FROM event_meta WHERE key = 'rowid_high_water'), 0)) + 1"
)


@dataclass(slots=True)
class Transaction:
    """What a write job sees: the connection and a rowid counter for this transaction."""

    conn: sqlite3.Connection
    #: Set by a job that leaves work for the writer's idle job (see ``Writer``).
    wants_idle_job: bool = False
    #: Run once the transaction has committed (announcing what it stored).
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    _next_rowid: int | None = None

    def reserve_rowids(self, n: int) -> int:
        """The first of ``n`` fresh consecutive rowids (the write lock is held)."""
        if self._next_rowid is None:
            row = self.conn.execute(_NEXT_ROWID).fetchone()
            self._next_rowid = int(row[0])
        first = self._next_rowid
        self._next_rowid += n
        return first


WriteFn = Callable[[Transaction], Any]
#: Writes that merge: one call handles the payloads of every queued job, in order.
MergedWriteFn = Callable[[Transaction, list[Any]], list[Any]]


@dataclass(slots=True)
class _Job:
    fn: WriteFn | MergedWriteFn
    size: int
    future: asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop | None
    payload: Any = None
    merged: bool = False
    result: Any = None
    error: BaseException | None = None
    done: threading.Event | None = field(default=None)


_STOP = object()


class Writer:
    """Owns the write connection and its thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        name: str,
        idle_job: WriteFn | None = None,
        *,
        idle_job_due: bool = False,
    ) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._pending = 0
        # Runs in its own transaction once the queue has been empty for a moment,
        # after a transaction whose jobs asked for it (``Transaction.wants_idle_job``),
        # or at once when ``idle_job_due``.
        self._idle_job = idle_job
        self._idle_wait: float | None = 0.0 if idle_job and idle_job_due else None
        self._reset_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Rows queued or being written."""
        return self._pending

    async def submit(self, fn: WriteFn, size: int = 1) -> Any:
        """Run ``fn`` in a write transaction; return its result once committed."""
        return await self._enqueue(_Job(fn, size, None, None))

    def enqueue_merged(self, fn: MergedWriteFn, payload: Any, size: int) -> asyncio.Future[Any]:
        """Like ``submit``, but jobs queued together share one ``fn(tx, payloads)`` call
        (many small appends then cost one set of statements per transaction, not one
        each); queued at once, from the event loop; the future settles after commit."""
        return self._enqueue(_Job(fn, size, None, None, payload=payload, merged=True))

    def _enqueue(self, job: _Job) -> asyncio.Future[Any]:
        job.loop = asyncio.get_running_loop()
        job.future = job.loop.create_future()
        self._pending += job.size
        self._queue.put(job)
        return job.future

    def submit_merged_sync(self, fn: MergedWriteFn, payload: Any, size: int) -> Any:
        """``enqueue_merged`` for threads without an event loop; waits for the commit."""
        job = _Job(fn, size, None, None, payload=payload, merged=True, done=threading.Event())
        self._pending += size
        self._queue.put(job)
        job.done.wait()  # type: ignore[union-attr]
        if job.error is not None:
            raise job.error
        return job.result

    def request_reset(self) -> None:
        """Checkpoint between two transactions, so that the WAL can start over.

        Called by the checkpointer thread once it has copied most of a large WAL.
        """
        self._reset_requested.set()

    def close(self) -> None:
        """Finish queued jobs, then stop the thread and close the connection."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self._idle_wait)
            except queue.Empty:
                self._run_idle_job()
                continue
            if item is _STOP:
                break
            assert isinstance(item, _Job)
            batch = [item]
            rows = item.size
            while rows < MAX_ROWS_PER_TRANSACTION:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Job)
                batch.append(item)
                rows += item.size
            self._write(batch)
            self._pending -= rows
            _settle(batch)
            if self._reset_requested.is_set():
                self._reset_requested.clear()
                self._finish_checkpoint()
        if self._idle_wait is not None:
            self._run_idle_job()
        self._conn.close()

    def _run_idle_job(self) -> None:
        assert self._idle_job is not None
        job = _Job(self._idle_job, 0, None, None)
        self._idle_wait = None
        self._write([job])
        if job.error is not None:
            self._idle_wait = IDLE_RETRY_SECONDS

    def _finish_checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint in the writer failed: %s", exc)

    def _write(self, batch: list[_Job]) -> None:
        try:
            self._begin()
        except StorageError as exc:
            for job in batch:
                job.error = exc
            return
        tx = Transaction(self._conn)
        merged: dict[Any, list[_Job]] = defaultdict(list)
        for job in batch:
            if job.merged:
                merged[job.fn].append(job)
            else:
                self._run_isolated([job], partial(job.fn, tx))
        for fn, jobs in merged.items():
            self._run_isolated(jobs, partial(fn, tx, [j.payload for j in jobs]))
        try:
            self._conn.execute("COMMIT")
            if tx.wants_idle_job and self._idle_job is not None:
                self._idle_wait = IDLE_SECONDS
            for hook in tx.on_commit:
                hook()
        except sqlite3.Error as exc:
            log.error("commit failed, nothing in this transaction was stored: %s", exc)
            _rollback(self._conn)
            failure = storage_error(exc)
            for job in batch:
                job.result, job.error = None, failure

    def _run_isolated(self, jobs: list[_Job], call: Callable[[], Any]) -> None:
        """Run one write under a savepoint, so that its failure fails only its jobs."""
        self._conn.execute("SAVEPOINT job")
        try:
            result = call()
        except Exception as exc:
            self._conn.execute("ROLLBACK TO job")
            error = (
                exc
                if isinstance(exc, ValueError | StorageError)
                else StorageError(f"write failed: {exc}")
            )
            log.warning("write job failed: %s", exc)
            for job in jobs:
                job.error = error
        else:
            if len(jobs) == 1 and not jobs[0].merged:
                jobs[0].result = result
            else:
                for job, value in zip(jobs, result, strict=True):
                    job.result = value
        self._conn.execute("RELEASE job")

    def _begin(self) -> None:
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise storage_error(exc) from exc
                if time.monotonic() > deadline:
                    raise StorageUnavailable(
                        f"database is busy: another writer held it for {BUSY_RETRY_SECONDS:.0f} s"
                    ) from exc
                time.sleep(0.01)


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
        conn.execute("ROLLBACK")


def _settle(batch: list[_Job]) -> None:
    """Hand results back: one thread-safe wake-up per event loop, not per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = defaultdict(list)
    for job in batch:
        if job.loop is not None:
            by_loop[job.loop].append(job)
        elif job.done is not None:
            job.done.set()
    for loop, jobs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits
            loop.call_soon_threadsafe(_resolve, jobs)


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        assert job.future is not None
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
