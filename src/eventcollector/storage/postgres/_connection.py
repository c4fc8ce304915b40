"""PostgreSQL connections: ``Runner``, the shape of running ``fn(conn)`` on a pooled
connection (``PostgresStorage._run`` / ``_read``) that the writer and the listener are
given; ``Fetch``, a statement as such an ``fn``; the pool's reset; the URL's schema
parameter and its redaction for output.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

__all__ = ["POOL_RESET", "Fetch", "Runner", "redact", "split_schema"]

T = TypeVar("T")


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


async def _reset_connection(conn: Any) -> None:
    """Run when a connection goes back to the pool, after asyncpg's own cleanup (which
    rolls back a transaction left open). Nothing here sets session state (advisory
    locks are transaction-scoped, LISTEN has its own connection), so the default reset,
    one more round trip (unlock all, CLOSE ALL, UNLISTEN *, RESET ALL), is skipped."""


# ``reset=`` is newer than the oldest asyncpg supported: without it, the default reset.
POOL_RESET: dict[str, Any] = (
    {"reset": _reset_connection}
    if "reset" in inspect.signature(asyncpg.create_pool).parameters
    else {}
)


def split_schema(url: str) -> tuple[str, str | None]:
    """The URL without a ``schema=`` query parameter, and that parameter."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in pairs if k == "schema"]
    if not schemas:
        return url, None
    rest = urlencode([(k, v) for k, v in pairs if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[-1]


def redact(url: str) -> str:
    """The URL without its password, for health output and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
