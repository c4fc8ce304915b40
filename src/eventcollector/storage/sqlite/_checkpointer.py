"""WAL checkpoints on a thread of their own.

With SQLite's automatic checkpoints, the commit that crosses the threshold copies
the WAL into the database and syncs it, inside the writer: about two thirds of
commit time under load, measured here. The writer therefore turns them off and
this thread runs PASSIVE checkpoints (which never block the writer or readers)
whenever the WAL has grown past a threshold, keeping the WAL bounded while the
writer keeps committing on the other core.

A PASSIVE checkpoint alone never lets the WAL start over while the writer commits
without pause (it restarts from the beginning only once every frame was copied,
and new frames keep arriving), so under sustained ingest the file grew without
bound (hundreds of MB in seconds). So once this thread has copied most of a large
WAL, it asks the writer to finish the job between two transactions
(``request_reset``): the few frames left copy quickly, nothing new arrives
meanwhile, and the writer's next transaction starts the WAL over. Should that
not happen (a reader holding an old snapshot), past ``WAL_HARD_LIMIT_BYTES`` the
thread runs a TRUNCATE checkpoint, which waits for the writer (at most
``HARD_BUSY_MS``) and empties the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("eventcollector.storage.sqlite")

#: Ask the writer to let the WAL start over once it holds this many frames.
RESET_FRAMES = 2_000
#: Past this size, checkpoint even if it briefly holds up the writer (TRUNCATE).
WAL_HARD_LIMIT_BYTES = 64 * 1024 * 1024
#: How long a TRUNCATE checkpoint waits for the writer or a reader before trying later.
HARD_BUSY_MS = 5_000
#: How often to look at the WAL's size.
INTERVAL_SECONDS = 0.1


class Checkpointer:
    """PASSIVE checkpoints every interval, a writer-assisted restart of large WALs."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        wal_path: str,
        request_reset: Callable[[], None],
    ) -> None:
        self._connect = connect
        self._wal_path = wal_path
        self._request_reset = request_reset
        self._stop = threading.Event()
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
                if self._wal_size() > WAL_HARD_LIMIT_BYTES:
                    self._checkpoint(conn, "TRUNCATE")
                    continue
                frames = self._checkpoint(conn, "PASSIVE")
                if frames > RESET_FRAMES:
                    self._request_reset()
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> int:
        """Run one checkpoint; the number of frames in the WAL (0 if it failed)."""
        try:
            _busy, frames, _copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:  # the disk is full, say: try again next time
            log.warning("WAL checkpoint (%s) failed: %s", mode, exc)
            return 0
        return int(frames)

    def close(self) -> None:
        """Stop after a final checkpoint that also empties the WAL file."""
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join()
