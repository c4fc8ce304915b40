"""Write jobs for the SQLite writer thread: insert events, delete old ones.

Both keep the side tables (tags, full text, rollups) in step with ``events`` in
the same transaction, so a reader never sees one without the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from eventcollector.model import Event
from eventcollector.storage import _sqlite_sql as sql
from eventcollector.storage._sqlite_writer import Transaction

CLEANUP_CHUNK = 5_000
_ROWIDS_BETWEEN = "SELECT rowid FROM events WHERE rowid BETWEEN ? AND ?"


def insert_batches(tx: Transaction, batches: list[Sequence[Event]]) -> list[list[bool]]:
    """Insert every queued append at once; per batch, which events were new."""
    flat = [e for batch in batches for e in batch]
    stored = iter(insert(tx, flat))
    return [[next(stored) for _ in batch] for batch in batches]


def insert(tx: Transaction, events: Sequence[Event]) -> list[bool]:
    """Insert events whose ids are not stored yet; per event, True if it was new."""
    if not events:
        return []
    conn = tx.conn
    first = tx.reserve_rowids(len(events))
    last = first + len(events) - 1
    rows = [sql.to_row(e, first + i) for i, e in enumerate(events)]
    # A stored id (or one repeated in this batch) is skipped by the conflict clause;
    # the row count says whether any was, so duplicates cost a lookup only when they occur.
    inserted = conn.executemany(sql.INSERT_EVENT_UNLESS_STORED, rows).rowcount
    if inserted == len(events):
        stored = [True] * len(events)
    else:
        kept = {r[0] for r in conn.execute(_ROWIDS_BETWEEN, (first, last))}
        stored = [first + i in kept for i in range(len(events))]
    if inserted:
        # The side tables are derived from the rows just inserted, in SQL: SQLite does
        # that work without holding the GIL, while Python would hold it for every row.
        for statement in DERIVE_SIDE_TABLES:
            conn.execute(statement, (first, last))
    return stored


def delete_chunk(tx: Transaction, cutoff: str) -> int:
    """Delete up to CLEANUP_CHUNK of the oldest events before ``cutoff``; how many."""
    conn = tx.conn
    victims = conn.execute(
        "SELECT rowid, title, description, tags FROM events WHERE timestamp < ?"
        " ORDER BY timestamp LIMIT ?",
        (cutoff, CLEANUP_CHUNK),
    ).fetchall()
    if not victims:
        return 0
    rowids = orjson.dumps([v[0] for v in victims])
    for statement in _SUBTRACT_FROM_ROLLUPS:  # while the rows are still there to count
        conn.execute(statement, (rowids,))
    for table in ROLLUP_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE n <= 0")
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
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(v[0],) for v in victims])
    return len(victims)


#: rowid_blocks groups rowids by this many low bits (4,096 rows a block). Deletes leave
#: its bounds wider than the rows left, which keeps them correct as bounds.
ROWID_BLOCK_BITS = 12

_HOUR = "substr(e.timestamp, 1, 13)"
_DAY = "substr(e.timestamp, 1, 10)"
_DIMENSIONS = {"system": "e.system", "event_type": "e.event_type", "severity": "e.severity"}
#: Each rollup table: key column -> the expression computing it from an ``events e`` row.
_ROLLUPS = {
    "event_counts": {"hour": _HOUR, **_DIMENSIONS},
    "day_counts": {"day": _DAY, **_DIMENSIONS},
    "event_totals": _DIMENSIONS,
    "hour_totals": {"hour": _HOUR},
}
ROLLUP_TABLES = tuple(_ROLLUPS)


def _rollup_statements(rows: str, sign: str) -> tuple[str, ...]:
    """Upserts adding (sign "") or subtracting (sign "-") the ``rows`` of ``events e``."""
    values = f"{sign}count(*), {sign}count(e.duration_ms), {sign}coalesce(sum(e.duration_ms), 0)"
    return tuple(
        f"INSERT INTO {table}({', '.join(keys)}, n, d_n, d_sum)"
        f" SELECT {', '.join(keys.values())}, {values} FROM events e {rows}"
        f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}"
        " ON CONFLICT DO UPDATE SET n = n + excluded.n, d_n = d_n + excluded.d_n,"
        " d_sum = d_sum + excluded.d_sum"
        for table, keys in _ROLLUPS.items()
    )


_NEW_ROWS = "WHERE e.rowid BETWEEN ? AND ?"
#: Side tables derived from the rows of one insert (parameters: first and last rowid).
DERIVE_SIDE_TABLES = (
    "INSERT INTO events_fts(rowid, title, description)"
    f" SELECT e.rowid, e.title, e.description FROM events e {_NEW_ROWS}",
    "INSERT INTO event_tags(tag, event_rowid)"
    f" SELECT j.value, e.rowid FROM events e, json_each(e.tags) j {_NEW_ROWS}",
    "INSERT INTO rowid_blocks(block, min_ts, max_ts)"
    f" SELECT e.rowid >> {ROWID_BLOCK_BITS}, min(e.timestamp), max(e.timestamp) FROM events e"
    f" {_NEW_ROWS} GROUP BY 1 ON CONFLICT DO UPDATE"
    " SET min_ts = min(min_ts, excluded.min_ts), max_ts = max(max_ts, excluded.max_ts)",
    *_rollup_statements(_NEW_ROWS, ""),
)
#: Rollups less the rows about to be deleted (parameter: a JSON array of their rowids).
_SUBTRACT_FROM_ROLLUPS = _rollup_statements(
    "WHERE e.rowid IN (SELECT value FROM json_each(?))", "-"
)


def _json_list(text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
