"""export, import and cleanup: exact round trips, idempotency, gzip, archives."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _common import make_event, seed

from .conftest import Runner, assert_error

NOW = datetime.now(UTC)


@pytest.fixture
def seeded(db: Path) -> Path:
    same_instant = NOW - timedelta(hours=2)
    seed(
        db,
        [
            make_event(
                title=f"event {i} \u00e9\u4e2d \n\x1b[1m",
                description="multi\nline",
                system=["mahavishnu", "akosha"][i % 2],
                severity=["info", "error", "debug"][i % 3],
                data={"i": i, "nested": {"list": [1, 2.5, None, True]}, "s": "\u2028"},
                metadata={"host": "h1"},
                tags=["t1", f"t{i}"],
                correlation_id=f"c{i % 3}",
                source_component="comp" if i % 2 else None,
                duration_ms=i if i % 4 else None,
                # Several events share one timestamp: ties keep insertion order.
                timestamp=same_instant if i < 5 else NOW - timedelta(minutes=i),
            )
            for i in range(40)
        ],
    )
    return db


def test_export_import_round_trip_is_exact_and_idempotent(
    ec: Runner, seeded: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first.jsonl"
    assert ec("export", "-o", str(first)).code == 0
    lines = first.read_bytes().splitlines()  # bytes: U+2028 in the data is no line break
    assert len(lines) == 40
    stamps = [json.loads(line)["timestamp"] for line in lines]
    assert stamps == sorted(stamps)  # oldest first

    copy = tmp_path / "copy.db"
    imported = ec("import", str(first), "--db", str(copy), "-f", "json")
    assert imported.code == 0, imported.err
    assert json.loads(imported.out) == {
        "new": 40, "duplicates": 0, "rejected": 0, "rejected_lines": []
    }  # fmt: skip
    again = ec("import", str(first), "--db", str(copy), "-f", "json")
    assert json.loads(again.out)["new"] == 0
    assert json.loads(again.out)["duplicates"] == 40

    second = tmp_path / "second.jsonl"
    assert ec("export", "-o", str(second), "--db", str(copy)).code == 0
    assert second.read_bytes() == first.read_bytes()


def test_gzip_and_stdin_stdout(ec: Runner, seeded: Path, tmp_path: Path) -> None:
    packed = tmp_path / "all.jsonl.gz"
    result = ec("export", "-o", str(packed), "--severity", "error")
    assert result.code == 0, result.err
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    from_gzip = gzip.decompress(packed.read_bytes())
    assert len(from_gzip.splitlines()) == 13
    to_stdout = ec("export", "severity:error")
    assert to_stdout.out.encode() == from_gzip

    other = tmp_path / "other.db"
    piped = ec("import", "-", "--db", str(other), "-f", "jsonl", input=to_stdout.out)
    assert json.loads(piped.out)["new"] == 13
    unpacked = ec("import", str(packed), "--db", str(other), "-f", "jsonl")
    assert json.loads(unpacked.out)["duplicates"] == 13


def test_import_reports_rejected_lines(ec: Runner, tmp_path: Path) -> None:
    good = make_event(id="good-1").to_json().decode()
    source = tmp_path / "mixed.jsonl"
    source.write_text(
        "\n".join(
            [
                good,
                "not json",
                json.dumps({"system": "x", "event_type": "y", "title": "t", "severity": "loud"}),
                "",
                json.dumps({"system": "x", "event_type": "y", "title": "t", "colour": "red"}),
                json.dumps({"system": "x", "event_type": "y", "title": "fine"}),
            ]
        )
    )
    result = ec("import", str(source), "-f", "json")
    assert result.code == 1
    assert json.loads(result.out)["new"] == 2
    assert json.loads(result.out)["rejected_lines"] == [2, 3, 5]
    err = result.err.splitlines()
    assert err[0].startswith("line 2: not JSON")
    assert err[1].startswith("line 3: severity: unknown severity 'loud'")
    assert err[2] == "line 5: colour: unknown field"
    assert err[3] == "error: import: 3 lines rejected"
    assert "Traceback" not in result.err
    assert_error(ec("import", str(tmp_path / "absent.jsonl")), 2, "absent.jsonl")


def test_export_to_an_unwritable_place(ec: Runner, seeded: Path, tmp_path: Path) -> None:
    assert_error(ec("export", "-o", str(tmp_path / "no" / "such" / "dir.jsonl")), 1, "no/such")
    assert list(tmp_path.glob("*.tmp")) == []


def test_cleanup_archives_then_deletes(ec: Runner, db: Path, tmp_path: Path) -> None:
    old = [make_event(title=f"old {i}", timestamp=NOW - timedelta(days=40 + i)) for i in range(3)]
    seed(db, [*old, make_event(id="recent", title="recent")])
    dry = ec("cleanup", "--retention-days", "30", "--dry-run")
    assert dry.code == 0
    assert "would delete 3 events" in dry.err
    archive = tmp_path / "archive.jsonl.gz"
    result = ec("cleanup", "--retention-days", "30", "--archive", str(archive))
    assert result.code == 0, result.err
    assert "archived 3 events" in result.err
    assert "deleted 3 events" in result.err
    archived = [json.loads(line) for line in gzip.decompress(archive.read_bytes()).splitlines()]
    assert sorted(e["id"] for e in archived) == sorted(e.id for e in old)
    remaining = [json.loads(line)["id"] for line in ec("query").lines()]
    assert remaining == ["recent"]
    # An existing archive is never overwritten.
    before = archive.read_bytes()
    assert_error(ec("cleanup", "--retention-days", "1", "--archive", str(archive)), 2, "exists")
    assert archive.read_bytes() == before
    assert_error(ec("cleanup", "--retention-days", "-1"), 2, "--retention-days")
