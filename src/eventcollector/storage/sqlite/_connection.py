"""Opening SQLite connections: the settings every connection of ours gets, and the
refusal of network filesystems."""

from __future__ import annotations

import os
import sqlite3

_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smbfs", "smb3", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs"}
)


def connect(path: str, *, busy_ms: int, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_ms / 1000
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
