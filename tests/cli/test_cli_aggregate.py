"""``eventcollector aggregate`` and ``facets`` through the real console script."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _common import make_event, seed

from .conftest import Runner, assert_error

NOW = datetime.now(UTC)


@pytest.fixture
def seeded(db: Path) -> Path:
    seed(
        db,
        [
            make_event(system="mahavishnu", severity="error", duration_ms=10,
                       tags=["ci", "prod"], timestamp=NOW - timedelta(minutes=5)),
            make_event(system="mahavishnu", duration_ms=30, tags=["prod"],
                       timestamp=NOW - timedelta(minutes=6)),
            make_event(system="crackerjack", duration_ms=50, timestamp=NOW - timedelta(hours=2)),
            make_event(system="akosha", timestamp=NOW - timedelta(days=3)),
        ],
    )  # fmt: skip
    return db


def test_aggregate_as_json(ec: Runner, seeded: Path) -> None:
    r = ec("aggregate", "--by", "system", "--metric", "count", "--metric", "p95:duration_ms",
           "--hours", "24", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    rows = [(row["key"]["system"], row["values"]) for row in json.loads(r.out)["rows"]]
    assert rows == [
        ("mahavishnu", {"count": 2, "p95:duration_ms": 29.0}),
        ("crackerjack", {"count": 1, "p95:duration_ms": 50.0}),
    ]


def test_aggregate_with_a_filter_and_interval_as_csv(ec: Runner, seeded: Path) -> None:
    r = ec("aggregate", "system:mahavishnu", "--system", "mahavishnu", "--by", "system",
           "--interval", "1h", "--hours", "3", "--format", "csv")  # fmt: skip
    assert r.code == 0, r.err
    rows = list(csv.reader(io.StringIO(r.out)))
    assert rows[0] == ["bucket", "system", "count"]
    assert len(rows) - 1 in (3, 4)
    assert sum(int(row[2]) for row in rows[1:]) == 2


def test_aggregate_as_a_table(ec: Runner, seeded: Path) -> None:
    r = ec("aggregate", "--by", "system", "--top", "1", "--format", "table")
    assert r.code == 0, r.err
    for word in ("SYSTEM", "(other)", "mahavishnu"):
        assert word in r.out


def test_facets_as_jsonl(ec: Runner, seeded: Path) -> None:
    r = ec("facets", "--field", "system", "--field", "severity", "--top", "1", "--format", "jsonl")
    assert r.code == 0, r.err
    lines = [json.loads(line) for line in r.lines()]
    assert {"field": "system", "value": "mahavishnu", "count": 2} in lines
    assert {"field": "system", "value": None, "count": 2} in lines  # the other values
    assert {"field": "severity", "value": "info", "count": 3} in lines


def test_facets_over_tags_as_csv(ec: Runner, seeded: Path) -> None:
    r = ec("facets", "system:mahavishnu", "--field", "tags", "--format", "csv")
    assert r.code == 0, r.err
    rows = list(csv.reader(io.StringIO(r.out)))
    assert rows == [["field", "value", "count"], ["tag", "prod", "2"], ["tag", "ci", "1"]]


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--by", "title"], "by:"),
        (["--metric", "p95:system"], "metric:"),
        (["--interval", "7m"], "interval:"),
        (["--top", "0"], "top:"),
        (["severity:"], "column"),
    ],
)
def test_bad_input_is_one_line_exit_2(ec: Runner, seeded: Path, args: list[str], word: str) -> None:
    assert_error(ec("aggregate", *args), 2, word)
