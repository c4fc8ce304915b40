"""The positional filter of query, count, export, tail and aggregate, and cleanup --where,
through the real console script, on a local store and with --url against the real server.

Every answer is compared with the reference semantics (``filters.matches``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _common import drop_schema, fresh_schema, make_event, postgres_url, seed, with_schema
from eventcollector import Event
from eventcollector.filters import matches, parse_filter

from .conftest import RestartableServer, Runner, assert_error

NOW = datetime.now(UTC)

FILTERS = [
    'system:mahavishnu -tag:noise "timeout"',
    "severity:>=warning data.repo:acme/*",
    "(type:test.failed OR duration:>500) -severity:debug",
    "data.n:>3 tag:*",
    # A negated field term whose first letter is a short option (-f, -s): still the filter.
    "-fingerprint:* system:mahavishnu",
    "-severity:[debug, info] -system:akosha",
]


def _events(step: timedelta = timedelta(hours=1)) -> list[Event]:
    """36 events, ``step`` apart from now back, with every shape the filters look at."""
    systems = ["mahavishnu", "crackerjack", "akosha"]
    titles = ["Request timeout", "Deploy done", "Timeout again", "All fine"]
    return [
        make_event(
            system=systems[i % 3],
            event_type=["test.failed", "workflow.started"][i % 2],
            severity=["debug", "info", "warning", "error", "critical"][i % 5],
            title=titles[i % 4],
            tags=[["noise"], ["ci"], []][i % 3 if i % 7 else 2],
            data={"repo": ["acme/web", "acme/api", "other/x"][i % 3], "n": i},
            duration_ms=i * 50,
            timestamp=NOW - i * step,
        )
        for i in range(36)
    ]


def _expected(events: list[Event], text: str, hours: float | None = None) -> set[str]:
    node = parse_filter(text, now=NOW)
    since = None if hours is None else NOW - timedelta(hours=hours)
    return {e.id for e in events if matches(node, e) and (since is None or e.timestamp >= since)}


def _ids(out: str) -> set[str]:
    return {json.loads(line)["id"] for line in out.splitlines()}


@pytest.fixture
def stored(db: Path) -> list[Event]:
    return seed(db, _events())


@pytest.mark.parametrize("text", FILTERS)
def test_query_count_export_filter_locally(ec: Runner, stored: list[Event], text: str) -> None:
    expected = _expected(stored, text)
    assert expected
    query = ec("query", text, "-n", "1000", "-f", "jsonl")
    assert query.code == 0, query.err
    assert _ids(query.out) == expected
    count = ec("count", text)
    assert (count.code, count.out) == (0, f"{len(expected)}\n")
    export = ec("export", text)
    assert export.code == 0, export.err
    assert _ids(export.out) == expected


def test_the_filter_is_anded_with_the_options(invoke: Runner, stored: list[Event]) -> None:
    text = "-severity:debug"
    within = _expected(stored, text, hours=11.5)
    crackerjack = {e.id for e in stored if e.id in within and e.system == "crackerjack"}
    result = invoke("query", text, "--hours", "11.5", "--system", "crackerjack", "-f", "jsonl")
    assert _ids(result.out) == crackerjack
    assert invoke("count", text, "--hours", "11.5").out == f"{len(within)}\n"
    exported = invoke("export", text, "--hours", "11.5", "-o", "-")
    assert _ids(exported.out) == within


def test_count_formats(invoke: Runner, ec: Runner, stored: list[Event]) -> None:
    n = len(_expected(stored, "severity:error"))
    assert json.loads(invoke("count", "severity:error", "-f", "json").out) == {"count": n}
    assert json.loads(invoke("count", "severity:error", "-f", "jsonl").out) == {"count": n}
    assert ec("count", "severity:error", "-f", "csv").out == f"count\r\n{n}\r\n"
    assert invoke("count").out == f"{len(stored)}\n"


@pytest.mark.parametrize(
    "command",
    [["query"], ["count"], ["export"], ["tail"], ["aggregate", "--by", "system"], ["facets"]],
)
@pytest.mark.parametrize("where", [[], ["--url", "http://127.0.0.1:9"]])
def test_a_bad_filter_is_one_line_naming_the_column(
    ec: Runner, stored: list[Event], command: list[str], where: list[str]
) -> None:
    result = ec(*command, "severity:", *where)
    assert_error(result, 2)
    assert result.err == "error: filter: expected a value after 'severity:' at column 10\n"


def test_a_negated_word_alone_is_told_to_go_after_the_double_dash(
    ec: Runner, stored: list[Event]
) -> None:
    """``-timeout`` could be options (-t -i ...): the error says how to write the filter."""
    assert_error(ec("count", "-timeout"), 2, "No such option", "eventcollector count -- '-word'")
    assert ec("count", "--", "-timeout").out == f"{len(_expected(stored, '-timeout'))}\n"
    assert_error(ec("stats", "-x"), 2, "No such option: -x", "see 'eventcollector stats --help'")


def test_export_refuses_a_file_name_where_the_filter_goes(ec: Runner, stored: list[Event]) -> None:
    for name in ("events.jsonl.gz", "out.jsonl", "-"):
        assert_error(ec("export", name), 2, f"{name!r} looks like a file name", f"-o {name}")


def test_the_filter_over_url(ec: Runner, live_server: RestartableServer) -> None:
    events = _events()
    live_server.post_events(events)
    auth = ["--url", live_server.url, "--api-key", live_server.key]
    for text in FILTERS[:2]:
        expected = _expected(events, text)
        query = ec("query", text, "-n", "1000", "-f", "jsonl", *auth)
        assert query.code == 0, query.err
        assert _ids(query.out) == expected
        assert ec("count", text, *auth).out == f"{len(expected)}\n"
        assert _ids(ec("export", text, *auth).out) == expected
    text = FILTERS[2]
    grouped = ec("aggregate", text, "--by", "system", "-f", "json", *auth)
    assert grouped.code == 0, grouped.err
    counts = {r["key"]["system"]: r["values"]["count"] for r in json.loads(grouped.out)["rows"]}
    matching = [e for e in events if e.id in _expected(events, text)]
    assert counts == {s: sum(e.system == s for e in matching) for s in {e.system for e in matching}}


def test_tail_follows_only_what_the_filter_selects(spawn: Any, db: Path) -> None:
    seed(db, [make_event(id="old", timestamp=NOW - timedelta(minutes=1))])
    proc, lines = spawn("tail", "system:mahavishnu -severity:debug", "-n", "1", "-f", "jsonl",
                        "--interval", "0.05")  # fmt: skip
    assert lines.next(timeout=15)["id"] == "old"  # the backlog: tail is running
    seed(db, [make_event(id="skip-system", system="akosha"),
              make_event(id="skip-debug", severity="debug"),
              make_event(id="shown", severity="error"), make_event(id="sentinel")])  # fmt: skip
    assert [lines.next()["id"], lines.next()["id"]] == ["shown", "sentinel"]
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert lines.empty()


def test_tail_over_url_follows_only_what_the_filter_selects(
    spawn: Any, live_server: RestartableServer
) -> None:
    live_server.post_events([make_event(id="old")])
    proc, lines = spawn("tail", "system:mahavishnu -severity:debug", "-n", "1", "-f", "jsonl",
                        "--url", live_server.url, "--api-key", live_server.key)  # fmt: skip
    assert lines.next(timeout=15)["id"] == "old"  # the backlog, read once subscribed
    live_server.post_events([make_event(id="skip-system", system="akosha"),
                             make_event(id="skip-debug", severity="debug"),
                             make_event(id="shown", severity="error"),
                             make_event(id="sentinel")])  # fmt: skip
    assert [lines.next()["id"], lines.next()["id"]] == ["shown", "sentinel"]
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert lines.empty()


# -- cleanup --where -------------------------------------------------------------------

WHERE = ["severity:debug", "tag:noise OR data.n:<5", "-system:akosha data.repo:acme/*"]


def _aged() -> list[Event]:
    """Events from 60 days ago to now, so that a 30-day cutoff splits them."""
    return _events(step=timedelta(hours=41))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, db: Path) -> Any:
    """The --db of an empty store on each backend."""
    if request.param == "sqlite":
        yield str(db)
        return
    url, schema = postgres_url(), fresh_schema("ecclif_")
    yield with_schema(url, schema)
    asyncio.run(drop_schema(url, schema))


@pytest.mark.parametrize("text", WHERE)
def test_cleanup_where_deletes_exactly_the_matching_old_events(
    ec: Runner, target: str, text: str
) -> None:
    events = _aged()
    seed(target, events)
    node = parse_filter(text, now=NOW)
    cutoff = NOW - timedelta(days=30)
    gone = {e.id for e in events if e.timestamp < cutoff and matches(node, e)}
    assert gone
    dry = ec("cleanup", "--db", target, "--where", text, "--retention-days", "30", "--dry-run")
    assert f"would delete {len(gone)} events" in dry.err, dry.err
    result = ec("cleanup", "--db", target, "--where", text, "--retention-days", "30")
    assert result.code == 0, result.err
    assert f"deleted {len(gone)} events" in result.err
    kept = _ids(ec("query", "--db", target, "-n", "1000", "-f", "jsonl").out)
    assert kept == {e.id for e in events} - gone
    # Counts that read the rollups (time and fixed fields only) agree with the events left.
    by_rollup = ec("count", "--db", target, "--days", "90", "--severity", "info,error")
    left = [e for e in events if e.id in kept and e.severity.value in ("info", "error")]
    assert by_rollup.out == f"{len(left)}\n"


#: No event matches, so SQLite checks every term on every row (seconds unbudgeted).
_HEAVY = " OR ".join(f"data.k{i % 8}.x:>{10**9 + i}" for i in range(64))


def test_query_timeout_cancels_a_heavy_local_read(ec: Runner, db: Path) -> None:
    start = NOW - timedelta(hours=1)
    seed(
        db,
        [
            make_event(
                timestamp=start + timedelta(milliseconds=i),
                data={f"k{j}": {"x": i + j, "pad": "y" * 40} for j in range(8)},
            )
            for i in range(20_000)
        ],
    )
    for command in (["count"], ["query", "-f", "jsonl"], ["aggregate", "--by", "system"]):
        assert_error(ec(*command, _HEAVY, "--query-timeout", "0.05"), 1, "query_timeout", "0.05 s")
    unlimited = ec("count", _HEAVY, "--query-timeout", "0")
    assert (unlimited.code, unlimited.out) == (0, "0\n"), unlimited.err
    over_env = ec("count", _HEAVY, extra_env={"EVENTCOLLECTOR_QUERY_TIMEOUT": "0.05"})
    assert_error(over_env, 1, "query_timeout")


def test_query_timeout_is_refused_with_url(ec: Runner) -> None:
    result = ec("count", "--url", "http://127.0.0.1:9", "--query-timeout", "3")
    assert_error(result, 2, "--query-timeout", "serve --query-timeout")
