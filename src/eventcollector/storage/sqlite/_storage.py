"""The embedded default: one SQLite file in WAL mode.

Writes go through one writer thread (``_writer``); reads run on a small
thread pool, each thread with its own connection, as Datasette does. Nothing
here touches SQLite on the event loop. Several processes may share one file:
the write lock is taken with ``BEGIN IMMEDIATE`` and waited for, never reported
to the caller as "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from eventcollector.aggregation import AggregateResult, AggregateSpec, Facet
from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState
from eventcollector.alert_silences import AlertSilence
from eventcollector.filters import Field, Filter
from eventcollector.issue_activity import ActivityQuery, IssueActivity
from eventcollector.issues import (
    Issue,
    IssueChange,
    IssueQuery,
    IssuesCallback,
    check_status_change,
)
from eventcollector.model import Event
from eventcollector.query import DurationStats, GroupField, Query, group_field
from eventcollector.storage._indexes import REGISTRY, literals, parse_index_path
from eventcollector.storage._plan import lift, mark_indexed
from eventcollector.storage.base import (
    DEFAULT_QUERY_TIMEOUT,
    QueryTimeout,
    StorageError,
    retention_cutoff,
)
from eventcollector.storage.base import query_timeout as query_timeout_seconds
from eventcollector.storage.sqlite import _aggregate as aggregation
from eventcollector.storage.sqlite import _alerts as alerts
from eventcollector.storage.sqlite import _facets
from eventcollector.storage.sqlite import _indexes as indexes
from eventcollector.storage.sqlite import _issues as issues
from eventcollector.storage.sqlite import _reads as reads
from eventcollector.storage.sqlite._checkpointer import Checkpointer
from eventcollector.storage.sqlite._connection import (
    ReaderConnection,
    connect,
    connect_reader,
    refuse_network_filesystem,
    require_sqlite,
)
from eventcollector.storage.sqlite._dialect import DIALECT
from eventcollector.storage.sqlite._hour_cache import HourCache
from eventcollector.storage.sqlite._ingest import insert_batches, settle_journal
from eventcollector.storage.sqlite._retention import CLEANUP_CHUNK, delete_chunk
from eventcollector.storage.sqlite._schema import NotOurDatabase, migrate
from eventcollector.storage.sqlite._select import without_unmatchable_text
from eventcollector.storage.sqlite._writer import Transaction, Writer

__all__ = ["SQLiteStorage"]

log = logging.getLogger("eventcollector.storage.sqlite")

T = TypeVar("T")

_JOURNAL_NOT_EMPTY = "SELECT 1 FROM event_journal LIMIT 1"
_JOURNAL_COUNT = "SELECT count(*) FROM event_journal"
_JOURNALED = object()  # what a read returns instead when the journal holds events
#: After a checkpoint, SQLite truncates the WAL file back to at most this size.
_WAL_SIZE_LIMIT = 16 * 1024 * 1024


class SQLiteStorage:
    """Events in one SQLite file; see the module docstring for the threading model."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        read_threads: int = 4,
        busy_timeout: float = 30.0,
        query_timeout: float | None = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous: one of NORMAL, FULL, EXTRA")
        #: Seconds one read statement may run (None: no limit); see ``ReaderConnection``.
        self.query_timeout = query_timeout_seconds(query_timeout)
        self.path = os.path.abspath(os.fspath(path))
        self.url = f"sqlite:///{self.path}"
        self.synchronous = synchronous.upper()
        self._busy_ms = int(busy_timeout * 1000)
        self._read_threads = read_threads
        self._writer: Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._checkpointer: Checkpointer | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._issue_watchers: list[tuple[asyncio.AbstractEventLoop, IssuesCallback]] = []
        # One object, so that queued appends still merge into one call (``Writer``).
        self._insert_batches = partial(insert_batches, announce=self._announce_issues)
        #: Indexed data paths -> the expression text their index is built on.
        self._literals: dict[Field, str] = {}
        self._hour_cache = HourCache()
        self._lease = alerts.Lease(self.path)

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Create or upgrade the schema and start the writer thread."""
        await asyncio.to_thread(self.open_sync)

    def open_sync(self) -> None:
        """``open`` for callers without an event loop."""
        with self._lock:
            if self._writer is not None:
                return
            require_sqlite()
            refuse_network_filesystem(self.path)
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as exc:
                raise NotOurDatabase(f"{self.path}: not an SQLite database ({exc})") from None
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                migrate(conn, self.path)
                # A process that died left events in the journal: the writer moves them.
                left_over = conn.execute(_JOURNAL_NOT_EMPTY).fetchone() is not None
                registry = conn.execute(REGISTRY).fetchall()
                self._literals = literals((row[0] for row in registry), DIALECT)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise NotOurDatabase(f"{self.path}: not an SQLite database ({exc})") from None
            except BaseException:
                conn.close()
                raise
            # Checkpoints run on their own thread (see _checkpointer).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            self._writer = Writer(
                conn,
                name="eventcollector-sqlite-writer",
                idle_job=settle_journal,
                idle_job_due=left_over,
            )
            self._checkpointer = Checkpointer(
                self._connect, self.path + "-wal", self._writer.request_reset
            )
            self._readers = ThreadPoolExecutor(
                self._read_threads, thread_name_prefix="eventcollector-sqlite-read"
            )

    async def close(self) -> None:
        """Finish queued writes, then close every connection."""
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """``close`` for callers without an event loop."""
        with self._lock:
            writer, readers, checkpointer = self._writer, self._readers, self._checkpointer
            self._writer = self._readers = self._checkpointer = None
        if writer is not None:
            writer.close()
        if readers is not None:
            readers.shutdown(wait=True)
        if checkpointer is not None:
            checkpointer.close()
        self._lease.release()
        for conn in self._connections:
            conn.close()
        self._connections.clear()

    @property
    def pending_writes(self) -> int:
        """Rows queued for the writer."""
        return 0 if self._writer is None else self._writer.pending

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, busy_ms=self._busy_ms, synchronous=self.synchronous)

    # -- writes --------------------------------------------------------------

    def _require_writer(self) -> Writer:
        if self._writer is None:
            raise StorageError("storage is not open")
        return self._writer

    async def _write(self, fn: Callable[[Transaction], T]) -> T:
        """``fn`` in a write transaction of the writer thread; its result once committed."""
        return await self._require_writer().submit(fn)  # type: ignore[no-any-return]

    async def append(self, events: Sequence[Event]) -> list[bool]:
        """Store events durably; per event True if new, False if its id was already stored."""
        if not events:
            return []
        return await self.enqueue_append(events)

    def enqueue_append(self, events: Sequence[Event]) -> asyncio.Future[list[bool]]:
        """``append`` handed to the writer now, from the event loop; await the future.

        Lets the collector pass a full batch on before its loop iteration ends.
        """
        return self._require_writer().enqueue_merged(self._insert_batches, events, len(events))

    def append_sync(self, events: Sequence[Event]) -> list[bool]:
        """``append`` for threads without an event loop."""
        return self._require_writer().submit_merged_sync(  # type: ignore[no-any-return]
            self._insert_batches, events, len(events)
        )

    async def flush(self, timeout: float | None = None) -> bool:
        """Move journaled events into ``events`` now (the sqlite3 shell sees them there)."""
        if self._writer is not None:  # closed: close() settled them
            await asyncio.wait_for(self._writer.submit(settle_journal), timeout)
        return True

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None, where: Filter | None = None
    ) -> int:
        """Delete events older than the retention period (and matching ``where``, if
        given), in chunks; the number deleted."""
        victims = self._plan(Query(until=retention_cutoff(retention_days, now), where=where))
        writer = self._require_writer()
        deleted = 0
        while True:
            n: int = await writer.submit(partial(delete_chunk, query=victims), CLEANUP_CHUNK)
            deleted += n
            if n < CLEANUP_CHUNK:
                return deleted

    # -- expression indexes (see storage._indexes) -----------------------------

    async def add_index(self, path: str) -> bool:
        """Create an expression index on a data/metadata path (``data.repo``);
        False if it exists already."""
        parse_index_path(path)  # a bad path is the caller's error, not a failed write
        created = await self._write(partial(indexes.add_index, path=path))
        await self._load_indexes()
        return created

    async def remove_index(self, path: str) -> bool:
        """Drop the index on ``path``; False if there was none."""
        parse_index_path(path)
        removed = await self._write(partial(indexes.remove_index, path=path))
        await self._load_indexes()
        return removed

    async def list_indexes(self) -> list[dict[str, Any]]:
        """The indexed paths (and what the compiler uses: read again from the file)."""
        return await self._load_indexes()

    async def _load_indexes(self) -> list[dict[str, Any]]:
        found = await self._read(indexes.list_indexes)
        self._literals = literals((row["path"] for row in found), DIALECT)
        return found

    def _plan(self, query: Query) -> Query:
        return mark_indexed(lift(query), self._literals)

    # -- reads ---------------------------------------------------------------

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StorageError("storage is not open")
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._readers, self._run_read, fn, True)
        if result is _JOURNALED:
            # Events committed to the journal (by any process) are moved first, so a
            # read sees every event whose collect() has returned; one round is enough.
            try:
                await self._require_writer().submit(settle_journal)
            except StorageError as exc:  # a full disk, say: still answer, from events
                log.warning("could not settle the event journal before a read: %s", exc)
            result = await loop.run_in_executor(self._readers, self._run_read, fn, False)
        return result  # type: ignore[return-value]

    def _run_read(self, fn: Callable[[sqlite3.Connection], T], check_journal: bool) -> T | object:
        conn: ReaderConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_reader(self.path, busy_ms=self._busy_ms, synchronous=self.synchronous)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        conn.limit_statements(self.query_timeout)  # as the attribute says now
        # One read transaction per call: a consistent snapshot that is never held open.
        conn.execute("BEGIN")
        try:
            if check_journal and conn.execute(_JOURNAL_NOT_EMPTY).fetchone() is not None:
                return _JOURNALED
            return fn(conn)
        except sqlite3.Error as exc:
            interrupted = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT
            if interrupted and self.query_timeout is not None:
                raise QueryTimeout(self.query_timeout) from exc
            raise StorageError(f"query failed: {exc}") from exc
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    async def _read_planned(self, fn: Callable[..., T], query: Query, **kwargs: Any) -> T:
        """``fn(conn, query=..., **kwargs)`` on a reader, with ``query`` planned there:
        first its full-text terms that cannot match folded away (which needs the index,
        see ``_select.without_unmatchable_text``), then ``_plan``."""

        def planned(conn: sqlite3.Connection) -> T:
            return fn(conn, query=self._plan(without_unmatchable_text(conn, query)), **kwargs)

        return await self._read(planned)

    async def query(self, query: Query) -> list[Event]:
        """The matching events, ordered and paged as the query says."""
        return await self._read_planned(reads.select_events, query)

    async def count(self, query: Query) -> int:
        """How many events match, ignoring order, limit and offset."""
        return await self._read_planned(reads.count, query.unbounded)

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        """Matching events counted by one field (None values under "")."""
        field = group_field(field)
        return await self._read_planned(reads.group_count, query.unbounded, field=field)

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        """min/max/avg and p50/p95/p99 of duration_ms over matching events."""
        return await self._read_planned(
            reads.duration_stats, query.unbounded, percentiles=percentiles
        )

    async def aggregate(self, query: Query, spec: AggregateSpec) -> AggregateResult:
        """Groups and metrics over the matching events (see ``eventcollector.aggregation``)."""
        return await self._read_planned(
            aggregation.aggregate,
            query.unbounded,
            spec=spec,
            now=datetime.now(UTC),
            cache=self._hour_cache,
        )

    async def facets(self, query: Query, fields: Sequence[Field], top: int = 10) -> list[Facet]:
        """The top values of each field with their counts, in one read."""
        return await self._read_planned(
            _facets.facets,
            query.unbounded,
            fields=fields,
            top=top,
            literals=self._literals,
            cache=self._hour_cache,
        )

    async def read_after(
        self, position: int, query: Query, limit: int = 1_000
    ) -> tuple[list[Event], int]:
        """Events matching ``query`` stored after ``position``, in insertion order.

        Returns them with the position to pass next; ``position < 0`` returns no
        events and the current end. For followers (``eventcollector tail``): unlike
        a timestamp watermark, insertion order also finds events stored late with
        an old timestamp. The query's order, limit and offset are ignored.
        """
        return await self._read(
            partial(
                reads.read_after, position=position, query=self._plan(query.unbounded), limit=limit
            )
        )

    # -- issues --------------------------------------------------------------

    def watch_issues(self, callback: IssuesCallback) -> None:
        """Call ``callback(changes)`` on this loop after commits that created or
        regressed issues."""
        self._issue_watchers.append((asyncio.get_running_loop(), callback))

    def _announce_issues(self, changes: list[IssueChange]) -> None:
        # On the writer thread, after the commit.
        for loop, callback in self._issue_watchers:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(callback, changes)

    async def issues(self, query: IssueQuery) -> list[Issue]:
        """The issues matching ``query``, ordered and paged."""
        return await self._read(partial(issues.list_issues, query=query))

    async def get_issue(self, issue_id: int) -> Issue | None:
        """The issue with this id, or None."""
        return await self._read(partial(issues.get_issue, issue_id=issue_id))

    async def set_issue_status(
        self, issue_id: int, status: str, *, until: datetime | None = None
    ) -> Issue | None:
        """Change an issue's status (``until``: the end of a mute); None if there is none."""
        muted_until = check_status_change(status, until)
        return await self._write(
            lambda tx: issues.set_status(tx.conn, issue_id, status, muted_until)
        )

    async def issue_events(self, issue_id: int, limit: int = 100) -> list[Event]:
        """The issue's events, the latest stored first."""
        return await self._read(partial(issues.issue_events, issue_id=issue_id, limit=limit))

    async def issue_activity(self, query: ActivityQuery) -> IssueActivity:
        """The issues' events per hour or day (the sparklines of the UI)."""
        return await self._read(partial(issues.issue_activity, query=query))

    # -- alerts (docs/alerts.md) ------------------------------------------------

    async def alert_rules(self) -> list[tuple[AlertRule, str]]:
        """Every stored rule with its source, by name."""
        return await self._read(alerts.list_rules)

    async def put_alert_rule(self, rule: AlertRule, source: str) -> bool:
        """Store ``rule`` (replacing one of that name); True if it is new."""
        return await self._write(partial(alerts.put_rule, rule=rule, source=source))

    async def delete_alert_rule(self, name: str) -> bool:
        """Delete the rule with its states and history; False if there was none."""
        return await self._write(partial(alerts.delete_rule, name=name))

    async def alert_states(self, rule: str | None = None) -> list[AlertState]:
        """The states of ``rule`` (of every rule when None)."""
        return await self._read(partial(alerts.states, rule=rule))

    async def save_alert(
        self, states: Sequence[AlertState], records: Sequence[AlertRecord]
    ) -> None:
        """States and history records, in one transaction."""
        await self._write(partial(alerts.save, states=states, records=records))

    async def alert_history(self, rule: str, limit: int = 100) -> list[AlertRecord]:
        """The rule's history, newest first."""
        return await self._read(partial(alerts.history, rule=rule, limit=limit))

    async def push_alert_triggers(self, changes: Sequence[IssueChange]) -> None:
        """Queue new/regressed issues for the evaluating instance."""
        await self._write(partial(alerts.push_triggers, changes=changes))

    async def take_alert_triggers(self) -> list[IssueChange]:
        """The queued issue changes, oldest first, now removed."""
        return await self._write(alerts.take_triggers)

    async def alert_silences(self) -> list[AlertSilence]:
        """The silences in force, by id."""
        return await self._read(partial(alerts.silences, now=datetime.now(UTC)))

    async def add_alert_silence(self, silence: AlertSilence) -> AlertSilence:
        """Store ``silence`` (dropping those that have ended), with its id."""
        return await self._write(
            partial(alerts.add_silence, silence=silence, now=datetime.now(UTC))
        )

    async def delete_alert_silence(self, silence_id: int) -> bool:
        """End a silence now; False if none of that id is in force."""
        now = datetime.now(UTC)
        return await self._write(partial(alerts.delete_silence, silence_id=silence_id, now=now))

    async def alert_lease(self) -> bool:
        """Whether this process evaluates (an exclusive lock on ``<db>-alerts.lock``)."""
        self._require_writer()
        return await asyncio.to_thread(self._lease.hold)

    async def health(self) -> dict[str, Any]:
        """Path, sizes, schema version and queue depth; raises StorageError if unusable."""

        def check(conn: sqlite3.Connection) -> dict[str, Any]:
            conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
            return {
                "backend": "sqlite",
                "db_path": self.path,
                "schema_version": conn.execute("PRAGMA user_version").fetchone()[0],
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": self.synchronous,
                "db_size_bytes": _size(self.path),
                "wal_size_bytes": _size(self.path + "-wal"),
                "pending_writes": self.pending_writes,
                # Non-zero after a read only while the writer cannot settle (a full disk).
                "journaled_events": conn.execute(_JOURNAL_COUNT).fetchone()[0],
                "indexes": indexes.list_indexes(conn),
                "hour_cache": self._hour_cache.stats(),
            }

        return await self._read(check)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
