"""Aggregations and facets: every backend gives the plain-Python reference's answer."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventcollector.aggregation import (
    OTHER,
    AggregateResult,
    AggregateSpec,
    Facet,
    facet_fields,
    identity,
)
from eventcollector.aggregation_reference import aggregate_events, facet_events
from eventcollector.filters import parse_filter
from eventcollector.model import Event, Severity
from eventcollector.query import Query
from eventcollector.storage import Aggregating, Indexable, Storage

BASE = datetime(2024, 3, 10, tzinfo=UTC)
NOW = BASE + timedelta(days=400)
# Mixed JSON types on purpose: 1 and 1.0 are one key, True and "1" two others.
_DATA_VALUES = st.sampled_from(
    [1, 1.0, 2, 2.5, -3, "1", "x", "y", True, False, None, [1], {"a": 1}]
)


def ev(**fields: Any) -> Event:
    values: dict[str, Any] = {"system": "alpha", "event_type": "job.run", "title": "t", "now": NOW}
    values.update(fields)
    return Event.create(**values)


_TAGS = ["a", "b", "c", "prod", "ünï:cødé"]
_events = st.builds(
    lambda system, severity, component, duration, minute, data, tags: ev(
        system=system,
        severity=severity,
        source_component=component,
        duration_ms=duration,
        timestamp=BASE + timedelta(minutes=minute),
        data=data,
        tags=tags,
    ),
    st.sampled_from(["alpha", "beta", "gamma", "delta"]),
    st.sampled_from(list(Severity)),
    st.sampled_from([None, "api", "db"]),
    st.one_of(st.none(), st.integers(0, 1000)),
    st.integers(0, 6 * 60),
    st.dictionaries(st.sampled_from(["n", "s"]), _DATA_VALUES, max_size=2),
    st.lists(st.sampled_from(_TAGS), max_size=3, unique=True),
)
_keys = st.sampled_from(["system", "severity", "source_component", "data.n", "data.s"])
_metrics = st.sampled_from(
    [
        "count",
        "count_distinct:data.n",
        "count_distinct:system",
        "min:duration_ms",
        "max:data.n",
        "avg:duration_ms",
        "sum:data.n",
        "p50:duration_ms",
        "p95:data.n",
        "p99:duration_ms",
    ]
)
_specs = st.builds(
    lambda by, interval, metrics, top: AggregateSpec.parse(
        by[: 3 - (interval is not None)], interval=interval, metrics=metrics, top=top
    ),
    st.lists(_keys, max_size=3, unique=True),
    st.sampled_from([None, "15m", "1h", "auto"]),
    st.lists(_metrics, min_size=1, max_size=4, unique=True),
    st.integers(1, 4),
)
_queries = st.builds(
    lambda since, hours, severities: Query(
        since=BASE + timedelta(minutes=since),
        until=BASE + timedelta(minutes=since + hours * 60 + 7),
        severities=severities,
    ),
    st.integers(-30, 200),
    st.integers(0, 5),
    st.lists(st.sampled_from([s.value for s in Severity]), max_size=2, unique=True).map(tuple),
)
# Facets also over tags, under filters that name tags (the same bound WHERE compiler).
_facet_keys = st.sampled_from(["system", "severity", "source_component", "data.n", "tags", "tag"])
_facet_queries = st.builds(
    lambda query, where: query.with_(where=parse_filter(where, now=NOW) if where else None),
    _queries,
    st.sampled_from(["", "tag:prod", "-tag:a", "tag:[b, c] OR system:beta", "tag:*", "-tag:*"]),
)


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_same(got: AggregateResult, want: AggregateResult) -> None:
    assert (got.by, got.interval, got.metrics) == (want.by, want.interval, want.metrics)
    assert len(got.rows) == len(want.rows), (got.rows, want.rows)
    for g, w in zip(got.rows, want.rows, strict=True):
        assert g.bucket == w.bucket
        assert [identity(k) for k in g.keys] == [identity(k) for k in w.keys], (g, w)
        assert all(_same_number(a, b) for a, b in zip(g.values, w.values, strict=True)), (g, w)


@pytest.fixture
def ledger() -> list[Event]:
    return []


# Counts under filters no rollup answers: SQLite groups by every value and folds the
# values outside the top N itself (ties, true and 1 apart), as the reference ranks them.
_count_specs = st.builds(
    lambda by, interval, top: AggregateSpec.parse(
        by[: 3 - (interval is not None)], interval=interval, metrics=["count"], top=top
    ),
    st.lists(_keys, min_size=1, max_size=3, unique=True),
    st.sampled_from([None, "15m", "1h"]),
    st.integers(1, 3),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(_events, max_size=25),
    cases=st.lists(
        st.one_of(st.tuples(_queries, _specs), st.tuples(_facet_queries, _count_specs)),
        min_size=1,
        max_size=3,
    ),
)
async def test_aggregations_match_the_reference(
    storage: Storage, ledger: list[Event], batch: list[Event], cases: list[Any]
) -> None:
    assert isinstance(storage, Aggregating)
    await storage.append(batch)
    ledger.extend(batch)
    for query, spec in cases:
        got = await storage.aggregate(query, spec)
        assert_same(got, aggregate_events(ledger, query, spec, NOW))


def _facet_rows(facets: list[Facet]) -> list[Any]:
    return [(f.field, [(identity(v), n) for v, n in f.values], f.other) for f in facets]


@pytest.mark.parametrize("indexed", [False, True])
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(_events, max_size=25),
    query=_facet_queries,
    fields=st.lists(_facet_keys, min_size=1, max_size=4, unique=True),
    top=st.integers(1, 4),
)
async def test_facets_match_the_reference(
    storage: Storage,
    ledger: list[Event],
    indexed: bool,
    batch: list[Event],
    query: Query,
    fields: list[str],
    top: int,
) -> None:
    assert isinstance(storage, Aggregating)
    if indexed:
        # SQLite counts an indexed path over a time range alone in its index, where
        # true and 1, or "[1]" and [1], share values: they must still come apart.
        assert isinstance(storage, Indexable)
        for path in ("data.n", "data.s"):
            await storage.add_index(path)
        texts = [{"n": "[1]", "s": '{"a": 1}'}, {"n": "[1]"}, {"s": "{x"}]
        batch = [*batch, *(ev(data=d, timestamp=query.since) for d in texts)]
        query = query.with_(severities=())
    await storage.append(batch)
    ledger.extend(batch)
    parsed = facet_fields(fields, top)
    got = await storage.facets(query, parsed, top)
    want = facet_events(ledger, query, parsed, top)
    assert _facet_rows(got) == _facet_rows(want)


async def test_count_by_bucket_and_severity_fills_empty_buckets(storage: Storage) -> None:
    assert isinstance(storage, Aggregating)
    await storage.append(
        [ev(severity="error", timestamp=BASE + timedelta(minutes=20)), ev(timestamp=BASE)]
    )
    spec = AggregateSpec.parse(["severity"], interval="15m", metrics=["count"])
    result = await storage.aggregate(Query(since=BASE, until=BASE + timedelta(hours=1)), spec)
    counts = {(r.bucket, r.keys): r.values[0] for r in result.rows}
    assert len(result.rows) == 8  # four buckets x two severities
    assert counts[(BASE + timedelta(minutes=15), ("error",))] == 1
    assert counts[(BASE, ("info",))] == 1
    assert counts[(BASE + timedelta(minutes=45), ("error",))] == 0


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "1d"])
async def test_years_before_1000_bucket_and_count(storage: Storage, interval: str) -> None:
    # strftime's %Y writes 999, not 0999: hour keys and buckets must not depend on it.
    assert isinstance(storage, Aggregating)
    start = datetime(999, 1, 1, tzinfo=UTC)
    await storage.append([ev(timestamp=start + timedelta(minutes=m)) for m in (0, 30, 90)])
    window = Query(since=start, until=start + timedelta(hours=3))
    spec = AggregateSpec.parse([], interval=interval, metrics=["count"])
    result = await storage.aggregate(window, spec)
    assert sum(int(r.values[0] or 0) for r in result.rows) == 3
    assert result.rows[0].bucket == start
    assert await storage.count(window) == 3
    hours = await storage.group_count(window, "hour")
    assert sorted(hours.values()) == [1, 2]


async def test_values_outside_the_top_are_one_other_group_with_exact_metrics(
    storage: Storage,
) -> None:
    assert isinstance(storage, Aggregating)
    await storage.append(
        [
            ev(system=s, duration_ms=d)
            for s, d in [("alpha", 1), ("alpha", 2), ("beta", 10), ("gamma", 30)]
        ]
    )
    spec = AggregateSpec.parse(["system"], metrics=["count", "p50:duration_ms"], top=1)
    result = await storage.aggregate(Query(), spec)
    assert [(r.keys, r.values) for r in result.rows] == [
        (("alpha",), (2, 1.5)),
        ((OTHER,), (2, 20.0)),
    ]
    assert result.to_dict()["rows"][1] == {
        "key": {"system": None},
        "other": ["system"],
        "values": {"count": 2, "p50:duration_ms": 20.0},
    }


@pytest.mark.parametrize("minutes", [3, 30])
async def test_tag_facets_of_a_small_and_a_large_share_match_the_reference(
    storage: Storage, minutes: int
) -> None:
    # SQLite reads a small share through json_each, most of the store from event_tags.
    assert isinstance(storage, Aggregating)
    tags = [["a", "b"], [], ["b"], ["c", "a", "b"], [], ["a"], ["b", "d"], ["d"], [], ["a"]]
    events = [ev(timestamp=BASE + timedelta(minutes=i), tags=t) for i, t in enumerate(tags)]
    await storage.append(events)
    for query in (Query(since=BASE + timedelta(minutes=10 - minutes)), Query(tags_any=("b",))):
        for top in (1, 2, 5):
            got = await storage.facets(query, facet_fields(["tags"], top), top)
            want = facet_events(events, query, facet_fields(["tags"], top), top)
            assert [(identity(v), n) for v, n in got[0].values] == [
                (identity(v), n) for v, n in want[0].values
            ]
            assert got[0].other == want[0].other


@pytest.mark.parametrize(
    ("build", "word"),
    [
        (lambda: AggregateSpec.parse(["system", "severity", "event_type"], interval="1h"), "by:"),
        (lambda: AggregateSpec.parse(["title"]), "by:"),
        (lambda: AggregateSpec.parse([], metrics=["count"] * 2), "metric:"),
        (
            lambda: AggregateSpec.parse([], metrics=[f"p{i}:duration_ms" for i in range(11)]),
            "metric:",
        ),
        (lambda: AggregateSpec.parse([], metrics=["p95:system"]), "metric:"),
        (lambda: AggregateSpec.parse([], top=1001), "top:"),
        (lambda: AggregateSpec.parse([], interval="2h"), "interval:"),
        (lambda: facet_fields([], 10), "field:"),
    ],
)
def test_bad_specs_name_the_field(build: Any, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        build()


async def test_too_many_buckets_is_refused(storage: Storage) -> None:
    assert isinstance(storage, Aggregating)
    spec = AggregateSpec.parse([], interval="1m")
    with pytest.raises(ValueError, match=r"interval:.*more than 10000"):
        await storage.aggregate(Query(since=BASE, until=BASE + timedelta(days=7)), spec)


@pytest.mark.parametrize("top", [1, 10])
async def test_counts_by_bucket_and_key_with_other(storage: Storage, top: int) -> None:
    # Counts by bucket and an indexed key: SQLite answers these with range counts.
    assert isinstance(storage, Aggregating)
    events = [
        ev(system=s, severity=v, timestamp=BASE + timedelta(minutes=m))
        for m, s, v in [(1, "alpha", "error"), (2, "beta", "info"), (20, "gamma", "info"),
                        (50, "alpha", "info"), (61, "beta", "warning")]
    ]  # fmt: skip
    await storage.append(events)
    query = Query(since=BASE + timedelta(minutes=1), until=BASE + timedelta(minutes=70))
    for key in ("system", "severity"):
        spec = AggregateSpec.parse([key], interval="15m", metrics=["count"], top=top)
        assert_same(await storage.aggregate(query, spec), aggregate_events(events, query, spec))


# Counts by bucket with at most one of system/type/severity: SQLite reads whole quarter
# hours from quarter_counts and the range's edges from the events. Timestamps and bounds
# fall anywhere in a minute, so every edge is a partial quarter.
_bucket_events = st.builds(
    lambda system, severity, seconds: ev(
        system=system, severity=severity, timestamp=BASE + timedelta(seconds=seconds)
    ),
    st.sampled_from(["alpha", "beta", "gamma"]),
    st.sampled_from(list(Severity)),
    st.integers(-3_600, 30 * 3_600),
)
_bucket_specs = st.builds(
    lambda by, interval, top: AggregateSpec.parse(by, interval=interval, top=top),
    st.sampled_from([[], ["system"], ["severity"], ["event_type"]]),
    st.sampled_from(["15m", "1h", "1d", "auto"]),
    st.integers(1, 4),
)
_bucket_queries = st.builds(
    lambda since, hours, seconds, systems: Query(
        since=BASE + timedelta(seconds=since),
        until=BASE + timedelta(hours=hours, seconds=since + seconds),
        systems=systems,
    ),
    st.integers(-1_800, 20 * 3_600),
    st.sampled_from([0, 1, 3, 8, 30]),  # not shrunk to 0: most ranges span quarters
    st.integers(60, 3_599),
    st.lists(st.sampled_from(["alpha", "beta"]), max_size=1, unique=True).map(tuple),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(_bucket_events, min_size=1, max_size=40),
    cases=st.lists(st.tuples(_bucket_queries, _bucket_specs), min_size=1, max_size=3),
    cut=st.integers(0, 24 * 3_600),
)
async def test_counts_by_bucket_match_the_reference_before_and_after_a_cleanup(
    storage: Storage, ledger: list[Event], batch: list[Event], cases: list[Any], cut: int
) -> None:
    assert isinstance(storage, Aggregating)
    await storage.append(batch)
    ledger.extend(batch)
    for query, spec in cases:
        assert_same(
            await storage.aggregate(query, spec), aggregate_events(ledger, query, spec, NOW)
        )
    # Cleanup subtracts what it deletes from the rollups, quarter hours included.
    now = BASE + timedelta(seconds=cut) + timedelta(days=1)
    where = parse_filter("severity:<=warning", now=NOW)
    await storage.cleanup_old_events(1, now=now, where=where)
    cutoff = now - timedelta(days=1)
    ledger[:] = [e for e in ledger if e.timestamp >= cutoff or e.severity.rank > 2]
    for query, spec in cases:
        assert_same(
            await storage.aggregate(query, spec), aggregate_events(ledger, query, spec, NOW)
        )


# Tag facets over a time range (and a system): SQLite reads whole hours from tag_counts
# and the partial hours at either end from the events' tags.
_tagged_events = st.builds(
    lambda system, severity, seconds, tags: ev(
        system=system,
        severity=severity,
        timestamp=BASE + timedelta(seconds=seconds),
        tags=tags,
    ),
    st.sampled_from(["alpha", "beta", "gamma"]),
    st.sampled_from(list(Severity)),
    st.integers(-3_600, 30 * 3_600),
    st.lists(st.sampled_from(_TAGS), max_size=3, unique=True),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(_tagged_events, min_size=1, max_size=40),
    queries=st.lists(_bucket_queries, min_size=1, max_size=3),
    top=st.integers(1, 4),
    cut=st.integers(0, 24 * 3_600),
)
async def test_tag_facets_over_hours_match_the_reference_before_and_after_a_cleanup(
    storage: Storage,
    ledger: list[Event],
    batch: list[Event],
    queries: list[Query],
    top: int,
    cut: int,
) -> None:
    assert isinstance(storage, Aggregating)
    await storage.append(batch)
    ledger.extend(batch)
    fields = facet_fields(["tag"], top)
    # An unbounded range and one with severities read the rollup too.
    for query in [*queries, Query(), queries[0].with_(severities=("info", "error"))]:
        want = facet_events(ledger, query, fields, top)
        assert _facet_rows(await storage.facets(query, fields, top)) == _facet_rows(want)
    # Cleanup subtracts what it deletes from the tag counts too.
    now = BASE + timedelta(seconds=cut) + timedelta(days=1)
    await storage.cleanup_old_events(1, now=now, where=parse_filter("tag:a", now=NOW))
    cutoff = now - timedelta(days=1)
    ledger[:] = [e for e in ledger if e.timestamp >= cutoff or "a" not in e.tags]
    for query in queries:
        want = facet_events(ledger, query, fields, top)
        assert _facet_rows(await storage.facets(query, fields, top)) == _facet_rows(want)
    # And an unfiltered one, which drops PostgreSQL's whole days.
    later = now + timedelta(days=1)
    await storage.cleanup_old_events(1, now=later)
    ledger[:] = [e for e in ledger if e.timestamp >= later - timedelta(days=1)]
    for query in [*queries, Query()]:
        want = facet_events(ledger, query, fields, top)
        assert _facet_rows(await storage.facets(query, fields, top)) == _facet_rows(want)


# A full-text word that starts no stored word: SQLite folds its term away (an AND of it
# matches nothing, an OR drops it, a NOT of it is true) before planning; every read still
# answers as the reference does.
UNMATCHABLE = [
    "zzq",
    "zzq OR system:beta",
    "system:beta -zzq",
    "-(zzq OR severity:error) system:alpha",
    '"zzq build" OR severity:error',
    "build zzq",
    "(zzq build) OR (tag:a -zzq)",
]


@pytest.mark.parametrize("text", UNMATCHABLE)
async def test_an_unmatchable_word_under_and_or_not(storage: Storage, text: str) -> None:
    assert isinstance(storage, Aggregating)
    events = [
        ev(
            timestamp=BASE + timedelta(minutes=i),
            system=("alpha", "beta")[i % 2],
            severity=("info", "error", "warning")[i % 3],
            title=("build done", "deploy")[i % 2],
            tags=[["a"], []][i % 2],
            duration_ms=i,
        )
        for i in range(40)
    ]
    await storage.append(events)
    query = Query(where=parse_filter(text), since=BASE, until=BASE + timedelta(minutes=41))
    chosen = [e for e in events if query.matches(e)]
    newest = sorted(chosen, key=lambda e: e.timestamp, reverse=True)[:5]
    assert await storage.query(query.with_(limit=5)) == newest, text
    assert await storage.count(query) == len(chosen), text
    assert await storage.group_count(query, "system") == dict(
        Counter(e.system.value for e in chosen).most_common()
    )
    assert (await storage.duration_stats(query)).count == len(chosen)
    spec = AggregateSpec.parse(["severity"], interval="15m", metrics=["count"])
    assert_same(await storage.aggregate(query, spec), aggregate_events(events, query, spec))
    fields = facet_fields(["system", "severity", "tag"], 5)
    got = await storage.facets(query, fields, 5)
    want = facet_events(events, query, fields, 5)
    assert [(f.field, Counter(f.values), f.other) for f in got] == [
        (f.field, Counter(f.values), f.other) for f in want
    ], text
