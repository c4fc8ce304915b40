"""Expression indexes on data/metadata paths for SQLite (see ``storage._indexes``):
created and dropped on the writer thread, with their registry row in one transaction."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from eventcollector.model import format_timestamp
from eventcollector.storage._indexes import (
    MAX_INDEXES,
    REGISTRY,
    describe,
    index_name,
    parse_index_path,
    path_text,
)
from eventcollector.storage.sqlite._dialect import DIALECT
from eventcollector.storage.sqlite._writer import Transaction


def add_index(tx: Transaction, path: str) -> bool:
    """Create the index for ``path`` (``data.repo``); False if it exists already."""
    field = parse_index_path(path)
    text, name = path_text(field), index_name(field)
    conn = tx.conn
    if conn.execute("SELECT 1 FROM event_indexes WHERE path = ?", (text,)).fetchone():
        return False
    if conn.execute("SELECT count(*) FROM event_indexes").fetchone()[0] >= MAX_INDEXES:
        raise ValueError(f"index: at most {MAX_INDEXES} indexed paths")
    # Ends in timestamp: "path equals x, newest first, limit N" walks the index and stops.
    expression = DIALECT.index_expression(field.name, field.path)
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON events({expression}, timestamp)")
    conn.execute(
        "INSERT INTO event_indexes(path, index_name, created_at) VALUES (?, ?, ?)",
        (text, name, format_timestamp(datetime.now(UTC))),
    )
    return True


def remove_index(tx: Transaction, path: str) -> bool:
    """Drop the index for ``path``; False if there was none."""
    field = parse_index_path(path)
    text = path_text(field)
    if tx.conn.execute("SELECT 1 FROM event_indexes WHERE path = ?", (text,)).fetchone() is None:
        return False
    tx.conn.execute(f"DROP INDEX IF EXISTS {index_name(field)}")
    tx.conn.execute("DELETE FROM event_indexes WHERE path = ?", (text,))
    return True


def list_indexes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return describe(conn.execute(REGISTRY))
