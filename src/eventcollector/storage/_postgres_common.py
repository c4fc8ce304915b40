"""What ``PostgresStorage``, its writer and its listener share.

``Runner`` is the shape of ``PostgresStorage._run``/``_read`` (``fn(conn)`` on a pooled
connection), ``Fetch`` a statement as such an ``fn``, ``translate`` the mapping of
database errors to ``StorageError``/``StorageUnavailable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from eventcollector.storage.base import StorageError, StorageUnavailable

__all__ = ["Fetch", "Runner", "translate"]

T = TypeVar("T")

_UNAVAILABLE_STATES = ("08", "53", "57P", "28")


class Runner(Protocol):
    """``fn(conn)`` on a pooled connection (``PostgresStorage._run`` or ``_read``)."""

    def __call__(self, fn: Callable[[Any], Awaitable[T]], /) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class Fetch:
    """``conn.fetch(statement, *args)`` as a one-argument callable for ``_run``."""

    statement: str
    args: tuple[Any, ...]
    one: bool = False

    async def __call__(self, conn: Any) -> Any:
        if self.one:
            return await conn.fetchrow(self.statement, *self.args)
        return await conn.fetch(self.statement, *self.args)


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
