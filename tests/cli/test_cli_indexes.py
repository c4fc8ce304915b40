"""``eventcollector index`` and ``cleanup --where`` through the real console script."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import make_event, seed

from .conftest import Runner

NOW = datetime.now(UTC)


def test_index_add_list_remove(ec: Runner, db: Path) -> None:
    seed(db, [make_event(data={"repo": "acme"})])
    added = ec("index", "add", "data.repo")
    assert added.code == 0, added.err
    assert "indexed data.repo" in added.err
    assert "indexed already" in ec("index", "add", "data.repo").err
    rows = [json.loads(line) for line in ec("index", "list", "--json").lines()]
    assert [row["path"] for row in rows] == ["data.repo"]
    health = json.loads(ec("health").out)
    assert [row["path"] for row in health["storage"]["indexes"]] == ["data.repo"]
    assert "removed the index on data.repo" in ec("index", "remove", "data.repo").err
    assert ec("index", "list").lines() == []


def test_index_refuses_a_path_in_one_line(ec: Runner, db: Path) -> None:
    seed(db, [make_event()])
    result = ec("index", "add", "data.a-b")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: index: 'data.a-b' is not a data path")


def test_cleanup_where_deletes_only_matching_old_events(ec: Runner, db: Path) -> None:
    old = NOW - timedelta(days=40)
    seed(
        db,
        [
            make_event(id="old-debug", severity="debug", timestamp=old),
            make_event(id="old-info", severity="info", timestamp=old),
            make_event(id="new-debug", severity="debug"),
        ],
    )
    result = ec("cleanup", "--retention-days", "30", "--where", "severity:debug")
    assert result.code == 0, result.err
    assert "deleted 1 events" in result.err
    remaining = sorted(json.loads(line)["id"] for line in ec("query").lines())
    assert remaining == ["new-debug", "old-info"]
    bad = ec("cleanup", "--retention-days", "30", "--where", "severity:")
    assert (bad.code, bad.err) == (
        2,
        "error: --where: expected a value after 'severity:' at column 10\n",
    )
