"""Retention rules: parsing, and ``apply_rules`` on both backends against the reference.

What a run deletes is compared with ``filters.matches`` over the events stored; with an
archive, the archive read back is compared with what was deleted.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from _common import aged_events, drop_schema, fresh_schema, postgres_url, retained_out
from eventcollector import Event, EventCollector
from eventcollector.filters import parse_filter
from eventcollector.retention import RetentionRule, apply_rules, parse_rules
from eventcollector.storage.sqlite import SQLiteStorage

NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("text", "filter_text", "age"),
    [
        ("severity:debug=2d", "severity:debug", timedelta(days=2)),
        ("*=30d", None, timedelta(days=30)),
        (" * =1.5h", None, timedelta(hours=1.5)),
        ("severity:>=warning=90s", "severity:>=warning", timedelta(seconds=90)),
        ('data.k:"a=b" -tag:x=1w', 'data.k:"a=b" -tag:x', timedelta(weeks=1)),
    ],
)
def test_rules_parse(text: str, filter_text: str | None, age: timedelta) -> None:
    rule = RetentionRule.parse(text)
    assert (rule.text, rule.filter_text, rule.age) == (text, filter_text, age)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity:debug", "retention: rule 'severity:debug': expected FILTER=AGE"),
        ("=2d", "retention: rule '=2d': expected FILTER=AGE"),
        ("severity:debug=2", "retention: rule 'severity:debug=2': age: expected a duration"),
        ("*=0d", "retention: rule '*=0d': age: must be more than 0"),
        ("*=9999999d", "retention: rule '*=9999999d': age: must be more than 0"),
        (
            "severity:=2d",
            "retention: rule 'severity:=2d': expected a value after 'severity:' at column 10",
        ),
        ("x:1=2d", "retention: rule 'x:1=2d': unknown field 'x'"),
    ],
)
def test_bad_rules_name_the_rule(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^retention: ") as caught:
        parse_rules(["*=30d", text])
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def collector(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[EventCollector]:
    if request.param == "sqlite":
        c = EventCollector(storage=SQLiteStorage(tmp_path / "events.db"))
        try:
            yield c
        finally:
            await c.stop()
        return
    from eventcollector.storage.postgres import PostgresStorage

    url, schema = postgres_url(), fresh_schema("ecret_")
    c = EventCollector(storage=PostgresStorage(url, schema=schema, partitions_ahead=1))
    try:
        yield c
    finally:
        await c.stop()
        await drop_schema(url, schema)


async def _ids(c: EventCollector) -> set[str]:
    from eventcollector.query import Query

    return {e.id for e in await c.query(Query(limit=None))}


RULES = ["severity:debug=2d", "tag:noise -severity:error=5d", "*=8d"]


async def test_rules_delete_what_the_reference_says(collector: EventCollector) -> None:
    events = aged_events(NOW)
    await collector.ingest(events)
    rules = parse_rules(RULES)
    run = await apply_rules(collector, rules, now=NOW)
    expected = retained_out(events, rules, NOW)
    assert 0 < len(expected) < len(events)
    assert await _ids(collector) == {e.id for e in events} - expected
    assert run.deleted == sum(run.by_rule.values()) == len(expected)
    assert run.archive is None
    # The counts the rollups answer agree with the events left.
    from eventcollector.query import Query

    assert await collector.count(Query(since=NOW - timedelta(days=30))) == len(events) - len(
        expected
    )
    again = await apply_rules(collector, rules, now=NOW)
    assert again.deleted == 0


async def test_archive_holds_exactly_what_was_deleted(
    collector: EventCollector, tmp_path: Path
) -> None:
    events = aged_events(NOW)
    await collector.ingest(events)
    rules = parse_rules(RULES)
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    before = await _ids(collector)
    run = await apply_rules(collector, rules, now=NOW, archive_dir=archive_dir)
    assert run.archive is not None
    assert run.archive.parent == archive_dir
    archived = [
        Event.from_dict(orjson.loads(line), now=NOW)
        for line in gzip.decompress(run.archive.read_bytes()).splitlines()
    ]
    deleted = before - await _ids(collector)
    assert {e.id for e in archived} == deleted == retained_out(events, rules, NOW)
    assert run.archived == run.deleted == len(deleted)
    stamps = [e.timestamp for e in archived]
    assert stamps == sorted(stamps)
    by_id = {e.id: e for e in events}
    assert all(e == by_id[e.id] for e in archived)  # every field, as stored
    assert [p.name for p in archive_dir.iterdir()] == [run.archive.name]  # no temporary left


async def test_archive_limit_leaves_the_rest_for_the_next_run(
    collector: EventCollector, tmp_path: Path
) -> None:
    events = aged_events(NOW)
    await collector.ingest(events)
    rules = parse_rules(["*=8d"])
    expected = retained_out(events, rules, NOW)
    first = await apply_rules(collector, rules, now=NOW, archive_dir=tmp_path, archive_limit=3)
    assert (first.archived, first.deleted, first.complete) == (3, 3, False)
    second = await apply_rules(collector, rules, now=NOW, archive_dir=tmp_path, archive_limit=100)
    assert second.complete
    assert second.archived == len(expected) - 3
    assert first.archive != second.archive
    archived = {
        orjson.loads(line)["id"]
        for path in (first.archive, second.archive)
        if path is not None
        for line in gzip.decompress(path.read_bytes()).splitlines()
    }
    assert archived == expected


async def test_an_archive_that_cannot_be_written_deletes_nothing(
    collector: EventCollector, tmp_path: Path
) -> None:
    events = aged_events(NOW)
    await collector.ingest(events)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(NotADirectoryError):
        await apply_rules(collector, parse_rules(["*=1d"]), now=NOW, archive_dir=not_a_directory)
    assert await _ids(collector) == {e.id for e in events}


def test_relative_times_in_a_rule_count_from_each_run() -> None:
    rule = RetentionRule.parse("timestamp:>-1h=1d")
    assert rule.where(NOW) == parse_filter("timestamp:>-1h", now=NOW)
    assert rule.where(NOW + timedelta(hours=2)) != rule.where(NOW)
