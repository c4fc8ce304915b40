"""The storage contract: every backend gives the same answers as the plain-Python reference.

The reference is ``Query.matches`` for filters, and for order the documented rule:
``ORDER BY <field> <dir>, insertion order <dir>``, NULLs last in both directions.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _common import BASE, ev
from _reference import reference
from eventcollector.model import LIMITS, Event, Severity
from eventcollector.query import GROUP_FIELDS, ORDER_FIELDS, DurationStats, Query, sort_value
from eventcollector.storage import Followable, Storage, StorageError

WORDS = ["Database", "data", "error", "Err", "timeout", "fail", "ok", "x1", "42", "Résumé"]
SEPARATORS = [" ", "-", ".", "_", ", ", "/"]


# -- the plain-Python reference (see tests/_reference.py) ---------------------------


def _field_value(event: Event, field: str) -> Any:
    value = getattr(event, field)
    return value.value if hasattr(value, "value") else value


def reference_groups(stored: list[Event], query: Query, field: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for e in stored:
        if query.matches(e):
            if field == "hour":
                key = e.timestamp.strftime("%Y-%m-%dT%H:00:00+00:00")
            else:
                value = _field_value(e, field)
                key = "" if value is None else value
            counts[key] += 1
    return dict(counts)


def reference_percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    below = math.floor(rank)
    upper = ordered[min(below + 1, len(ordered) - 1)]
    return ordered[below] + (upper - ordered[below]) * (rank - below)


def dataset() -> list[Event]:
    """A fixed mix: ties, NULLs, tags, traces, words, several days and hours."""
    systems = ["alpha", "beta", "gamma"]
    types = ["job.run", "job.done", "deploy.start"]
    severities = list(Severity)
    events = []
    for i in range(60):
        events.append(
            ev(
                i,
                system=systems[i % 3],
                event_type=types[i % 4 % 3],
                severity=severities[i % 5],
                title=f"{WORDS[i % len(WORDS)]} step-{i % 7}",
                description="" if i % 4 else f"{WORDS[(i + 3) % len(WORDS)]}_detail.{i}",
                tags=[t for t in ("a", "b", "c") if i % (ord(t) - 95) == 0],
                correlation_id=None if i % 3 else f"trace-{i % 2}",
                source_component=None if i % 5 == 1 else f"comp{i % 3}",
                duration_ms=None if i % 6 == 0 else (i * 37) % 500,
                # Every fifth shares a timestamp with its neighbour: insertion order decides.
                timestamp=BASE + timedelta(minutes=47 * (i - i % 5 // 4)),
            )
        )
    return events


@pytest.fixture
async def loaded(storage: Storage) -> tuple[Storage, list[Event]]:
    events = dataset()
    assert await storage.append(events[:30]) == [True] * 30
    assert await storage.append(events[30:]) == [True] * 30
    return storage, events


# -- append ----------------------------------------------------------------------


async def test_append_reports_new_and_duplicate(storage: Storage) -> None:
    a, b, c = ev(1), ev(2), ev(3)
    assert await storage.append([a, b]) == [True, True]
    assert await storage.append([b, c, a]) == [False, True, False]
    assert await storage.append([]) == []
    assert await storage.count(Query()) == 3


async def test_duplicates_inside_one_batch_store_the_first(storage: Storage) -> None:
    first = ev(1, title="first")
    again = ev(2, id=first.id, title="second")
    other = ev(3)
    assert await storage.append([first, other, again, other]) == [True, True, False, False]
    assert await storage.query(Query(ids=(first.id,))) == [first]
    assert await storage.count(Query()) == 2


async def test_concurrent_appends_of_the_same_ids_store_each_once(storage: Storage) -> None:
    batch = [ev(i) for i in range(50)]
    results = await asyncio.gather(*(storage.append(list(batch)) for _ in range(8)))
    for position in range(len(batch)):
        assert sum(r[position] for r in results) == 1
    assert await storage.count(Query()) == 50
    assert sorted(e.id for e in await storage.query(Query())) == sorted(e.id for e in batch)


async def test_every_field_round_trips(storage: Storage) -> None:
    event = ev(
        7,
        severity="critical",
        description="line one\nline two ünïcode ✓",
        data={"nested": {"list": [1, 2.5, None, True, "s"]}, "big": 2**62, "empty": {}},
        tags=["x", "y-z", "ü"],
        correlation_id="corr-1",
        source_component="api.v2",
        duration_ms=LIMITS.max_duration_ms,  # the largest accepted
        metadata={"host": "h1", "pid": 12},
        timestamp=datetime(2024, 3, 10, 1, 2, 3, 456789, tzinfo=UTC),
    )
    await storage.append([event])
    assert await storage.query(Query()) == [event]


# -- query -----------------------------------------------------------------------

QUERIES = [
    Query(),
    Query(systems=("beta",)),
    Query(systems=("beta", "gamma")),
    Query(event_types=("job.done",)),
    Query(severities=("error", "critical")),
    Query(tags_all=("a", "b")),
    Query(tags_all=("c",)),
    Query(tags_any=("b", "c")),
    Query(since=BASE + timedelta(hours=10)),
    Query(until=BASE + timedelta(hours=20, minutes=7)),
    Query(since=BASE + timedelta(hours=3), until=BASE + timedelta(hours=30)),
    Query(correlation_id="trace-1"),
    Query(source_components=("comp1", "comp2")),
    Query(search="data"),
    Query(search="ERR step"),
    Query(min_duration_ms=250),
    Query(ids=("nope",)),
    Query(systems=("alpha",), severities=("debug", "error"), tags_any=("a",), min_duration_ms=1),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[6:60])
async def test_query_filters_match_the_reference(
    loaded: tuple[Storage, list[Event]], query: Query
) -> None:
    storage, events = loaded
    expected = reference(events, query)
    assert await storage.query(query) == expected
    assert await storage.count(query) == len(expected)


async def test_query_by_ids(loaded: tuple[Storage, list[Event]]) -> None:
    storage, events = loaded
    wanted = (events[5].id, events[40].id, "missing")
    assert {e.id for e in await storage.query(Query(ids=wanted))} == set(wanted[:2])


@pytest.mark.parametrize("field", sorted(ORDER_FIELDS))
@pytest.mark.parametrize("ascending", [True, False])
async def test_order_ties_by_insertion_and_nulls_last(
    loaded: tuple[Storage, list[Event]], field: str, ascending: bool
) -> None:
    storage, events = loaded
    query = Query(order_by=field, ascending=ascending)
    got = await storage.query(query)
    assert got == reference(events, query)
    values = [sort_value(e, field) for e in got]
    if None in values:
        first_null = values.index(None)
        assert all(v is None for v in values[first_null:])


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (5, 0), (5, 3), (None, 58), (10, 100)])
async def test_limit_and_offset(
    loaded: tuple[Storage, list[Event]], limit: int | None, offset: int
) -> None:
    storage, events = loaded
    query = Query(limit=limit, offset=offset, order_by="duration_ms", ascending=True)
    assert await storage.query(query) == reference(events, query)
    assert await storage.count(query) == 60


# -- counts and aggregates -----------------------------------------------------------

COUNT_RANGES = [
    (BASE, BASE + timedelta(hours=24)),  # hour-aligned: rollups only
    (BASE + timedelta(minutes=13), BASE + timedelta(hours=30, minutes=50)),  # two edges
    (BASE + timedelta(minutes=13), None),
    (None, BASE + timedelta(hours=9, seconds=1)),
    (BASE + timedelta(minutes=5), BASE + timedelta(minutes=55)),  # inside one hour
    (BASE + timedelta(hours=2), BASE + timedelta(hours=2)),  # empty
]


@pytest.mark.parametrize(("since", "until"), COUNT_RANGES)
@pytest.mark.parametrize("systems", [(), ("beta",)])
async def test_count_over_hour_aligned_and_unaligned_ranges(
    loaded: tuple[Storage, list[Event]],
    since: datetime | None,
    until: datetime | None,
    systems: tuple[str, ...],
) -> None:
    storage, events = loaded
    for query in (
        Query(since=since, until=until, systems=systems),
        Query(since=since, until=until, systems=systems, severities=("info", "error")),
        Query(since=since, until=until, systems=systems, tags_any=("a",)),  # no rollup
    ):
        assert await storage.count(query) == len(reference(events, query.unbounded))


@pytest.mark.parametrize("field", sorted(GROUP_FIELDS))
@pytest.mark.parametrize(("since", "until"), [*COUNT_RANGES[:3], (None, None)])
async def test_group_count_every_field(
    loaded: tuple[Storage, list[Event]], field: Any, since: Any, until: Any
) -> None:
    storage, events = loaded
    for query in (Query(since=since, until=until), Query(since=since, severities=("info",))):
        assert await storage.group_count(query, field) == reference_groups(events, query, field)


async def test_group_count_keys(loaded: tuple[Storage, list[Event]]) -> None:
    storage, _ = loaded
    hours = await storage.group_count(Query(), "hour")
    assert "2024-03-10T00:00:00+00:00" in hours
    assert all(k.endswith(":00:00+00:00") and len(k) == 25 for k in hours)
    components = await storage.group_count(Query(), "source_component")
    assert components[""] == 12  # None counts under ""


async def test_duration_stats_match_linear_interpolation(
    loaded: tuple[Storage, list[Event]],
) -> None:
    storage, events = loaded
    for query in (Query(), Query(systems=("beta",)), Query(tags_any=("a",), limit=1)):
        values = [e.duration_ms for e in events if query.matches(e) and e.duration_ms is not None]
        stats = await storage.duration_stats(query)
        assert stats.count == len(values)
        assert (stats.min, stats.max) == (min(values), max(values))
        assert stats.avg == pytest.approx(sum(values) / len(values))
        for q, got in ((0.5, stats.p50), (0.95, stats.p95), (0.99, stats.p99)):
            assert got == pytest.approx(reference_percentile(values, q))
    empty = await storage.duration_stats(Query(systems=("nobody",)))
    assert empty == DurationStats(0, None, None, None, None, None, None)


async def test_duration_stats_without_percentiles(loaded: tuple[Storage, list[Event]]) -> None:
    storage, events = loaded
    for query in (Query(), Query(since=BASE + timedelta(hours=2), systems=("beta",))):
        values = [e.duration_ms for e in events if query.matches(e) and e.duration_ms is not None]
        stats = await storage.duration_stats(query, percentiles=False)
        assert stats.count == len(values)
        assert stats.avg == pytest.approx(sum(values) / len(values))
        assert (stats.p50, stats.p95, stats.p99) == (None, None, None)


async def test_duration_stats_single_value(storage: Storage) -> None:
    await storage.append([ev(1, duration_ms=7), ev(2)])
    stats = await storage.duration_stats(Query())
    assert stats == DurationStats(1, 7, 7, 7.0, 7.0, 7.0, 7.0)


# -- search ----------------------------------------------------------------------

SEARCH_CASES = [
    ("data", {"db", "data-mix"}),
    ("DATA", {"db", "data-mix"}),
    ("datab", {"db"}),
    ("err", {"err", "desc"}),
    ("ata", set()),
    ("conn err", {"err"}),
    ("mix", {"data-mix"}),
    ("resu", set()),
    ("résumé", {"resume"}),
    ("RÉS", {"resume"}),
    ("v2", {"version"}),
    ("2", {"version"}),
    ("deep", {"desc"}),
    ("deep error", {"desc"}),
    ("x y", {"split"}),
    ("'quoted' & !op | (x:*)", set()),
]


@pytest.mark.parametrize(("text", "expected"), SEARCH_CASES)
async def test_search_words_are_prefixes_case_insensitive(
    storage: Storage, text: str, expected: set[str]
) -> None:
    events = {
        "db": ev(1, title="Database ready"),
        "data-mix": ev(2, title="stats", description="big data-mix loaded"),
        "err": ev(3, title="Connection error"),
        "desc": ev(4, title="quiet", description="an ErrOr deep_inside"),
        "resume": ev(5, title="Résumé sent"),
        "version": ev(6, title="api v2.2 shipped"),
        "split": ev(7, title="x/y"),
    }
    await storage.append(list(events.values()))
    query = Query(search=text)
    got = {e.title for e in await storage.query(query)}
    assert got == {events[k].title for k in expected}
    assert {e.title for e in events.values() if query.matches(e)} == got
    assert await storage.count(query) == len(expected)


async def test_search_without_words_is_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="search"):
        await storage.query(Query(search="  -- "))


# -- retention and health -------------------------------------------------------------


async def test_cleanup_old_events_and_rerun(storage: Storage) -> None:
    now = BASE + timedelta(days=10)
    events = [ev(i, timestamp=now - timedelta(hours=7 * i)) for i in range(40)]  # ~11.7 days
    await storage.append(events)
    cutoff = now - timedelta(days=5.5)
    old = [e for e in events if e.timestamp < cutoff]
    # A first run with a later "now" stopped early deletes the oldest part only.
    partial = await storage.cleanup_old_events(8, now=now)
    assert partial == sum(e.timestamp < now - timedelta(days=8) for e in events)
    assert await storage.cleanup_old_events(5.5, now=now) == len(old) - partial
    assert await storage.cleanup_old_events(5.5, now=now) == 0
    kept = [e for e in events if e.timestamp >= cutoff]
    assert await storage.query(Query(order_by="timestamp", ascending=True)) == kept[::-1]
    assert await storage.count(Query()) == len(kept)
    assert await storage.count(Query(since=BASE, until=now + timedelta(hours=1))) == len(kept)
    assert sum((await storage.group_count(Query(), "system")).values()) == len(kept)
    assert await storage.count(Query(search="event")) == len(kept)  # the words left too
    # A deleted id may be stored again.
    assert await storage.append([old[0], kept[0]]) == [True, False]


async def test_followers_see_events_stored_after_cleanup_removed_the_newest(
    storage: Storage,
) -> None:
    # Positions are never given out twice: a follower past the end still sees what comes.
    assert isinstance(storage, Followable)
    await storage.append([ev(i) for i in range(3)])
    _, end = await storage.read_after(-1, Query())
    assert await storage.cleanup_old_events(1, now=BASE + timedelta(days=5)) == 3
    await storage.append([ev(9, title="after cleanup")])
    events, _ = await storage.read_after(end, Query())
    assert [e.title for e in events] == ["after cleanup"]


async def test_counts_over_whole_days_and_edges_after_cleanup(storage: Storage) -> None:
    """Rollups at every grain stay exact after cleanup (whole days, hours, edges)."""
    now = BASE + timedelta(days=12)
    events = [
        ev(
            i,
            system=("alpha", "beta", "gamma")[i % 3],
            severity=("info", "error", "debug", "warning")[i % 4],
            duration_ms=None if i % 5 == 0 else (i * 53) % 900,
            timestamp=now - timedelta(minutes=131 * i),
        )
        for i in range(120)
    ]  # about 11 days
    await storage.append(events)
    await storage.cleanup_old_events(9.3, now=now)  # drops days, trims one mid-day
    kept = [e for e in events if e.timestamp >= now - timedelta(days=9.3)]
    ranges = [
        (now - timedelta(days=8, hours=5, minutes=17), now - timedelta(days=2, minutes=41)),
        (BASE + timedelta(days=3), BASE + timedelta(days=9)),  # whole days only
        (BASE + timedelta(days=3, hours=4), BASE + timedelta(days=9, hours=2)),  # days + hours
        (None, now - timedelta(days=3, minutes=5)),
        (now - timedelta(days=6, minutes=1), None),
        (None, None),
    ]
    for since, until in ranges:
        for query in (
            Query(since=since, until=until),
            Query(since=since, until=until, systems=("beta", "gamma"), severities=("error",)),
        ):
            chosen = [e for e in kept if query.matches(e)]
            assert await storage.count(query) == len(chosen)
            for field in ("system", "severity", "hour"):
                assert await storage.group_count(query, field) == reference_groups(
                    kept, query, field
                )
            values = [e.duration_ms for e in chosen if e.duration_ms is not None]
            stats = await storage.duration_stats(query, percentiles=False)
            assert stats.count == len(values)
            if values:
                assert stats.avg == pytest.approx(sum(values) / len(values))


async def test_cleanup_refuses_negative_retention(storage: Storage) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        await storage.cleanup_old_events(-1)


async def test_health(storage: Storage) -> None:
    report = await storage.health()
    assert report["backend"] in {"sqlite", "postgresql"}
    assert report["schema_version"] >= 1
    await storage.close()
    with pytest.raises(StorageError):
        await storage.health()


# -- Hypothesis: any mix of events and queries agrees with the reference -------------

_texts = st.lists(
    st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), min_size=1, max_size=4
).map(lambda parts: "".join(w + s for w, s in parts).strip(" ,-./_") or "x")
_events = st.builds(
    lambda *a: ev(0, **dict(zip(_EVENT_KEYS, a, strict=True))),
    st.sampled_from(["alpha", "beta", "gamma"]),
    st.sampled_from(["job.run", "job.done"]),
    st.sampled_from(list(Severity)),
    _texts,
    st.one_of(st.just(""), _texts),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3),
    st.sampled_from([None, "c1", "c2"]),
    st.sampled_from([None, "api", "db"]),
    st.one_of(st.none(), st.integers(0, 1000)),
    st.integers(0, 3 * 24 * 3600 * 1000).map(lambda ms: BASE + timedelta(milliseconds=ms)),
    st.uuids().map(str),
)
_EVENT_KEYS: tuple[str, ...] = (
    "system",
    "event_type",
    "severity",
    "title",
    "description",
    "tags",
    "correlation_id",
    "source_component",
    "duration_ms",
    "timestamp",
    "id",
)
_bounds = st.one_of(
    st.none(),
    st.integers(0, 80).map(lambda h: BASE + timedelta(hours=h)),
    st.integers(0, 80 * 60).map(lambda m: BASE + timedelta(minutes=m, seconds=17)),
)


def _subset(values: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), max_size=2, unique=True).map(tuple)


_queries = st.builds(
    Query,
    systems=_subset(["alpha", "beta", "gamma"]),
    event_types=_subset(["job.run", "job.done"]),
    severities=_subset([s.value for s in Severity]),
    tags_all=_subset(["a", "b", "c"]),
    tags_any=_subset(["a", "b", "d"]),
    since=_bounds,
    until=_bounds,
    correlation_id=st.sampled_from([None, "c1"]),
    source_components=_subset(["api", "db"]),
    search=st.one_of(st.none(), st.sampled_from(WORDS).map(lambda w: w[: max(1, len(w) // 2)])),
    min_duration_ms=st.one_of(st.none(), st.integers(0, 1000)),
    order_by=st.sampled_from(sorted(ORDER_FIELDS)),
    ascending=st.booleans(),
    limit=st.one_of(st.none(), st.integers(0, 15)),
    offset=st.integers(0, 5),
)
_rollup_queries = st.builds(
    Query,
    systems=_subset(["alpha", "beta", "gamma"]),
    event_types=_subset(["job.run", "job.done"]),
    severities=_subset([s.value for s in Severity]),
    since=_bounds,
    until=_bounds,
)


@pytest.fixture
def ledger() -> list[Event]:
    """Events stored so far in this test, in insertion order (shared by its examples)."""
    return []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=st.lists(st.lists(_events, max_size=12), min_size=1, max_size=3),
    replay=st.booleans(),
    queries=st.lists(st.one_of(_queries, _rollup_queries), min_size=1, max_size=4),
    field=st.sampled_from(sorted(GROUP_FIELDS)),
)
async def test_hypothesis_results_match_the_reference(
    storage: Storage,
    ledger: list[Event],
    batches: list[list[Event]],
    replay: bool,
    queries: list[Query],
    field: Any,
) -> None:
    # The store accumulates across examples; so does the reference.
    stored = ledger
    known = {e.id for e in stored}
    for batch in batches:
        if replay and stored:
            batch = [*batch, stored[0]]
        expected = []
        for e in batch:
            expected.append(e.id not in known)
            if e.id not in known:
                known.add(e.id)
                stored.append(e)
        assert await storage.append(batch) == expected
    for query in queries:
        assert await storage.query(query) == reference(stored, query)
        assert await storage.count(query) == len(reference(stored, query.unbounded))
        assert await storage.group_count(query, field) == reference_groups(stored, query, field)


def test_reference_percentile_examples() -> None:
    assert reference_percentile([1, 2, 3, 4], 0.5) == 2.5
    assert reference_percentile([10], 0.99) == 10
