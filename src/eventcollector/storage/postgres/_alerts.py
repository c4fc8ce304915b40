"""Alert rules, states, history, silences and the issue-trigger queue in PostgreSQL
(``AlertStore``).

Every server queues the issues it creates or regresses (``alert_triggers``); the one
holding the lease evaluates the rules and empties the queue. The lease is a
session-level advisory lock held by one dedicated connection (``Lease``): it lasts
as long as that connection, so when its server dies PostgreSQL releases it and the
next server to ask takes over.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState
from eventcollector.alert_silences import MAX_SILENCES, AlertSilence
from eventcollector.issues import IssueChange
from eventcollector.storage import _alert_rows as rows
from eventcollector.storage.postgres._schema import lock_key

__all__ = [
    "Lease",
    "add_silence",
    "delete_rule",
    "delete_silence",
    "history",
    "list_rules",
    "push_triggers",
    "put_rule",
    "save",
    "silences",
    "states",
    "take_triggers",
]

log = logging.getLogger("eventcollector.storage.postgres")

_PRUNE = (
    "DELETE FROM alert_history WHERE rule = $1 AND id <="
    " (SELECT id FROM alert_history WHERE rule = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)"
)
#: Seconds a lease check may take before the connection counts as lost.
_CHECK_TIMEOUT = 5.0


async def list_rules(conn: Any) -> list[tuple[AlertRule, str]]:
    found = await conn.fetch("SELECT definition::text, source FROM alert_rules ORDER BY name")
    return [rows.rule_from_row(r[0], r[1]) for r in found]


async def put_rule(conn: Any, rule: AlertRule, source: str) -> bool:
    inserted: bool = await conn.fetchval(
        "INSERT INTO alert_rules(name, definition, source) VALUES ($1, $2::jsonb, $3)"
        " ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,"
        " source = excluded.source, updated_at = now()"
        " RETURNING xmax = 0",
        rule.name,
        rows.definition(rule),
        source,
    )
    return inserted


async def delete_rule(conn: Any, name: str) -> bool:
    async with conn.transaction():
        gone = await conn.execute("DELETE FROM alert_rules WHERE name = $1", name)
        await conn.execute("DELETE FROM alert_states WHERE rule = $1", name)
        await conn.execute("DELETE FROM alert_history WHERE rule = $1", name)
    return bool(gone != "DELETE 0")


async def states(conn: Any, rule: str | None) -> list[AlertState]:
    where, params = ("", ()) if rule is None else (" WHERE rule = $1", (rule,))
    found = await conn.fetch(
        f"SELECT {rows.STATE_COLUMNS} FROM alert_states{where} ORDER BY rule, grp", *params
    )
    return [rows.state_from_row(tuple(r)) for r in found]


async def save(conn: Any, states: Sequence[AlertState], records: Sequence[AlertRecord]) -> None:
    async with conn.transaction():
        await conn.executemany(
            f"INSERT INTO alert_states({rows.STATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (rule, grp) DO UPDATE SET state = excluded.state,"
            " since = excluded.since, value = excluded.value, evaluated = excluded.evaluated,"
            " notified = excluded.notified",
            [rows.state_row(s, text=False) for s in states],
        )
        await conn.executemany(
            f"INSERT INTO alert_history({rows.RECORD_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
            [rows.record_row(r, text=False) for r in records],
        )
        for rule in {r.rule for r in records}:
            await conn.execute(_PRUNE, rule, rows.HISTORY_KEPT)


async def history(conn: Any, rule: str, limit: int) -> list[AlertRecord]:
    found = await conn.fetch(
        "SELECT rule, grp, at, kind, state, value, target, error, sample_ids::text"
        " FROM alert_history WHERE rule = $1 ORDER BY id DESC LIMIT $2",
        rule,
        limit,
    )
    return [rows.record_from_row(tuple(r)) for r in found]


async def push_triggers(conn: Any, changes: Sequence[IssueChange]) -> None:
    await conn.executemany(
        "INSERT INTO alert_triggers(kind, issue_id, fingerprint) VALUES ($1, $2, $3)",
        [(c.kind, c.issue_id, c.fingerprint) for c in changes],
    )


async def take_triggers(conn: Any) -> list[IssueChange]:
    found = await conn.fetch("DELETE FROM alert_triggers RETURNING id, kind, issue_id, fingerprint")
    return [IssueChange(r[1], r[2], r[3]) for r in sorted(found, key=lambda r: r[0])]


async def silences(conn: Any, now: datetime) -> list[AlertSilence]:
    found = await conn.fetch(
        f"SELECT id, {rows.SILENCE_COLUMNS} FROM alert_silences WHERE until > $1 ORDER BY id", now
    )
    return [rows.silence_from_row(tuple(r)) for r in found]


async def add_silence(conn: Any, silence: AlertSilence, now: datetime) -> AlertSilence:
    async with conn.transaction():
        await conn.execute("DELETE FROM alert_silences WHERE until <= $1", now)
        if await conn.fetchval("SELECT count(*) FROM alert_silences") >= MAX_SILENCES:
            raise ValueError(f"silences: at most {MAX_SILENCES} in force; end some first")
        silence_id = await conn.fetchval(
            f"INSERT INTO alert_silences({rows.SILENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING id",
            *rows.silence_row(silence, now, text=False),
        )
    return silence.stored(int(silence_id), now)


async def delete_silence(conn: Any, silence_id: int, now: datetime) -> bool:
    gone = await conn.execute(
        "DELETE FROM alert_silences WHERE id = $1 AND until > $2", silence_id, now
    )
    return bool(gone != "DELETE 0")


class Lease:
    """The evaluator's lease: ``pg_try_advisory_lock`` on a connection of its own (kept
    between tries, so a waiting server does not reconnect every round)."""

    def __init__(self, dsn: str, server_settings: dict[str, str], schema: str) -> None:
        self._dsn = dsn
        self._settings = server_settings
        self._key = lock_key(schema, "alerts")
        self._conn: Any = None
        self._held = False

    async def hold(self) -> bool:
        """True while this instance holds the lock; takes it when it is free."""
        try:
            if self._conn is None:
                self._conn = await asyncpg.connect(
                    self._dsn, server_settings=self._settings, timeout=_CHECK_TIMEOUT
                )
            if self._held:
                await self._conn.fetchval("SELECT 1", timeout=_CHECK_TIMEOUT)
            else:
                self._held = bool(
                    await self._conn.fetchval(
                        "SELECT pg_try_advisory_lock(hashtext($1))",
                        self._key,
                        timeout=_CHECK_TIMEOUT,
                    )
                )
        except Exception as exc:  # the connection died, and with it any lock it held
            log.warning("alert lease: %s", exc)
            await self.release()
        return self._held

    async def release(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=_CHECK_TIMEOUT)
