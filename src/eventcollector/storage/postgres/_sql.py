"""Compile a ``Query`` to PostgreSQL: identifiers from allow-lists, every value bound;
rows <-> ``Event``; the column lists."""

from __future__ import annotations

from typing import Any

import orjson

from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.storage._sql_common import (
    NULLABLE,
    ORDER_COLUMNS,
    group_expressions,
    stored_event,
)
from eventcollector.storage._where import compile_where
from eventcollector.storage.postgres._dialect import DIALECT, Params

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


def in_clause(column: str, values: tuple[str, ...], clauses: list[str], p: Params) -> None:
    """``column`` equal to one of ``values``, appended to ``clauses``."""
    clauses.append(DIALECT.any_of(column, values, p))


def where(query: Query, p: Params) -> str:
    """The WHERE clause (with leading keyword, or empty); values go to ``p``."""
    return compile_where(query, DIALECT, p)


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
