"""Facet counts kept per whole hour (``_hour_cache``): what users must not notice.

Every answer equals the reference's, before and after what changes an hour: a late event
into a kept hour, a cleanup (by age or by filter), another process writing the file; and
for any time range, its edges more or less than half an hour. A second call reads the
kept hours instead of their rows.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _common import make_event
from eventcollector.aggregation import AggregateSpec, facet_fields, identity
from eventcollector.aggregation_reference import aggregate_events, facet_events
from eventcollector.filters import parse_filter
from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.storage.sqlite import SQLiteStorage, _hour_cache

BASE = datetime(2026, 3, 1, tzinfo=UTC)
NOW = BASE + timedelta(days=2)
FIELDS = facet_fields(["system", "severity", "type", "component", "tag", "data.stage", "data.n"], 3)
#: Filters no rollup answers: every field is then counted hour by hour.
KEPT_FILTERS = [None, "data.stage:build OR -system:akosha", "-tag:y", "tag:x data.n:>1"]
#: Full text and issues: their sets are computed within each statement's rowids.
SET_FILTERS = [
    "e1",
    "system:akosha OR e2",
    "-fingerprint:*",
    'fingerprint:* "e1"',
    '"retry build" OR e3',  # a phrase: its words adjacent, not merely both there
]
FILTERS = KEPT_FILTERS + SET_FILTERS


def _event(i: int, minutes: float, **overrides: object) -> Event:
    fields: dict[str, object] = {
        "system": ("mahavishnu", "crackerjack", "akosha")[i % 3],
        "severity": ("info", "warning", "error")[i % 3],
        "title": f"e{i}",
        "description": ("retry build now", "build then retry")[i % 2],
        "data": {"stage": ("build", "test", "deploy", 1, True)[i % 5], "n": i % 4},
        "tags": [["x"], ["x", "y"], []][i % 3],
        "event_type": ("job.run", "job.done")[i % 2],
        "source_component": ("api", "db", None, "api")[i % 4],
        "timestamp": BASE + timedelta(minutes=minutes),
        "now": NOW,
    }
    fields.update(overrides)
    return make_event(**fields)


EVENTS = [_event(i, i * 4.5) for i in range(200)]  # 15 hours, 13-14 events an hour


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.open()
    await storage.append(EVENTS)
    yield storage
    await storage.close()


def _shape(facets: Sequence[object]) -> list[object]:
    return [
        (f.field, sorted((identity(v), n) for v, n in f.values), f.other)  # type: ignore[attr-defined]
        for f in facets
    ]


async def _check(store: SQLiteStorage, events: list[Event], query: Query) -> None:
    got = await store.facets(query, FIELDS, 3)
    assert _shape(got) == _shape(facet_events(events, query, FIELDS, 3)), query


@pytest.mark.parametrize("text", FILTERS)
async def test_a_second_call_reads_the_kept_hours_and_agrees(
    store: SQLiteStorage, text: str | None
) -> None:
    query = Query(
        since=BASE + timedelta(hours=2, minutes=10),
        until=BASE + timedelta(hours=11),
        where=None if text is None else parse_filter(text),
    )
    cache = store._hour_cache
    await _check(store, EVENTS, query)
    counted = cache.misses
    await _check(store, EVENTS, query)
    assert counted > 0
    assert cache.misses == counted  # every whole hour was kept
    assert cache.hits == counted
    kept = (await store.health())["hour_cache"]
    assert (kept["hits"], kept["misses"]) == (counted, counted)
    assert kept["hours"] > 0
    assert kept["values"] > 0


async def test_kept_hours_follow_late_events_cleanups_and_other_writers(
    store: SQLiteStorage, tmp_path: Path
) -> None:
    events = list(EVENTS)
    queries = [
        Query(),
        Query(since=BASE + timedelta(hours=1), systems=("akosha",)),
        Query(where=parse_filter("-tag:y")),
    ]
    for query in queries:
        await _check(store, events, query)  # every hour kept
    late = _event(7, 3 * 60 + 5, data={"stage": "late", "n": 9})  # into a kept hour
    await store.append([late])
    events.append(late)
    for query in queries:
        await _check(store, events, query)
    # Delete one kept hour's deploys, and bring its count back with as many new events:
    # the hour's count is as it was, but not its values.
    hour = BASE + timedelta(hours=2)
    where = parse_filter(f"timestamp:>={hour.isoformat()} data.stage:deploy")
    deleted = await store.cleanup_old_events(0, now=hour + timedelta(hours=1), where=where)
    doomed = [
        e
        for e in events
        if hour <= e.timestamp < hour + timedelta(hours=1) and e.data["stage"] == "deploy"
    ]
    assert deleted == len(doomed) > 0
    events = [e for e in events if e not in doomed]
    refill = [
        _event(1000 + k, 2 * 60 + k, data={"stage": "refill", "n": 0}) for k in range(deleted)
    ]
    await store.append(refill)
    events += refill
    for query in queries:
        await _check(store, events, query)
    # Another process (here another storage on the file) writes into a kept hour.
    other = SQLiteStorage(store.path)
    await other.open()
    try:
        stranger = _event(5, 6 * 60 + 1, data={"stage": "stranger", "n": 2})
        await other.append([stranger])
        events.append(stranger)
    finally:
        await other.close()
    await _check(store, events, Query())
    await store.cleanup_old_events(0, now=BASE + timedelta(hours=6))  # by age
    await _check(store, [e for e in events if e.timestamp >= BASE + timedelta(hours=6)], Query())


async def test_any_time_range_agrees_cold_and_warm(store: SQLiteStorage) -> None:
    """Edges of more and less than half an hour, on the hour, open at either end."""
    rng = random.Random(12)
    span = 15 * 60
    ranges: list[tuple[float | None, float | None]] = [(None, None), (None, 400.0), (125.0, None)]
    ranges += [(120.0, 180.0), (130.0, 170.0), (100.0, 110.0), (61.0, 62.0)]
    for _ in range(12):
        a, b = sorted(rng.uniform(-30, span + 30) for _ in range(2))
        ranges.append((a, b))
    for low, high in ranges:
        query = Query(
            since=None if low is None else BASE + timedelta(minutes=low),
            until=None if high is None else BASE + timedelta(minutes=high),
            severities=("info", "error") if rng.random() < 0.3 else (),
            where=None if (text := rng.choice(FILTERS)) is None else parse_filter(text),
        )
        await _check(store, EVENTS, query)
        await _check(store, EVENTS, query)


async def test_values_past_the_bounds_are_not_kept_and_still_counted(
    store: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_hour_cache, "MAX_HOUR_VALUES", 3)  # data.stage has 5 an hour
    await _check(store, EVENTS, Query())
    await _check(store, EVENTS, Query())
    kept = [entry for _, entry, _ in store._hour_cache._kept.values()]
    assert kept  # the other fields' hours
    stage = facet_fields(["data.stage"], 3)[0]
    assert all(stage not in entry.counts for entry in kept)
    monkeypatch.setattr(_hour_cache, "MAX_HOUR_VALUES", 1_000)
    monkeypatch.setattr(_hour_cache, "MAX_KEPT_VALUES", 20)  # a few hours' worth
    await _check(store, EVENTS, Query())
    await _check(store, EVENTS, Query())
    assert 0 < store._hour_cache._size <= 20


async def test_retention_of_old_hours_keeps_the_recent_ones(store: SQLiteStorage) -> None:
    """A cleanup makes stale only the hours it deleted from: retention running beside a
    dashboard does not make every view a first one."""
    query = Query(since=BASE + timedelta(hours=8))
    await _check(store, EVENTS, query)
    cache = store._hour_cache
    counted = cache.misses
    await store.cleanup_old_events(0, now=BASE + timedelta(hours=3))
    await _check(store, [e for e in EVENTS if e.timestamp >= BASE + timedelta(hours=3)], query)
    assert cache.misses == counted
    assert cache.hits == counted


SPECS = [
    AggregateSpec.parse(["severity"], interval="15m"),
    AggregateSpec.parse(["data.stage", "system"], interval="1h", top=2),
    AggregateSpec.parse(["data.n"], interval="5m"),
]


async def _check_aggregate(
    store: SQLiteStorage, events: list[Event], query: Query, spec: AggregateSpec
) -> None:
    got = await store.aggregate(query, spec)
    want = aggregate_events(events, query, spec, NOW)
    assert [(r.bucket, r.keys, r.values) for r in got.rows] == [
        (r.bucket, r.keys, r.values) for r in want.rows
    ], (query, spec)


@pytest.mark.parametrize("spec", SPECS, ids=["15m-severity", "1h-stage-system", "5m-n"])
async def test_counts_by_bucket_under_a_filter_keep_their_hours_and_agree(
    store: SQLiteStorage, spec: AggregateSpec
) -> None:
    """Counts by a bucket within the hour under a filter: every whole hour's groups are
    kept; late events and a cleanup change the hours they touch."""
    events = list(EVENTS)
    queries = [
        Query(
            since=BASE + timedelta(minutes=50),
            until=BASE + timedelta(hours=12, minutes=7),
            where=parse_filter(text),
        )
        for text in KEPT_FILTERS
        if text is not None
    ]
    cache = store._hour_cache
    for query in queries:
        await _check_aggregate(store, events, query, spec)
    counted = cache.misses
    assert counted > 0
    for query in queries:
        await _check_aggregate(store, events, query, spec)
    assert (cache.misses, cache.hits) == (counted, counted)
    late = _event(1, 4 * 60 + 20, data={"stage": "build", "n": 3})
    await store.append([late])
    events.append(late)
    await store.cleanup_old_events(0, now=BASE + timedelta(hours=3))
    events = [e for e in events if e.timestamp >= BASE + timedelta(hours=3)]
    for query in queries:
        await _check_aggregate(store, events, query, spec)
    for text in SET_FILTERS:
        query = queries[0].with_(where=parse_filter(text))
        await _check_aggregate(store, events, query, spec)
        await _check_aggregate(store, events, query, spec)


async def test_a_range_of_more_hours_than_kept_is_counted_in_one_pass(
    store: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_hour_cache, "MAX_HOURS", 3)
    spec = SPECS[0]
    for text in FILTERS:
        query = Query(until=NOW, where=None if text is None else parse_filter(text))
        await _check(store, EVENTS, query)
        await _check_aggregate(store, EVENTS, query, spec)
    assert (store._hour_cache.hits, store._hour_cache.misses) == (0, 0)
    await _check(store, EVENTS, Query(since=BASE + timedelta(hours=12)))  # 3 whole hours
    assert store._hour_cache.misses > 0


async def test_many_components_are_counted_from_the_rows(tmp_path: Path) -> None:
    # Past the values walked in the component's index (256), each hour is counted from its rows.
    events = [
        _event(i, i * 1.5, source_component=f"c{i % 300:03d}" if i % 7 else None)
        for i in range(900)
    ]
    storage = SQLiteStorage(tmp_path / "many.db")
    await storage.open()
    try:
        await storage.append(events)
        query = Query(since=BASE + timedelta(minutes=50), until=BASE + timedelta(hours=20))
        for _ in range(2):  # counted, then kept
            await _check(storage, events, query)
    finally:
        await storage.close()
