"""PostgreSQL storage: one shared store for many collector servers (extra "postgres").

Built on an asyncpg pool. Ingest is group-committed: concurrent ``append`` calls
queue their events and a few writer tasks each take what is queued and store it
in one transaction (COPY into a temporary staging table, claim the ids in
``event_ids``, insert the winners into the daily partitions of ``events``, bump
the rollups, NOTIFY the other instances), so an ``append`` returns only
once its events are committed (``_writer``, ``_ingest``); ``_listen`` feeds
live streams with the events other instances store. See ``_schema`` for the
schema and docs/postgres.md for operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from eventcollector.aggregation import AggregateResult, AggregateSpec, Facet
from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState
from eventcollector.alert_silences import AlertSilence
from eventcollector.filters import Field, Filter
from eventcollector.issue_activity import ActivityQuery, IssueActivity
from eventcollector.issues import (
    Issue,
    IssueChange,
    IssueQuery,
    IssuesCallback,
    check_status_change,
)
from eventcollector.model import Event
from eventcollector.query import DurationStats, GroupField, Query, group_field
from eventcollector.storage._indexes import literals
from eventcollector.storage._plan import lift, mark_indexed
from eventcollector.storage.base import (
    DEFAULT_QUERY_TIMEOUT,
    QueryTimeout,
    StorageError,
    retention_cutoff,
)
from eventcollector.storage.base import query_timeout as query_timeout_seconds
from eventcollector.storage.postgres import _aggregate as aggregation
from eventcollector.storage.postgres import _alerts as alerts
from eventcollector.storage.postgres import _facets
from eventcollector.storage.postgres import _indexes as indexes
from eventcollector.storage.postgres import _issues as issues
from eventcollector.storage.postgres import _reads as reads
from eventcollector.storage.postgres import _sql as sql
from eventcollector.storage.postgres._connection import (
    POOL_RESET,
    ReadBudget,
    redact,
    split_schema,
)
from eventcollector.storage.postgres._dialect import DIALECT
from eventcollector.storage.postgres._errors import connection_lost, translate
from eventcollector.storage.postgres._listen import EventsCallback, Listener
from eventcollector.storage.postgres._retention import (
    cleanup,
)
from eventcollector.storage.postgres._schema import (
    SCHEMA_VERSION,
    NotOurSchema,
    create_partitions,
    list_partitions,
    migrate,
    validate_schema,
)
from eventcollector.storage.postgres._writer import Writer

__all__ = ["PostgresStorage"]

T = TypeVar("T")


class PostgresStorage:
    """Events in daily partitions of one PostgreSQL schema."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        min_connections: int = 1,
        max_connections: int = 10,
        max_writers: int = 4,
        partitions_ahead: int = 7,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 300.0,
        notify: bool = True,
        application_name: str = "eventcollector",
        query_timeout: float | None = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        if not 1 <= max_writers < max_connections:
            raise ValueError("max_writers: must be at least 1 and below max_connections")
        if partitions_ahead < 0:
            raise ValueError("partitions_ahead: must not be negative")
        self._dsn, url_schema = split_schema(url.replace("postgres://", "postgresql://", 1))
        self.url = redact(self._dsn)
        self.schema = validate_schema(url_schema if url_schema is not None else schema)
        self.channel = f"eventcollector_{self.schema}"
        self.partitions_ahead = partitions_ahead
        #: Seconds one read statement may run (None: no limit); see ``ReadBudget``.
        self.query_timeout = query_timeout_seconds(query_timeout)
        self._pool_args: dict[str, Any] = {
            "min_size": min_connections,
            "max_size": max_connections,
            "timeout": connect_timeout,
            "command_timeout": command_timeout,
            "server_settings": {
                "search_path": f'"{self.schema}"',
                "timezone": "UTC",
                "application_name": application_name,
            },
        }
        instance = uuid.uuid4().hex[:16]
        self._pool: Any = None
        self._open_lock = asyncio.Lock()
        self._schema_version: int | None = None
        #: Indexed data paths -> the expression text their index is built on.
        self._literals: dict[Field, str] = {}
        self._writer = Writer(
            self._run,
            schema=self.schema,
            channel=self.channel,
            instance=instance,
            notify=notify,
            max_writers=max_writers,
        )
        self._issue_watchers: list[IssuesCallback] = []
        self._writer.on_issues = self._announce_issues
        self._listener = Listener(
            self._dsn, self._pool_args, self._read, channel=self.channel, instance=instance
        )
        self._lease = alerts.Lease(self._dsn, self._pool_args["server_settings"], self.schema)

    @property
    def notify(self) -> bool:
        """Whether ingest NOTIFYs the other instances of what it stored."""
        return self._writer.notify

    @notify.setter
    def notify(self, value: bool) -> None:
        self._writer.notify = value

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Connect, apply migrations (advisory-locked) and create partitions ahead."""
        async with self._open_lock:
            if self._pool is not None:
                return
            try:
                pool = await asyncpg.create_pool(self._dsn, **POOL_RESET, **self._pool_args)
            except Exception as exc:
                raise translate(exc, "cannot connect") from exc
            try:
                async with pool.acquire() as conn:
                    await migrate(conn, self.schema)
                    self._schema_version = SCHEMA_VERSION
                    today = datetime.now(UTC).date()
                    ahead = {
                        today + timedelta(days=i) for i in range(-1, self.partitions_ahead + 1)
                    }
                    self._writer.days = await create_partitions(conn, self.schema, ahead)
                    registry = await indexes.list_indexes(conn)
                    self._literals = literals((row["path"] for row in registry), DIALECT)
            except NotOurSchema:
                await pool.close()
                raise
            except Exception as exc:
                await pool.close()
                raise translate(exc, "cannot prepare the schema") from exc
            self._pool = pool

    async def close(self) -> None:
        """Finish queued writes, stop listening and close every connection."""
        await self._listener.close()
        await self._lease.release()
        await self._writer.drain()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StorageError("storage is not open")
        return self._pool

    @property
    def pending_writes(self) -> int:
        """Events queued or being written."""
        return self._writer.pending

    # -- writes --------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> list[bool]:
        """Store events durably; per event True if new, False if its id was already stored."""
        if not events:
            return []
        self._require_pool()
        return await self._writer.append(events)

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None, where: Filter | None = None
    ) -> int:
        """Drop partitions wholly older than the cutoff, delete the rest in chunks; with
        ``where``, delete only the matching events, in chunks, from the days before the
        cutoff (and after the filter's own lower time bound), then drop a whole day
        that this left empty."""
        cutoff = retention_cutoff(retention_days, now)
        victims = self._plan(Query(until=cutoff, where=where))
        return await cleanup(self._run, self._writer.days, victims, cutoff, whole=where is None)

    # -- expression indexes (see storage._indexes) -----------------------------

    async def add_index(self, path: str) -> bool:
        """Create an expression index on a data/metadata path (``data.repo``);
        False if it exists already."""
        created = await self._run(
            functools.partial(indexes.add_index, schema=self.schema, path=path)
        )
        await self.list_indexes()
        return created

    async def remove_index(self, path: str) -> bool:
        """Drop the index on ``path``; False if there was none."""
        removed = await self._run(
            functools.partial(indexes.remove_index, schema=self.schema, path=path)
        )
        await self.list_indexes()
        return removed

    async def list_indexes(self) -> list[dict[str, Any]]:
        """The indexed paths (read again: what the compiler uses from now on)."""
        found = await self._read(indexes.list_indexes)
        self._literals = literals((row["path"] for row in found), DIALECT)
        return found

    def _plan(self, query: Query) -> Query:
        return mark_indexed(lift(query), self._literals)

    # -- reads ---------------------------------------------------------------

    async def _run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn(conn)`` on a pooled connection; one retry when the connection was lost."""
        pool = self._require_pool()
        for attempt in range(2):
            try:
                conn = await pool.acquire()
            except Exception as exc:
                raise translate(exc, "database unavailable") from exc
            try:
                return await fn(conn)
            except Exception as exc:
                lost = connection_lost(exc)
                if lost:
                    with contextlib.suppress(Exception):
                        conn.terminate()  # the pool replaces it
                if attempt == 0 and lost:
                    continue
                if isinstance(exc, asyncpg.PostgresError | StorageError | ValueError):
                    raise
                raise translate(exc, "database unavailable") from exc
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    async def _read(self, fn: Callable[[Any], Awaitable[T]], *, committed: bool = False) -> T:
        """``fn`` within the statement time budget (``ReadBudget``; ``committed``: see there)."""
        budget = None if self.query_timeout is None else ReadBudget(self.query_timeout)
        try:
            if budget is not None:
                fn = functools.partial(budget.run, fn, committed=committed)
            return await self._run(fn)
        except asyncpg.PostgresError as exc:
            if budget is not None and budget.expired(exc):
                raise QueryTimeout(budget.seconds) from exc
            raise translate(exc, "query failed") from exc

    async def _write(self, fn: Callable[[Any], Awaitable[T]], what: str) -> T:
        """``fn`` outside the reads' read-only snapshot and budget (issues, alerts)."""
        try:
            return await self._run(fn)
        except asyncpg.PostgresError as exc:
            raise translate(exc, f"{what} failed") from exc

    async def query(self, query: Query) -> list[Event]:
        """The matching events, ordered and paged as the query says."""
        statement, params = sql.select(self._plan(query))
        rows = await self._read(lambda conn: conn.fetch(statement, *params))
        return [sql.from_row(r) for r in rows]

    async def count(self, query: Query) -> int:
        """How many events match, ignoring order, limit and offset."""
        plan = self._plan(query.unbounded)
        return await self._read(lambda conn: reads.snapshot(conn, reads.count, plan))

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        """Matching events counted by one field (None values under "")."""
        field = group_field(field)
        plan = self._plan(query.unbounded)
        counts = await self._read(lambda conn: reads.snapshot(conn, reads.group_count, plan, field))
        return dict(counts.most_common())

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        """min/max/avg and p50/p95/p99 (linear interpolation) of duration_ms.

        Without ``percentiles`` only count and average are computed, from the rollups
        when the filters allow it (min, max and p50/p95/p99 are then None).
        """
        plan = self._plan(query.unbounded)
        return await self._read(
            functools.partial(reads.duration_stats, query=plan, percentiles=percentiles)
        )

    async def aggregate(self, query: Query, spec: AggregateSpec) -> AggregateResult:
        """Groups and metrics over the matching events (see ``eventcollector.aggregation``)."""
        now, plan = datetime.now(UTC), self._plan(query.unbounded)
        return await self._read(
            lambda conn: reads.snapshot(conn, aggregation.aggregate, plan, spec, now)
        )

    async def facets(self, query: Query, fields: Sequence[Field], top: int = 10) -> list[Facet]:
        """The top values of each field with their counts, in one snapshot."""
        plan = self._plan(query.unbounded)
        return await self._read(
            lambda conn: reads.snapshot(conn, _facets.facets, plan, fields, top)
        )

    async def read_after(
        self, position: int, query: Query, limit: int = 1_000
    ) -> tuple[list[Event], int]:
        """Events matching ``query`` stored after ``position``, in insertion order.

        Returns them with the position to pass next; ``position < 0`` returns no
        events and the current end. For followers (``eventcollector tail``): unlike
        a timestamp watermark, insertion order also finds events stored late with
        an old timestamp. The query's order, limit and offset are ignored.

        Positions are seqs. A writer takes its seqs before it commits, so a smaller
        seq can become visible after a larger one: the end returned is the last seq
        taken before the call, once every transaction that was then writing has
        ended (usually milliseconds). While one is still writing after
        ``_reads._SETTLE_SECONDS``, nothing is returned and the position stays.
        """
        plan = self._plan(query.unbounded)
        return await self._read(
            functools.partial(reads.read_after, position=position, query=plan, limit=limit),
            committed=True,
        )

    async def health(self) -> dict[str, Any]:
        """Schema, partitions and pool details; raises StorageUnavailable when unreachable."""

        async def check(conn: Any) -> dict[str, Any]:
            version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
            server = await conn.fetchval("SHOW server_version")
            days = sorted(await list_partitions(conn))
            return {
                "backend": "postgresql",
                "url": self.url,
                "schema": self.schema,
                "schema_version": version,
                "server_version": server,
                "partitions": len(days),
                "oldest_partition": days[0].isoformat() if days else None,
                "newest_partition": days[-1].isoformat() if days else None,
                "pool_size": self._pool.get_size() if self._pool is not None else 0,
                "pending_writes": self._writer.pending,
                "listening": self._listener.listening,
                "indexes": await indexes.list_indexes(conn),
            }

        try:
            return await self._read(check)
        except StorageError:
            raise
        except Exception as exc:
            raise translate(exc, "health check failed") from exc

    # -- issues --------------------------------------------------------------

    def watch_issues(self, callback: IssuesCallback) -> None:
        """Call ``callback(changes)`` after commits of this instance that created or
        regressed issues (each server announces its own)."""
        self._issue_watchers.append(callback)

    def _announce_issues(self, changes: list[IssueChange]) -> None:
        for callback in self._issue_watchers:
            asyncio.get_running_loop().call_soon(callback, changes)

    async def issues(self, query: IssueQuery) -> list[Issue]:
        """The issues matching ``query``, ordered and paged."""
        return await self._read(functools.partial(issues.list_issues, query=query))

    async def get_issue(self, issue_id: int) -> Issue | None:
        """The issue with this id, or None."""
        return await self._read(functools.partial(issues.get_issue, issue_id=issue_id))

    async def set_issue_status(
        self, issue_id: int, status: str, *, until: datetime | None = None
    ) -> Issue | None:
        """Change an issue's status (``until``: the end of a mute); None if there is none."""
        muted_until = check_status_change(status, until)
        return await self._write(
            lambda conn: issues.set_status(conn, issue_id, status, muted_until), "status change"
        )

    async def issue_events(self, issue_id: int, limit: int = 100) -> list[Event]:
        """The issue's events, newest first."""
        return await self._read(
            functools.partial(issues.issue_events, issue_id=issue_id, limit=limit)
        )

    async def issue_activity(self, query: ActivityQuery) -> IssueActivity:
        """The issues' events per hour or day (the sparklines of the UI)."""
        return await self._read(functools.partial(issues.issue_activity, query=query))

    # -- alerts (docs/alerts.md) ------------------------------------------------

    async def alert_rules(self) -> list[tuple[AlertRule, str]]:
        """Every stored rule with its source, by name."""
        return await self._read(alerts.list_rules)

    async def put_alert_rule(self, rule: AlertRule, source: str) -> bool:
        """Store ``rule`` (replacing one of that name); True if it is new."""
        return await self._write(
            functools.partial(alerts.put_rule, rule=rule, source=source), "alert rule"
        )

    async def delete_alert_rule(self, name: str) -> bool:
        """Delete the rule with its states and history; False if there was none."""
        return await self._write(functools.partial(alerts.delete_rule, name=name), "alert rule")

    async def alert_states(self, rule: str | None = None) -> list[AlertState]:
        """The states of ``rule`` (of every rule when None)."""
        return await self._read(functools.partial(alerts.states, rule=rule))

    async def save_alert(
        self, states: Sequence[AlertState], records: Sequence[AlertRecord]
    ) -> None:
        """States and history records, in one transaction."""
        await self._write(
            functools.partial(alerts.save, states=states, records=records), "alert state"
        )

    async def alert_history(self, rule: str, limit: int = 100) -> list[AlertRecord]:
        """The rule's history, newest first."""
        return await self._read(functools.partial(alerts.history, rule=rule, limit=limit))

    async def push_alert_triggers(self, changes: Sequence[IssueChange]) -> None:
        """Queue new/regressed issues for the evaluating server (any server calls this)."""
        await self._write(functools.partial(alerts.push_triggers, changes=changes), "alert trigger")

    async def take_alert_triggers(self) -> list[IssueChange]:
        """The queued issue changes, oldest first, now removed."""
        return await self._write(alerts.take_triggers, "alert trigger")

    async def alert_silences(self) -> list[AlertSilence]:
        """The silences in force, by id."""
        return await self._read(functools.partial(alerts.silences, now=datetime.now(UTC)))

    async def add_alert_silence(self, silence: AlertSilence) -> AlertSilence:
        """Store ``silence`` (dropping those that have ended), with its id."""
        now = datetime.now(UTC)
        add = functools.partial(alerts.add_silence, silence=silence, now=now)
        return await self._write(add, "alert silence")

    async def delete_alert_silence(self, silence_id: int) -> bool:
        """End a silence now; False if none of that id is in force."""
        now = datetime.now(UTC)
        end = functools.partial(alerts.delete_silence, silence_id=silence_id, now=now)
        return await self._write(end, "alert silence")

    async def alert_lease(self) -> bool:
        """Whether this server evaluates (a session advisory lock on its own connection)."""
        self._require_pool()
        return await self._lease.hold()

    # -- live streams across instances -----------------------------------------

    async def listen(self, callback: EventsCallback) -> None:
        """Call ``callback(events)`` with events other instances store (LISTEN/NOTIFY).

        Events this instance stored are skipped (its collector publishes them itself).
        Returns once listening; reconnects by itself. Events stored while the
        listening connection is down are not replayed.
        """
        self._require_pool()
        await self._listener.listen(callback)
