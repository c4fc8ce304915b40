"""``eventcollector issues`` through the real console script."""

from __future__ import annotations

import json
from pathlib import Path

from _common import cli


def _emit(db: Path, title: str, severity: str = "error") -> None:
    done = cli("emit", "--db", str(db), "-s", "akosha", "-t", "error.occurred",
               "--severity", severity, "--title", title)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_list_show_resolve_ignore(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    for i in range(3):
        _emit(db, f"Timeout after {i + 1}2ms")
    _emit(db, "Disk full", severity="critical")
    _emit(db, "All fine", severity="info")
    listed = cli("issues", "list", "--db", str(db), "--format", "jsonl", "--order-by", "count")
    assert listed.returncode == 0, listed.stderr
    issues = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(i["title"], i["count"]) for i in issues] == [
        ("Timeout after 12ms", 3),
        ("Disk full", 1),
    ]
    timeout, disk = issues[0]["id"], issues[1]["id"]

    shown = cli(
        "issues", "show", str(timeout), "--db", str(db), "--events", "2", "--format", "json"
    )
    doc = json.loads(shown.stdout)
    assert doc["status"] == "unresolved"
    assert len(doc["events"]) == 2

    resolved = cli("issues", "resolve", str(timeout), "--db", str(db), "--format", "json")
    assert json.loads(resolved.stdout)["status"] == "resolved"
    ignored = cli("issues", "ignore", str(disk), "--db", str(db), "--format", "json")
    assert json.loads(ignored.stdout)["status"] == "ignored"
    _emit(db, "Timeout after 99ms")
    back = cli("issues", "list", "--db", str(db), "--status", "unresolved", "--format", "json")
    (again,) = json.loads(back.stdout)["issues"]
    assert (again["id"], again["regressed"], again["count"]) == (timeout, True, 4)

    table = cli("issues", "list", "--db", str(db), "--format", "table", env={"COLUMNS": "160"})
    assert table.returncode == 0
    assert "Timeout after 12ms" in table.stdout


def test_bad_input_is_one_line_and_non_zero(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    _emit(db, "Boom")
    missing = cli("issues", "show", "12345", "--db", str(db))
    assert missing.returncode == 1
    assert missing.stderr == "error: id: no issue 12345\n"
    bad = cli("issues", "list", "--db", str(db), "--status", "closed")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: status:")
    assert len(bad.stderr.splitlines()) == 1
    mute = cli("issues", "mute", "1", "--db", str(db), "--until", "2000-01-01T00:00:00Z")
    assert mute.returncode == 2
    assert mute.stderr.startswith("error: until:")
