"""PostgreSQL storage: one shared store for many collector servers (extra "postgres").

Built on an asyncpg pool. Ingest is group-committed: concurrent ``append`` calls
queue their events and a few writer tasks each take what is queued and store it
in one transaction (COPY into a temporary staging table, claim the ids in
``event_ids``, insert the winners into the daily partitions of ``events``, bump
the hourly rollups, NOTIFY the other instances), so an ``append`` returns only
once its events are committed. See ``_postgres_schema`` for the schema and
docs/postgres.md for operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from eventcollector.model import Event
from eventcollector.query import DurationStats, GroupField, Query, group_field
from eventcollector.storage import _postgres_sql as sql
from eventcollector.storage._postgres_schema import (
    CLEANUP_CHUNK,
    SCHEMA_VERSION,
    NotOurSchema,
    create_partitions,
    day_start,
    delete_chunk,
    drop_partition,
    list_partitions,
    migrate,
    validate_schema,
)
from eventcollector.storage.base import StorageError, StorageUnavailable, retention_cutoff

__all__ = ["SCHEMA_VERSION", "NotOurSchema", "PostgresStorage"]

log = logging.getLogger("eventcollector.storage.postgres")

T = TypeVar("T")
EventsCallback = Callable[[list[Event]], Any]

#: Stop adding queued appends to a transaction once it holds this many rows.
MAX_ROWS_PER_TRANSACTION = 20_000
#: ... and take at least this many when there are (or all there are).
MIN_ROWS_PER_TRANSACTION = 200
_NOTIFY_BYTES = 7_800  # below PostgreSQL's 8,000-byte payload limit
_ATTEMPTS = 3
_SETTLE_SECONDS = 5.0  # read_after waits this long at most for running writers
_UNAVAILABLE_STATES = ("08", "53", "57P", "28")
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


class PostgresStorage:
    """Events in daily partitions of one PostgreSQL schema."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        min_connections: int = 1,
        max_connections: int = 10,
        max_writers: int = 4,
        partitions_ahead: int = 7,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 300.0,
        notify: bool = True,
        application_name: str = "eventcollector",
    ) -> None:
        if not 1 <= max_writers < max_connections:
            raise ValueError("max_writers: must be at least 1 and below max_connections")
        if partitions_ahead < 0:
            raise ValueError("partitions_ahead: must not be negative")
        self._dsn, url_schema = _split_schema(url.replace("postgres://", "postgresql://", 1))
        self.url = _redact(self._dsn)
        self.schema = validate_schema(url_schema if url_schema is not None else schema)
        self.channel = f"eventcollector_{self.schema}"
        self.partitions_ahead = partitions_ahead
        self.notify = notify
        self._pool_args: dict[str, Any] = {
            "min_size": min_connections,
            "max_size": max_connections,
            "timeout": connect_timeout,
            "command_timeout": command_timeout,
            "server_settings": {
                "search_path": f'"{self.schema}"',
                "timezone": "UTC",
                "application_name": application_name,
            },
        }
        self._max_writers = max_writers
        self._instance = uuid.uuid4().hex[:16]
        self._pool: Any = None
        self._open_lock = asyncio.Lock()
        self._days: set[date] = set()
        self._partition_lock = asyncio.Lock()
        self._jobs: deque[_Job] = deque()
        self._writers: set[asyncio.Task[None]] = set()
        self._running_writers = 0
        self._pending = 0
        self._queued = 0  # events in self._jobs not yet taken by a writer
        self._turns = _Turns()
        self._schema_version: int | None = None
        self._callbacks: list[EventsCallback] = []
        self._listener: asyncio.Task[None] | None = None
        self._fetcher: asyncio.Task[None] | None = None
        self._notifications: asyncio.Queue[str] = asyncio.Queue()

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Connect, apply migrations (advisory-locked) and create partitions ahead."""
        async with self._open_lock:
            if self._pool is not None:
                return
            try:
                pool = await asyncpg.create_pool(self._dsn, **_POOL_RESET, **self._pool_args)
            except Exception as exc:
                raise _translate(exc, "cannot connect") from exc
            try:
                async with pool.acquire() as conn:
                    await migrate(conn, self.schema)
                    self._schema_version = SCHEMA_VERSION
                    today = datetime.now(UTC).date()
                    ahead = {
                        today + timedelta(days=i) for i in range(-1, self.partitions_ahead + 1)
                    }
                    self._days = await create_partitions(conn, self.schema, ahead)
            except NotOurSchema:
                await pool.close()
                raise
            except Exception as exc:
                await pool.close()
                raise _translate(exc, "cannot prepare the schema") from exc
            self._pool = pool

    async def close(self) -> None:
        """Finish queued writes, stop listening and close every connection."""
        for task in (self._listener, self._fetcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._fetcher = None
        self._callbacks.clear()
        while self._writers:
            await asyncio.gather(*self._writers, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StorageError("storage is not open")
        return self._pool

    @property
    def pending_writes(self) -> int:
        """Events queued or being written."""
        return self._pending

    # -- writes --------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> list[bool]:
        """Store events durably; per event True if new, False if its id was already stored."""
        if not events:
            return []
        self._require_pool()
        job = _Job(events, asyncio.get_running_loop().create_future(), [False] * len(events))
        job.left = len(events)
        self._jobs.append(job)
        self._pending += len(events)
        self._queued += len(events)
        # One writer per MIN_ROWS_PER_TRANSACTION queued, up to max_writers.
        wanted = min(self._max_writers, -(-self._queued // MIN_ROWS_PER_TRANSACTION))
        while self._running_writers < wanted:
            self._running_writers += 1
            task = asyncio.get_running_loop().create_task(self._write_loop())
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        return await job.future

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
            error = _translate(exc, "write failed")
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
            self._pending -= rows

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
                new_ids = await self._run(lambda conn: self._insert(conn, unique, rows, ticket))
                break
            except asyncpg.PostgresError as exc:
                state = getattr(exc, "sqlstate", "")
                if attempt + 1 == _ATTEMPTS:
                    raise
                if state == "23514" and "partition" in str(exc):
                    self._days = set()  # another instance dropped a partition: look again
                elif state not in _RETRY_STATES:
                    raise
        return [first[e.id] == i and e.id in new_ids for i, e in enumerate(events)]

    async def _insert(
        self, conn: Any, unique: list[Event], rows: list[list[Any]], ticket: int
    ) -> set[str]:
        """One transaction: claim the ids, COPY the winners into ``events``, count, notify."""
        async with conn.transaction():
            try:
                claimed = await conn.fetch(
                    sql.CLAIM_IDS, [r[1] for r in rows], [r[2] for r in rows]
                )
            finally:
                self._turns.end(ticket)
            if not claimed:
                return set()
            new_ids = {r[0] for r in claimed}
            fresh, records = unique, rows
            if len(new_ids) < len(unique):
                kept = [i for i, e in enumerate(unique) if e.id in new_ids]
                fresh, records = [unique[i] for i in kept], [rows[i] for i in kept]
            # The seqs were taken in id order; handed out in batch order they keep the
            # events' insertion order.
            for seq, record in zip(sorted(r[1] for r in claimed), records, strict=True):
                record[0] = seq
            await conn.copy_records_to_table("events", records=records, columns=sql.EVENT_COLUMNS)
            await conn.execute(
                sql.ADD_COUNTS,
                [r[2] for r in records],
                [r[3] for r in records],
                [r[4] for r in records],
                [r[5] for r in records],
                self._payloads(fresh) if self.notify else [],
                self.channel,
            )
        return new_ids

    def _payloads(self, events: list[Event]) -> list[str]:
        """NOTIFY payloads "instance|min_us|max_us|id,id,..." each under 8,000 bytes."""
        payloads: list[str] = []
        chunk: list[Event] = []
        size = 0
        for event in events:
            n = (len(event.id) if event.id.isascii() else len(event.id.encode())) + 1
            if chunk and size + n > _NOTIFY_BYTES:
                payloads.append(self._payload(chunk))
                chunk, size = [], 0
            chunk.append(event)
            size += n
        if chunk:
            payloads.append(self._payload(chunk))
        return payloads

    def _payload(self, events: list[Event]) -> str:
        stamps = [e.timestamp for e in events]
        ids = ",".join(e.id for e in events)
        return f"{self._instance}|{_micros(min(stamps))}|{_micros(max(stamps))}|{ids}"

    async def _ensure_days(self, days: set[date]) -> None:
        if days <= self._days:
            return
        async with self._partition_lock:
            if not self._days:
                self._days = set(await self._run(list_partitions))
            missing = days - self._days
            if missing:
                self._days = await self._run(
                    lambda conn: create_partitions(conn, self.schema, missing | self._days)
                )

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None
    ) -> int:
        """Drop partitions wholly older than the cutoff, delete the rest in chunks."""
        cutoff = retention_cutoff(retention_days, now)
        partitions = await self._run(list_partitions)
        deleted = 0
        for day in sorted(partitions):
            if day_start(day) + timedelta(days=1) <= cutoff:
                deleted += await self._run(functools.partial(drop_partition, day=day))
                self._days.discard(day)
            elif day_start(day) < cutoff:
                while True:
                    n = await self._run(functools.partial(delete_chunk, day=day, cutoff=cutoff))
                    deleted += n
                    if n < CLEANUP_CHUNK:
                        break
        return deleted

    # -- reads ---------------------------------------------------------------

    async def _run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn(conn)`` on a pooled connection; one retry when the connection was lost."""
        pool = self._require_pool()
        for attempt in range(2):
            try:
                conn = await pool.acquire()
            except Exception as exc:
                raise _translate(exc, "database unavailable") from exc
            try:
                return await fn(conn)
            except Exception as exc:
                lost = _connection_lost(exc)
                if lost:
                    with contextlib.suppress(Exception):
                        conn.terminate()  # the pool replaces it
                if attempt == 0 and lost:
                    continue
                if isinstance(exc, asyncpg.PostgresError | StorageError | ValueError):
                    raise
                raise _translate(exc, "database unavailable") from exc
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        try:
            return await self._run(fn)
        except asyncpg.PostgresError as exc:
            raise _translate(exc, "query failed") from exc

    async def query(self, query: Query) -> list[Event]:
        """The matching events, ordered and paged as the query says."""
        statement, params = sql.select(query)
        rows = await self._read(lambda conn: conn.fetch(statement, *params))
        return [sql.from_row(r) for r in rows]

    async def count(self, query: Query) -> int:
        """How many events match, ignoring order, limit and offset."""
        return await self._read(lambda conn: sql.snapshot(conn, sql.count, query.unbounded))

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        """Matching events counted by one field (None values under "")."""
        field = group_field(field)
        counts = await self._read(
            lambda conn: sql.snapshot(conn, sql.group_count, query.unbounded, field)
        )
        return dict(counts.most_common())

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        """min/max/avg and p50/p95/p99 (linear interpolation) of duration_ms.

        Without ``percentiles`` the sort they need is skipped (p50/p95/p99 are None).
        """
        p = sql.Params()
        where_sql = sql.where(query.unbounded, p)
        where_sql += (" AND" if where_sql else " WHERE") + " e.duration_ms IS NOT NULL"
        pct = (
            "percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[])"
            " WITHIN GROUP (ORDER BY e.duration_ms)"
            if percentiles
            else "NULL::float8[]"
        )
        statement = (
            "SELECT count(*), min(e.duration_ms), max(e.duration_ms), avg(e.duration_ms)::float8,"
            f" {pct} FROM events e{where_sql}"
        )
        n, lo, hi, avg, values = await self._read(_Fetch(statement, tuple(p.values), one=True))
        if not n:
            return DurationStats(0, None, None, None, None, None, None)
        if values is None:
            return DurationStats(n, lo, hi, avg, None, None, None)
        return DurationStats(n, lo, hi, avg, values[0], values[1], values[2])

    async def read_after(
        self, position: int, query: Query, limit: int = 1_000
    ) -> tuple[list[Event], int]:
        """Events matching ``query`` stored after ``position``, in insertion order.

        Returns them with the position to pass next; ``position < 0`` returns no
        events and the current end. For followers (``eventcollector tail``): unlike
        a timestamp watermark, insertion order also finds events stored late with
        an old timestamp. The query's order, limit and offset are ignored.

        Positions are seqs. A writer takes its seqs before it commits, so a smaller
        seq can become visible after a larger one: the end returned is the last seq
        taken before the call, once every transaction that was then writing has
        ended (usually milliseconds). While one is still writing after
        ``_SETTLE_SECONDS``, nothing is returned and the position stays.
        """
        return await self._read(
            functools.partial(
                self._read_after, position=position, query=query.unbounded, limit=limit
            )
        )

    async def _read_after(
        self, conn: Any, position: int, query: Query, limit: int
    ) -> tuple[list[Event], int]:
        end = int(await conn.fetchval(sql.LAST_SEQ))  # first: see the docstring
        writers = await conn.fetchval(sql.WRITERS)
        deadline = asyncio.get_running_loop().time() + _SETTLE_SECONDS
        while writers:
            if asyncio.get_running_loop().time() > deadline:
                return [], max(position, -1)
            await asyncio.sleep(0.002)
            writers = await conn.fetchval(sql.STILL_RUNNING, writers)
        if position < 0 or position >= end:
            return [], end
        statement, params = sql.select_after(query, position, end, limit)
        rows = await conn.fetch(statement, *params)
        if len(rows) == limit:
            end = int(rows[-1][0])
        return [sql.from_row(r) for r in rows], end

    async def health(self) -> dict[str, Any]:
        """Schema, partitions and pool details; raises StorageUnavailable when unreachable."""

        async def check(conn: Any) -> dict[str, Any]:
            version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
            server = await conn.fetchval("SHOW server_version")
            days = sorted(await list_partitions(conn))
            return {
                "backend": "postgresql",
                "url": self.url,
                "schema": self.schema,
                "schema_version": version,
                "server_version": server,
                "partitions": len(days),
                "oldest_partition": days[0].isoformat() if days else None,
                "newest_partition": days[-1].isoformat() if days else None,
                "pool_size": self._pool.get_size() if self._pool is not None else 0,
                "pending_writes": self._pending,
                "listening": self._listener is not None and not self._listener.done(),
            }

        try:
            return await self._read(check)
        except StorageError:
            raise
        except Exception as exc:
            raise _translate(exc, "health check failed") from exc

    # -- live streams across instances -----------------------------------------

    async def listen(self, callback: EventsCallback) -> None:
        """Call ``callback(events)`` with events other instances store (LISTEN/NOTIFY).

        Events this instance stored are skipped (its collector publishes them itself).
        Returns once listening; reconnects by itself. Events stored while the
        listening connection is down are not replayed.
        """
        self._require_pool()
        self._callbacks.append(callback)
        if self._listener is not None:
            return
        ready = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._listen_loop(ready))
        self._fetcher = asyncio.get_running_loop().create_task(self._fetch_loop())
        # Do not hold up a start while the database is away: the loop keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), self._pool_args["timeout"])

    async def _listen_loop(self, ready: asyncio.Event) -> None:
        delay = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, **_connect_args(self._pool_args))
            except Exception as exc:
                log.warning("cannot connect to listen for events: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set_event, lost))
                await conn.add_listener(self.channel, self._on_notify)
                ready.set()
                delay = 0.1
                while not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 1.0)
                log.warning("listening connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening failed: %s", exc)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if not payload.startswith(self._instance + "|"):
            self._notifications.put_nowait(payload)

    async def _fetch_loop(self) -> None:
        while True:
            payloads = [await self._notifications.get()]
            while not self._notifications.empty():
                payloads.append(self._notifications.get_nowait())
            try:
                events = await self._fetch(payloads)
            except Exception as exc:
                log.warning("could not fetch events other instances stored: %s", exc)
                continue
            for callback in tuple(self._callbacks):
                try:
                    result = callback(events)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("listen callback failed")

    async def _fetch(self, payloads: list[str]) -> list[Event]:
        events: list[Event] = []
        for payload in payloads:
            parts = payload.split("|", 3)
            if len(parts) != 4:
                continue
            lo, hi = _from_micros(int(parts[1])), _from_micros(int(parts[2]))
            ids = parts[3].split(",")
            statement = (
                f"SELECT {sql.COLUMNS} FROM events e WHERE e.id = ANY($1::text[])"
                " AND e.timestamp BETWEEN $2 AND $3 ORDER BY e.seq"
            )
            rows = await self._read(_Fetch(statement, (ids, lo, hi)))
            events.extend(sql.from_row(r) for r in rows)
        return events


# -- helpers ---------------------------------------------------------------------


def _set_event(event: asyncio.Event, _conn: Any) -> None:
    event.set()


@dataclass(frozen=True, slots=True)
class _Fetch:
    """``conn.fetch(statement, *args)`` as a one-argument callable for ``_run``."""

    statement: str
    args: tuple[Any, ...]
    one: bool = False

    async def __call__(self, conn: Any) -> Any:
        if self.one:
            return await conn.fetchrow(self.statement, *self.args)
        return await conn.fetch(self.statement, *self.args)


async def _reset_connection(conn: Any) -> None:
    """Run when a connection goes back to the pool, after asyncpg's own cleanup (which
    rolls back a transaction left open). Nothing here sets session state (advisory
    locks are transaction-scoped, LISTEN has its own connection), so the default reset,
    one more round trip (unlock all, CLOSE ALL, UNLISTEN *, RESET ALL), is skipped."""


# ``reset=`` is newer than the oldest asyncpg supported: without it, the default reset.
_POOL_RESET: dict[str, Any] = (
    {"reset": _reset_connection}
    if "reset" in inspect.signature(asyncpg.create_pool).parameters
    else {}
)


def _connect_args(pool_args: dict[str, Any]) -> dict[str, Any]:
    return {
        "timeout": pool_args["timeout"],
        "server_settings": pool_args["server_settings"],
    }


def _connection_lost(exc: BaseException) -> bool:
    """The connection is gone or unusable (killed, server restarted): safe to retry."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "")).startswith(("08", "57P"))
    return isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError | ConnectionError)


def _translate(exc: BaseException, what: str) -> StorageError:
    """StorageUnavailable for connection, resource and shutdown errors; else StorageError."""
    if isinstance(exc, StorageError):
        return exc
    state = str(getattr(exc, "sqlstate", "") or "")
    text = f"{what}: {type(exc).__name__}: {exc}"
    if (
        state.startswith(_UNAVAILABLE_STATES)
        or isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError)
        or (not state and isinstance(exc, ConnectionError))
    ):
        return StorageUnavailable(f"storage unavailable: {text}")
    return StorageError(text)


def _split_schema(url: str) -> tuple[str, str | None]:
    """The URL without a ``schema=`` query parameter, and that parameter."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in pairs if k == "schema"]
    if not schemas:
        return url, None
    rest = urlencode([(k, v) for k, v in pairs if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[-1]


def _redact(url: str) -> str:
    """The URL without its password, for health output and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
