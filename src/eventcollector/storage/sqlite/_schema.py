"""The SQLite schema and its migrations.

``events`` keeps the spec's columns and names, so the spec's inspection SQL works
unchanged in the sqlite3 shell. Beside it:

- ``event_tags``: one row per (tag, event), for all-of / any-of tag filters;
- ``events_fts``: an FTS5 index over title and description (external content);
- ``events_fts_vocab``: the words of that index (an ``fts5vocab`` view, no data);
- ``event_journal``: events of small commits, until they move into ``events``;
- ``event_meta``: the highest rowid ever given out (rowids are never reused);
- ``issues`` (one row per error fingerprint) and ``event_issues`` (each error event's
  issue), kept by ingest (``_issues``);
- ``event_indexes``: the data/metadata paths with an expression index;
- ``alert_rules``, ``alert_states``, ``alert_history``, ``alert_triggers`` (issue
  changes queued for the evaluating server) and ``alert_silences``: alerts (``_alerts``,
  docs/alerts.md);
- ``event_counts`` (per hour, system, type and severity), ``day_counts`` (the same
  per day), ``event_totals`` (all time), ``hour_totals`` (per hour only) and
  ``quarter_counts`` (per quarter hour, system and severity): rollups of
  counts and duration sums, maintained in the same transaction as the events, so
  statistics, plain counts and hourly distributions read a few rows, not events;
  ``tag_counts`` (per hour, system, severity and tag) does the same for tag facets.

``PRAGMA application_id`` marks the file as ours; ``PRAGMA user_version`` is the
schema version, and ``migrate`` brings any older version (including a database
made by the spec's reference implementation) up to date.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger("eventcollector.storage.sqlite")

APPLICATION_ID = 0x45564331  # "EVC1"
SCHEMA_VERSION = 11
#: rowid_blocks groups rowids by this many low bits (4,096 rows a block). Deletes leave
#: its bounds wider than the rows left, which keeps them correct as bounds.
ROWID_BLOCK_BITS = 12
#: The quarter hour of a stored timestamp (fixed-width UTC text): "YYYY-MM-DDTHH:MM",
#: the minutes floored to 00, 15, 30 or 45.
QUARTER = (
    "substr({ts}, 1, 14) || CASE WHEN substr({ts}, 15, 2) < '15' THEN '00'"
    " WHEN substr({ts}, 15, 2) < '30' THEN '15' WHEN substr({ts}, 15, 2) < '45' THEN '30'"
    " ELSE '45' END"
)

_SPEC_EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    system TEXT NOT NULL,
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    data TEXT NOT NULL,
    tags TEXT NOT NULL,
    correlation_id TEXT,
    source_component TEXT,
    duration_ms INTEGER,
    metadata TEXT NOT NULL
)
"""

# Composite indexes end in timestamp so "filter, newest first, limit N" walks one
# index in order and stops; the rowid every index carries breaks timestamp ties.
_V1 = [
    "DROP INDEX IF EXISTS idx_events_system",
    "DROP INDEX IF EXISTS idx_events_type",
    "DROP INDEX IF EXISTS idx_events_severity",
    "DROP INDEX IF EXISTS idx_events_correlation",
    "DROP INDEX IF EXISTS idx_events_component",
    # duration_ms rides along so duration statistics over a time window read only the index.
    "DROP INDEX IF EXISTS idx_events_timestamp",
    "CREATE INDEX idx_events_timestamp ON events(timestamp, duration_ms)",
    "CREATE INDEX idx_events_system ON events(system, timestamp)",
    # The spec's complex query (system + severity + time): a range scan in time order.
    "CREATE INDEX idx_events_system_severity ON events(system, severity, timestamp)",
    "CREATE INDEX idx_events_type ON events(event_type, timestamp)",
    "CREATE INDEX idx_events_severity ON events(severity, timestamp)",
    "CREATE INDEX idx_events_correlation ON events(correlation_id, timestamp)"
    " WHERE correlation_id IS NOT NULL",
    "CREATE INDEX idx_events_component ON events(source_component, timestamp)"
    " WHERE source_component IS NOT NULL",
    """CREATE TABLE event_tags (
        tag TEXT NOT NULL,
        event_rowid INTEGER NOT NULL,
        PRIMARY KEY (tag, event_rowid)
    ) WITHOUT ROWID""",
    """CREATE VIRTUAL TABLE events_fts USING fts5(
        title, description,
        content='events', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 0'
    )""",
    # Rollups, from fine to coarse; each carries n and the count/sum of durations.
    """CREATE TABLE event_counts (
        hour TEXT NOT NULL,
        system TEXT NOT NULL,
        event_type TEXT NOT NULL,
        severity TEXT NOT NULL,
        n INTEGER NOT NULL,
        d_n INTEGER NOT NULL,
        d_sum INTEGER NOT NULL,
        PRIMARY KEY (hour, system, event_type, severity)
    ) WITHOUT ROWID""",
    """CREATE TABLE day_counts (
        day TEXT NOT NULL,
        system TEXT NOT NULL,
        event_type TEXT NOT NULL,
        severity TEXT NOT NULL,
        n INTEGER NOT NULL,
        d_n INTEGER NOT NULL,
        d_sum INTEGER NOT NULL,
        PRIMARY KEY (day, system, event_type, severity)
    ) WITHOUT ROWID""",
    """CREATE TABLE event_totals (
        system TEXT NOT NULL,
        event_type TEXT NOT NULL,
        severity TEXT NOT NULL,
        n INTEGER NOT NULL,
        d_n INTEGER NOT NULL,
        d_sum INTEGER NOT NULL,
        PRIMARY KEY (system, event_type, severity)
    ) WITHOUT ROWID""",
    # Time bounds per 4,096 rowids: lets a search walk matches newest first and stop.
    """CREATE TABLE rowid_blocks (
        block INTEGER PRIMARY KEY,
        min_ts TEXT NOT NULL,
        max_ts TEXT NOT NULL
    )""",
    """CREATE TABLE hour_totals (
        hour TEXT PRIMARY KEY,
        n INTEGER NOT NULL,
        d_n INTEGER NOT NULL,
        d_sum INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # Backfill the side tables from events a spec-built database already holds.
    """INSERT INTO event_tags(tag, event_rowid)
        SELECT DISTINCT j.value, e.rowid FROM events e, json_each(e.tags) j
        WHERE json_valid(e.tags) AND j.type = 'text'""",
    "INSERT INTO events_fts(events_fts) VALUES ('rebuild')",
    """INSERT INTO event_counts
        SELECT substr(timestamp, 1, 13), system, event_type, severity, count(*),
               count(duration_ms), coalesce(sum(duration_ms), 0)
        FROM events GROUP BY 1, 2, 3, 4""",
    """INSERT INTO day_counts
        SELECT substr(hour, 1, 10), system, event_type, severity, sum(n), sum(d_n), sum(d_sum)
        FROM event_counts GROUP BY 1, 2, 3, 4""",
    """INSERT INTO event_totals
        SELECT system, event_type, severity, sum(n), sum(d_n), sum(d_sum)
        FROM event_counts GROUP BY 1, 2, 3""",
    f"""INSERT INTO rowid_blocks
        SELECT rowid >> {ROWID_BLOCK_BITS}, min(timestamp), max(timestamp) FROM events
        GROUP BY 1""",
    """INSERT INTO hour_totals
        SELECT hour, sum(n), sum(d_n), sum(d_sum) FROM event_counts GROUP BY 1""",
]

# A read-only view of the full-text index's words (no storage, no ingest cost): lets a
# search expand a prefix into the exact words it starts (see ``_select``).
_V2 = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS events_fts_vocab USING fts5vocab(events_fts, 'instance')"
]

# Small commits land here first (see ``_ingest``): seq is the rowid each event
# keeps when it moves into events.
_V3 = [
    _SPEC_EVENTS_TABLE.replace("events", "event_journal", 1).replace(
        "id TEXT PRIMARY KEY", "seq INTEGER PRIMARY KEY,\n    id TEXT NOT NULL UNIQUE", 1
    )
]

# source_component rides along so that errors over a window group by component from
# the index alone, not with a table lookup per error (analyze_errors at 10M events).
_V4 = [
    "DROP INDEX IF EXISTS idx_events_severity",
    "CREATE INDEX idx_events_severity ON events(severity, timestamp, source_component)",
]

# The highest rowid ever given out, kept by cleanup: without it, deleting the newest
# events would let new ones take their rowids again, behind a follower's position.
_V5 = [
    """CREATE TABLE IF NOT EXISTS event_meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID"""
]

# Error issues (docs/issues.md): one row per fingerprint, and each error event's issue
# (by rowid: the journal's rows keep theirs). Issues start empty: a fingerprint is
# computed in Python, so events stored before this version are not counted.
_ISSUES = [
    """CREATE TABLE IF NOT EXISTS issues (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        systems TEXT NOT NULL,
        event_type TEXT NOT NULL,
        error_type TEXT NOT NULL,
        count INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        last_event_id TEXT NOT NULL,
        status TEXT NOT NULL,
        muted_until TEXT,
        regressed INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS idx_issues_last_seen ON issues(last_seen)",
    """CREATE TABLE IF NOT EXISTS event_issues (
        event_rowid INTEGER PRIMARY KEY,
        issue_id INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS idx_event_issues_issue ON event_issues(issue_id, event_rowid)",
]


# The data/metadata paths with an expression index (``eventcollector index add``): the
# allow-list the compiler builds an index's literal expression from (``_indexes``).
_V7 = [
    """CREATE TABLE IF NOT EXISTS event_indexes (
        path TEXT PRIMARY KEY,
        index_name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    ) WITHOUT ROWID"""
]

# Alerts (docs/alerts.md): rules as their JSON definition, one state per rule and
# group, the history of transitions and notifications, and the queue of new and
# regressed issues for the evaluating server (``_alerts``).
_ALERTS = [
    """CREATE TABLE IF NOT EXISTS alert_rules (
        name TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_states (
        rule TEXT NOT NULL,
        grp TEXT NOT NULL,
        state TEXT NOT NULL,
        since TEXT NOT NULL,
        value REAL,
        evaluated TEXT,
        notified TEXT,
        PRIMARY KEY (rule, grp)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_history (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        grp TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        value REAL,
        target TEXT,
        error TEXT,
        sample_ids TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS idx_alert_history_rule ON alert_history(rule, id)",
    """CREATE TABLE IF NOT EXISTS alert_triggers (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        issue_id INTEGER NOT NULL,
        fingerprint TEXT NOT NULL
    )""",
]

# Counts per quarter hour, system and severity beside the hourly ones: a histogram of
# 15-minute buckets (the UI's default day, stacked by severity) is read from a few rows
# per quarter instead of counting every event of the range, which grows with the store
# (24 h of a 10M store: 116-163 ms). Without event_type, so that a quarter holds a few
# dozen rows, not one per type. Backfilled from the stored events.
_V9 = [
    "DROP TABLE IF EXISTS quarter_counts",  # rebuilt whole, whatever a re-run left
    """CREATE TABLE quarter_counts (
        quarter TEXT NOT NULL,
        system TEXT NOT NULL,
        severity TEXT NOT NULL,
        n INTEGER NOT NULL,
        d_n INTEGER NOT NULL,
        d_sum INTEGER NOT NULL,
        PRIMARY KEY (quarter, system, severity)
    ) WITHOUT ROWID""",
    f"""INSERT INTO quarter_counts
        SELECT {QUARTER.format(ts="timestamp")}, system, severity, count(*),
               count(duration_ms), coalesce(sum(duration_ms), 0)
        FROM events GROUP BY 1, 2, 3""",
]

# Events per hour, system, severity and tag (the tag as a facet key encodes it: "s" and
# the tag, "" for an event without tags): a tag facet over a day reads a few thousand
# rows instead of every event's tags (json_each over a day of a 10M store: 6.7 s).
# Without event_type, as quarter_counts. At most as many rows as event_tags, which a
# tag unique to each event would reach. Backfilled from the stored events.
_V10 = [
    "DROP TABLE IF EXISTS tag_counts",  # rebuilt whole, whatever a re-run left
    """CREATE TABLE tag_counts (
        hour TEXT NOT NULL,
        system TEXT NOT NULL,
        severity TEXT NOT NULL,
        tag TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (hour, system, severity, tag)
    ) WITHOUT ROWID""",
    """INSERT INTO tag_counts
        SELECT substr(e.timestamp, 1, 13), e.system, e.severity,
               coalesce('s' || j.value, ''), count(*)
        FROM events e LEFT JOIN json_each(e.tags) j ON j.type = 'text' GROUP BY 1, 2, 3, 4""",
]

# Alert silences (docs/alerts.md, Silences): a rule ("*": every rule) and a group
# (NULL: every group) whose notices are held back until a time.
_V11 = [
    """CREATE TABLE IF NOT EXISTS alert_silences (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        grp TEXT,
        until TEXT NOT NULL,
        reason TEXT NOT NULL,
        created TEXT NOT NULL
    )""",
]

_MIGRATIONS: dict[int, list[str]] = {
    1: _V1,
    2: _V2,
    3: _V3,
    4: _V4,
    5: _V5,
    6: _ISSUES,
    7: _V7,
    8: _ALERTS,
    9: _V9,
    10: _V10,
    11: _V11,
}


class NotOurDatabase(ValueError):
    """The file is SQLite but holds someone else's schema."""


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema to SCHEMA_VERSION inside one write transaction; the old version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id not in (0, APPLICATION_ID):
            raise NotOurDatabase(
                f"{path}: not an eventcollector database (application_id {app_id:#x})"
            )
        if app_id == 0:
            _check_foreign_tables(conn, path)
        if version > SCHEMA_VERSION:
            raise NotOurDatabase(
                f"{path}: schema version {version} is newer than this eventcollector "
                f"supports ({SCHEMA_VERSION}); upgrade the package"
            )
        if version < SCHEMA_VERSION:
            if version:  # an upgrade: some steps rebuild side tables from every event
                log.warning(
                    "%s: upgrading the schema from version %d to %d; a large store takes a"
                    " while (a few seconds per million events)",
                    path,
                    version,
                    SCHEMA_VERSION,
                )
            conn.execute(_SPEC_EVENTS_TABLE)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(version)


def _check_foreign_tables(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a database with tables other than the spec's ``events``."""
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if names - {"events"}:
        raise NotOurDatabase(
            f"{path}: not an eventcollector database (it has tables {sorted(names)[:5]})"
        )
    if "events" in names:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        missing = {"id", "timestamp", "system", "event_type", "severity", "title"} - columns
        if missing:
            raise NotOurDatabase(
                f"{path}: its events table lacks columns {sorted(missing)}; not an "
                "eventcollector database"
            )
