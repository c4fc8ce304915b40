"""The embedded default: one SQLite file in WAL mode.

Writes go through one writer thread (``_sqlite_writer``); reads run on a small
thread pool, each thread with its own connection, as Datasette does. Nothing
here touches SQLite on the event loop. Several processes may share one file:
the write lock is taken with ``BEGIN IMMEDIATE`` and waited for, never reported
to the caller as "database is locked".
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from eventcollector.model import Event, format_timestamp
from eventcollector.query import DurationStats, GroupField, Query
from eventcollector.storage import _sqlite_sql as sql
from eventcollector.storage._rollup import hour_key, split_by_hours
from eventcollector.storage._sqlite_checkpointer import Checkpointer
from eventcollector.storage._sqlite_schema import SCHEMA_VERSION, NotOurDatabase, migrate
from eventcollector.storage._sqlite_writer import Transaction, Writer
from eventcollector.storage.base import StorageError

__all__ = ["NotOurDatabase", "SQLiteStorage"]

T = TypeVar("T")

_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smbfs", "smb3", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs"}
)
_CLEANUP_CHUNK = 5_000
#: After a checkpoint, SQLite truncates the WAL file back to at most this size.
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
_DUPLICATE_CHECK_CHUNK = 500


class SQLiteStorage:
    """Events in one SQLite file; see the module docstring for the threading model."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        read_threads: int = 4,
        busy_timeout: float = 30.0,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous: one of NORMAL, FULL, EXTRA")
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

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Create or upgrade the schema and start the writer thread."""
        await asyncio.to_thread(self.open_sync)

    def open_sync(self) -> None:
        """``open`` for callers without an event loop."""
        with self._lock:
            if self._writer is not None:
                return
            _refuse_network_filesystem(self.path)
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as exc:
                raise NotOurDatabase(f"{self.path}: not an SQLite database ({exc})") from None
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                migrate(conn, self.path)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise NotOurDatabase(f"{self.path}: not an SQLite database ({exc})") from None
            except BaseException:
                conn.close()
                raise
            # Checkpoints run on their own thread (see _sqlite_checkpointer).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            self._writer = Writer(conn, name="eventcollector-sqlite-writer")
            self._checkpointer = Checkpointer(self._connect, self.path + "-wal")
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
        for conn in self._connections:
            conn.close()
        self._connections.clear()

    @property
    def pending_writes(self) -> int:
        """Rows queued for the writer."""
        return 0 if self._writer is None else self._writer.pending

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_ms / 1000
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
            conn.execute("PRAGMA temp_store = MEMORY")
        except BaseException:
            conn.close()  # e.g. "file is not a database"
            raise
        return conn

    # -- writes --------------------------------------------------------------

    def _require_writer(self) -> Writer:
        if self._writer is None:
            raise StorageError("storage is not open")
        return self._writer

    async def append(self, events: Sequence[Event]) -> list[bool]:
        """Store events durably; per event True if new, False if its id was already stored."""
        if not events:
            return []
        return await self._require_writer().submit_merged(  # type: ignore[no-any-return]
            _insert_batches, events, len(events)
        )

    def append_sync(self, events: Sequence[Event]) -> list[bool]:
        """``append`` for threads without an event loop."""
        return self._require_writer().submit_merged_sync(  # type: ignore[no-any-return]
            _insert_batches, events, len(events)
        )

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None
    ) -> int:
        """Delete events older than the retention period, in chunks; the number deleted."""
        if retention_days < 0:
            raise ValueError("retention_days: must not be negative")
        cutoff = format_timestamp((now or datetime.now(UTC)) - timedelta(days=retention_days))
        writer = self._require_writer()
        deleted = 0
        while True:
            n: int = await writer.submit(lambda tx: _delete_chunk(tx, cutoff), _CLEANUP_CHUNK)
            deleted += n
            if n < _CLEANUP_CHUNK:
                return deleted

    # -- reads ---------------------------------------------------------------

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StorageError("storage is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn)

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            conn.execute("PRAGMA mmap_size = 268435456")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        # One read transaction per call: a consistent snapshot that is never held open.
        conn.execute("BEGIN")
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise StorageError(f"query failed: {exc}") from exc
        finally:
            conn.execute("COMMIT")

    async def query(self, query: Query) -> list[Event]:
        """The matching events, ordered and paged as the query says."""
        statement, params = sql.select(query)
        return await self._read(
            lambda conn: [sql.from_row(r) for r in conn.execute(statement, params)]
        )

    async def count(self, query: Query) -> int:
        """How many events match, ignoring order, limit and offset."""
        return await self._read(lambda conn: _count(conn, query.unbounded))

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        """Matching events counted by one field (None values under "")."""
        return await self._read(lambda conn: _group_count(conn, query.unbounded, field))

    async def duration_stats(self, query: Query) -> DurationStats:
        """min/max/avg and p50/p95/p99 of duration_ms over matching events."""
        return await self._read(lambda conn: _duration_stats(conn, query.unbounded))

    async def read_after(
        self, position: int, query: Query, limit: int = 1_000
    ) -> tuple[list[Event], int]:
        """Events matching ``query`` stored after ``position``, in insertion order.

        Returns them with the position to pass next; ``position < 0`` returns no
        events and the current end. For followers (``eventcollector tail``): unlike
        a timestamp watermark, insertion order also finds events stored late with
        an old timestamp. The query's order, limit and offset are ignored.
        """
        return await self._read(lambda conn: _read_after(conn, position, query.unbounded, limit))

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
            }

        return await self._read(check)


# -- write jobs (run on the writer thread) -------------------------------------


def _insert_batches(tx: Transaction, batches: list[Sequence[Event]]) -> list[list[bool]]:
    """Insert every queued append at once; per batch, which events were new."""
    flat = [e for batch in batches for e in batch]
    stored = iter(_insert(tx, flat))
    return [[next(stored) for _ in batch] for batch in batches]


def _insert(tx: Transaction, events: Sequence[Event]) -> list[bool]:
    conn = tx.conn
    existing: set[str] = set()
    ids = [e.id for e in events]
    for start in range(0, len(ids), _DUPLICATE_CHECK_CHUNK):
        chunk = ids[start : start + _DUPLICATE_CHECK_CHUNK]
        marks = ", ".join("?" * len(chunk))
        found = conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
        existing.update(r[0] for r in found)
    fresh: list[Event] = []
    stored: list[bool] = []
    for event in events:
        is_new = event.id not in existing
        stored.append(is_new)
        if is_new:
            existing.add(event.id)  # a repeat later in the same batch is a duplicate
            fresh.append(event)
    if not fresh:
        return stored
    first = tx.reserve_rowids(len(fresh))
    rows = [sql.to_row(e, first + i) for i, e in enumerate(fresh)]
    conn.executemany(sql.INSERT_EVENT, rows)
    conn.executemany(
        "INSERT INTO events_fts(rowid, title, description) VALUES (?, ?, ?)",
        [(r[0], r[6], r[7]) for r in rows],
    )
    tags = [(tag, first + i) for i, e in enumerate(fresh) for tag in e.tags]
    if tags:
        conn.executemany("INSERT INTO event_tags(tag, event_rowid) VALUES (?, ?)", tags)
    counts = Counter((r[2][:13], r[3], r[4], r[5]) for r in rows)
    conn.executemany(
        "INSERT INTO event_counts(hour, system, event_type, severity, n) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(*key, n) for key, n in counts.items()],
    )
    return stored


def _delete_chunk(tx: Transaction, cutoff: str) -> int:
    conn = tx.conn
    victims = conn.execute(
        "SELECT rowid, title, description, substr(timestamp, 1, 13), system, event_type, severity,"
        " tags FROM events WHERE timestamp < ? ORDER BY timestamp LIMIT ?",
        (cutoff, _CLEANUP_CHUNK),
    ).fetchall()
    if not victims:
        return 0
    conn.executemany(
        "INSERT INTO events_fts(events_fts, rowid, title, description) VALUES ('delete', ?, ?, ?)",
        [(v[0], v[1], v[2]) for v in victims],
    )
    # Through the primary key, from the tags each event carries: no index on event_rowid
    # is kept, since every insert would pay for it and only cleanup would use it.
    conn.executemany(
        "DELETE FROM event_tags WHERE tag = ? AND event_rowid = ?",
        [(tag, v[0]) for v in victims for tag in _json_list(v[7])],
    )
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(v[0],) for v in victims])
    counts = Counter(tuple(v[3:7]) for v in victims)
    conn.executemany(
        "UPDATE event_counts SET n = n - ? WHERE hour = ? AND system = ? AND event_type = ?"
        " AND severity = ?",
        [(n, *key) for key, n in counts.items()],
    )
    conn.execute("DELETE FROM event_counts WHERE n <= 0")
    return len(victims)


# -- read helpers (run on reader threads) -------------------------------------


def _count(conn: sqlite3.Connection, query: Query) -> int:
    split = split_by_hours(query)
    if split is None:
        where_sql, params = sql.where(query)
        return int(conn.execute(f"SELECT count(*) FROM events e{where_sql}", params).fetchone()[0])
    rollup_where, params = _rollup_where(query, split.first_hour, split.end_hour)
    total = conn.execute(f"SELECT coalesce(sum(n), 0) FROM event_counts c{rollup_where}", params)
    return int(total.fetchone()[0]) + sum(_count(conn, edge) for edge in split.edges)


def _group_count(conn: sqlite3.Connection, query: Query, field: GroupField) -> dict[str, int]:
    split = split_by_hours(query)
    result: Counter[str] = Counter()
    if split is None or field == "source_component":
        where_sql, params = sql.where(query)
        expr = sql.GROUP_EXPRESSIONS[field]
        rows = conn.execute(f"SELECT {expr}, count(*) FROM events e{where_sql} GROUP BY 1", params)
    else:
        rollup_where, params = _rollup_where(query, split.first_hour, split.end_hour)
        rows = conn.execute(
            f"SELECT c.{field}, sum(n) FROM event_counts c{rollup_where} GROUP BY 1", params
        )
        for edge in split.edges:
            result.update(_group_count(conn, edge, field))
    for key, n in rows:
        result[hour_key(key) if field == "hour" and len(key) == 13 else key] += n
    return dict(result.most_common())


def _read_after(
    conn: sqlite3.Connection, position: int, query: Query, limit: int
) -> tuple[list[Event], int]:
    end = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0])
    # Cleanup may remove the newest rowids, which are then reused: anything past
    # the current end is new.
    if position < 0 or position >= end:
        return [], end
    where_sql, params = sql.where(query)
    where_sql += (" AND" if where_sql else " WHERE") + " e.rowid > ? AND e.rowid <= ?"
    # NOT INDEXED keeps the plan on the rowid range, so a poll costs only the new rows
    # even when a filter has an index of its own.
    rows = conn.execute(
        f"SELECT {sql.COLUMNS} FROM events e NOT INDEXED{where_sql} ORDER BY e.rowid LIMIT ?",
        [*params, position, end, limit],
    ).fetchall()
    if len(rows) == limit:
        end = int(rows[-1][0])
    return [sql.from_row(r) for r in rows], end


def _rollup_where(query: Query, first: str | None, end: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("c.system", query.systems),
        ("c.event_type", query.event_types),
        ("c.severity", query.severities),
    ):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    if first is not None:
        clauses.append("c.hour >= ?")
        params.append(first)
    if end is not None:
        clauses.append("c.hour < ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _duration_stats(conn: sqlite3.Connection, query: Query) -> DurationStats:
    where_sql, params = sql.where(query)
    where_sql += (" AND" if where_sql else " WHERE") + " e.duration_ms IS NOT NULL"
    n, lo, hi, avg = conn.execute(
        f"SELECT count(*), min(e.duration_ms), max(e.duration_ms), avg(e.duration_ms)"
        f" FROM events e{where_sql}",
        params,
    ).fetchone()
    if not n:
        return DurationStats(0, None, None, None, None, None, None)

    def percentile(q: float) -> float:
        rank = q * (n - 1)
        below = int(rank)
        values = [
            r[0]
            for r in conn.execute(
                f"SELECT e.duration_ms FROM events e{where_sql}"
                " ORDER BY e.duration_ms LIMIT 2 OFFSET ?",
                [*params, below],
            )
        ]
        upper = values[1] if len(values) > 1 else values[0]
        return float(values[0] + (upper - values[0]) * (rank - below))

    return DurationStats(n, lo, hi, float(avg), percentile(0.5), percentile(0.95), percentile(0.99))


def _json_list(text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _refuse_network_filesystem(path: str) -> None:
    """WAL needs shared memory between processes, which network filesystems do not give."""
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            entries = [line.split()[1:3] for line in mounts if len(line.split()) > 2]
    except OSError:
        return
    target = os.path.realpath(os.path.dirname(path) or ".")
    best = max(
        (e for e in entries if target == e[0] or target.startswith(e[0].rstrip("/") + "/")),
        key=lambda e: len(e[0]),
        default=None,
    )
    if best is not None and best[1] in _NETWORK_FILESYSTEMS:
        raise ValueError(
            f"db_path: {path} is on a network filesystem ({best[1]}); SQLite's WAL mode "
            "needs a local disk. Use a local path, or PostgreSQL for a shared store."
        )


__all__ += ["SCHEMA_VERSION"]
