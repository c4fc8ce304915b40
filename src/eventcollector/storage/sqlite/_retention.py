"""Retention for SQLite: delete the oldest events in chunks, side tables with them.

Each chunk is one write job (one transaction on the writer thread): the journal is
settled first, the rollups are subtracted while the rows are still there to count,
then the full-text entries, tags and rows go.
"""

from __future__ import annotations

import orjson

from eventcollector.query import Query
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._hour_cache import COUNT_DELETED
from eventcollector.storage.sqlite._ingest import settle_journal
from eventcollector.storage.sqlite._rollups import (
    drop_empty_rollups,
    rollup_update,
    update_rollups,
)
from eventcollector.storage.sqlite._writer import Transaction

CLEANUP_CHUNK = 5_000
# The highest rowid ever given out (see ``Transaction.reserve_rowids``).
_KEEP_HIGH_WATER = (
    "INSERT INTO event_meta(key, value) SELECT 'rowid_high_water', coalesce(max(rowid), 0)"
    " FROM events WHERE true ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)"
)
#: Rollups less the rows about to be deleted (parameter: a JSON array of their rowids).
_SUBTRACT_FROM_ROLLUPS = rollup_update("WHERE e.rowid IN (SELECT value FROM json_each(?))", "-")


def delete_chunk(tx: Transaction, query: Query) -> int:
    """Delete up to CLEANUP_CHUNK of the oldest events ``query`` matches (its ``until``
    is the cutoff, its ``where`` an optional filter); how many."""
    settle_journal(tx)
    conn = tx.conn
    conn.execute(_KEEP_HIGH_WATER)
    where_sql, params = sql.where(query)
    victims = conn.execute(
        f"SELECT e.rowid, e.title, e.description, e.tags FROM events e{where_sql}"
        " ORDER BY e.timestamp LIMIT ?",
        (*params, CLEANUP_CHUNK),
    ).fetchall()
    if not victims:
        return 0
    rowids = orjson.dumps([v[0] for v in victims])
    update_rollups(conn, _SUBTRACT_FROM_ROLLUPS, (rowids,))  # while the rows are there to count
    conn.execute(COUNT_DELETED, (rowids,))  # the kept facet counts of their hours go stale
    drop_empty_rollups(conn)
    conn.executemany(
        "INSERT INTO events_fts(events_fts, rowid, title, description) VALUES ('delete', ?, ?, ?)",
        [(v[0], v[1], v[2]) for v in victims],
    )
    # Through the primary key, from the tags each event carries: no index on event_rowid
    # is kept, since every insert would pay for it and only cleanup would use it.
    conn.executemany(
        "DELETE FROM event_tags WHERE tag = ? AND event_rowid = ?",
        [(tag, v[0]) for v in victims for tag in _json_list(v[3])],
    )
    conn.execute(
        "DELETE FROM event_issues WHERE event_rowid IN (SELECT value FROM json_each(?))",
        (rowids,),
    )
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(v[0],) for v in victims])
    return len(victims)


def _json_list(text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
