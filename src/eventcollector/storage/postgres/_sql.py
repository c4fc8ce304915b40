"""Compile a ``Query`` to PostgreSQL: identifiers from allow-lists, every value bound;
rows <-> ``Event``; the column lists."""

from __future__ import annotations

from typing import Any

import orjson

from eventcollector.model import Event
from eventcollector.query import Query, search_terms
from eventcollector.storage._sql_common import (
    NULLABLE,
    ORDER_COLUMNS,
    group_expressions,
    stored_event,
)

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


def in_clause(column: str, values: tuple[str, ...], clauses: list[str], p: Params) -> None:
    """``column`` equal to one of ``values``, appended to ``clauses``."""
    if len(values) == 1:
        clauses.append(f"{column} = {p.add(values[0])}")
    else:
        clauses.append(f"{column} = ANY({p.add(list(values))}::text[])")


def where(query: Query, p: Params) -> str:
    """The WHERE clause (with leading keyword, or empty); values go to ``p``."""
    clauses: list[str] = []
    if query.systems:
        in_clause("e.system", query.systems, clauses, p)
    if query.severities:
        in_clause("e.severity", query.severities, clauses, p)
    if query.event_types:
        in_clause("e.event_type", query.event_types, clauses, p)
    if query.since is not None:
        clauses.append(f"e.timestamp >= {p.add(query.since)}")
    if query.until is not None:
        clauses.append(f"e.timestamp < {p.add(query.until)}")
    if query.correlation_id is not None:
        clauses.append(f"e.correlation_id = {p.add(query.correlation_id)}")
    if query.source_components:
        in_clause("e.source_component", query.source_components, clauses, p)
    if query.min_duration_ms is not None:
        clauses.append(f"e.duration_ms >= {p.add(query.min_duration_ms)}")
    if query.ids:
        in_clause("e.id", query.ids, clauses, p)
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
