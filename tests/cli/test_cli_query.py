"""query: filters, paging, formats, escaping, colour and error lines."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _common import make_event, seed

from .conftest import SCRIPT, Runner, assert_error

NOW = datetime.now(UTC)


@pytest.fixture
def seeded(db: Path) -> Path:
    seed(
        db,
        [
            make_event(
                id="e1",
                system="mahavishnu",
                severity="info",
                title="Workflow alpha started",
                tags=["workflow", "rag"],
                correlation_id="wf-1",
                source_component="pool",
                duration_ms=50,
                timestamp=NOW - timedelta(minutes=5),
            ),
            make_event(
                id="e2",
                system="crackerjack",
                event_type="test.failed",
                severity="error",
                title="Database timeout in tests",
                tags=["ci"],
                correlation_id="wf-1",
                duration_ms=900,
                timestamp=NOW - timedelta(hours=3),
            ),
            make_event(
                id="e3",
                system="akosha",
                event_type="insight.detected",
                severity="critical",
                title="Disk almost full",
                tags=["workflow", "prod"],
                timestamp=NOW - timedelta(days=3),
            ),
        ],
    )
    return db


def ids(result_out: str) -> list[str]:
    return [json.loads(line)["id"] for line in result_out.splitlines()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["e1", "e2", "e3"]),
        (["--system", "mahavishnu"], ["e1"]),
        (["--system", "mahavishnu,akosha"], ["e1", "e3"]),
        (["--system", "mahavishnu", "--system", "crackerjack"], ["e1", "e2"]),
        (["--event-type", "test.failed"], ["e2"]),
        (["--type", "insight.detected"], ["e3"]),
        (["--severity", "error,critical"], ["e2", "e3"]),
        (["--severity", "ERROR", "--severity", "info"], ["e1", "e2"]),
        (["--min-severity", "error"], ["e2", "e3"]),
        (["--tags", "workflow,rag"], ["e1"]),
        (["--tags", "workflow"], ["e1", "e3"]),
        (["--any-tags", "ci,prod"], ["e2", "e3"]),
        (["--correlation-id", "wf-1"], ["e1", "e2"]),
        (["--component", "pool"], ["e1"]),
        (["--search", "data"], ["e2"]),
        (["--search", "disk full"], ["e3"]),
        (["--min-duration", "100"], ["e2"]),
        (["--minutes", "30"], ["e1"]),
        (["--hours", "4"], ["e1", "e2"]),
        (["--days", "7"], ["e1", "e2", "e3"]),
        (["--since", (NOW - timedelta(hours=4)).isoformat()], ["e1", "e2"]),
        (["--until", (NOW - timedelta(hours=1)).isoformat()], ["e2", "e3"]),
        (["--limit", "2"], ["e1", "e2"]),
        (["-n", "1", "--offset", "1"], ["e2"]),
        (["--asc"], ["e3", "e2", "e1"]),
        (["--order-by", "duration_ms"], ["e2", "e1", "e3"]),
        (["--order-by", "duration_ms", "--asc"], ["e1", "e2", "e3"]),
        (["--system", "mahavishnu", "--severity", "error"], []),
    ],
)
def test_filters_and_paging(
    invoke: Runner, seeded: Path, args: list[str], expected: list[str]
) -> None:
    result = invoke("query", "-f", "jsonl", *args)
    assert result.code == 0, result.err
    assert ids(result.out) == expected


def test_default_limit_is_100(invoke: Runner, db: Path) -> None:
    seed(db, [make_event(title=f"event {i}") for i in range(120)])
    assert len(invoke("query", "-f", "jsonl").lines()) == 100


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--severity", "x"], ["--severity", "'x'", "critical"]),
        (["--since", "yesterday"], ["--since", "yesterday"]),
        (["--until", "not-a-date"], ["--until"]),
        (["--hours", "1", "--since", "2024-01-01"], ["--since"]),
        (["--order-by", "id; DROP TABLE events"], ["--order-by"]),
        (["--limit", "-1"], ["--limit"]),
        (["--system", "Bad Name"], ["--system"]),
        (["--nope"], ["--nope"]),
        (["--limit", "many"], ["--limit"]),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    invoke: Runner, seeded: Path, args: list[str], words: list[str]
) -> None:
    assert_error(invoke("query", *args), 2, *words)


def test_real_query_formats(ec: Runner, seeded: Path) -> None:
    # Not a terminal: jsonl by default, one object per line.
    default = ec("query")
    assert default.code == 0, default.err
    assert [json.loads(line)["id"] for line in default.lines()] == ["e1", "e2", "e3"]
    as_json = json.loads(ec("query", "--format", "json").out)
    assert [e["id"] for e in as_json] == ["e1", "e2", "e3"]
    assert as_json[0]["tags"] == ["workflow", "rag"]
    rows = list(csv.DictReader(io.StringIO(ec("query", "-f", "csv", "--asc").out)))
    assert rows[0].keys() >= {"id", "timestamp", "system", "severity", "title", "tags"}
    assert [r["id"] for r in rows] == ["e3", "e2", "e1"]
    assert rows[2]["tags"] == "workflow,rag"
    table = ec("query", "-f", "table")
    assert table.lines()[0].split()[:4] == ["TIME", "SEVERITY", "SYSTEM", "TYPE"]
    assert len(table.lines()) == 4
    assert "Workflow alpha started" in table.out
    assert "\x1b" not in table.out  # not a terminal: no colour
    assert table.err.strip() == "3 events"


def test_python_dash_m_runs_the_same_cli(ec: Runner, seeded: Path) -> None:
    result = ec("query", "--system", "akosha", module=True)
    assert result.code == 0, result.err
    assert ids(result.out) == ["e3"]


HOSTILE = "ok\r\nFORGED LINE\x1b[31m red \x1b]0;title\x07 [bold]markup[/bold] \u202eevil"


def test_control_characters_are_escaped_in_tables(ec: Runner, db: Path) -> None:
    seed(db, [make_event(id="h1", title=HOSTILE, description="x\ny")])
    table = ec("query", "-f", "table")
    assert table.code == 0, table.err
    assert len(table.lines()) == 2  # header + one row: CR/LF forged nothing
    assert "\x1b" not in table.out
    assert "\r" not in table.out
    assert "\\r\\nFORGED LINE\\x1b[31m" in table.out
    assert "[bold]markup[/bold]" in table.out  # shown as text, not interpreted
    assert "\\u202e" in table.out
    # Machine formats keep the exact text.
    assert json.loads(ec("query", "-f", "jsonl").out)["title"] == HOSTILE
    trace = ec("report", "--hours", "1", "-f", "table")
    assert "\x1b" not in trace.out
    assert "FORGED" in trace.out


def _on_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run on a pseudo-terminal, as a person would, and return what it printed."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [SCRIPT, *args], stdout=secondary, stderr=secondary, stdin=subprocess.DEVNULL, env=env
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(primary)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_unless_no_color(env: dict[str, str], seeded: Path, db: Path) -> None:
    seed(db, [make_event(title="evil \x1b[32mgreen\x1b[0m")])
    coloured = _on_terminal(["query"], env)
    assert "TIME" in coloured  # a terminal gets the table by default
    assert "\x1b[31m" in coloured  # the error severity is red
    assert "\\x1b[32mgreen" in coloured  # the event's own escape is shown, not obeyed
    plain = _on_terminal(["query"], {**env, "NO_COLOR": "1"})
    assert "TIME" in plain
    assert "\x1b" not in plain


def test_database_errors(ec: Runner, invoke: Runner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    assert_error(invoke("query", "--db", str(missing)), 1, "does not exist")
    assert not missing.exists()  # a read never creates a store
    foreign = tmp_path / "foreign.db"
    foreign.write_text("this is not a database at all\n" * 100)
    assert_error(ec("query", "--db", str(foreign)), 1, "foreign.db", "not an SQLite database")
    assert_error(invoke("query", "--db", str(tmp_path)), 2, "directory")


def test_db_and_url_conflict_and_unreachable_server(invoke: Runner, ec: Runner) -> None:
    assert_error(invoke("query", "--db", "x.db", "--url", "http://127.0.0.1:9"), 2, "--db")
    # A server nobody listens on: one line, exit 1 (the URL from the command line
    # wins over $EVENTCOLLECTOR_DB from the environment).
    assert_error(ec("query", "--url", "http://127.0.0.1:9"), 1)


def test_every_command_has_help_with_an_example(invoke: Runner) -> None:
    top = invoke("--help")
    assert top.code == 0
    commands = [
        "query", "count", "trace", "stats", "report", "analyze-errors", "patterns", "health",
        "tail", "emit", "export", "import", "cleanup",
    ]  # fmt: skip
    for command in commands:
        assert command in top.out
        result = invoke(command, "--help")
        assert result.code == 0, (command, result.err)
        assert "Example" in result.out, command
        assert "eventcollector " + command in result.out, command
