"""``serve --retention``: rules run by the real server, archives read back, bad rules refused.

What the server deleted (the events before minus the events after, over HTTP) is
compared with the reference (``filters.matches`` and each rule's age) and with the
archive files read back.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from _common import (
    admin,
    aged_events,
    cli,
    drop_schema,
    fresh_schema,
    make_event,
    postgres_url,
    retained_out,
    seed,
    wait_until,
    with_schema,
)
from eventcollector.retention import parse_rules

from .conftest import Server

RULES = ["severity:debug=2d", "tag:noise -severity:error=5d", "*=8d"]


def _options(rules: list[str], *more: str) -> list[str]:
    return [arg for rule in rules for arg in ("--retention", rule)] + [
        "--retention-interval", "1s", *more
    ]  # fmt: skip


def _retention(server: Server) -> dict[str, Any]:
    with server.client() as http:
        section: dict[str, Any] = http.get("/health").json()["retention"]
        return section


def _stored_ids(server: Server) -> set[str]:
    with server.client() as http:
        response = http.get("/v1/events", params={"limit": 1000})
        assert response.status_code == 200, response.text
        return {e["id"] for e in response.json()["events"]}


def _archived(directory: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for path in sorted(directory.glob("events-*.jsonl.gz"))
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]


def _days(schema: str) -> list[date]:
    """The days that have a partition in ``schema``, oldest first."""
    rows = asyncio.run(
        admin(postgres_url(), "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    )
    names = [r["tablename"] for r in rows if re.fullmatch(r"events_\d{8}", r["tablename"])]
    return sorted(datetime.strptime(n[7:], "%Y%m%d").date() for n in names)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """(the --db target, the PostgreSQL schema or None) of an empty store."""
    if request.param == "sqlite":
        yield str(tmp_path / "server" / "events.db"), None
        return
    url, schema = postgres_url(), fresh_schema("ecret_")
    yield with_schema(url, schema), schema
    asyncio.run(drop_schema(url, schema))


def test_rules_archive_then_delete_what_the_reference_says(
    store: tuple[str, str | None], tmp_path: Path
) -> None:
    target, schema = store
    (tmp_path / "server").mkdir()
    now = datetime.now(UTC)
    events = aged_events(now)
    seed(target, events)
    archive = tmp_path / "archive"  # created by serve
    server = Server(
        tmp_path / "server", "--db", target, *_options(RULES, "--archive-dir", str(archive))
    )
    try:
        wait_until(lambda: _retention(server)["runs"] >= 1, timeout=20)
        expected = retained_out(events, parse_rules(RULES), now)
        assert 0 < len(expected) < len(events)
        section = _retention(server)
        assert section["last_error"] is None
        assert [r["rule"] for r in section["rules"]] == RULES
        assert section["archive_dir"] == str(archive)
        assert section["archived"] == len(expected)
        assert sum(r["deleted"] for r in section["rules"]) == len(expected)

        archived = _archived(archive)
        deleted = {e.id for e in events} - _stored_ids(server)
        assert {e["id"] for e in archived} == deleted == expected
        by_id = {e.id: e.to_dict() for e in events}
        assert all(e == by_id[e["id"]] for e in archived)
        # New events are kept, and a later run archives nothing twice.
        with server.client() as http:
            fresh = make_event(severity="debug").to_dict()
            fresh.pop("timestamp")
            assert http.post("/v1/events", json=fresh).status_code == 200
        runs = _retention(server)["runs"]
        wait_until(lambda: _retention(server)["runs"] >= runs + 2, timeout=20)
        assert fresh["id"] in _stored_ids(server)
        assert len(_archived(archive)) == len(expected)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
    if schema is not None:  # the past days the rules emptied are dropped, not left empty
        oldest_kept = min(e.timestamp for e in events if e.id not in expected).date()
        assert _days(schema)[0] == oldest_kept


@pytest.mark.postgres
def test_postgres_drops_whole_days_for_a_rule_on_every_event(tmp_path: Path) -> None:
    url, schema = postgres_url(), fresh_schema("ecret_")
    target = with_schema(url, schema)
    now = datetime.now(UTC)
    events = aged_events(now)
    seed(target, events)
    (tmp_path / "server").mkdir()
    server = Server(tmp_path / "server", "--db", target, *_options(["*=3d"]))
    try:
        wait_until(lambda: _retention(server)["runs"] >= 1, timeout=20)
        expected = retained_out(events, parse_rules(["*=3d"]), now)
        assert {e.id for e in events} - _stored_ids(server) == expected
        assert _retention(server)["rules"][0]["deleted"] == len(expected)
        # Every day wholly before the cutoff is gone; the cutoff's own day is trimmed.
        assert _days(schema)[0] == (now - timedelta(days=3)).date()
    finally:
        log = server.stop()
        asyncio.run(drop_schema(url, schema))
    assert "Traceback" not in log, log


def test_an_archive_failure_deletes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "server"
    directory.mkdir()
    archive = tmp_path / "archive"
    server = Server(directory, *_options(["*=1d"], "--archive-dir", str(archive)))
    try:
        wait_until(lambda: _retention(server)["runs"] >= 1, timeout=20)
        archive.rmdir()
        archive.write_text("in the way")  # archiving now fails: no directory to write in
        now = datetime.now(UTC)
        events = aged_events(now)
        with server.client() as http:
            body = b"\n".join(e.to_json() for e in events)
            headers = {"Content-Type": "application/x-ndjson"}
            assert http.post("/v1/events", content=body, headers=headers).status_code == 200
        wait_until(lambda: _retention(server)["last_error"] is not None, timeout=20)
        assert _stored_ids(server) == {e.id for e in events}
        archive.unlink()
        archive.mkdir()
        wait_until(lambda: _retention(server)["archived"] > 0, timeout=20)
        assert _retention(server)["last_error"] is None
        deleted = {e.id for e in events} - _stored_ids(server)
        assert {e["id"] for e in _archived(archive)} == deleted
        assert deleted == retained_out(events, parse_rules(["*=1d"]), now)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
    shutil.rmtree(archive, ignore_errors=True)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--retention", "*=30d", "--retention", "severity:=2d"],
            "error: retention: rule 'severity:=2d': expected a value after 'severity:' "
            "at column 10",
        ),
        (
            ["--retention", "severity:debug"],
            "error: retention: rule 'severity:debug': expected FILTER=AGE, "
            "such as 'severity:debug=2d' or '*=30d'",
        ),
        (
            ["--retention", "*=30"],
            "error: retention: rule '*=30': age: expected a duration such as 90s, 30m, 2h, "
            "7d or 1w, got '30'",
        ),
        (
            ["--retention", "*=30d", "--retention-interval", "often"],
            "error: retention-interval: expected a duration such as 90s, 30m, 2h, 7d or 1w, "
            "got 'often'",
        ),
        (
            ["--archive-dir", "somewhere"],
            "error: archive-dir: archives what --retention rules delete; give a rule",
        ),
    ],
)
def test_a_bad_rule_refuses_to_start(tmp_path: Path, args: list[str], line: str) -> None:
    result = cli("serve", "--port", "9", "--db", str(tmp_path / "events.db"), *args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]
    assert not (tmp_path / "events.db").exists()
