"""SQLite errors as ``StorageError``: classified by SQLite's result code, not its text.

``StorageUnavailable`` (retrying later may succeed) for a full disk, an I/O error, a
lock held by another connection and a read-only file; ``StorageError`` for everything
else (a constraint, bad SQL, a corrupt file, a path that cannot be opened: retrying
does not create a missing directory).
"""

from __future__ import annotations

import sqlite3

from eventcollector.storage.base import StorageError, StorageUnavailable

#: Primary result codes (the low byte of an extended code such as SQLITE_IOERR_WRITE).
_UNAVAILABLE = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
    }
)
_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def _primary_code(exc: sqlite3.Error) -> int | None:
    # Errors the sqlite3 module raises itself (a closed connection, say) carry no code.
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock: waiting may help."""
    return _primary_code(exc) in _BUSY


def storage_error(exc: sqlite3.Error) -> StorageError:
    """``StorageUnavailable`` when retrying later may succeed, else ``StorageError``."""
    if _primary_code(exc) in _UNAVAILABLE:
        return StorageUnavailable(f"storage unavailable: {exc}")
    return StorageError(f"storage error: {exc}")
