"""Write jobs for the SQLite writer thread: insert events, delete old ones.

Both keep the side tables (tags, full text, rollups) in step with ``events`` in
the same transaction, so a reader never sees one without the other.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from eventcollector.model import Event
from eventcollector.storage import _sqlite_sql as sql
from eventcollector.storage._sqlite_writer import Transaction

CLEANUP_CHUNK = 5_000
_ROWIDS_BETWEEN = "SELECT rowid FROM events WHERE rowid BETWEEN ? AND ?"

# (hour prefix, system, event_type, severity, duration or None) of one event.
_Facts = tuple[str, str, str, str, int | None]


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
        for statement in _DERIVE_SIDE_TABLES:
            conn.execute(statement, (first, last))
    return stored


def delete_chunk(tx: Transaction, cutoff: str) -> int:
    """Delete up to CLEANUP_CHUNK of the oldest events before ``cutoff``; how many."""
    conn = tx.conn
    victims = conn.execute(
        "SELECT rowid, title, description, substr(timestamp, 1, 13), system, event_type,"
        " severity, duration_ms, tags FROM events WHERE timestamp < ? ORDER BY timestamp LIMIT ?",
        (cutoff, CLEANUP_CHUNK),
    ).fetchall()
    if not victims:
        return 0
    conn.executemany(
        "INSERT INTO events_fts(events_fts, rowid, title, description) VALUES ('delete', ?, ?, ?)",
        [(v[0], v[1], v[2]) for v in victims],
    )
    # Through the primary key, from the tags each event carries: no index on event_rowid
    # is kept, since every insert would pay for it and only cleanup would use it.
    conn.executemany(
        "DELETE FROM event_tags WHERE tag = ? AND event_rowid = ?",
        [(tag, v[0]) for v in victims for tag in _json_list(v[8])],
    )
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(v[0],) for v in victims])
    apply_rollups(conn, rollup_rows(((v[3], v[4], v[5], v[6], v[7]) for v in victims), -1))
    return len(victims)


#: rowid_blocks groups rowids by this many low bits (4,096 rows a block). Deletes leave
#: its bounds wider than the rows left, which keeps them correct as bounds.
ROWID_BLOCK_BITS = 12
_NEW_ROWS = "WHERE e.rowid BETWEEN ? AND ?"
_ADD_ROLLUP = " ON CONFLICT DO UPDATE SET n = n + excluded.n, d_n = d_n + excluded.d_n,"
_ADD_ROLLUP += " d_sum = d_sum + excluded.d_sum"
_ROLLUP_VALUES = "count(*), count(e.duration_ms), coalesce(sum(e.duration_ms), 0)"
_DERIVE_SIDE_TABLES = (
    "INSERT INTO events_fts(rowid, title, description)"
    f" SELECT e.rowid, e.title, e.description FROM events e {_NEW_ROWS}",
    "INSERT INTO event_tags(tag, event_rowid)"
    f" SELECT j.value, e.rowid FROM events e, json_each(e.tags) j {_NEW_ROWS}",
    "INSERT INTO event_counts(hour, system, event_type, severity, n, d_n, d_sum)"
    f" SELECT substr(e.timestamp, 1, 13), e.system, e.event_type, e.severity, {_ROLLUP_VALUES}"
    f" FROM events e {_NEW_ROWS} GROUP BY 1, 2, 3, 4{_ADD_ROLLUP}",
    "INSERT INTO day_counts(day, system, event_type, severity, n, d_n, d_sum)"
    f" SELECT substr(e.timestamp, 1, 10), e.system, e.event_type, e.severity, {_ROLLUP_VALUES}"
    f" FROM events e {_NEW_ROWS} GROUP BY 1, 2, 3, 4{_ADD_ROLLUP}",
    "INSERT INTO event_totals(system, event_type, severity, n, d_n, d_sum)"
    f" SELECT e.system, e.event_type, e.severity, {_ROLLUP_VALUES}"
    f" FROM events e {_NEW_ROWS} GROUP BY 1, 2, 3{_ADD_ROLLUP}",
    "INSERT INTO rowid_blocks(block, min_ts, max_ts)"
    f" SELECT e.rowid >> {ROWID_BLOCK_BITS}, min(e.timestamp), max(e.timestamp) FROM events e"
    f" {_NEW_ROWS} GROUP BY 1 ON CONFLICT DO UPDATE"
    " SET min_ts = min(min_ts, excluded.min_ts), max_ts = max(max_ts, excluded.max_ts)",
    "INSERT INTO hour_totals(hour, n, d_n, d_sum)"
    f" SELECT substr(e.timestamp, 1, 13), {_ROLLUP_VALUES}"
    f" FROM events e {_NEW_ROWS} GROUP BY 1{_ADD_ROLLUP}",
)

#: Rollup table -> its key columns.
ROLLUP_KEYS = {
    "event_counts": ("hour", "system", "event_type", "severity"),
    "day_counts": ("day", "system", "event_type", "severity"),
    "event_totals": ("system", "event_type", "severity"),
    "hour_totals": ("hour",),
}


def rollup_rows(facts: Iterable[_Facts], sign: int) -> dict[str, list[tuple[Any, ...]]]:
    """Per rollup table, (key..., n, d_n, d_sum) rows adding (1) or removing (-1) events."""
    counts: defaultdict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for hour, system, event_type, severity, duration in facts:
        acc = counts[(hour, system, event_type, severity)]
        acc[0] += sign
        if duration is not None:
            acc[1] += sign
            acc[2] += sign * duration
    days: defaultdict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    totals: defaultdict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    hours: defaultdict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for key, acc in counts.items():
        day_key = (key[0][:10], *key[1:])
        for target, sub in ((days, day_key), (totals, key[1:]), (hours, key[:1])):
            agg = target[sub]
            agg[0] += acc[0]
            agg[1] += acc[1]
            agg[2] += acc[2]
    tables = {
        "event_counts": counts,
        "day_counts": days,
        "event_totals": totals,
        "hour_totals": hours,
    }
    return {table: [(*key, *acc) for key, acc in rows.items()] for table, rows in tables.items()}


def apply_rollups(conn: sqlite3.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Upsert ``rollup_rows`` output; rows whose count reaches zero are removed."""
    for table, keys in ROLLUP_KEYS.items():
        marks = ", ".join("?" * (len(keys) + 3))
        conn.executemany(
            f"INSERT INTO {table}({', '.join(keys)}, n, d_n, d_sum) VALUES ({marks})"
            " ON CONFLICT DO UPDATE"
            " SET n = n + excluded.n, d_n = d_n + excluded.d_n, d_sum = d_sum + excluded.d_sum",
            rows[table],
        )
        if any(row[len(keys)] < 0 for row in rows[table]):
            conn.execute(f"DELETE FROM {table} WHERE n <= 0")


def _json_list(text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
