"""The storage contract every backend implements (SQLite, PostgreSQL).

Backends are handed validated ``Event`` objects and backend-agnostic ``Query``
descriptions; they own their schema, their SQL and their connections. The
contract test suite in ``tests/storage`` runs unchanged against each of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from eventcollector.aggregation import AggregateResult, AggregateSpec, Facet
from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState
from eventcollector.alert_silences import AlertSilence
from eventcollector.filters import Field, Filter
from eventcollector.issue_activity import ActivityQuery, IssueActivity
from eventcollector.issues import Issue, IssueChange, IssueQuery, IssuesCallback
from eventcollector.model import Event
from eventcollector.query import DurationStats, GroupField, Query

__all__ = [
    "DEFAULT_QUERY_TIMEOUT",
    "MAX_RETENTION_DAYS",
    "Aggregating",
    "AlertStore",
    "EnqueueAppend",
    "EventStore",
    "EventsCallback",
    "FileBacked",
    "Flushable",
    "Followable",
    "Indexable",
    "IssueFeed",
    "IssueStore",
    "QueryTimeout",
    "QueuedStore",
    "SharedFeed",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "query_timeout",
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


#: Seconds one read statement may run before it is cancelled (docs/storage.md).
DEFAULT_QUERY_TIMEOUT = 10.0


class QueryTimeout(StorageUnavailable):
    """A read statement ran past the statement time budget and was cancelled; the
    writer and other readers were not affected, and a lighter query may succeed."""

    def __init__(self, budget: float) -> None:
        super().__init__(
            f"query_timeout: the query ran past its {budget:g} s budget and was cancelled"
        )
        self.budget = budget


def query_timeout(seconds: float | None) -> float | None:
    """``seconds`` checked as a statement time budget (None: no budget)."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError("query_timeout: must be a positive number of seconds, or None")
    if seconds == float("inf"):
        return None
    return float(seconds)


class EventStore(Protocol):
    """Reads and upkeep that every store answers, local or remote."""

    #: Where the events live, for health output ("sqlite:///path", "postgresql://host/db").
    url: str

    async def open(self) -> None:
        """Connect, create or upgrade the schema; safe to call twice."""

    async def close(self) -> None:
        """Finish pending writes and release every connection."""

    async def query(self, query: Query) -> list[Event]:
        """The matching events, ordered and paged as the query says."""

    async def count(self, query: Query) -> int:
        """How many events match, ignoring order, limit and offset."""

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        """Matching events counted by one field (None values under "")."""

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        """Duration count/min/max/avg, and p50/p95/p99 unless ``percentiles`` is False."""

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None, where: Filter | None = None
    ) -> int:
        """Delete events older than the retention period (only those matching ``where``,
        a parsed filter, when given); the number deleted."""

    async def health(self) -> dict[str, Any]:
        """Backend details for health output; raises StorageError if unusable."""


@runtime_checkable
class Storage(EventStore, Protocol):
    """A durable store: ``append`` returns once the events are committed."""

    async def append(self, events: Sequence[Event]) -> list[bool]:
        """Store events durably; per event True if new, False if its id was already stored."""


@runtime_checkable
class QueuedStore(EventStore, Protocol):
    """A store that delivers writes later (the remote client): nothing is durable yet.

    It cannot tell a duplicate id before delivery, so it has no ``append``; the
    collector hands it events with ``submit`` and says so in its answers.
    """

    def submit(self, events: Sequence[Event]) -> None:
        """Queue events for delivery; never blocks on the network, never raises for it."""

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until what was submitted is delivered (or settled); False on timeout."""

    def flush_sync(self, timeout: float | None = None, *, patient: bool | None = None) -> bool:
        """``flush`` for threads without an event loop (a logging handler's flush)."""

    def client_stats(self) -> dict[str, Any]:
        """Delivery counters: emitted, delivered, rejected, dropped, spooled, buffered."""


# -- optional capabilities of a durable store; the collector checks them once -------------


@runtime_checkable
class Flushable(Protocol):
    """Writes may be buffered past ``append`` (SQLite's small-commit journal)."""

    async def flush(self, timeout: float | None = None) -> bool:
        """Make every acknowledged write visible to plain SQL; False on timeout."""


@runtime_checkable
class EnqueueAppend(Protocol):
    """``append`` that queues synchronously: no task and loop iteration in between."""

    def enqueue_append(self, events: Sequence[Event]) -> asyncio.Future[list[bool]]:
        """The future of ``append(events)``, its job already queued."""


EventsCallback = Callable[[list[Event]], Any]


@runtime_checkable
class SharedFeed(Protocol):
    """Several servers share the store: events stored by the others are announced."""

    async def listen(self, callback: EventsCallback) -> None:
        """Call ``callback(events)`` on the loop for events other instances store."""


@runtime_checkable
class Followable(Protocol):
    """Events can be read in insertion order from a position (``eventcollector tail``)."""

    async def read_after(
        self, position: int, query: Query, limit: int = 1_000
    ) -> tuple[list[Event], int]:
        """Matching events stored after ``position`` and the position to pass next."""


@runtime_checkable
class FileBacked(Protocol):
    """The store is one local file."""

    #: The database file.
    path: str


@runtime_checkable
class IssueStore(Protocol):
    """Error issues (docs/issues.md), kept on ingest in the events' transaction."""

    async def issues(self, query: IssueQuery) -> list[Issue]:
        """The issues matching ``query``, ordered and paged."""

    async def get_issue(self, issue_id: int) -> Issue | None:
        """The issue with this id, or None."""

    async def set_issue_status(
        self, issue_id: int, status: str, *, until: datetime | None = None
    ) -> Issue | None:
        """Change an issue's status (``until``: the end of a mute); the issue, or None
        when there is none; clears ``regressed``."""

    async def issue_events(self, issue_id: int, limit: int = 100) -> list[Event]:
        """The issue's stored events, newest first."""

    async def issue_activity(self, query: ActivityQuery) -> IssueActivity:
        """How many of each issue's stored events fall in each bucket of ``query``."""


@runtime_checkable
class IssueFeed(Protocol):
    """The store announces new and regressed issues (a local store; not the client)."""

    def watch_issues(self, callback: IssuesCallback) -> None:
        """Call ``callback(changes)`` on the caller's loop after each commit that created
        or regressed issues (alert triggers hook here)."""


@runtime_checkable
class Aggregating(Protocol):
    """Groupings, time series and facets computed in the store (``eventcollector.aggregation``)."""

    async def aggregate(self, query: Query, spec: AggregateSpec) -> AggregateResult:
        """``spec``'s groups and metrics over the events matching ``query``."""

    async def facets(self, query: Query, fields: Sequence[Field], top: int = 10) -> list[Facet]:
        """The ``top`` values of each field with their counts, in one consistent read."""


@runtime_checkable
class Indexable(Protocol):
    """Data/metadata paths can get an expression index (``eventcollector index``)."""

    async def add_index(self, path: str) -> bool:
        """Index ``path`` (``data.repo``); False if it was indexed already."""

    async def remove_index(self, path: str) -> bool:
        """Drop the index on ``path``; False if there was none."""

    async def list_indexes(self) -> list[dict[str, Any]]:
        """The indexed paths: path, index name, created_at."""


@runtime_checkable
class AlertStore(Protocol):
    """Alert rules, their states and history (docs/alerts.md), and who evaluates them."""

    async def alert_rules(self) -> list[tuple[AlertRule, str]]:
        """Every stored rule with its source (``"file"`` or ``"api"``), by name."""

    async def put_alert_rule(self, rule: AlertRule, source: str) -> bool:
        """Store ``rule`` (replacing one of that name, keeping its state); True if new."""

    async def delete_alert_rule(self, name: str) -> bool:
        """Delete the rule, its states and its history; False if there was none."""

    async def alert_states(self, rule: str | None = None) -> list[AlertState]:
        """The states of ``rule`` (of every rule when None), by rule and group."""

    async def save_alert(
        self, states: Sequence[AlertState], records: Sequence[AlertRecord]
    ) -> None:
        """Store states and append history records, in one transaction."""

    async def alert_history(self, rule: str, limit: int = 100) -> list[AlertRecord]:
        """The rule's history, newest first."""

    async def push_alert_triggers(self, changes: Sequence[IssueChange]) -> None:
        """Queue new/regressed issues for the evaluating instance (any instance calls this)."""

    async def take_alert_triggers(self) -> list[IssueChange]:
        """The queued issue changes, oldest first, removed from the queue."""

    async def alert_lease(self) -> bool:
        """Whether this instance evaluates: takes the lease when free, keeps it while
        held (a lock that its holder's death releases); call it before every round."""

    async def alert_silences(self) -> list[AlertSilence]:
        """The silences that have not ended, by id."""

    async def add_alert_silence(self, silence: AlertSilence) -> AlertSilence:
        """Store ``silence`` (deleting those that have ended); it with its id and time.
        ValueError past ``MAX_SILENCES`` in force."""

    async def delete_alert_silence(self, silence_id: int) -> bool:
        """End a silence now; False if there was none in force of that id."""
