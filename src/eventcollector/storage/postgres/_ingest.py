"""The PostgreSQL ingest transaction: claim the ids, COPY the winners, count, notify.

A partitioned table cannot have a unique key without the partition column, so ids are
claimed in ``event_ids`` first (``ON CONFLICT DO NOTHING``), which also takes their
seqs; only the winners are COPied into the daily partitions of ``events``, added to the
rollups, their errors counted into issues (``_issues``) and announced to the other
instances (``_listen``), all in one transaction.
Grouping appends into such transactions is ``_writer``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventcollector.issues import IssueChange
from eventcollector.model import Event
from eventcollector.storage.postgres import _sql as sql
from eventcollector.storage.postgres._issues import record as count_issues
from eventcollector.storage.postgres._listen import notify_payloads
from eventcollector.storage.postgres._rollups import add_to_rollups

# Claim ids (in id order: one lock order for every writer, so no deadlocks) and take one
# insertion position (seq) per claimed id. The claim's insert gives the transaction its
# xid before any seq is taken (``read_after`` relies on it).
CLAIM_IDS = (
    "WITH claimed AS ("
    " INSERT INTO event_ids(id, timestamp)"
    " SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS new(id, timestamp) ORDER BY 1"
    " ON CONFLICT DO NOTHING RETURNING id"
    ") SELECT id, nextval('events_seq') FROM claimed"
)
# The rollups of the stored events and the notifications for the other instances
# ($6: none when empty).
ADD_COUNTS = (
    "WITH counted AS ("
    " SELECT date_trunc('hour', t, 'UTC') AS hour, s COLLATE \"C\" AS system,"
    ' y COLLATE "C" AS event_type, v COLLATE "C" AS severity, count(*) AS n,'
    " count(d) AS d_n, coalesce(sum(d), 0) AS d_sum"
    " FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
    " AS new(t, s, y, v, d) GROUP BY 1, 2, 3, 4"
    f"), {add_to_rollups('counted')}"
    " SELECT pg_notify($7, payload) FROM unnest($6::text[]) AS payload"
)


async def insert(
    conn: Any,
    events: list[Event],
    records: list[list[Any]],
    *,
    claimed_ids: Callable[[], None],
    notify_as: str | None,
    channel: str,
    on_issues: Callable[[list[IssueChange]], None] | None = None,
) -> set[str]:
    """One transaction storing ``events`` (unique ids; ``records`` their rows, seqs
    unset): the ids that were new. ``claimed_ids`` is called once the claim has ended
    (or failed); ``notify_as``: the instance named in the notifications (None: none);
    ``on_issues``: told after commit of the issues this created or regressed."""
    async with conn.transaction():
        try:
            claimed = await conn.fetch(CLAIM_IDS, [r[1] for r in records], [r[2] for r in records])
        finally:
            claimed_ids()
        if not claimed:
            return set()
        new_ids = {r[0] for r in claimed}
        fresh = events
        if len(new_ids) < len(events):
            kept = [i for i, e in enumerate(events) if e.id in new_ids]
            fresh, records = [events[i] for i in kept], [records[i] for i in kept]
        # The seqs were taken in id order; handed out in batch order they keep the
        # events' insertion order.
        for seq, record in zip(sorted(r[1] for r in claimed), records, strict=True):
            record[0] = seq
        await conn.copy_records_to_table("events", records=records, columns=sql.EVENT_COLUMNS)
        await conn.execute(
            ADD_COUNTS,
            [r[2] for r in records],
            [r[3] for r in records],
            [r[4] for r in records],
            [r[5] for r in records],
            [r[12] for r in records],
            [] if notify_as is None else notify_payloads(notify_as, fresh),
            channel,
        )
        # Last: the issue rows are the hottest locks, held the shortest this way.
        changes = await count_issues(conn, fresh)
    if changes and on_issues is not None:
        on_issues(changes)
    return new_ids
