"""What a store can do beyond the core ``Storage`` protocol, looked up once when the
collector starts, so that each call does not ask ``isinstance`` again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eventcollector.issues import IssuesCallback
from eventcollector.storage import (
    Aggregating,
    EventsCallback,
    FileBacked,
    Flushable,
    IssueFeed,
    IssueStore,
    QueuedStore,
    SharedFeed,
    Storage,
)

__all__ = ["Capabilities"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the store can do beyond the core protocol, looked up once."""

    flush: Callable[[float | None], Awaitable[bool]] | None
    listen: Callable[[EventsCallback], Awaitable[None]] | None
    client_stats: Callable[[], dict[str, Any]] | None
    path: str | None
    issues: IssueStore | None
    watch_issues: Callable[[IssuesCallback], None] | None
    aggregating: Aggregating | None

    @classmethod
    def of(cls, storage: Storage | QueuedStore) -> Capabilities:
        if isinstance(storage, QueuedStore):
            return cls(
                flush=storage.flush,
                listen=None,
                client_stats=storage.client_stats,
                path=None,
                issues=storage if isinstance(storage, IssueStore) else None,
                watch_issues=None,
                aggregating=storage if isinstance(storage, Aggregating) else None,
            )
        return cls(
            flush=storage.flush if isinstance(storage, Flushable) else None,
            listen=storage.listen if isinstance(storage, SharedFeed) else None,
            client_stats=None,
            path=storage.path if isinstance(storage, FileBacked) else None,
            issues=storage if isinstance(storage, IssueStore) else None,
            watch_issues=storage.watch_issues if isinstance(storage, IssueFeed) else None,
            aggregating=storage if isinstance(storage, Aggregating) else None,
        )
