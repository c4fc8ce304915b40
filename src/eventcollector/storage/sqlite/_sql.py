"""Compile a ``Query`` to SQLite SQL: identifiers from allow-lists, values bound."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from eventcollector.aggregation import field_text
from eventcollector.filters import Field
from eventcollector.model import Event, format_timestamp
from eventcollector.query import Query
from eventcollector.storage._sql_common import (
    NULLABLE,
    ORDER_COLUMNS,
    group_expressions,
    stored_event,
)
from eventcollector.storage._where import Params, compile_where
from eventcollector.storage.sqlite._dialect import DIALECT, Expansions, SQLiteDialect

COLUMNS = (
    "e.rowid, e.id, e.timestamp, e.system, e.event_type, e.severity, e.title, e.description,"
    " e.data, e.tags, e.correlation_id, e.source_component, e.duration_ms, e.metadata"
)


GROUP_EXPRESSIONS = group_expressions("substr(e.timestamp, 1, 13)")


def fts_match_expanded(expansions: list[list[str] | str]) -> str:
    """An FTS5 query from, per search word, the exact indexed words it starts (a list)
    or the word itself (a string: matched as a prefix)."""
    parts = []
    for words in expansions:
        if isinstance(words, str):
            parts.append(f'"{_quoted(words)}"*')
        else:
            parts.append("(" + " OR ".join(f'"{_quoted(w)}"' for w in words) + ")")
    return " AND ".join(parts)


def key_path(field: Field) -> str:
    """The JSON path of a data path that is grouped or counted by (not filtered on)."""
    if any('"' in key for key in field.path):
        raise ValueError(f"by: a key with '\"' cannot be grouped in SQLite ({field_text(field)})")
    return "$" + "".join(f'."{key}"' for key in field.path)


def _quoted(word: str) -> str:
    return word.replace('"', '""')


def where(
    query: Query,
    *,
    search_drives: bool = True,
    match: str | None = None,
    rowids: tuple[int, int] | None = None,
    expansions: Expansions | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (with leading keyword, or empty) and its parameters.

    With ``search_drives=False`` the full-text condition is written ``+e.rowid IN``,
    which keeps SQLite from driving the query by it (see ``_select``). ``match``
    replaces the FTS5 query made from ``query.search`` (an equivalent one). ``rowids``
    bounds the rowids of every event ``query`` can match, and ``expansions`` gives
    full-text words' FTS5 queries (see ``SQLiteDialect``).
    """
    p = Params()
    dialect = DIALECT if rowids is None and not expansions else SQLiteDialect(rowids, expansions)
    where_sql = compile_where(query, dialect, p, search_drives=search_drives, match=match)
    return where_sql, p.values


def order_limit(query: Query) -> tuple[str, list[Any]]:
    """ORDER BY (ties broken by insertion order, NULLs last) and LIMIT/OFFSET."""
    direction = "ASC" if query.ascending else "DESC"
    column = ORDER_COLUMNS[query.order_by]
    nulls = " NULLS LAST" if query.order_by in NULLABLE and query.ascending else ""
    sql = f" ORDER BY {column} {direction}{nulls}, e.rowid {direction}"
    params: list[Any] = []
    if query.limit is not None or query.offset:
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if query.limit is None else query.limit, query.offset]
    return sql, params


def select(
    query: Query, *, search_drives: bool = True, match: str | None = None, columns: str = COLUMNS
) -> tuple[str, list[Any]]:
    """The full SELECT for ``query`` (``columns``: a constant list, never user text)."""
    where_sql, params = where(query, search_drives=search_drives, match=match)
    order_sql, order_params = order_limit(query)
    return f"SELECT {columns} FROM events e{where_sql}{order_sql}", params + order_params


def to_row(event: Event, rowid: int) -> tuple[Any, ...]:
    """The ``events`` row for an event, with an explicit rowid."""
    return (
        rowid,
        event.id,
        format_timestamp(event.timestamp),
        event.system.value,
        event.event_type.value,
        event.severity.value,
        event.title,
        event.description,
        orjson.dumps(event.data).decode(),
        orjson.dumps(event.tags).decode(),
        event.correlation_id,
        event.source_component,
        event.duration_ms,
        orjson.dumps(event.metadata).decode(),
    )


#: The columns of ``events`` after its rowid, in the order ``to_row`` gives them.
EVENT_COLUMNS = (
    "id, timestamp, system, event_type, severity, title, description, data, tags,"
    " correlation_id, source_component, duration_ms, metadata"
)
INSERT_EVENT = f"INSERT INTO events(rowid, {EVENT_COLUMNS}) VALUES ({', '.join('?' * 14)})"
#: Only the id's uniqueness is waived; any other constraint still fails loudly.
INSERT_EVENT_UNLESS_STORED = INSERT_EVENT + " ON CONFLICT(id) DO NOTHING"


def from_row(row: tuple[Any, ...]) -> Event:
    """An ``Event`` from a row selected with ``COLUMNS`` (trusted: no validation)."""
    return stored_event(row, datetime.fromisoformat(row[2]), orjson.loads(row[9]))
