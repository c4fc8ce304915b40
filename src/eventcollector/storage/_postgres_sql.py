"""Compile a ``Query`` to PostgreSQL: identifiers from allow-lists, every value bound."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from eventcollector.model import Event
from eventcollector.query import GroupField, Query, search_terms
from eventcollector.storage._rollup import hour_key, split_by_hours
from eventcollector.storage._sql_common import (
    NULLABLE,
    ORDER_COLUMNS,
    group_expressions,
    stored_event,
)

T = TypeVar("T")

COLUMNS = (
    "e.seq, e.id, e.timestamp, e.system, e.event_type, e.severity, e.title, e.description,"
    " e.data::text, e.tags, e.correlation_id, e.source_component, e.duration_ms, e.metadata::text"
)


# Sessions run with TimeZone = UTC, so date_trunc gives UTC hours.
GROUP_EXPRESSIONS = group_expressions("date_trunc('hour', e.timestamp)")
# Columns of ``events`` that COPY fills, in ``to_record`` order (``search`` is generated).
EVENT_COLUMNS = (
    "seq",
    "id",
    "timestamp",
    "system",
    "event_type",
    "severity",
    "title",
    "description",
    "data",
    "tags",
    "correlation_id",
    "source_component",
    "duration_ms",
    "metadata",
)
# Claim ids (in id order: one lock order for every writer, so no deadlocks) and take one
# insertion position (seq) per claimed id. The claim's insert gives the transaction its
# xid before any seq is taken (``read_after`` relies on it).
CLAIM_IDS = (
    "WITH claimed AS ("
    " INSERT INTO event_ids(id, timestamp)"
    " SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS new(id, timestamp) ORDER BY 1"
    " ON CONFLICT DO NOTHING RETURNING id"
    ") SELECT id, nextval('events_seq') FROM claimed"
)
# The hourly counts of the stored events, keys sorted (one lock order), and the
# notifications for the other instances ($5: none when empty).
ADD_COUNTS = (
    "WITH counted AS ("
    " INSERT INTO event_counts(hour, system, event_type, severity, n)"
    " SELECT date_trunc('hour', t), s, y, v, count(*)"
    " FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[]) AS new(t, s, y, v)"
    " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    " ON CONFLICT (hour, system, event_type, severity) DO UPDATE"
    " SET n = event_counts.n + excluded.n"
    ") SELECT pg_notify($6, payload) FROM unnest($5::text[]) AS payload"
)


# -- followers --------------------------------------------------------------------

LAST_SEQ = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq"
# Transactions (other than ours) that write event_ids: ingest holds this lock from its
# claim, before it takes any seq, until it commits.
WRITERS = (
    "SELECT array_agg(DISTINCT virtualtransaction) FROM pg_locks"
    " WHERE locktype = 'relation' AND relation = 'event_ids'::regclass"
    " AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()"
)
STILL_RUNNING = (
    "SELECT array_agg(virtualxid) FROM pg_locks"
    " WHERE locktype = 'virtualxid' AND virtualxid = ANY($1::text[])"
)


def select_after(query: Query, position: int, end: int, limit: int) -> tuple[str, list[Any]]:
    """Matching events with ``position < seq <= end`` in seq order, at most ``limit``.

    The seq range is read first (``events_seq_idx``: only the new rows of each
    partition); the subquery's OFFSET 0 keeps the planner from preferring a filter's
    own index, which could walk every matching event ever stored.
    """
    p = Params()
    lo, hi = p.add(position), p.add(end)
    where_sql = where(query, p)
    statement = (
        f"SELECT {COLUMNS} FROM (SELECT * FROM events WHERE seq > {lo} AND seq <= {hi}"
        f" OFFSET 0) e{where_sql} ORDER BY e.seq LIMIT {p.add(limit)}"
    )
    return statement, p.values


class Params:
    """Numbered placeholders ($1, $2, ...) for bound values."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def tsquery_text(text: str) -> str:
    """``to_tsquery`` input: every word a prefix; words are letters and digits only."""
    terms = search_terms(text)
    if not terms:
        raise ValueError("search: no words to search for")
    return " & ".join(f"{t}:*" for t in terms)


def _in(column: str, values: tuple[str, ...], clauses: list[str], p: Params) -> None:
    if len(values) == 1:
        clauses.append(f"{column} = {p.add(values[0])}")
    else:
        clauses.append(f"{column} = ANY({p.add(list(values))}::text[])")


def where(query: Query, p: Params) -> str:
    """The WHERE clause (with leading keyword, or empty); values go to ``p``."""
    clauses: list[str] = []
    if query.systems:
        _in("e.system", query.systems, clauses, p)
    if query.severities:
        _in("e.severity", query.severities, clauses, p)
    if query.event_types:
        _in("e.event_type", query.event_types, clauses, p)
    if query.since is not None:
        clauses.append(f"e.timestamp >= {p.add(query.since)}")
    if query.until is not None:
        clauses.append(f"e.timestamp < {p.add(query.until)}")
    if query.correlation_id is not None:
        clauses.append(f"e.correlation_id = {p.add(query.correlation_id)}")
    if query.source_components:
        _in("e.source_component", query.source_components, clauses, p)
    if query.min_duration_ms is not None:
        clauses.append(f"e.duration_ms >= {p.add(query.min_duration_ms)}")
    if query.ids:
        _in("e.id", query.ids, clauses, p)
    if query.tags_all:
        clauses.append(f"e.tags @> {p.add(list(query.tags_all))}::text[]")
    if query.tags_any:
        clauses.append(f"e.tags && {p.add(list(query.tags_any))}::text[]")
    if query.search is not None:
        clauses.append(
            f"e.search @@ to_tsquery('simple'::regconfig, {p.add(tsquery_text(query.search))})"
        )
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def select(query: Query) -> tuple[str, list[Any]]:
    """The full SELECT for ``query``: ordered (ties by insertion order, NULLs last), paged."""
    p = Params()
    where_sql = where(query, p)
    direction = "ASC" if query.ascending else "DESC"
    column = ORDER_COLUMNS[query.order_by]
    # NULLS LAST only where NULLs can be: on a NOT NULL column it would not match a
    # backward index scan (NULLS FIRST), and "newest first, limit N" would sort everything.
    nulls = " NULLS LAST" if query.order_by in NULLABLE else ""
    sql = (
        f"SELECT {COLUMNS} FROM events e{where_sql}"
        f" ORDER BY {column} {direction}{nulls}, e.seq {direction}"
    )
    if query.limit is not None:
        sql += f" LIMIT {p.add(query.limit)}"
    if query.offset:
        sql += f" OFFSET {p.add(query.offset)}"
    return sql, p.values


def rollup_where(query: Query, first: datetime | None, end: datetime | None, p: Params) -> str:
    """WHERE over ``event_counts c`` for the rollup-eligible filters and hour range."""
    clauses: list[str] = []
    for column, values in (
        ("c.system", query.systems),
        ("c.event_type", query.event_types),
        ("c.severity", query.severities),
    ):
        if values:
            _in(column, values, clauses, p)
    if first is not None:
        clauses.append(f"c.hour >= {p.add(first)}")
    if end is not None:
        clauses.append(f"c.hour < {p.add(end)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def hour_start(prefix: str) -> datetime:
    """A rollup hour from ``_rollup``'s "YYYY-MM-DDTHH" text."""
    return datetime.strptime(prefix, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def to_record(seq: int, event: Event) -> list[Any]:
    """A row of ``events`` (``EVENT_COLUMNS``) for COPY (a list: ingest builds the rows
    before it has claimed the seqs, then sets them)."""
    return [
        seq,
        event.id,
        event.timestamp,
        event.system.value,
        event.event_type.value,
        event.severity.value,
        event.title,
        event.description,
        orjson.dumps(event.data).decode(),
        event.tags,
        event.correlation_id,
        event.source_component,
        event.duration_ms,
        orjson.dumps(event.metadata).decode(),
    ]


def from_row(row: Any) -> Event:
    """An ``Event`` from a row selected with ``COLUMNS`` (trusted: no validation)."""
    return stored_event(row, row[2], list(row[9]))


# -- reads that take several statements ------------------------------------------


async def snapshot(conn: Any, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run several reads in one consistent snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await fn(conn, *args)


async def count(conn: Any, query: Query) -> int:
    split = split_by_hours(query)
    p = Params()
    if split is None:
        where_sql = where(query, p)
        return int(await conn.fetchval(f"SELECT count(*) FROM events e{where_sql}", *p.values))
    where_sql = rollup_where(query, *_hours(split.first_hour, split.end_hour), p)
    total = await conn.fetchval(
        f"SELECT coalesce(sum(n), 0) FROM event_counts c{where_sql}", *p.values
    )
    for edge in split.edges:
        total += await count(conn, edge)
    return int(total)


async def group_count(conn: Any, query: Query, field: GroupField) -> Counter[str]:
    split = split_by_hours(query)
    result: Counter[str] = Counter()
    p = Params()
    if split is None or field == "source_component":
        where_sql = where(query, p)
        expr = GROUP_EXPRESSIONS[field]
        statement = f"SELECT {expr}, count(*) FROM events e{where_sql} GROUP BY 1"
    else:
        where_sql = rollup_where(query, *_hours(split.first_hour, split.end_hour), p)
        statement = f"SELECT c.{field}, sum(n) FROM event_counts c{where_sql} GROUP BY 1"
        for edge in split.edges:
            result.update(await group_count(conn, edge, field))
    for key, n in await conn.fetch(statement, *p.values):
        if field == "hour":
            key = hour_key(key.astimezone(UTC).strftime("%Y-%m-%dT%H"))
        result[key] += int(n)
    return result


def _hours(first: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    return (
        None if first is None else hour_start(first),
        None if end is None else hour_start(end),
    )
