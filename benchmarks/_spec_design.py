"""The anchors of issue 17: the spec's literal design, as plain as the spec draws it.

Benchmark-only code, never part of the package. ``SeedCollector`` is the spec's
``EventCollector`` taken literally: aiosqlite, the spec's schema (its six single-column
indexes), a dataclass event with a UUID4 id, one ``INSERT`` and one ``COMMIT`` per
``collect()``, and a query builder that writes SQL with ``tags LIKE`` and decodes rows
with ``json.loads``. ``spec_app`` is the same design behind a Starlette endpoint: one
``executemany`` and one commit per batch, one commit per single-event POST.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

#: The spec's "Database Schema" appendix, verbatim.
SPEC_SCHEMA = """
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
);
CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events(timestamp);
CREATE INDEX IF NOT EXISTS idx_events_system ON events(system);
CREATE INDEX IF NOT EXISTS idx_events_type ON events(event_type);
CREATE INDEX IF NOT EXISTS idx_events_severity ON events(severity);
CREATE INDEX IF NOT EXISTS idx_events_correlation ON events(correlation_id);
CREATE INDEX IF NOT EXISTS idx_events_component ON events(source_component);
"""
INSERT = f"INSERT INTO events VALUES ({', '.join('?' * 13)})"


@dataclass
class SeedEvent:
    """The spec's ``Event`` dataclass."""

    system: str
    event_type: str
    title: str
    severity: str = "info"
    description: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    correlation_id: str | None = None
    source_component: str | None = None
    duration_ms: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.timestamp.isoformat(),
            self.system,
            self.event_type,
            self.severity,
            self.title,
            self.description,
            json.dumps(self.data),
            json.dumps(self.tags),
            self.correlation_id,
            self.source_component,
            self.duration_ms,
            json.dumps(self.metadata),
        )

    @classmethod
    def from_row(cls, row: Any) -> SeedEvent:
        return cls(
            id=row[0],
            timestamp=datetime.fromisoformat(row[1]),
            system=row[2],
            event_type=row[3],
            severity=row[4],
            title=row[5],
            description=row[6],
            data=json.loads(row[7]),
            tags=json.loads(row[8]),
            correlation_id=row[9],
            source_component=row[10],
            duration_ms=row[11],
            metadata=json.loads(row[12]),
        )

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> SeedEvent:
        fields = dict(payload)
        if isinstance(fields.get("timestamp"), str):
            fields["timestamp"] = datetime.fromisoformat(fields["timestamp"])
        return cls(**fields)


async def open_db(path: Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path)
    await db.execute("PRAGMA journal_mode = WAL")
    await db.executescript(SPEC_SCHEMA)
    await db.commit()
    return db


class SeedCollector:
    """The spec's collector, literally: every ``collect()`` inserts and commits."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def collect(self, **fields: Any) -> SeedEvent:
        event = SeedEvent(**fields)
        await self.db.execute(INSERT, event.to_row())
        await self.db.commit()
        return event

    async def query(
        self,
        *,
        system: str | None = None,
        severity: str | None = None,
        since: datetime | None = None,
        tags: list[str] | None = None,
        limit: int = 100,
    ) -> list[SeedEvent]:
        """The spec's query builder: conditions joined with AND, newest first."""
        where, params = [], []
        if system is not None:
            where.append("system = ?")
            params.append(system)
        if severity is not None:
            where.append("severity = ?")
            params.append(severity)
        if since is not None:
            where.append("timestamp >= ?")
            params.append(since.isoformat())
        for tag in tags or []:
            where.append("tags LIKE ?")
            params.append(f'%"{tag}"%')
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY timestamp DESC LIMIT ?"
        async with self.db.execute(sql, [*params, limit]) as cursor:
            rows = await cursor.fetchall()
        return [SeedEvent.from_row(row) for row in rows]
