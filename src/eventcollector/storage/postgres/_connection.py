"""PostgreSQL connections: ``Runner``, the shape of running ``fn(conn)`` on a pooled
connection (``PostgresStorage._run`` / ``_read``) that the writer and the listener are
given; ``Fetch``, a statement as such an ``fn``; ``ReadBudget``, a read within the
statement time budget; the pool's reset; the URL's schema parameter and its redaction
for output.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

__all__ = ["POOL_RESET", "Fetch", "ReadBudget", "Runner", "redact", "split_schema"]

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


class ReadBudget:
    """Runs a read in one read-only transaction whose statements may each run
    ``seconds`` (``SET LOCAL statement_timeout``): only reads get the budget, so the
    writer's transactions and upkeep (index builds, retention) are never cancelled by it.

    BEGIN and SET go in one round trip. The transaction is one REPEATABLE READ snapshot
    (``_reads.snapshot`` inside it adds nothing); ``committed`` keeps READ COMMITTED for
    ``read_after``, which waits for writers to commit and must then see their rows.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        milliseconds = max(1, round(seconds * 1000))  # a number of ours, never user text
        limit = f"SET LOCAL statement_timeout = {milliseconds}"
        self._begin = f"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {limit}"
        self._begin_committed = f"BEGIN READ ONLY; {limit}"

    async def run(
        self, fn: Callable[[Any], Awaitable[T]], conn: Any, *, committed: bool = False
    ) -> T:
        await conn.execute(self._begin_committed if committed else self._begin)
        try:
            result = await fn(conn)
        except BaseException:
            if not conn.is_closed() and conn.is_in_transaction():
                with contextlib.suppress(Exception):  # the pool's reset rolls back too
                    await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
        return result

    @staticmethod
    def expired(exc: BaseException) -> bool:
        """Whether ``exc`` is a statement cancelled by ``statement_timeout``."""
        return isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in str(exc)


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
