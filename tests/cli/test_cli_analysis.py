"""trace, stats, report, analyze-errors, patterns and health, each run for real."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _common import make_event, seed

from .conftest import Runner, assert_error

T0 = datetime.now(UTC) - timedelta(minutes=10)


@pytest.fixture
def seeded(db: Path) -> Path:
    seed(
        db,
        [
            make_event(id="a", title="Workflow started", correlation_id="wf-9", timestamp=T0),
            make_event(
                id="b",
                system="crackerjack",
                event_type="test.failed",
                severity="error",
                title="Test 17 failed",
                correlation_id="wf-9",
                source_component="runner",
                duration_ms=1500,
                timestamp=T0 + timedelta(seconds=2),
            ),
            make_event(
                id="c",
                system="crackerjack",
                event_type="test.failed",
                severity="error",
                title="Test 42 failed",
                timestamp=T0 + timedelta(seconds=3),
            ),
            make_event(
                id="d",
                event_type="workflow.completed",
                title="Workflow done",
                correlation_id="wf-9",
                duration_ms=250,
                timestamp=T0 + timedelta(seconds=5),
            ),
        ],
    )
    return db


def test_trace_timeline_and_span(ec: Runner, seeded: Path) -> None:
    table = ec("trace", "--correlation-id", "wf-9", "-f", "table")
    assert table.code == 0, table.err
    lines = table.lines()
    assert lines[0].split()[0] == "OFFSET"
    assert [line.split()[0] for line in lines[1:]] == ["+0.000s", "+2.000s", "+5.000s"]
    assert "1500ms" in table.out
    # From the first start to the end of the last event (5 s + 250 ms).
    assert "span 5.250s" in table.err
    doc = json.loads(ec("trace", "-c", "wf-9", "--format", "json").out)
    assert doc["count"] == 3
    assert doc["span_ms"] == 5250
    assert doc["systems"] == ["crackerjack", "mahavishnu"]
    assert [e["offset_ms"] for e in doc["events"]] == [0, 2000, 5000]
    assert [e["id"] for e in doc["events"]] == ["a", "b", "d"]
    assert_error(ec("trace", "-c", "unknown-id"), 1, "unknown-id")


def test_stats(ec: Runner, seeded: Path) -> None:
    doc = json.loads(ec("stats", "-f", "json").out)
    assert doc["total_events"] == 4
    assert doc["by_system"] == {"mahavishnu": 2, "crackerjack": 2}
    assert doc["by_severity"] == {"info": 2, "error": 2}
    assert doc["last_hour_count"] == 4
    table = ec("stats", "-f", "table")
    assert "total events" in table.out
    assert "crackerjack" in table.out
    flat = ec("stats", "-f", "csv").lines()
    assert flat[0] == "key,value"
    assert "total_events,4" in flat


def test_report_to_file_and_stdout(ec: Runner, seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = ec("report", "--hours", "24", "--output", str(out))
    assert result.code == 0, result.err
    assert result.out == ""
    doc = json.loads(out.read_text())
    assert doc["total_events"] == 4
    assert doc["duration_stats"]["count"] == 2
    assert json.loads(ec("report", "--hours", "1").out)["total_events"] == 4
    assert_error(ec("report", "-o", str(tmp_path / "missing-dir" / "r.json")), 1, "missing-dir")
    assert_error(ec("report", "--hours", "0"), 2, "--hours")


def test_analyze_errors_groups_by_masked_title(ec: Runner, seeded: Path) -> None:
    doc = json.loads(ec("analyze-errors", "--hours", "1").out)
    assert doc["total_errors"] == 2
    assert doc["errors_by_component"] == {"runner": 1}
    assert doc["error_groups"][0]["title"] == "Test <*> failed"
    assert doc["error_groups"][0]["count"] == 2
    table = ec("analyze-errors", "-f", "table")
    assert "error groups" in table.out
    assert "Test <*> failed" in table.out


def test_patterns(ec: Runner, seeded: Path) -> None:
    doc = json.loads(ec("patterns", "--days", "7").out)
    assert doc["total_events"] == 4
    assert sum(doc["hourly_distribution"].values()) == 4
    assert doc["systems"] == {"mahavishnu": 2, "crackerjack": 2}


def test_health_exit_codes(ec: Runner, seeded: Path, tmp_path: Path) -> None:
    healthy = ec("health")
    assert healthy.code == 0, healthy.err
    assert json.loads(healthy.out)["status"] == "healthy"
    quiet = ec("health", "--quiet")
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"\x00garbage" * 1000)
    sick = ec("health", "--db", str(foreign))
    assert_error(sick, 1, "health", "foreign.db")
    assert json.loads(sick.out)["status"] == "unhealthy"
    assert_error(ec("health", "-q", "--db", str(tmp_path / "absent.db")), 1, "does not exist")
