"""Alert rules, states, history, silences and the issue-trigger queue in SQLite
(``AlertStore``).

Writes are writer jobs (``tx``), reads run on the reader threads (``conn``); the
lease is an exclusive ``flock`` on ``<db>-alerts.lock``, held by the open file
until the process closes it or dies, so of several servers on one file exactly one
evaluates.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState
from eventcollector.alert_silences import MAX_SILENCES, AlertSilence
from eventcollector.issues import IssueChange
from eventcollector.model import format_timestamp
from eventcollector.storage import _alert_rows as rows
from eventcollector.storage.sqlite._writer import Transaction

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

_PRUNE = (
    "DELETE FROM alert_history WHERE rule = ? AND id <="
    " (SELECT id FROM alert_history WHERE rule = ? ORDER BY id DESC LIMIT 1 OFFSET ?)"
)


def list_rules(conn: sqlite3.Connection) -> list[tuple[AlertRule, str]]:
    found = conn.execute("SELECT definition, source FROM alert_rules ORDER BY name").fetchall()
    return [rows.rule_from_row(text, source) for text, source in found]


def put_rule(tx: Transaction, rule: AlertRule, source: str) -> bool:
    conn = tx.conn
    new = conn.execute("SELECT 1 FROM alert_rules WHERE name = ?", (rule.name,)).fetchone() is None
    conn.execute(
        "INSERT INTO alert_rules(name, definition, source, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET definition = excluded.definition,"
        " source = excluded.source, updated_at = excluded.updated_at",
        (rule.name, rows.definition(rule), source, format_timestamp(datetime.now(UTC))),
    )
    return new


def delete_rule(tx: Transaction, name: str) -> bool:
    conn = tx.conn
    gone = conn.execute("DELETE FROM alert_rules WHERE name = ?", (name,)).rowcount > 0
    conn.execute("DELETE FROM alert_states WHERE rule = ?", (name,))
    conn.execute("DELETE FROM alert_history WHERE rule = ?", (name,))
    return gone


def states(conn: sqlite3.Connection, rule: str | None) -> list[AlertState]:
    where, params = ("", ()) if rule is None else (" WHERE rule = ?", (rule,))
    found = conn.execute(
        f"SELECT {rows.STATE_COLUMNS} FROM alert_states{where} ORDER BY rule, grp", params
    ).fetchall()
    return [rows.state_from_row(r) for r in found]


def save(tx: Transaction, states: Sequence[AlertState], records: Sequence[AlertRecord]) -> None:
    conn = tx.conn
    conn.executemany(
        f"INSERT OR REPLACE INTO alert_states({rows.STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [rows.state_row(s, text=True) for s in states],
    )
    conn.executemany(
        f"INSERT INTO alert_history({rows.RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [rows.record_row(r, text=True) for r in records],
    )
    for rule in {r.rule for r in records}:
        conn.execute(_PRUNE, (rule, rule, rows.HISTORY_KEPT))


def history(conn: sqlite3.Connection, rule: str, limit: int) -> list[AlertRecord]:
    found = conn.execute(
        f"SELECT {rows.RECORD_COLUMNS} FROM alert_history WHERE rule = ? ORDER BY id DESC LIMIT ?",
        (rule, limit),
    ).fetchall()
    return [rows.record_from_row(r) for r in found]


def push_triggers(tx: Transaction, changes: Sequence[IssueChange]) -> None:
    tx.conn.executemany(
        "INSERT INTO alert_triggers(kind, issue_id, fingerprint) VALUES (?, ?, ?)",
        [(c.kind, c.issue_id, c.fingerprint) for c in changes],
    )


def take_triggers(tx: Transaction) -> list[IssueChange]:
    found = tx.conn.execute(
        "DELETE FROM alert_triggers RETURNING id, kind, issue_id, fingerprint"
    ).fetchall()
    return [IssueChange(kind, issue_id, fp) for _, kind, issue_id, fp in sorted(found)]


def silences(conn: sqlite3.Connection, now: datetime) -> list[AlertSilence]:
    found = conn.execute(
        f"SELECT id, {rows.SILENCE_COLUMNS} FROM alert_silences WHERE until > ? ORDER BY id",
        (format_timestamp(now),),
    ).fetchall()
    return [rows.silence_from_row(r) for r in found]


def add_silence(tx: Transaction, silence: AlertSilence, now: datetime) -> AlertSilence:
    conn = tx.conn
    conn.execute("DELETE FROM alert_silences WHERE until <= ?", (format_timestamp(now),))
    if conn.execute("SELECT count(*) FROM alert_silences").fetchone()[0] >= MAX_SILENCES:
        raise ValueError(f"silences: at most {MAX_SILENCES} in force; end some first")
    (silence_id,) = conn.execute(
        f"INSERT INTO alert_silences({rows.SILENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?) RETURNING id",
        rows.silence_row(silence, now, text=True),
    ).fetchone()
    return silence.stored(int(silence_id), now)


def delete_silence(tx: Transaction, silence_id: int, now: datetime) -> bool:
    deleted = tx.conn.execute(
        "DELETE FROM alert_silences WHERE id = ? AND until > ?",
        (silence_id, format_timestamp(now)),
    )
    return deleted.rowcount > 0


class Lease:
    """The evaluator's lease: an exclusive lock on a file beside the database."""

    def __init__(self, db_path: str) -> None:
        self.path = db_path + "-alerts.lock"
        self._fd: int | None = None

    def hold(self) -> bool:
        """True while this process holds the lock (taking it if it is free)."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
