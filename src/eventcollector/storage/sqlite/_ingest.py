"""Ingest jobs for the SQLite writer thread: insert events, settle the journal.

Both keep the side tables (tags, full text, rollups) in step with ``events`` in
the same transaction, so a reader never sees one without the other.

Small commits go to ``event_journal`` instead. A one-event transaction into
``events`` dirties about eighteen pages (the row, eight index leaves, full text,
tags, six rollups, block bounds) and costs ~600 us here, most of it writing
those pages to the WAL; the journal is one table and one index, ~60 us. Journaled
events are moved into ``events`` (and the side tables derived, set-based) by
``settle_journal``: when the journal is full, before any larger insert or a
cleanup (``_retention``), when the writer has been idle for a moment, and before every read
(``SQLiteStorage._read``), so no read through the library misses an event whose
``collect()`` has returned. Journal rows carry the rowid they keep in ``events``,
reserved above both tables, so insertion order is kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from eventcollector.model import Event
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._issues import Announce, record
from eventcollector.storage.sqlite._rollups import rollup_update, update_rollups
from eventcollector.storage.sqlite._schema import ROWID_BLOCK_BITS
from eventcollector.storage.sqlite._writer import Transaction

#: Commits of fewer events than this go to the journal.
JOURNAL_BELOW = 32
#: Settle the journal rather than let it hold more than this many events: moving it
#: needs room for them in events, their index entries and the WAL at once.
JOURNAL_MAX = 256
_ROWIDS_BETWEEN = "SELECT rowid FROM events WHERE rowid BETWEEN ? AND ?"
_JOURNAL_SEQS_BETWEEN = "SELECT seq FROM event_journal WHERE seq BETWEEN ? AND ?"
_JOURNAL_SPAN = "SELECT min(seq), max(seq) FROM event_journal"
# An id already in events is a duplicate as surely as one already in the journal.
_JOURNAL_INSERT = (
    f"INSERT INTO event_journal(seq, {sql.EVENT_COLUMNS})"
    f" SELECT {', '.join(f'?{i}' for i in range(1, 15))}"
    " WHERE NOT EXISTS (SELECT 1 FROM events WHERE id = ?2) ON CONFLICT(id) DO NOTHING"
)
# "WHERE true" tells SQLite's parser that ON starts the upsert, not a join constraint.
_JOURNAL_TO_EVENTS = (
    f"INSERT INTO events(rowid, {sql.EVENT_COLUMNS}) SELECT seq, {sql.EVENT_COLUMNS}"
    " FROM event_journal WHERE true ORDER BY seq ON CONFLICT(id) DO NOTHING"
)


def insert_batches(
    tx: Transaction, batches: list[Sequence[Event]], announce: Announce | None = None
) -> list[list[bool]]:
    """Insert every queued append at once; per batch, which events were new."""
    flat = [e for batch in batches for e in batch]
    stored = iter(insert(tx, flat, announce))
    return [[next(stored) for _ in batch] for batch in batches]


def insert(
    tx: Transaction, events: Sequence[Event], announce: Announce | None = None
) -> list[bool]:
    """Insert events whose ids are not stored yet, counting the new errors into their
    issues (``_issues``); per event, True if it was new."""
    if not events:
        return []
    first, stored = _insert(tx, events)
    record(tx.conn, events, first, stored, tx.on_commit, announce)
    return stored


def _insert(tx: Transaction, events: Sequence[Event]) -> tuple[int, list[bool]]:
    conn = tx.conn
    lo, hi = conn.execute(_JOURNAL_SPAN).fetchone()
    journaled = 0 if lo is None else hi - lo + 1  # at most; ids may have been skipped
    if len(events) < JOURNAL_BELOW and journaled + len(events) <= JOURNAL_MAX:
        tx.wants_idle_job = True
        return _insert_rows(tx, events, _JOURNAL_INSERT, _JOURNAL_SEQS_BETWEEN)
    if lo is not None:  # first, so that rowid order stays the order events appear in
        _move_journal(conn)
    first, stored = _insert_rows(tx, events, sql.INSERT_EVENT_UNLESS_STORED, _ROWIDS_BETWEEN)
    if lo is not None or any(stored):
        # Once for the moved and the new rows: the journal's rowids lie just below first.
        derive_side_tables(conn, first if lo is None else lo, first + len(events) - 1)
    return first, stored


def _insert_rows(
    tx: Transaction, events: Sequence[Event], statement: str, rowids_between: str
) -> tuple[int, list[bool]]:
    """Insert ``events`` under fresh rowids with ``statement``, which skips stored ids:
    the first rowid, and per event whether it was new."""
    first = tx.reserve_rowids(len(events))
    last = first + len(events) - 1
    rows = [sql.to_row(e, first + i) for i, e in enumerate(events)]
    # A stored id (or one repeated in this batch) is skipped by the conflict clause;
    # the row count says whether any was, so duplicates cost a lookup only when they occur.
    inserted = tx.conn.executemany(statement, rows).rowcount
    if inserted == len(events):
        return first, [True] * len(events)
    kept = {r[0] for r in tx.conn.execute(rowids_between, (first, last))}
    return first, [first + i in kept for i in range(len(events))]


def settle_journal(tx: Transaction) -> None:
    """Move journaled events into ``events``, with their side tables."""
    lo, hi = tx.conn.execute(_JOURNAL_SPAN).fetchone()
    if lo is not None:
        _settle(tx, lo, hi)


def _settle(tx: Transaction, lo: int, hi: int) -> None:
    _move_journal(tx.conn)
    derive_side_tables(tx.conn, lo, hi)


def _move_journal(conn: sqlite3.Connection) -> None:
    conn.execute(_JOURNAL_TO_EVENTS)
    conn.execute("DELETE FROM event_journal")


def derive_side_tables(conn: sqlite3.Connection, first: int, last: int) -> None:
    """Full text, tags, time bounds and rollups of the rows with rowids first..last."""
    # In SQL, from the rows just stored: SQLite does that work without holding the
    # GIL, while Python would hold it for every row. Rowids are reserved above both
    # events and the journal, so [first, last] holds only those rows.
    for statement in _DERIVE_SIDE_TABLES:
        conn.execute(statement, (first, last))
    update_rollups(conn, _ADD_TO_ROLLUPS, (first, last))


_NEW_ROWS = "WHERE e.rowid BETWEEN ? AND ?"
#: Side tables but the rollups derived from the rows of one insert (parameters: first
#: and last rowid).
_DERIVE_SIDE_TABLES = (
    "INSERT INTO events_fts(rowid, title, description)"
    f" SELECT e.rowid, e.title, e.description FROM events e {_NEW_ROWS}",
    "INSERT INTO event_tags(tag, event_rowid)"
    f" SELECT j.value, e.rowid FROM events e, json_each(e.tags) j {_NEW_ROWS}",
    "INSERT INTO rowid_blocks(block, min_ts, max_ts)"
    f" SELECT e.rowid >> {ROWID_BLOCK_BITS}, min(e.timestamp), max(e.timestamp) FROM events e"
    f" {_NEW_ROWS} GROUP BY 1 ON CONFLICT DO UPDATE"
    " SET min_ts = min(min_ts, excluded.min_ts), max_ts = max(max_ts, excluded.max_ts)",
)
_ADD_TO_ROLLUPS = rollup_update(_NEW_ROWS)
