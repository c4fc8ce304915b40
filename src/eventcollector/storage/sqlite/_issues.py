"""Error issues in SQLite: the upsert inside an insert job, the reads, status changes.

``record`` runs in the writer's insert job, for events just given rowids (in
``events`` or, for small commits, in ``event_journal``, where they keep that rowid):
one upsert per fingerprint of the insert (``issues.sightings`` folds the events
first) and one ``event_issues`` row per error event. Counting only the events the
insert reported new keeps duplicates out on both paths, so the journal's later move
into ``events`` changes nothing here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from eventcollector.issue_activity import ActivityQuery, IssueActivity
from eventcollector.issues import Issue, IssueChange, IssueQuery, sightings
from eventcollector.model import Event, format_timestamp, parse_timestamp
from eventcollector.storage.sqlite import _sql as sql

__all__ = ["get_issue", "issue_activity", "issue_events", "list_issues", "record", "set_status"]

ISSUE_COLUMNS = (
    "id, fingerprint, title, systems, event_type, error_type, count, first_seen, last_seen,"
    " last_event_id, status, muted_until, regressed"
)
_IN_JSON = "IN (SELECT value FROM json_each(?))"
_STATUS_OF = f"SELECT fingerprint, status FROM issues WHERE fingerprint {_IN_JSON}"
_IDS_OF = f"SELECT fingerprint, id FROM issues WHERE fingerprint {_IN_JSON}"
# ?10 is now: a mute that has ended lifts with the next event. Assignments all read the
# row as it was, so ``regressed`` sees the status before this sighting.
_UPSERT = (
    "INSERT INTO issues(fingerprint, title, systems, event_type, error_type, count,"
    " first_seen, last_seen, last_event_id, status, regressed)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'unresolved', 0)"
    " ON CONFLICT(fingerprint) DO UPDATE SET"
    " count = count + excluded.count,"
    " first_seen = min(first_seen, excluded.first_seen),"
    " last_seen = max(last_seen, excluded.last_seen),"
    " last_event_id = iif(excluded.last_seen >= last_seen, excluded.last_event_id, last_event_id),"
    " systems = iif(systems = excluded.systems, systems, (SELECT json_group_array(value) FROM"
    " (SELECT value FROM json_each(systems) UNION SELECT value FROM json_each(excluded.systems)))),"
    " regressed = iif(status = 'resolved', 1, regressed),"
    " status = iif(status = 'resolved' OR (status = 'muted' AND muted_until <= ?10),"
    " 'unresolved', status),"
    " muted_until = iif(status = 'muted' AND muted_until > ?10, muted_until, NULL)"
)
_LINK = "INSERT INTO event_issues(event_rowid, issue_id) VALUES (?, ?)"
_STATUS_WHERE = {
    "unresolved": "(status = 'unresolved' OR (status = 'muted' AND muted_until <= ?))",
    "muted": "(status = 'muted' AND muted_until > ?)",
}

Announce = Callable[[list[IssueChange]], None]


def record(
    conn: sqlite3.Connection,
    events: Sequence[Event],
    first_rowid: int,
    stored: Sequence[bool],
    on_commit: list[Callable[[], None]],
    announce: Announce | None,
) -> None:
    """Count the new error events among ``events`` (rowids from ``first_rowid``) into
    their issues; new and regressed issues are announced once committed."""
    found = sightings(events, stored)
    if not found:
        return
    fingerprints = orjson.dumps([s.fingerprint for s in found])
    before = dict(conn.execute(_STATUS_OF, (fingerprints,)).fetchall())
    now = format_timestamp(datetime.now(UTC))
    conn.executemany(
        _UPSERT,
        [
            (
                s.fingerprint,
                s.title,
                orjson.dumps(s.systems).decode(),
                s.event_type,
                s.error_type,
                s.count,
                format_timestamp(s.first_seen),
                format_timestamp(s.last_seen),
                s.last_event_id,
                now,
            )
            for s in found
        ],
    )
    ids = dict(conn.execute(_IDS_OF, (fingerprints,)).fetchall())
    conn.executemany(
        _LINK, [(first_rowid + i, ids[s.fingerprint]) for s in found for i in s.members]
    )
    if announce is None:
        return
    changes = [
        IssueChange("new", ids[fp], fp)
        if fp not in before
        else IssueChange("regressed", ids[fp], fp)
        for fp in ids
        if before.get(fp) in (None, "resolved")
    ]
    if changes:
        on_commit.append(lambda: announce(changes))


def _issue(row: tuple[Any, ...], now: datetime | None = None) -> Issue:
    return Issue.stored((*row[:3], orjson.loads(row[3]), *row[4:]), now)


def list_issues(conn: sqlite3.Connection, query: IssueQuery) -> list[Issue]:
    now = datetime.now(UTC)
    clauses: list[str] = []
    params: list[Any] = []
    if query.status is not None:
        clauses.append(_STATUS_WHERE.get(query.status, "status = ?"))
        params.append(format_timestamp(now) if query.status in _STATUS_WHERE else query.status)
    if query.system is not None:
        clauses.append("EXISTS (SELECT 1 FROM json_each(issues.systems) WHERE value = ?)")
        params.append(query.system)
    if query.seen_since is not None:
        clauses.append("last_seen >= ?")
        params.append(format_timestamp(query.seen_since))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    # order_by is one of ISSUE_ORDERS (checked by IssueQuery).
    rows = conn.execute(
        f"SELECT {ISSUE_COLUMNS} FROM issues{where}"
        f" ORDER BY {query.order_by} DESC, id DESC LIMIT ? OFFSET ?",
        (*params, query.limit, query.offset),
    ).fetchall()
    return [_issue(r, now) for r in rows]


def get_issue(conn: sqlite3.Connection, issue_id: int) -> Issue | None:
    row = conn.execute(f"SELECT {ISSUE_COLUMNS} FROM issues WHERE id = ?", (issue_id,)).fetchone()
    return None if row is None else _issue(row)


def set_status(
    conn: sqlite3.Connection, issue_id: int, status: str, muted_until: datetime | None
) -> Issue | None:
    """A writer job: the new status (clearing ``regressed``); the issue, or None."""
    until = None if muted_until is None else format_timestamp(muted_until)
    conn.execute(
        "UPDATE issues SET status = ?, muted_until = ?, regressed = 0 WHERE id = ?",
        (status, until, issue_id),
    )
    return get_issue(conn, issue_id)


def issue_events(conn: sqlite3.Connection, issue_id: int, limit: int) -> list[Event]:
    """The issue's events, newest first (by timestamp, as on PostgreSQL: events stored
    late, a backfill, sort where they happened)."""
    rows = conn.execute(
        f"SELECT {sql.COLUMNS} FROM event_issues l JOIN events e ON e.rowid = l.event_rowid"
        " WHERE l.issue_id = ? ORDER BY e.timestamp DESC, e.rowid DESC LIMIT ?",
        (issue_id, limit),
    ).fetchall()
    return [sql.from_row(r) for r in rows]


# Stored timestamps are fixed-width UTC text, so an hour is its first 13 characters.
_BUCKET_TEXT = {"1h": (13, ":00:00+00:00"), "1d": (10, "T00:00:00+00:00")}


def issue_activity(conn: sqlite3.Connection, query: ActivityQuery) -> IssueActivity:
    """The issues' events per bucket, over the links and the events' timestamps."""
    chars, rest = _BUCKET_TEXT[query.interval]
    rows = conn.execute(
        "SELECT l.issue_id, substr(e.timestamp, 1, ?), count(*)"
        " FROM event_issues l JOIN events e ON e.rowid = l.event_rowid"
        f" WHERE l.issue_id {_IN_JSON} AND e.timestamp >= ? AND e.timestamp < ?"
        " GROUP BY 1, 2",
        (
            chars,
            orjson.dumps(query.issue_ids),
            format_timestamp(query.since),
            format_timestamp(query.until),
        ),
    ).fetchall()
    return IssueActivity.from_counts(
        query, ((i, parse_timestamp(b + rest, "bucket"), n) for i, b, n in rows)
    )
