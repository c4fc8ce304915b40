"""The storage contract every backend implements (SQLite, PostgreSQL).

Backends are handed validated ``Event`` objects and backend-agnostic ``Query``
descriptions; they own their schema, their SQL and their connections. The
contract test suite in ``tests/storage`` runs unchanged against each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from eventcollector.model import Event
from eventcollector.query import DurationStats, GroupField, Query

__all__ = [
    "MAX_RETENTION_DAYS",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "retention_cutoff",
]

#: 1,000 years; near 740,000 days a cutoff would fall before year 1.
MAX_RETENTION_DAYS = 365_000


def retention_cutoff(retention_days: float, now: datetime | None = None) -> datetime:
    """The moment before which ``cleanup_old_events`` deletes; ValueError if out of range."""
    if (
        isinstance(retention_days, bool)
        or not isinstance(retention_days, int | float)
        or not 0 <= retention_days <= MAX_RETENTION_DAYS
    ):
        raise ValueError(f"retention_days: must be a number from 0 to {MAX_RETENTION_DAYS}")
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


class StorageError(RuntimeError):
    """The store could not complete an operation (nothing was acknowledged)."""


class StorageUnavailable(StorageError):
    """The store is unreachable or out of space; retrying later may succeed."""


@runtime_checkable
class Storage(Protocol):
    """Durable event storage with filtered reads and aggregates.

    A backend may also offer ``flush(timeout)`` (make buffered writes visible) and
    ``enqueue_append(events)`` (``append`` queued synchronously, returning a future);
    the collector uses them when present.
    """

    #: Where the events live, for health output ("sqlite:///path", "postgresql://host/db").
    url: str

    async def open(self) -> None:
        """Connect, create or upgrade the schema; safe to call twice."""

    async def close(self) -> None:
        """Finish pending writes and release every connection."""

    async def append(self, events: Sequence[Event]) -> list[bool]:
        """Store events durably; per event True if new, False if its id was already stored."""

    async def query(self, query: Query) -> list[Event]:
        """The matching events, ordered and paged as the query says."""

    async def count(self, query: Query) -> int:
        """How many events match, ignoring order, limit and offset."""

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        """Matching events counted by one field (None values under "")."""

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        """Duration count/min/max/avg, and p50/p95/p99 unless ``percentiles`` is False."""

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None
    ) -> int:
        """Delete events older than the retention period; the number deleted."""

    async def health(self) -> dict[str, Any]:
        """Backend details for health output; raises StorageError if unusable."""
