"""Opening SQLite connections: the settings every connection of ours gets, the
readers' statement time budget, and the refusal of network filesystems and of an
SQLite too old for our SQL."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from typing import Any

from eventcollector.storage.base import StorageError

_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smbfs", "smb3", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs"}
)


#: SQLite calls the budget check every this many virtual machine steps (a few ms of
#: work): a statement shorter than that never calls back into Python (and never waits
#: for the GIL there), and a cancelled one stops within milliseconds of its deadline.
_BUDGET_CHECK_STEPS = 100_000


class ReaderConnection(sqlite3.Connection):
    """A reader's connection: each statement that ``execute`` starts may run for
    ``budget`` seconds (None: no limit), then SQLite interrupts it (SQLITE_INTERRUPT)."""

    budget: float | None = None
    _deadline = math.inf

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.budget is not None:
            self._deadline = time.monotonic() + self.budget
        return super().execute(sql, parameters)

    def limit_statements(self, budget: float | None) -> None:
        self.budget = budget
        handler = None if budget is None else self._past_deadline
        self.set_progress_handler(handler, _BUDGET_CHECK_STEPS)

    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline


def connect(
    path: str, *, busy_ms: int, synchronous: str, factory: type[sqlite3.Connection] | None = None
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=busy_ms / 1000,
        factory=factory or sqlite3.Connection,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
        conn.execute("PRAGMA temp_store = MEMORY")
    except BaseException:
        conn.close()  # e.g. "file is not a database"
        raise
    return conn


def connect_reader(path: str, *, busy_ms: int, synchronous: str) -> ReaderConnection:
    """A reader's connection: read-only, memory-mapped, statements within a budget."""
    conn = connect(path, busy_ms=busy_ms, synchronous=synchronous, factory=ReaderConnection)
    assert isinstance(conn, ReaderConnection)
    conn.execute("PRAGMA query_only = 1")
    conn.execute("PRAGMA mmap_size = 268435456")
    return conn


#: The JSON operators -> and ->> (3.38.0) are the newest SQL we write.
MIN_SQLITE = (3, 38, 0)


def require_sqlite(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Python links the system's SQLite (Ubuntu 22.04: 3.37.2): refuse an older one with
    the reason, rather than fail later on the first statement that uses newer SQL."""
    if version < MIN_SQLITE:
        raise StorageError(
            f"SQLite {'.'.join(map(str, MIN_SQLITE))} or newer is needed; this Python's "
            f"sqlite3 module uses SQLite {'.'.join(map(str, version))}. Use a Python built "
            "with a newer SQLite, or PostgreSQL (--db postgresql://...)."
        )


def refuse_network_filesystem(path: str) -> None:
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
