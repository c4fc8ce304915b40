"""EventQueryBuilder: every method of the spec's API reference, against real SQLite."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _reference import reference
from eventcollector import (
    Event,
    EventCollector,
    EventQueryBuilder,
    EventType,
    Query,
    Severity,
    System,
)
from eventcollector.filters import parse_filter
from eventcollector.query import ORDER_FIELDS

EventFactory = Callable[..., Event]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def ids(builder: EventQueryBuilder) -> list[str]:
    return [e.id for e in await builder.execute()]


@pytest.fixture
async def sample(collector: EventCollector, make_event: EventFactory) -> dict[str, Event]:
    """A small named data set, stored in this order (oldest first)."""
    wf, test = EventType.WORKFLOW_STARTED, EventType.TEST_PASSED
    specs: dict[str, dict[str, Any]] = {
        "wf_start": {
            "event_type": wf, "tags": ["workflow", "rag"], "correlation_id": "wf_1",
            "source_component": "orchestrator", "title": "Workflow started: wf_1",
            "description": "Starting workflow for repo",
        },
        "wf_done": {
            "event_type": EventType.WORKFLOW_COMPLETED, "tags": ["workflow"],
            "correlation_id": "wf_1", "duration_ms": 7000, "source_component": "orchestrator",
            "title": "Workflow completed: wf_1",
        },
        "wf_fail": {
            "event_type": EventType.WORKFLOW_FAILED, "severity": Severity.ERROR,
            "tags": ["workflow", "rag"], "correlation_id": "wf_2", "duration_ms": 300,
            "title": "Workflow failed: wf_2", "description": "Database connection refused",
        },
        "test_ok": {
            "system": System.CRACKERJACK, "event_type": test, "tags": ["test", "unit"],
            "duration_ms": 12, "title": "Test test_a: passed",
            "source_component": "quality_checker",
        },
        "test_bad": {
            "system": System.CRACKERJACK, "event_type": EventType.TEST_FAILED,
            "severity": Severity.CRITICAL, "tags": ["quality"], "title": "Test test_b: failed",
        },
        "session": {
            "system": System.SESSION_BUDDY, "event_type": EventType.SESSION_CREATED,
            "severity": Severity.DEBUG, "title": "Session created: s1",
            "description": "DATABASE ready",
        },
    }  # fmt: skip
    events = {
        name: make_event(timestamp=T0 + timedelta(minutes=10 * i), **fields)
        for i, (name, fields) in enumerate(specs.items())
    }
    assert await collector.ingest(list(events.values())) == [True] * len(events)
    return events


def names(sample: dict[str, Event], found: list[str]) -> list[str]:
    by_id = {e.id: name for name, e in sample.items()}
    return [by_id[i] for i in found]


async def run(collector: EventCollector, sample: dict[str, Event], configure: Any) -> list[str]:
    return names(sample, await ids(configure(EventQueryBuilder(collector))))


async def test_execute_without_filters_is_newest_first(
    collector: EventCollector, sample: dict[str, Event]
) -> None:
    assert await run(collector, sample, lambda b: b) == list(reversed(sample))
    assert await EventQueryBuilder(collector).count() == len(sample)


@pytest.mark.parametrize(
    ("configure", "expected"),
    [
        (lambda b: b.system(System.CRACKERJACK), "test_bad test_ok"),
        (lambda b: b.system("session_buddy"), "session"),
        (lambda b: b.systems([System.CRACKERJACK, "session_buddy"]), "session test_bad test_ok"),
        (lambda b: b.event_type(EventType.WORKFLOW_STARTED), "wf_start"),
        (lambda b: b.event_types([EventType.WORKFLOW_STARTED, "workflow.completed"]),
         "wf_done wf_start"),
        (lambda b: b.severity(Severity.ERROR), "wf_fail"),
        (lambda b: b.severity("critical"), "test_bad"),
        (lambda b: b.severities([Severity.ERROR, Severity.CRITICAL]), "test_bad wf_fail"),
        (lambda b: b.min_severity(Severity.ERROR), "test_bad wf_fail"),
        (lambda b: b.tags(["workflow", "rag"]), "wf_fail wf_start"),
        (lambda b: b.tags(["workflow"]), "wf_fail wf_done wf_start"),
        (lambda b: b.any_tags(["test", "quality"]), "test_bad test_ok"),
        (lambda b: b.correlation_id("wf_1"), "wf_done wf_start"),
        (lambda b: b.source_component("orchestrator"), "wf_done wf_start"),
        (lambda b: b.source_components(["orchestrator", "quality_checker"]),
         "test_ok wf_done wf_start"),
        (lambda b: b.search("database"), "session wf_fail"),
        (lambda b: b.search("DATA conn"), "wf_fail"),
        (lambda b: b.search("workflow wf_1"), "wf_done wf_start"),
        (lambda b: b.search("nothing-like-this"), ""),
        (lambda b: b.min_duration(300), "wf_fail wf_done"),
        (lambda b: b.system("mahavishnu").severity("error").tags(["workflow"]), "wf_fail"),
        (lambda b: b.limit(2), "session test_bad"),
        (lambda b: b.limit(2).offset(1), "test_bad test_ok"),
        (lambda b: b.offset(5), "wf_start"),
        (lambda b: b.limit(0), ""),
        (lambda b: b.order_by("timestamp", ascending=True).limit(2), "wf_start wf_done"),
        # NULLs last in both directions, ties (all NULL) in insertion order.
        (lambda b: b.order_by("duration_ms", ascending=False),
         "wf_done wf_fail test_ok session test_bad wf_start"),
        (lambda b: b.order_by("duration_ms", ascending=True),
         "test_ok wf_fail wf_done wf_start test_bad session"),
        (lambda b: b.order_by("source_component", ascending=True),
         "wf_start wf_done test_ok wf_fail test_bad session"),
        (lambda b: b.order_by("title", ascending=True).limit(1), "session"),
    ],
)  # fmt: skip
async def test_filters(
    collector: EventCollector, sample: dict[str, Event], configure: Any, expected: str
) -> None:
    assert await run(collector, sample, configure) == expected.split()
    assert await configure(EventQueryBuilder(collector)).count() == len(
        await run(collector, sample, lambda b: configure(b).limit(100_000).offset(0))
    )


async def test_count_ignores_limit_and_offset(
    collector: EventCollector, sample: dict[str, Event]
) -> None:
    assert await EventQueryBuilder(collector).limit(1).offset(2).count() == len(sample)
    assert await EventQueryBuilder(collector).system("crackerjack").limit(1).count() == 2


async def test_first(collector: EventCollector, sample: dict[str, Event]) -> None:
    first = await EventQueryBuilder(collector).system("crackerjack").first()
    assert first is not None
    assert first.id == sample["test_bad"].id
    assert await EventQueryBuilder(collector).system("akosha").first() is None


async def test_execute_returns_events_equal_to_the_stored_ones(
    collector: EventCollector, sample: dict[str, Event]
) -> None:
    found = await EventQueryBuilder(collector).correlation_id("wf_2").execute()
    assert found == [sample["wf_fail"]]
    assert isinstance(found[0].system, System)
    assert isinstance(found[0].severity, Severity)


async def test_builder_chains_and_is_lazy(collector: EventCollector) -> None:
    builder = EventQueryBuilder(collector)
    assert builder.system("mahavishnu") is builder
    assert builder.limit(3).offset(1).order_by("title") is builder
    assert builder.build() == Query(
        systems=("mahavishnu",), limit=3, offset=1, order_by="title", ascending=False
    )


# -- time ranges -----------------------------------------------------------------


async def test_time_range_explicit_is_half_open(
    collector: EventCollector, sample: dict[str, Event]
) -> None:
    found = await run(
        collector,
        sample,
        lambda b: b.time_range(since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30)),
    )
    assert found == ["wf_fail", "wf_done"]


async def test_time_range_naive_datetimes_are_utc(
    collector: EventCollector, sample: dict[str, Event]
) -> None:
    naive = T0.replace(tzinfo=None)
    found = await run(
        collector,
        sample,
        lambda b: b.time_range(
            since=naive + timedelta(minutes=40), until=naive + timedelta(hours=1)
        ),
    )
    assert found == ["session", "test_bad"]
    query = EventQueryBuilder(collector).time_range(since=naive).build()
    assert query.since == T0


async def test_time_range_accepts_iso_strings(
    collector: EventCollector, sample: dict[str, Event]
) -> None:
    found = await run(collector, sample, lambda b: b.time_range(since="2025-01-01T00:45:00Z"))
    assert found == ["session"]


@pytest.mark.parametrize(
    ("kwargs", "window"),
    [
        ({"minutes": 30}, timedelta(minutes=30)),
        ({"hours": 1}, timedelta(hours=1)),
        ({"days": 7}, timedelta(days=7)),
        ({"hours": 1, "minutes": 30}, timedelta(minutes=90)),
    ],
)
async def test_time_range_relative(
    collector: EventCollector, kwargs: dict[str, Any], window: timedelta
) -> None:
    now = datetime.now(UTC)
    inside = await collector.collect(
        system="a", event_type="b", title="inside", timestamp=now - window + timedelta(minutes=5)
    )
    await collector.collect(
        system="a", event_type="b", title="outside", timestamp=now - window - timedelta(minutes=5)
    )
    builder = EventQueryBuilder(collector).time_range(**kwargs)
    since = builder.build().since
    assert since is not None
    assert abs(since - (now - window)) < timedelta(minutes=1)
    assert await ids(builder) == [inside.id]
    assert await builder.count() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hours": 1, "since": T0},
        {"minutes": -5},
        {"since": T0, "until": T0 - timedelta(seconds=1)},
        {"since": "not a date"},
    ],
)
def test_time_range_rejects_bad_arguments(collector: EventCollector, kwargs: Any) -> None:
    with pytest.raises(ValueError, match=r"^(time_range|since|until): "):
        EventQueryBuilder(collector).time_range(**kwargs)


# -- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["id", "data", "description", "rowid", "timestamp; DROP TABLE events", ""]
)
def test_order_by_rejects_unknown_fields(collector: EventCollector, field: str) -> None:
    with pytest.raises(ValueError, match=r"^order_by: "):
        EventQueryBuilder(collector).order_by(field)


@pytest.mark.parametrize("field", sorted(ORDER_FIELDS))
async def test_order_by_accepts_known_fields(collector: EventCollector, field: str) -> None:
    await collector.collect(system="a", event_type="b", title="t")
    assert len(await EventQueryBuilder(collector).order_by(field, ascending=True).execute()) == 1


@pytest.mark.parametrize(
    ("configure", "field"),
    [
        (lambda b: b.severity("loud"), "severity"),
        (lambda b: b.severities(["error", "nope"]), "severity"),
        (lambda b: b.min_severity("nope"), "severity"),
        (lambda b: b.system("Not Valid"), "system"),
        (lambda b: b.event_type("BAD TYPE"), "event_type"),
        (lambda b: b.limit(-1), "limit"),
        (lambda b: b.limit("10"), "limit"),
        (lambda b: b.offset(-1), "offset"),
        (lambda b: b.search("   "), "search"),
        (lambda b: b.tags([""]), "tags"),
        (lambda b: b.any_tags([None]), "any_tags"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_field(
    collector: EventCollector, configure: Any, field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        configure(EventQueryBuilder(collector))


async def test_values_are_bound_not_interpolated(
    collector: EventCollector, make_event: EventFactory
) -> None:
    nasty = "x' OR '1'='1"
    event = make_event(title="quote ' \" % _ * (", correlation_id="o'brien", tags=["it's"])
    await collector.ingest([event, make_event()])
    assert await ids(EventQueryBuilder(collector).correlation_id("o'brien")) == [event.id]
    assert await ids(EventQueryBuilder(collector).tags(["it's"])) == [event.id]
    assert await ids(EventQueryBuilder(collector).correlation_id(nasty)) == []
    assert await ids(EventQueryBuilder(collector).search('"quote" * NEAR(')) == []
    assert await ids(EventQueryBuilder(collector).search('"quote* (')) == [event.id]
    assert await EventQueryBuilder(collector).count() == 2


async def test_search_punctuation_only_finds_nothing(collector: EventCollector) -> None:
    await collector.collect(system="a", event_type="b", title="anything")
    with pytest.raises(ValueError, match=r"^search: "):
        await EventQueryBuilder(collector).search("***").execute()


# -- Hypothesis: SQLite results == plain-Python reference ------------------------------

WORDS = [
    "alpha",
    "Beta",
    "gamma",
    "DATA",
    "database",
    "error",
    "Éclair",
    "naïve",
    "x1",
    "Straße",
    "ΣΟΦΊΑ",
]

stored_events: st.SearchStrategy[list[dict[str, Any]]] = st.lists(
    st.builds(
        dict,
        system=st.sampled_from(["mahavishnu", "crackerjack", "deployer"]),
        event_type=st.sampled_from(["workflow.started", "workflow.completed", "test.failed"]),
        severity=st.sampled_from(list(Severity)),
        title=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
        description=st.lists(st.sampled_from(WORDS), max_size=3).map("-".join),
        tags=st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3),
        correlation_id=st.none() | st.sampled_from(["c1", "c2"]),
        source_component=st.none() | st.sampled_from(["api", "worker"]),
        duration_ms=st.none() | st.integers(0, 50),
        # Few distinct instants, so that ties in every order field are common.
        timestamp=st.integers(0, 12).map(lambda n: T0 + timedelta(minutes=30 * n)),
    ),
    max_size=25,
)

times = st.integers(-30, 7 * 60).map(lambda m: T0 + timedelta(minutes=m, seconds=m % 7))


@st.composite
def builder_calls(draw: st.DrawFn) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    def some(*values: Any) -> st.SearchStrategy[list[Any]]:
        return st.lists(st.sampled_from(values), min_size=1, max_size=3)

    searches = [*WORDS, "dat", "ÉCL", "naive", "al be", "STRASSE", "straß", "σοφ"]
    options: list[tuple[str, st.SearchStrategy[Any]]] = [
        ("systems", some("mahavishnu", "crackerjack", "deployer", "akosha")),
        ("event_types", some("workflow.started", "test.failed", "x.y")),
        ("severities", some(*Severity)),
        ("min_severity", st.sampled_from(list(Severity))),
        ("tags", some("a", "b", "c", "z")),
        ("any_tags", some("a", "b", "c", "z")),
        ("correlation_id", st.sampled_from(["c1", "c2", "c3"])),
        ("source_components", some("api", "worker", "db")),
        ("search", some(*searches).map(" ".join)),
        ("min_duration", st.integers(0, 50)),
    ]
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for name, values in options:
        if draw(st.booleans()):
            calls.append((name, (draw(values),), {}))
    if draw(st.booleans()):
        since, until = draw(st.none() | times), draw(st.none() | times)
        if since is not None and until is not None and until < since:
            since, until = until, since
        calls.append(("time_range", (), {"since": since, "until": until}))
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(ORDER_FIELDS)))
        calls.append(("order_by", (field,), {"ascending": draw(st.booleans())}))
    if draw(st.booleans()):
        calls.append(("limit", (draw(st.integers(0, 30)),), {}))
    if draw(st.booleans()):
        calls.append(("offset", (draw(st.integers(0, 30)),), {}))
    return calls


def group_reference(events: list[Event], query: Query, field: str) -> dict[str, int]:
    def key(e: Event) -> str:
        if field == "hour":
            return e.timestamp.strftime("%Y-%m-%dT%H:00:00+00:00")
        value = getattr(e, field)
        return "" if value is None else str(value.value if hasattr(value, "value") else value)

    return dict(Counter(key(e) for e in events if query.matches(e)))


@settings(max_examples=50, deadline=None)
@given(data=stored_events, calls=builder_calls())
def test_builder_matches_python_reference(
    tmp_path_factory: pytest.TempPathFactory,
    data: list[dict[str, Any]],
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
) -> None:
    path = tmp_path_factory.mktemp("hypothesis") / "events.db"
    asyncio.run(_compare(path, data, calls))


async def _compare(
    path: Path, data: list[dict[str, Any]], calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]
) -> None:
    events = [Event.create(**fields) for fields in data]
    async with EventCollector(path) as collector:
        # Half one batch, half one by one: both paths must keep insertion order.
        half = len(events) // 2
        await collector.ingest(events[:half])
        for event in events[half:]:
            await collector.ingest([event])
        builder = EventQueryBuilder(collector)
        for name, args, kwargs in calls:
            getattr(builder, name)(*args, **kwargs)
        query = builder.build()
        expected = reference(events, query)
        assert [e.id for e in await builder.execute()] == [e.id for e in expected]
        assert await builder.execute() == expected
        assert await builder.count() == len(reference(events, query.unbounded))
        for field in ("system", "severity", "source_component", "hour"):
            assert await collector.group_count(query, field) == group_reference(
                events, query, field
            )


# -- where: the filter language (docs/filters.md) --------------------------------------


def test_where_is_anded_with_the_other_methods(
    collector: EventCollector, sample: dict[str, Event]
) -> None:
    query = (
        EventQueryBuilder(collector)
        .system(System.MAHAVISHNU)
        .where("tag:rag OR duration:>5000")
        .build()
    )
    assert [n for n, e in sample.items() if query.matches(e)] == ["wf_start", "wf_done", "wf_fail"]
    narrower = EventQueryBuilder(collector).where("tag:rag OR duration:>5000").severity("error")
    assert [n for n, e in sample.items() if narrower.build().matches(e)] == ["wf_fail"]


def test_where_twice_ands_both(collector: EventCollector, sample: dict[str, Event]) -> None:
    builder = EventQueryBuilder(collector).where("tag:workflow").where('-"database"')
    assert str(builder.build().where) == 'tag:workflow -"database"'
    assert [n for n, e in sample.items() if builder.build().matches(e)] == ["wf_start", "wf_done"]


def test_where_takes_a_parsed_filter(collector: EventCollector) -> None:
    node = parse_filter("severity:>=error data.repo:acme/*")
    assert EventQueryBuilder(collector).where(node).build().where == node


def test_where_refuses_a_bad_filter_at_the_call(collector: EventCollector) -> None:
    builder = EventQueryBuilder(collector).where("tag:a")
    with pytest.raises(ValueError, match=r"^q: expected a value after 'severity:' at column 10$"):
        builder.where("severity:")
    assert str(builder.build().where) == "tag:a"
