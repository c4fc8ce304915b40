"""``EventCollector``: validates, stores and fans out events; answers queries.

The collector sits above an injected ``Storage``. ``collect()`` returns once the
event is durable (for the embedded store) and only then offers it to
subscribers. It starts itself on first use, because the spec's examples call
``collect()`` on ``get_event_collector()`` without ``start()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from eventcollector._capabilities import Capabilities
from eventcollector._emit import EmitBridge
from eventcollector._pipeline import IngestPipeline, QueueFull, batch_writer, running_loop
from eventcollector._subscribers import EventStream, JsonStream, Subscriber, SubscriberHub
from eventcollector.aggregation import AggregateResult, AggregateSpec, Facet, facet_fields
from eventcollector.filters import Filter
from eventcollector.issue_activity import ActivityQuery, IssueActivity
from eventcollector.issues import Issue, IssueQuery, IssuesCallback
from eventcollector.model import Event, EventType, Severity, System
from eventcollector.query import DurationStats, GroupField, Query, group_field
from eventcollector.storage import (
    DEFAULT_QUERY_TIMEOUT,
    Aggregating,
    AlertStore,
    Indexable,
    IssueStore,
    QueuedStore,
    Storage,
    StorageError,
    default_db_path,
    open_storage,
)

__all__ = ["DEFAULT_MAX_PENDING", "EventCollector", "QueueFull"]

_log = logging.getLogger("eventcollector")

#: Events accepted but not yet committed before ``collect()`` waits (or the server answers 503).
DEFAULT_MAX_PENDING = 100_000


class EventCollector:
    """Collect events into a storage backend and query them back.

    ``EventCollector(db_path="data/events.db")`` uses embedded SQLite;
    ``db_path="postgresql://..."`` (or ``db_url=``) uses PostgreSQL;
    ``url="http://collector:8765"`` sends to a collector server;
    ``storage=`` injects any ``Storage`` (or ``QueuedStore``).

    ``query_timeout``: seconds one read statement of the store it opens may run before
    it is cancelled with ``QueryTimeout`` (None: no budget); a server (``url=``) or an
    injected ``storage=`` keeps its own.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        storage: Storage | QueuedStore | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        query_timeout: float | None = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        targets = [t for t in (db_path, db_url, url, storage) if t is not None]
        if len(targets) > 1:
            raise ValueError("db_path, db_url, url and storage: give only one")
        if query_timeout != DEFAULT_QUERY_TIMEOUT and (url is not None or storage is not None):
            raise ValueError("query_timeout: set it on the server or the storage given")
        if max_pending < 1:
            raise ValueError("max_pending: must be at least 1")
        if storage is None:
            if url is not None:
                storage = _remote_storage(url, api_key)
            else:
                target = db_path or db_url or default_db_path()
                storage = open_storage(target, query_timeout=query_timeout)
        self._storage: Storage | QueuedStore = storage
        self._can = Capabilities.of(storage)
        self._hub = SubscriberHub()
        self._pipeline = IngestPipeline(batch_writer(storage), self._hub.publish, max_pending)
        #: Accepted, duplicate and refused event counts (health output, metrics).
        self.counters: Counter[str] = self._pipeline.counters
        self._emitter = EmitBridge(
            self.ingest, self._ensure_started, self._live_loop, self.counters
        )
        self._running = False
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at: float | None = None
        self._issue_watchers: list[IssuesCallback] = []

    @property
    def storage(self) -> Storage | QueuedStore:
        """The backend this collector writes to."""
        return self._storage

    @property
    def db_path(self) -> str:
        """The file path for SQLite, else the storage URL."""
        return self._can.path or self._storage.url

    @property
    def running(self) -> bool:
        return self._running

    @property
    def max_pending(self) -> int:
        """The bound on events accepted but not yet committed."""
        return self._pipeline.max_pending

    @property
    def pending(self) -> int:
        """Events accepted but not yet committed."""
        return self._pipeline.pending

    def _live_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self._loop
        return loop if self._running and loop is not None and not loop.is_closed() else None

    def _in_flight(self) -> set[asyncio.Future[Any]]:
        return self._pipeline.writes | self._emitter.tasks

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Open the storage and start delivering to subscribers; safe to call twice."""
        if self._running:
            return
        await self._storage.open()
        with self._start_lock:
            if self._running:
                return
            self._loop = self._pipeline.home = asyncio.get_running_loop()
            self._hub.bind(self._loop)
            self._started_at = time.monotonic()
            self._running = True
        if self._can.watch_issues is not None:
            self._can.watch_issues(self._announce_issues)
        # Backends shared by several servers (PostgreSQL) feed in events stored elsewhere.
        if self._can.listen is not None:
            await self._can.listen(self._hub.publish)

    async def stop(self) -> None:
        """Wait for accepted events to be stored, stop subscribers, close the storage."""
        if not self._running:
            return
        if in_flight := self._in_flight():  # while still running, so that they do not restart it
            await asyncio.gather(*in_flight, return_exceptions=True)
        self._running = False
        await self._hub.close()
        await self._storage.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _ensure_started(self) -> None:
        if not self._running:
            await self.start()

    # -- ingest --------------------------------------------------------------

    async def collect(
        self,
        system: System | str,
        event_type: EventType | str,
        title: str,
        severity: Severity | str = Severity.INFO,
        description: str = "",
        data: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        correlation_id: str | None = None,
        source_component: str | None = None,
        duration_ms: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | str | None = None,
        id: str | None = None,
    ) -> Event:
        """Validate, store and publish one event; returns it once it is durable.

        Raises ``ValueError`` naming the field for invalid input.
        """
        event = Event.create(
            system=system,
            event_type=event_type,
            title=title,
            severity=severity,
            description=description,
            data=data,
            tags=tags,
            correlation_id=correlation_id,
            source_component=source_component,
            duration_ms=duration_ms,
            metadata=metadata,
            timestamp=timestamp,
            id=id,
        )
        await self.ingest((event,))
        return event

    async def ingest(self, events: Sequence[Event], *, wait: bool = True) -> list[bool]:
        """Store validated events; per event True if new, False if a duplicate id.

        With ``wait=False`` a full queue raises ``QueueFull`` instead of waiting. A
        queued store (the remote client) cannot tell duplicates before delivery:
        there every event reads True, meaning handed over for delivery.
        """
        if not events:
            return []
        if not self._running:
            await self.start()
        return await self._pipeline.ingest(events, wait=wait)

    def emit(self, **fields: Any) -> Event:
        """Record an event without waiting: validates now, stores in the background.

        For synchronous code; thread-safe. Raises ``ValueError`` for invalid input.
        Call ``await collector.stop()`` (or ``flush()``) to wait for what was emitted.
        """
        event = Event.create(**fields)
        self._emitter.emit(event)
        return event

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until events accepted so far (including ``emit``-ted ones) are stored."""
        loop = self._loop
        if loop is not None and loop is not running_loop() and loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._drain(timeout), loop))
        else:
            await self._drain(timeout)
        if self._can.flush is not None:
            await self._can.flush(timeout)

    async def _drain(self, timeout: float | None) -> None:
        if in_flight := self._in_flight():
            await asyncio.wait(in_flight, timeout=timeout)

    # -- subscribers ---------------------------------------------------------

    def subscribe(self, callback: Subscriber, query: Query | None = None) -> None:
        """Call ``callback(event)`` for each new event (sync or async; errors are logged)."""
        self._hub.subscribe(callback, query)

    def unsubscribe(self, callback: Subscriber) -> bool:
        """Stop calling ``callback``; False if it was not subscribed."""
        return self._hub.unsubscribe(callback)

    def open_stream(self, query: Query | None = None, maxsize: int = 10_000) -> EventStream:
        """A bounded async iterator of new events matching ``query`` (for live streams)."""
        return self._hub.open_stream(query, maxsize)

    def open_json_stream(self, query: Query | None, maxsize: int, max_bytes: int) -> JsonStream:
        """As ``open_stream``, each event as its JSON, bounded in bytes too (the server's
        streams: an event is encoded once for all of them)."""
        return self._hub.open_json_stream(query, maxsize, max_bytes)

    def close_stream(self, stream: EventStream | JsonStream) -> None:
        self._hub.close_stream(stream)

    @property
    def subscriber_count(self) -> int:
        return self._hub.count

    def on_issue(self, callback: IssuesCallback) -> None:
        """Call ``callback(changes)`` (a list of ``IssueChange``: an issue was created
        or regressed) on the collector's loop after each commit that made some; for
        alert triggers. A local store only; errors in the callback are logged."""
        self._issue_watchers.append(callback)

    def _announce_issues(self, changes: list[Any]) -> None:
        for callback in self._issue_watchers:
            try:
                callback(changes)
            except Exception:
                _log.exception("issue callback %r failed", callback)

    # -- issues --------------------------------------------------------------

    async def _issue_store(self) -> IssueStore:
        if self._can.issues is None:
            raise NotImplementedError(f"{type(self._storage).__name__} keeps no issues")
        await self._ensure_started()
        return self._can.issues

    async def issues(
        self,
        *,
        status: str | None = None,
        system: str | None = None,
        seen_since: datetime | None = None,
        order_by: str = "last_seen",
        limit: int = 50,
        offset: int = 0,
    ) -> list[Issue]:
        """Error issues (docs/issues.md), the latest seen first; ValueError naming a bad
        argument."""
        query = IssueQuery(status, system, seen_since, order_by, limit, offset)
        return await (await self._issue_store()).issues(query)

    async def get_issue(self, issue_id: int) -> Issue | None:
        """The issue with this id, or None."""
        return await (await self._issue_store()).get_issue(issue_id)

    async def set_issue_status(
        self, issue_id: int, status: str, *, until: datetime | None = None
    ) -> Issue | None:
        """``resolved``, ``ignored``, ``unresolved``, or ``muted`` until ``until``; the
        issue, or None when there is none."""
        return await (await self._issue_store()).set_issue_status(issue_id, status, until=until)

    async def issue_events(self, issue_id: int, limit: int = 100) -> list[Event]:
        """The issue's stored events, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValueError("limit: expected an integer from 1 to 10000")
        return await (await self._issue_store()).issue_events(issue_id, limit)

    async def issue_activity(
        self,
        issue_ids: Sequence[int],
        *,
        since: datetime,
        until: datetime | None = None,
        interval: str = "1h",
    ) -> IssueActivity:
        """How many of each issue's stored events fall in each hour (``1h``) or day
        (``1d``) from ``since`` to ``until`` (default now); ValueError naming a bad
        argument (docs/issues.md)."""
        end = datetime.now(UTC) if until is None else until
        query = ActivityQuery(tuple(issue_ids), since, end, interval)
        return await (await self._issue_store()).issue_activity(query)

    # -- reads ---------------------------------------------------------------

    async def query(self, query: Query) -> list[Event]:
        """Events matching a ``Query`` (see ``EventQueryBuilder`` for the fluent form)."""
        await self._ensure_started()
        return await self._storage.query(query)

    async def count(self, query: Query) -> int:
        await self._ensure_started()
        return await self._storage.count(query)

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        field = group_field(field)
        await self._ensure_started()
        return await self._storage.group_count(query, field)

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        await self._ensure_started()
        return await self._storage.duration_stats(query, percentiles=percentiles)

    async def aggregate(self, query: Query, spec: AggregateSpec) -> AggregateResult:
        """Groups, time series and metrics over matching events (docs/aggregations.md)."""
        store = await self._aggregating()
        return await store.aggregate(query, spec)

    async def facets(self, query: Query, fields: Sequence[str], top: int = 10) -> list[Facet]:
        """The ``top`` values of each field (``system``, ``data.repo``...) with counts."""
        parsed = facet_fields(fields, top)
        store = await self._aggregating()
        return await store.facets(query, parsed, top)

    async def _aggregating(self) -> Aggregating:
        if self._can.aggregating is None:
            raise ValueError(
                f"aggregate: the {type(self._storage).__name__} store cannot aggregate"
            )
        await self._ensure_started()
        return self._can.aggregating

    async def get_event(self, event_id: str) -> Event | None:
        """The event with this id, or None."""
        found = await self.query(Query(ids=(event_id,), limit=1))
        return found[0] if found else None

    async def get_statistics(self) -> dict[str, Any]:
        """Totals: the spec's keys plus ``by_event_type``."""
        await self._ensure_started()
        everything = Query()
        last_hour = Query(since=datetime.now(UTC) - timedelta(hours=1))
        by_system, by_severity, by_type, last_hour_count = await asyncio.gather(
            self._storage.group_count(everything, "system"),
            self._storage.group_count(everything, "severity"),
            self._storage.group_count(everything, "event_type"),
            self._storage.count(last_hour),
        )
        return {
            "total_events": sum(by_system.values()),
            "by_system": by_system,
            "by_severity": by_severity,
            "by_event_type": by_type,
            "last_hour_count": last_hour_count,
        }

    async def health_check(self) -> dict[str, Any]:
        """Status ("healthy"/"unhealthy"), the spec's keys, storage details and counters."""
        report: dict[str, Any] = {
            "status": "healthy",
            "running": self._running,
            "db_path": self.db_path,
            "subscriber_count": self._hub.count,
            "pending_events": self.pending,
            "events_accepted": self.counters["accepted"],
            "events_duplicate": self.counters["duplicates"],
            "subscriber_dropped": self._hub.dropped,
        }
        try:
            await self._ensure_started()
            report["running"] = self._running
            if self._started_at is not None:
                report["uptime_seconds"] = round(time.monotonic() - self._started_at, 3)
            report["storage"] = await self._storage.health()
        except (StorageError, OSError, ValueError) as exc:
            report["status"] = "unhealthy"
            report["error"] = str(exc)
            # A remote client's delivery counters matter most while its server is down.
            if self._can.client_stats is not None:
                report["client"] = self._can.client_stats()
        return report

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None, where: Filter | None = None
    ) -> int:
        """Delete events older than ``retention_days`` before ``now`` (only those matching
        ``where``, a parsed filter, if given); returns how many.

        Pass ``now`` to delete exactly what an archive taken with the same cutoff holds.
        """
        await self._ensure_started()
        options: dict[str, Any] = {}
        if now is not None:
            options["now"] = now
        if where is not None:
            options["where"] = where
        return await self._storage.cleanup_old_events(retention_days, **options)

    async def alert_store(self) -> AlertStore:
        """The store's alert rules, states and history (docs/alerts.md); ValueError for a
        store without them (the remote client: use the server's /v1/alerts)."""
        await self._ensure_started()
        if not isinstance(self._storage, AlertStore):
            raise ValueError("alerts: this store keeps no alerts (a remote client? use --url)")
        return self._storage

    async def indexes(self) -> Indexable:
        """The store's expression indexes (``add_index``, ``remove_index``,
        ``list_indexes``); ValueError for a store without them (the remote client)."""
        await self._ensure_started()
        if not isinstance(self._storage, Indexable):
            raise ValueError("index: this store has no expression indexes (a remote client?)")
        return self._storage


def _remote_storage(url: str, api_key: str | None) -> QueuedStore:
    try:
        from eventcollector.client import HTTPStorage
    except ImportError as exc:
        raise ImportError(
            "sending to a collector server needs the 'client' extra: "
            f"pip install 'eventcollector[client]' ({exc})"
        ) from exc
    return HTTPStorage(url, api_key=api_key)
