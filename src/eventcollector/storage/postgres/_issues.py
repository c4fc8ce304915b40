"""Error issues in PostgreSQL: the upsert inside the ingest transaction, the reads,
status changes.

``record`` runs at the end of ``_ingest``'s transaction for the events it stored:
the issues concerned are locked in fingerprint order (one lock order for every
writer of every server, so no deadlocks), then one statement upserts one row per
fingerprint (``issues.sightings`` folded the events) and links each error event to
its issue. The upsert reads the row as committed by any other server, so counts
add up under concurrent servers; the lock taken first tells which issues were
resolved before, for the announcement after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from eventcollector.issue_activity import ActivityQuery, IssueActivity
from eventcollector.issues import Issue, IssueChange, IssueQuery, sightings
from eventcollector.model import Event
from eventcollector.storage.postgres import _sql as sql

__all__ = ["get_issue", "issue_activity", "issue_events", "list_issues", "record", "set_status"]

ISSUE_COLUMNS = (
    "id, fingerprint, title, systems, event_type, error_type, count, first_seen, last_seen,"
    " last_event_id, status, muted_until, regressed"
)
_LOCK = (
    "SELECT fingerprint, status FROM issues WHERE fingerprint = ANY($1::text[])"
    " ORDER BY fingerprint FOR UPDATE"
)
# Systems travel as JSON text (unnest cannot take arrays of arrays of unequal length).
_UPSERT = (
    "WITH up AS ("
    " INSERT INTO issues AS i (fingerprint, title, systems, event_type, error_type, count,"
    " first_seen, last_seen, last_event_id, status, regressed)"
    " SELECT f, title, ARRAY(SELECT jsonb_array_elements_text(s::jsonb)), y, x, n, t0, t1, e,"
    " 'unresolved', false"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],"
    " $7::timestamptz[], $8::timestamptz[], $9::text[]) AS new(f, title, s, y, x, n, t0, t1, e)"
    " ORDER BY f"
    " ON CONFLICT (fingerprint) DO UPDATE SET"
    " count = i.count + excluded.count,"
    " first_seen = least(i.first_seen, excluded.first_seen),"
    " last_seen = greatest(i.last_seen, excluded.last_seen),"
    " last_event_id = CASE WHEN excluded.last_seen >= i.last_seen"
    " THEN excluded.last_event_id ELSE i.last_event_id END,"
    " systems = CASE WHEN excluded.systems <@ i.systems THEN i.systems"
    " ELSE ARRAY(SELECT DISTINCT unnest(i.systems || excluded.systems) ORDER BY 1) END,"
    " regressed = i.regressed OR i.status = 'resolved',"
    " status = CASE WHEN i.status = 'resolved' OR (i.status = 'muted' AND i.muted_until <= now())"
    " THEN 'unresolved' ELSE i.status END,"
    " muted_until = CASE WHEN i.status = 'muted' AND i.muted_until > now()"
    " THEN i.muted_until END"
    " RETURNING i.id, i.fingerprint"
    "), links AS ("
    " INSERT INTO event_issues(event_id, issue_id, timestamp)"
    " SELECT m.e, up.id, m.t FROM unnest($10::text[], $11::text[], $12::timestamptz[])"
    " AS m(f, e, t) JOIN up ON up.fingerprint = m.f"
    ") SELECT id, fingerprint FROM up"
)
_STATUS_WHERE = {
    "unresolved": "(status = 'unresolved' OR (status = 'muted' AND muted_until <= now()))",
    "muted": "(status = 'muted' AND muted_until > now())",
}


async def record(conn: Any, events: Sequence[Event]) -> list[IssueChange]:
    """Count the error events among the stored ``events`` into their issues; the
    issues this created or regressed."""
    found = sightings(events)
    if not found:
        return []
    fingerprints = [s.fingerprint for s in found]
    before = {r[0]: r[1] for r in await conn.fetch(_LOCK, fingerprints)}
    members = [(s.fingerprint, events[i]) for s in found for i in s.members]
    rows = await conn.fetch(
        _UPSERT,
        fingerprints,
        [s.title for s in found],
        [orjson.dumps(s.systems).decode() for s in found],
        [s.event_type for s in found],
        [s.error_type for s in found],
        [s.count for s in found],
        [s.first_seen for s in found],
        [s.last_seen for s in found],
        [s.last_event_id for s in found],
        [fp for fp, _ in members],
        [e.id for _, e in members],
        [e.timestamp for _, e in members],
    )
    return [
        IssueChange("new" if r[1] not in before else "regressed", int(r[0]), r[1])
        for r in rows
        if before.get(r[1]) in (None, "resolved")
    ]


async def list_issues(conn: Any, query: IssueQuery) -> list[Issue]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.status in _STATUS_WHERE:
        clauses.append(_STATUS_WHERE[query.status])
    elif query.status is not None:
        params.append(query.status)
        clauses.append(f"status = ${len(params)}")
    if query.system is not None:
        params.append(query.system)
        clauses.append(f"${len(params)} = ANY(systems)")
    if query.seen_since is not None:
        params.append(query.seen_since)
        clauses.append(f"last_seen >= ${len(params)}")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    n = len(params)
    # order_by is one of ISSUE_ORDERS (checked by IssueQuery).
    rows = await conn.fetch(
        f"SELECT {ISSUE_COLUMNS} FROM issues{where}"
        f" ORDER BY {query.order_by} DESC, id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        *params,
        query.limit,
        query.offset,
    )
    return [Issue.stored(r) for r in rows]


async def get_issue(conn: Any, issue_id: int) -> Issue | None:
    row = await conn.fetchrow(f"SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1", issue_id)
    return None if row is None else Issue.stored(row)


async def set_status(
    conn: Any, issue_id: int, status: str, muted_until: datetime | None
) -> Issue | None:
    """The new status (clearing ``regressed``); the issue, or None."""
    row = await conn.fetchrow(
        "UPDATE issues SET status = $2, muted_until = $3, regressed = false WHERE id = $1"
        f" RETURNING {ISSUE_COLUMNS}",
        issue_id,
        status,
        muted_until,
    )
    return None if row is None else Issue.stored(row)


async def issue_events(conn: Any, issue_id: int, limit: int) -> list[Event]:
    """The issue's events, newest first."""
    rows = await conn.fetch(
        f"SELECT {sql.COLUMNS} FROM event_issues l"
        " JOIN events e ON e.id = l.event_id AND e.timestamp = l.timestamp"
        " WHERE l.issue_id = $1 ORDER BY l.timestamp DESC LIMIT $2",
        issue_id,
        limit,
    )
    return [sql.from_row(r) for r in rows]


_TRUNC = {"1h": "hour", "1d": "day"}


async def issue_activity(conn: Any, query: ActivityQuery) -> IssueActivity:
    """The issues' events per bucket, from the links (they carry the timestamp)."""
    rows = await conn.fetch(
        "SELECT issue_id, date_trunc($4, timestamp AT TIME ZONE 'UTC'), count(*)"
        " FROM event_issues WHERE issue_id = ANY($1::bigint[])"
        " AND timestamp >= $2 AND timestamp < $3 GROUP BY 1, 2",
        list(query.issue_ids),
        query.since,
        query.until,
        _TRUNC[query.interval],
    )
    return IssueActivity.from_counts(
        query, ((int(r[0]), r[1].replace(tzinfo=UTC), int(r[2])) for r in rows)
    )
