"""WAL checkpoints on a thread of their own.

With SQLite's automatic checkpoints, the commit that crosses the threshold copies
the WAL into the database and syncs it, inside the writer: about two thirds of
commit time under load, measured here. The writer therefore turns them off and
this thread runs PASSIVE checkpoints (which never block the writer or readers)
whenever the WAL has grown past a threshold, keeping the WAL bounded while the
writer keeps committing on the other core.

A PASSIVE checkpoint never lets the WAL start over while the writer commits
without pause (it can only restart from the beginning once every frame was
copied, and new frames keep arriving), so under sustained ingest the file grew
without bound (hundreds of MB in seconds). Past ``WAL_HARD_LIMIT_BYTES`` the
thread therefore runs a TRUNCATE checkpoint: it waits for the write lock (at most
``HARD_BUSY_MS``), holds up the writer while it copies the rest, and empties the
file. Reads are short transactions, so it rarely waits for one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("eventcollector.storage.sqlite")

#: Checkpoint once the WAL is larger than this.
WAL_THRESHOLD_BYTES = 8 * 1024 * 1024
#: Past this size, checkpoint even if it briefly holds up the writer (TRUNCATE).
WAL_HARD_LIMIT_BYTES = 4 * WAL_THRESHOLD_BYTES
#: How long a TRUNCATE checkpoint waits for the writer or a reader before trying later.
HARD_BUSY_MS = 5_000
#: How often to look at the WAL's size.
INTERVAL_SECONDS = 0.1


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` when the WAL grows; TRUNCATE on close."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], wal_path: str) -> None:
        self._connect = connect
        self._wal_path = wal_path
        self._stop = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(
            target=self._run, name="eventcollector-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self._wal_path)
        except OSError:
            return 0

    def _run(self) -> None:
        conn = self._connect()
        try:
            conn.execute(f"PRAGMA busy_timeout = {HARD_BUSY_MS}")
            while not self._stop.wait(INTERVAL_SECONDS):
                size = self._wal_size()
                if size > WAL_HARD_LIMIT_BYTES:
                    self._checkpoint(conn, "TRUNCATE")
                elif size > WAL_THRESHOLD_BYTES:
                    self._checkpoint(conn, "PASSIVE")
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # busy, or the disk is full: try again next time
            log.warning("WAL checkpoint (%s) failed: %s", mode, exc)

    def close(self) -> None:
        """Stop after a final checkpoint that also empties the WAL file."""
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join()
