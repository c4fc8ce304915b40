"""The PostgreSQL schema, its versioned migrations and its daily partitions.

Everything lives in one schema (``public`` unless told otherwise), reached through
the connection's ``search_path``:

- ``events``: the spec's columns (tags ``text[]``, data/metadata ``jsonb``,
  timestamp ``timestamptz``) plus ``seq`` (insertion order, for tie-breaks) and a
  generated ``search`` tsvector; range-partitioned by day on ``timestamp``.
- ``event_ids``: one row per stored id. A partitioned table cannot have a unique
  key without the partition column, so ids are claimed here first
  (``ON CONFLICT DO NOTHING``) and only the winners are inserted into ``events``.
- rollups kept in the ingest transaction (and by retention), so counts, groupings,
  duration averages and statistics do not scan ``events``; each holds ``n`` (events),
  ``d_n`` (events with a duration) and ``d_sum`` (their durations' sum):
  ``event_counts`` per (hour, system, event_type, severity), ``day_counts`` per
  (day, system, event_type, severity), ``event_totals`` per (system, event_type,
  severity) for all time, ``hour_totals`` per hour over every dimension.
- ``issues`` (one row per error fingerprint) and ``event_issues`` (each error event's
  issue), kept by ingest (``_issues``);
- ``event_words(text)``, ``event_indexes``: for filters (see ``_V5``).
- ``alert_rules``, ``alert_states``, ``alert_history``, ``alert_triggers``,
  ``alert_silences``: alerts
  (``_alerts``, docs/alerts.md);
- ``schema_migrations``: the applied versions.

Migrations and partition creation run under transaction-scoped advisory locks,
so several servers can open the same database at once.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

SCHEMA_VERSION = 7

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,47}")
_PARTITION = re.compile(r"events_(\d{4})(\d{2})(\d{2})")
_DAY = timedelta(days=1)

# Text columns compare in code-point order (COLLATE "C"), as SQLite and Python do.
_V1 = [
    "CREATE SEQUENCE events_seq AS bigint",
    """CREATE TABLE events (
        seq bigint NOT NULL,
        id text COLLATE "C" NOT NULL,
        timestamp timestamptz NOT NULL,
        system text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        severity text COLLATE "C" NOT NULL,
        title text COLLATE "C" NOT NULL,
        description text COLLATE "C" NOT NULL,
        data jsonb NOT NULL,
        tags text[] COLLATE "C" NOT NULL,
        correlation_id text COLLATE "C",
        source_component text COLLATE "C",
        duration_ms bigint,
        metadata jsonb NOT NULL,
        search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, lower(
            regexp_replace((title || ' ' || description) COLLATE {text_collation},
                '[^[:alnum:]]+', ' ', 'g')
        ))) STORED
    ) PARTITION BY RANGE (timestamp)""",
    # Composite indexes end in (timestamp, seq): "filter, newest first, limit N" walks
    # one index per partition in order and stops.
    "CREATE INDEX events_time_idx ON events (timestamp, seq)",
    "CREATE INDEX events_system_idx ON events (system, severity, timestamp)",
    "CREATE INDEX events_type_idx ON events (event_type, timestamp)",
    "CREATE INDEX events_severity_idx ON events (severity, timestamp)",
    "CREATE INDEX events_correlation_idx ON events (correlation_id, timestamp)"
    " WHERE correlation_id IS NOT NULL",
    "CREATE INDEX events_component_idx ON events (source_component, timestamp)"
    " WHERE source_component IS NOT NULL",
    "CREATE INDEX events_id_idx ON events (id)",
    "CREATE INDEX events_tags_idx ON events USING gin (tags)",
    "CREATE INDEX events_search_idx ON events USING gin (search)",
    """CREATE TABLE event_ids (
        id text COLLATE "C" PRIMARY KEY,
        timestamp timestamptz NOT NULL
    )""",
    "CREATE INDEX event_ids_time_idx ON event_ids (timestamp)",
    """CREATE TABLE event_counts (
        hour timestamptz NOT NULL,
        system text COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        severity text COLLATE "C" NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (hour, system, event_type, severity)
    )""",
]

# Followers (``read_after``, ``eventcollector tail``) walk insertion order from a seq.
# (The (timestamp, seq) index would serve ``seq > n`` only by reading all of itself; a
# BRIN on seq is cheaper to keep but the planner does not pick it.)
_V2 = ["CREATE INDEX events_seq_idx ON events (seq)"]

# Coarser rollups (as in SQLite): all-time totals, days, hours over every dimension;
# durations in every rollup, so duration averages need no scan either. Ingest waits
# (SHARE lock on ``events``) while the rollups are rebuilt from the events.
_ROLLUP_COLUMNS = "n bigint NOT NULL, d_n bigint NOT NULL, d_sum numeric NOT NULL"
_DIMENSION_COLUMNS = (
    'system text COLLATE "C" NOT NULL, event_type text COLLATE "C" NOT NULL,'
    ' severity text COLLATE "C" NOT NULL'
)
_V3 = [
    "LOCK TABLE events IN SHARE MODE",
    "ALTER TABLE event_counts ADD COLUMN d_n bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN d_sum numeric NOT NULL DEFAULT 0",
    f"CREATE TABLE day_counts (day date NOT NULL, {_DIMENSION_COLUMNS}, {_ROLLUP_COLUMNS},"
    " PRIMARY KEY (day, system, event_type, severity))",
    f"CREATE TABLE event_totals ({_DIMENSION_COLUMNS}, {_ROLLUP_COLUMNS},"
    " PRIMARY KEY (system, event_type, severity))",
    f"CREATE TABLE hour_totals (hour timestamptz PRIMARY KEY, {_ROLLUP_COLUMNS})",
    # Backfill: the hourly rollup recomputed from the events, the others from it.
    "DELETE FROM event_counts",
    "INSERT INTO event_counts(hour, system, event_type, severity, n, d_n, d_sum)"
    " SELECT date_trunc('hour', timestamp, 'UTC'), system, event_type, severity, count(*),"
    " count(duration_ms), coalesce(sum(duration_ms), 0) FROM events GROUP BY 1, 2, 3, 4",
    "INSERT INTO day_counts(day, system, event_type, severity, n, d_n, d_sum)"
    " SELECT (hour AT TIME ZONE 'UTC')::date, system, event_type, severity, sum(n), sum(d_n),"
    " sum(d_sum) FROM event_counts GROUP BY 1, 2, 3, 4",
    "INSERT INTO event_totals(system, event_type, severity, n, d_n, d_sum)"
    " SELECT system, event_type, severity, sum(n), sum(d_n), sum(d_sum) FROM event_counts"
    " GROUP BY 1, 2, 3",
    "INSERT INTO hour_totals(hour, n, d_n, d_sum)"
    " SELECT hour, sum(n), sum(d_n), sum(d_sum) FROM event_counts GROUP BY 1",
]

# Error issues (docs/issues.md). Issues start empty: a fingerprint is computed in
# Python, so events stored before this version are not counted.
_ISSUES = [
    """CREATE TABLE issues (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        fingerprint text COLLATE "C" NOT NULL UNIQUE,
        title text COLLATE "C" NOT NULL,
        systems text[] COLLATE "C" NOT NULL,
        event_type text COLLATE "C" NOT NULL,
        error_type text COLLATE "C" NOT NULL,
        count bigint NOT NULL,
        first_seen timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        last_event_id text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        muted_until timestamptz,
        regressed boolean NOT NULL
    )""",
    "CREATE INDEX issues_last_seen_idx ON issues (last_seen)",
    """CREATE TABLE event_issues (
        event_id text COLLATE "C" PRIMARY KEY,
        issue_id bigint NOT NULL,
        timestamp timestamptz NOT NULL
    )""",
    "CREATE INDEX event_issues_issue_idx ON event_issues (issue_id, timestamp)",
    "CREATE INDEX event_issues_time_idx ON event_issues (timestamp)",
]


# Filters (``storage._where``): ``event_words`` gives the words of one text as
# ``search`` gives those of title and description together (a phrase must match within
# one of them); ``event_indexes`` lists the data/metadata paths with an expression index,
# the allow-list the compiler builds an index's literal expression from (``_indexes``).
_V5 = [
    """CREATE FUNCTION event_words(text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN to_tsvector('simple'::regconfig, lower(
            regexp_replace($1 COLLATE {text_collation}, '[^[:alnum:]]+', ' ', 'g')))""",
    """CREATE TABLE event_indexes (
        path text PRIMARY KEY,
        index_name text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
]

# Alerts (docs/alerts.md): rules as their JSON definition, one state per rule and
# group, the history, and the queue of new and regressed issues that every server
# fills and the evaluating one empties (``_alerts``).
_ALERTS = [
    """CREATE TABLE alert_rules (
        name text COLLATE "C" PRIMARY KEY,
        definition jsonb NOT NULL,
        source text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE alert_states (
        rule text COLLATE "C" NOT NULL,
        grp text COLLATE "C" NOT NULL,
        state text NOT NULL,
        since timestamptz NOT NULL,
        value double precision,
        evaluated timestamptz,
        notified timestamptz,
        PRIMARY KEY (rule, grp)
    )""",
    """CREATE TABLE alert_history (
        id bigserial PRIMARY KEY,
        rule text COLLATE "C" NOT NULL,
        grp text COLLATE "C" NOT NULL,
        at timestamptz NOT NULL,
        kind text NOT NULL,
        state text NOT NULL,
        value double precision,
        target text,
        error text,
        sample_ids jsonb NOT NULL
    )""",
    "CREATE INDEX alert_history_rule_idx ON alert_history (rule, id)",
    """CREATE TABLE alert_triggers (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        issue_id bigint NOT NULL,
        fingerprint text NOT NULL
    )""",
]

# Alert silences (docs/alerts.md, Silences): a rule ('*': every rule) and a group
# (NULL: every group) whose notices are held back until a time.
_V7 = [
    """CREATE TABLE alert_silences (
        id bigserial PRIMARY KEY,
        rule text COLLATE "C" NOT NULL,
        grp text COLLATE "C",
        until timestamptz NOT NULL,
        reason text NOT NULL,
        created timestamptz NOT NULL
    )""",
]

MIGRATIONS: dict[int, list[str]] = {
    1: _V1, 2: _V2, 3: _V3, 4: _ISSUES, 5: _V5, 6: _ALERTS, 7: _V7
}  # fmt: skip


class NotOurSchema(ValueError):
    """The schema holds tables that are not an eventcollector store."""


def validate_schema(name: str) -> str:
    """``name`` if it is a plain lower-case identifier, else ValueError."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(
            f"schema: {name!r} is not a plain identifier (lower-case letters, digits, '_';"
            " at most 48 characters)"
        )
    return name


def lock_key(schema: str, purpose: str) -> str:
    """Text hashed (``hashtext``) into an advisory lock key."""
    return f"eventcollector:{purpose}:{schema}"


async def migrate(conn: Any, schema: str) -> int:
    """Bring ``schema`` to SCHEMA_VERSION in one transaction; the version found."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key(schema, "ddl"))
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        tables = {
            r[0]
            for r in await conn.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
                schema,
            )
        }
        if "events" in tables and "schema_migrations" not in tables:
            raise NotOurSchema(
                f"schema {schema!r} has an events table not made by eventcollector; "
                "use another schema"
            )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
        if version > SCHEMA_VERSION:
            raise NotOurSchema(
                f"schema {schema!r} is at version {version}, newer than this eventcollector "
                f"supports ({SCHEMA_VERSION}); upgrade the package"
            )
        # Search splits words and folds case by Unicode rules: ICU's when the server has
        # it, else the database's own locale (a "C" database folds ASCII only).
        icu = await conn.fetchval("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'")
        names = {"text_collation": '"und-x-icu"' if icu else '"default"'}
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                await conn.execute(statement.replace("{text_collation}", names["text_collation"]))
            await conn.execute("INSERT INTO schema_migrations(version) VALUES ($1)", step)
        return int(version)


def partition_name(day: date) -> str:
    return f"events_{day.year:04d}{day.month:02d}{day.day:02d}"


def partition_day(name: str) -> date | None:
    """The day a partition named by ``partition_name`` holds, or None."""
    match = _PARTITION.fullmatch(name)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def list_partitions(conn: Any) -> dict[date, str]:
    """The daily partitions of ``events`` in the current schema."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass"
    )
    found = {}
    for row in rows:
        day = partition_day(row[0])
        if day is not None:
            found[day] = row[0]
    return found


async def create_partitions(conn: Any, schema: str, days: set[date]) -> set[date]:
    """Create the missing daily partitions for ``days``; all partitions that now exist."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", lock_key(schema, "partitions")
        )
        existing = await list_partitions(conn)
        for day in sorted(days - existing.keys()):
            # Bounds are formatted from dates, never from user text.
            lo = f"'{day.isoformat()} 00:00:00+00'"
            hi = f"'{(day + _DAY).isoformat()} 00:00:00+00'" if day < date.max else "MAXVALUE"
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{partition_name(day)}" PARTITION OF events'
                f" FOR VALUES FROM ({lo}) TO ({hi})"
            )
        return set(existing) | days
