"""PostgreSQL errors as ``StorageError``: ``translate`` by SQLSTATE class and exception
type, ``connection_lost`` for the errors after which a retry on a new connection is safe.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from eventcollector.storage.base import StorageError, StorageUnavailable

__all__ = ["connection_lost", "translate"]

_UNAVAILABLE_STATES = ("08", "53", "57P", "28")


def translate(exc: BaseException, what: str) -> StorageError:
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


def connection_lost(exc: BaseException) -> bool:
    """The connection is gone or unusable (killed, server restarted): safe to retry."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "")).startswith(("08", "57P"))
    return isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError | ConnectionError)
