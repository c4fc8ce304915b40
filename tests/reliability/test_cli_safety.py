"""Properties 13 and 16 (second half): forged lines, and retention cleanup killed midway.

13. CR/LF and ANSI escape sequences in titles (and in refused input) cannot forge a
    line in a JSONL export, in the CLI table, or in the server's own log.
16. ``eventcollector cleanup`` killed with SIGKILL while it deletes, then run again,
    leaves nothing older than the cutoff and everything newer, and an intact file;
    on PostgreSQL too (whole days dropped, the cutoff's day trimmed in chunks).
    (Retries only for retryable failures and Retry-After: tests/client/test_retry.py
    and tests/client/test_delivery.py.)
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import httpx
import orjson
import pytest

from _common import admin, cli, event, with_schema
from eventcollector import Event
from eventcollector.model import format_timestamp
from eventcollector.storage.postgres import PostgresStorage
from eventcollector.storage.sqlite import SQLiteStorage

from ._support import Server

FORGED = "FORGED"
HOSTILE_TITLES = [
    f"ok\r\n{FORGED} line one",
    f"ok\n{FORGED} line two",
    f"ok\r{FORGED} carriage return",
    f"\x1b[2K\x1b[1G{FORGED} erase and rewrite",
    f"\x1b]0;{FORGED} window title\x07",
    f"ok\u2028{FORGED} unicode line separator",
    f"ok\x85{FORGED} next line",
    f"\x1b[31mred\x1b[0m {FORGED}",
]


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The console script's exit code and stdout, without newline translation."""
    done = subprocess.run(
        [sys.executable, "-m", "eventcollector", *args],
        capture_output=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return done.returncode, done.stdout.decode()


def _no_forged_line(text: str) -> None:
    assert "\x1b" not in text
    assert "\r" not in text
    for line in text.split("\n"):  # see the export test for U+2028 and U+0085
        assert not line.lstrip(" │|").startswith(FORGED), line


def _seed(db: Path) -> list[str]:
    store = SQLiteStorage(db)
    store.open_sync()
    try:
        events = [
            Event.create(system="deployer", event_type="test.run", title=t, description=t)
            for t in HOSTILE_TITLES
        ]
        store.append_sync(events)
        return [e.id for e in events]
    finally:
        store.close_sync()


def test_jsonl_export_and_cli_table_cannot_be_forged(tmp_path: Path) -> None:
    db = tmp_path / "forge.db"
    ids = _seed(db)
    code, out = _run("export", "--db", str(db), "-o", "-")
    assert code == 0
    # JSON Lines are separated by "\n" only; U+2028 and U+0085 stay raw inside a JSON
    # string (valid JSON), so a reader must not split at them (str.splitlines does).
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == len(HOSTILE_TITLES)
    assert {orjson.loads(line)["title"] for line in lines} == set(HOSTILE_TITLES)
    _no_forged_line(out)
    for fmt in ("table", "jsonl"):
        code, out = _run("query", "--db", str(db), "--format", fmt, "--limit", "100")
        assert code == 0
        _no_forged_line(out)
        if fmt == "jsonl":
            assert len(out.rstrip("\n").split("\n")) == len(ids)
    # On a terminal (colour on) the table still escapes what the titles carry.
    code, out = _run("query", "--db", str(db), "--format", "table", env={"FORCE_COLOR": "1"})
    assert code == 0
    assert FORGED in out
    for line in out.split("\n"):
        assert not line.startswith(FORGED)


def test_csv_output_keeps_one_row_per_event(tmp_path: Path) -> None:
    db = tmp_path / "forge.db"
    _seed(db)
    code, out = _run("query", "--db", str(db), "--format", "csv", "--limit", "100")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert {row["title"] for row in rows} == set(HOSTILE_TITLES)


def test_server_log_cannot_be_forged(tmp_path: Path) -> None:
    server = Server(tmp_path, "--rate-limit", "0", "--access-log", "--log-level", "info")
    try:
        with server.client() as c:
            for title in HOSTILE_TITLES:
                assert c.post("/v1/events", content=orjson.dumps(event(title=title))).is_success
                # Refused input echoes the value in errors (response only) ...
                r = c.post("/v1/events", content=orjson.dumps(event(severity=title)))
                assert r.status_code == 400
                r = c.get("/v1/events", params={"system": title})
                assert r.status_code == 400
            # ... and hostile paths and headers reach the access log, percent-encoded.
            for path in ("/v1/events/%0D%0AFORGED%20path", "/v1/%1B%5B31mFORGED"):
                assert c.get(path).status_code == 404
            r = c.get("/health", headers={"User-Agent": "x\x1b[2KFORGED"})
            assert r.status_code in (200, 400)  # uvicorn refuses control bytes in headers
        with httpx.Client(base_url=server.url) as raw:  # a title reaching the server log
            raw.post("/v1/admin/cleanup", content=b'{"retention_days": "\\r\\nFORGED"}')
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
    _no_forged_line(log)


# -- retention cleanup killed midway ----------------------------------------------

OLD = 50_000
NEW = 2_000


def _old_count(db: Path, cutoff: str) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM events WHERE timestamp < ?", (cutoff,))
                   .fetchone()[0])  # fmt: skip
    finally:
        conn.close()


def test_cleanup_killed_midway_and_rerun(tmp_path: Path) -> None:
    db = tmp_path / "retention.db"
    now = datetime.now(UTC)
    store = SQLiteStorage(db)
    store.open_sync()
    new_ids = []
    try:
        for b in range(0, OLD, 5_000):
            store.append_sync([
                Event.create(system="deployer", event_type="test.run", title=f"old {i}",
                             timestamp=now - timedelta(days=40, seconds=i), tags=["old"])
                for i in range(b, b + 5_000)
            ])  # fmt: skip
        fresh = [
            Event.create(system="deployer", event_type="test.run", title=f"new {i}",
                         timestamp=now - timedelta(days=29, seconds=-i), tags=["new"])
            for i in range(NEW)
        ]  # fmt: skip
        store.append_sync(fresh)
        new_ids = [e.id for e in fresh]
    finally:
        store.close_sync()
    cutoff = format_timestamp(now - timedelta(days=30))
    command = [sys.executable, "-m", "eventcollector", "cleanup", "--retention-days", "30"]
    command += ["--db", str(db)]
    remaining = OLD
    kills = 0
    while kills < 3:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        # Kill as soon as the delete has visibly started (a chunk is committed).
        while (now_left := _old_count(db, cutoff)) >= remaining and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        if proc.poll() is not None:
            break  # it finished before we caught it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        kills += 1
        left = _old_count(db, cutoff)
        assert 0 < left <= now_left < remaining  # midway: some deleted, some not
        remaining = left
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("SELECT count(*) FROM events WHERE timestamp >= ?",
                                (cutoff,)).fetchone()[0] == NEW  # fmt: skip
        finally:
            conn.close()
    assert kills >= 1
    done = cli("cleanup", "--retention-days", "30", "--db", str(db), timeout=120)
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM events WHERE timestamp < ?",
                            (cutoff,)).fetchone()[0] == 0  # fmt: skip
        stored = {row[0] for row in conn.execute("SELECT id FROM events")}
        # Side tables follow (tags, rollups): counts agree with the events left.
        assert conn.execute("SELECT count(*) FROM event_tags").fetchone()[0] == NEW
        assert conn.execute("SELECT sum(n) FROM event_counts").fetchone()[0] == NEW
    finally:
        conn.close()
    assert stored == set(new_ids)


# PostgreSQL: OLD_DAYS whole days before the cutoff's day (dropped partition by partition),
# BOUNDARY_OLD events on the cutoff's day before it (deleted 10,000 per transaction) and
# NEW_PER_DAY events on that day after the cutoff and on each of the NEW_DAYS days after.
OLD_DAYS, OLD_PER_DAY, BOUNDARY_OLD, NEW_PER_DAY, NEW_DAYS = 6, 5_000, 35_000, 1_000, 3


async def _fill_postgres(url: str, cutoff: datetime) -> tuple[set[str], set[str]]:
    """Old and new events around ``cutoff`` (noon of its day); (old ids, new ids)."""
    day = cutoff - timedelta(hours=12)
    hour = timedelta(hours=1)
    batches: list[tuple[bool, list[datetime]]] = []
    for d in range(OLD_DAYS, 0, -1):  # spread over each whole day before the cutoff's
        start = day - timedelta(days=d)
        batches.append((True, [start + i * (timedelta(days=1) / OLD_PER_DAY)
                               for i in range(OLD_PER_DAY)]))  # fmt: skip
    # The cutoff's day: 00:00-11:00 old, 13:00-24:00 new (an hour of margin either side
    # for the seconds between this cutoff and the ones the cleanup runs compute).
    batches.append((True, [day + i * (11 * hour / BOUNDARY_OLD) for i in range(BOUNDARY_OLD)]))
    for d in range(NEW_DAYS + 1):
        start = cutoff + hour if d == 0 else day + timedelta(days=d)
        span = 11 * hour if d == 0 else timedelta(days=1)
        batches.append((False, [start + i * (span / NEW_PER_DAY) for i in range(NEW_PER_DAY)]))
    old: set[str] = set()
    new: set[str] = set()
    store = PostgresStorage(url, notify=False)
    await store.open()
    try:
        for is_old, stamps in batches:
            events = [
                Event.create(system="deployer", event_type="test.run", title=f"pg {ts}",
                             timestamp=ts, tags=["old" if is_old else "new"])
                for ts in stamps
            ]  # fmt: skip
            for b in range(0, len(events), 5_000):
                assert all(await store.append(events[b : b + 5_000]))
            (old if is_old else new).update(e.id for e in events)
    finally:
        await store.close()
    return old, new


async def _postgres_state(base: str, schema: str, cutoff: datetime) -> tuple[int, set[str]]:
    """(events older than ``cutoff``, ids of the newer ones), in one snapshot, checking
    that ``event_ids`` and the hourly counts agree with ``events``."""
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

    conn = await asyncpg.connect(base, server_settings={"search_path": f'"{schema}"'})
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            old = await conn.fetchval("SELECT count(*) FROM events WHERE timestamp < $1", cutoff)
            ids = [r[0] for r in await conn.fetch("SELECT id FROM events")]
            rows = await conn.fetch("SELECT id FROM events WHERE timestamp >= $1", cutoff)
            newer = {r[0] for r in rows}
            claimed = {r[0] for r in await conn.fetch("SELECT id FROM event_ids")}
            counted = await conn.fetchval("SELECT coalesce(sum(n), 0) FROM event_counts")
            negative = await conn.fetchval("SELECT count(*) FROM event_counts WHERE n <= 0")
    finally:
        await conn.close()
    assert len(ids) == len(set(ids)) == len(claimed)  # nothing twice
    assert set(ids) == claimed  # event_ids follows the events
    assert counted == len(ids)  # so do the hourly counts
    assert negative == 0
    return int(old), newer


@pytest.mark.postgres
def test_postgres_cleanup_killed_midway_and_rerun(pg_schema: tuple[str, str]) -> None:
    base, schema = pg_schema
    url = with_schema(base, schema)
    now = datetime.now(UTC)
    # The cutoff at noon of the day 30 days ago, so that day's partition is trimmed.
    cutoff = datetime.combine((now - timedelta(days=30)).date(), clock(12), UTC)
    retention = repr((now - cutoff) / timedelta(days=1))
    old_ids, new_ids = asyncio.run(_fill_postgres(url, cutoff))
    remaining = len(old_ids)
    assert asyncio.run(_postgres_state(base, schema, cutoff)) == (remaining, new_ids)
    command = [sys.executable, "-m", "eventcollector", "cleanup", "--retention-days", retention]
    command += ["--db", url]
    kills = 0
    while kills < 3:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        # The first kill as soon as a whole day is dropped, the next ones once every whole
        # day is gone and a chunk of the cutoff's day has been deleted.
        goal = remaining if kills == 0 else min(remaining, BOUNDARY_OLD)
        while _pg_old_count(base, schema, cutoff) >= goal and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        if proc.poll() is not None:
            break  # it finished before we caught it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        kills += 1
        left, newer = asyncio.run(_postgres_state(base, schema, cutoff))
        assert newer == new_ids  # nothing newer than the cutoff touched
        assert left < remaining  # some deleted (all, if the kill came as it was exiting)
        remaining = left
        if left == 0:
            break
    assert kills >= 1
    done = cli("cleanup", "--retention-days", retention, "--db", url, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"deleted {remaining} events" in done.stdout + done.stderr, done.stderr
    assert asyncio.run(_postgres_state(base, schema, cutoff)) == (0, new_ids)
    rows = asyncio.run(admin(base, f'SELECT id FROM "{schema}".events'))
    assert {r[0] for r in rows} == new_ids  # exactly the newer events
    partitions = asyncio.run(
        admin(
            base,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = $1::regclass",
            f'"{schema}".events',
        )
    )
    oldest = min(r[0] for r in partitions)
    assert oldest == f"events_{cutoff:%Y%m%d}"  # whole days dropped, the cutoff's kept


def _pg_old_count(base: str, schema: str, cutoff: datetime) -> int:
    rows = asyncio.run(
        admin(base, f'SELECT count(*) FROM "{schema}".events WHERE timestamp < $1', cutoff)
    )
    return int(rows[0][0])
