"""Every Python example of the spec, run against this package.

The examples are copied verbatim from ``central-event-logging.md`` (``SPEC_EXAMPLES``
at the end of this file; a test checks the copy against the spec when it is
available). They run with ``mahavishnu.core.event_collector`` read as
``eventcollector``; the helpers they call but do not define (``execute_workflow``,
``send_alert``, ...) are small stubs here. The tests then check what was stored.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import enum
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import eventcollector
from eventcollector import (
    Event,
    EventAnalyzer,
    EventCollector,
    EventQueryBuilder,
    EventType,
    Query,
    Severity,
    System,
)

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "central-event-logging.md"
SPEC = Path(os.environ.get("EVENTCOLLECTOR_SPEC", SPEC))


async def run_example(number: int, namespace: dict[str, Any], source: str | None = None) -> Any:
    """Run spec example ``number`` (or a part of it, ``source``) with top-level ``await``."""
    source = (source or SPEC_EXAMPLES[number]).replace(
        "mahavishnu.core.event_collector", "eventcollector"
    )
    code = compile(source, f"<spec example {number}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # noqa: S307 - the spec's own examples
    if asyncio.iscoroutine(result):
        await result
    return namespace


def base_namespace(collector: EventCollector) -> dict[str, Any]:
    return {
        "collector": collector,
        "System": System,
        "EventType": EventType,
        "Severity": Severity,
        "Event": Event,
        "EventQueryBuilder": EventQueryBuilder,
        "EventAnalyzer": EventAnalyzer,
        "get_event_collector": eventcollector.get_event_collector,
        "asyncio": asyncio,
    }


async def stored(collector: EventCollector, **filters: Any) -> list[Event]:
    await collector.flush()
    return await collector.query(Query(ascending=True, **filters))


async def noop(*args: Any, **kwargs: Any) -> None:
    return None


# -- the schema reference ------------------------------------------------------------


def test_spec_copy_is_verbatim() -> None:
    if not SPEC.exists():
        pytest.skip(f"spec not found at {SPEC} (set EVENTCOLLECTOR_SPEC)")
    blocks = re.findall(r"```python\n(.*?)```", SPEC.read_text(encoding="utf-8"), re.S)
    assert blocks == [example.removeprefix("\n") for example in SPEC_EXAMPLES.values()]


def test_schema_reference_matches_the_model() -> None:
    ns: dict[str, Any] = {"dataclass": dataclasses.dataclass, "Enum": enum.Enum}
    ns.update(datetime=datetime, Any=Any, System=System, EventType=EventType, Severity=Severity)
    for number in (0, 1, 2, 3):
        exec(SPEC_EXAMPLES[number], ns)  # noqa: S102 - the spec's own class definitions
    spec_fields = [f.name for f in dataclasses.fields(ns["Event"])]
    assert spec_fields == [f.name for f in dataclasses.fields(Event)]
    for ours in (System, EventType, Severity):
        for member in ns[ours.__name__]:
            assert ours[member.name].value == member.value
            assert ours(member.value) == member.value


# -- integration guide -------------------------------------------------------------------


async def test_mahavishnu_integration(process_collector: EventCollector) -> None:
    calls: list[str] = []

    async def execute_workflow(workflow_id: str) -> None:
        calls.append(workflow_id)
        if workflow_id == "wf_bad":
            raise RuntimeError("pool exhausted")

    ns = base_namespace(process_collector) | {
        "execute_workflow": execute_workflow,
        "duration": 1234,
    }
    await run_example(4, ns)
    await ns["run_workflow"]("wf_ok", "org/repo")
    with pytest.raises(RuntimeError, match="pool exhausted"):
        await ns["run_workflow"]("wf_bad", "org/repo")
    assert calls == ["wf_ok", "wf_bad"]

    ok = await stored(process_collector, correlation_id="wf_ok")
    assert [e.event_type for e in ok] == [EventType.WORKFLOW_STARTED, EventType.WORKFLOW_COMPLETED]
    assert ok[0].data == {
        "workflow_id": "wf_ok",
        "repo": "org/repo",
        "workflow_type": "rag_pipeline",
    }
    assert ok[0].tags == ["workflow", "rag", "orchestration"]
    assert ok[0].source_component == "orchestrator"
    assert ok[1].duration_ms == 1234
    bad = await stored(process_collector, correlation_id="wf_bad")
    assert [e.event_type for e in bad] == [EventType.WORKFLOW_STARTED, EventType.WORKFLOW_FAILED]
    assert bad[1].severity is Severity.ERROR
    assert bad[1].data == {"error": "pool exhausted", "error_type": "RuntimeError"}


async def test_crackerjack_integration(process_collector: EventCollector) -> None:
    tests = [
        SimpleNamespace(name=name, status=status, passed=status == "passed", file="t.py",
                        duration=ms, is_unit=unit)
        for name, status, ms, unit in (
            ("test_a", "passed", 12, True),
            ("test_b", "failed", 30, False),
        )
    ]  # fmt: skip
    results = SimpleNamespace(tests=tests, passed=1, failed=1, skipped=0, total=2, coverage=81.5)

    async def execute_checks(repo: str) -> SimpleNamespace:
        return results

    ns = await run_example(
        5, base_namespace(process_collector) | {"execute_checks": execute_checks}
    )
    await ns["run_quality_checks"]("org/repo")
    events = await stored(process_collector, systems=("crackerjack",))
    assert [e.event_type.value for e in events] == [
        "quality_check.started", "test.passed", "test.failed", "quality_check.completed",
    ]  # fmt: skip
    assert events[1].tags == ["test", "unit"]
    assert events[2].tags == ["test", "integration"]
    assert events[2].data == {"test_name": "test_b", "test_file": "t.py", "duration_ms": 30}
    assert events[3].description == "Quality checks completed: 1/2 passed"
    assert events[3].data["coverage"] == 81.5


async def test_session_buddy_integration(process_collector: EventCollector) -> None:
    ns = await run_example(6, base_namespace(process_collector))
    await ns["create_session"]("s1", {"user": "ada"})
    await ns["update_session"]("s1", {"a": 1, "b": 2})
    await ns["restore_session"]("s1")
    events = await stored(process_collector, correlation_id="s1")
    assert [e.event_type for e in events] == [
        EventType.SESSION_CREATED, EventType.SESSION_UPDATED, EventType.SESSION_RESTORED,
    ]  # fmt: skip
    assert events[0].data == {"session_id": "s1", "context": {"user": "ada"}}
    assert events[1].description == "Session updated with 2 fields"
    assert all(e.source_component == "session_manager" for e in events)


async def test_akosha_integration(process_collector: EventCollector) -> None:
    async def run_query(query: str, params: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(has_insights=True, insights=["spike"], confidence=0.9)

    ns = await run_example(7, base_namespace(process_collector) | {"run_query": run_query})
    results = await ns["execute_query"]("SELECT 1", {"limit": 5})
    assert results.insights == ["spike"]
    events = await stored(process_collector, systems=("akosha",))
    assert [e.event_type for e in events] == [EventType.ANALYTICS_QUERY, EventType.INSIGHT_DETECTED]
    assert events[0].data == {"query": "SELECT 1", "params": {"limit": 5}}
    assert events[1].data == {"insights": ["spike"], "confidence": 0.9}


async def test_oneiric_integration(process_collector: EventCollector) -> None:
    ns = base_namespace(process_collector) | {
        "config": {"debug": True, "pool": 4},
        "validate": lambda config: ["pool: too small"] if config.get("pool", 0) < 8 else [],
    }
    await run_example(8, ns)
    await ns["reload_config"]("/etc/app.toml")
    await ns["validate_config"]({"pool": 4})
    await ns["validate_config"]({"pool": 16})
    events = await stored(process_collector, systems=("oneiric",))
    assert [e.event_type for e in events] == [
        EventType.CONFIG_RELOADED, EventType.CONFIG_VALIDATED, EventType.CONFIG_VALIDATED,
    ]  # fmt: skip
    assert events[0].data == {"config_path": "/etc/app.toml", "config_keys": ["debug", "pool"]}
    assert events[1].severity is Severity.WARNING
    assert events[1].data == {"valid": False, "errors": ["pool: too small"]}
    assert events[2].severity is Severity.INFO


async def test_decorator_example(process_collector: EventCollector) -> None:
    processed: list[str] = []

    async def process_repo(repo: str) -> None:
        processed.append(repo)

    ns = await run_example(9, base_namespace(process_collector) | {"process_repo": process_repo})
    assert await ns["run_workflow"]("org/repo") == {"status": "success"}
    assert processed == ["org/repo"]
    events = await stored(process_collector)
    assert [e.event_type for e in events] == [
        EventType.WORKFLOW_STARTED,
        EventType.WORKFLOW_COMPLETED,
    ]
    assert events[0].correlation_id == events[1].correlation_id
    assert events[1].duration_ms is not None


# -- query examples 1-15 and the builder reference ------------------------------------------


@pytest.fixture
async def seeded(
    process_collector: EventCollector, make_event: Callable[..., Event]
) -> list[Event]:
    now = datetime.now(UTC)

    def at(minutes: float, **fields: Any) -> Event:
        return make_event(timestamp=now - timedelta(minutes=minutes), **fields)

    events = [
        at(2 * 24 * 60, system="mahavishnu", event_type="workflow.completed", duration_ms=9000,
           correlation_id="workflow_abc123", title="Old slow workflow"),
        at(150, system="crackerjack", event_type="test.failed", severity="error",
           tags=["test", "unit"], title="Test failed: database fixture"),
        at(90, system="mahavishnu", event_type="workflow.started", tags=["workflow", "rag"],
           correlation_id="workflow_abc123", title="Workflow started"),
        at(80, system="mahavishnu", event_type="workflow.completed", duration_ms=6000,
           correlation_id="workflow_abc123", title="Workflow completed", tags=["workflow"]),
        at(30, system="mahavishnu", event_type="workflow.failed", severity="error",
           tags=["workflow", "rag"], correlation_id="workflow_123", title="Workflow failed",
           description="Database error: connection refused", duration_ms=100),
        at(20, system="session_buddy", event_type="session.created", tags=["quality"],
           correlation_id="workflow_123", title="Session created", duration_ms=300),
        at(10, system="akosha", event_type="analytics.query", severity="critical",
           title="Query crashed", source_component="orchestrator"),
        at(5, system="mahavishnu", event_type="workflow.completed", duration_ms=1200,
           title="Quick workflow", source_component="orchestrator"),
    ]  # fmt: skip
    await process_collector.ingest(events)
    return events


def newest_first(events: list[Event], predicate: Callable[[Event], bool]) -> list[str]:
    return [e.id for e in sorted(events, key=lambda e: e.timestamp, reverse=True) if predicate(e)]


def within(minutes: float) -> Callable[[Event], bool]:
    return lambda e: e.timestamp >= datetime.now(UTC) - timedelta(minutes=minutes)


QUERY_EXAMPLES: list[tuple[int, str, Callable[[Event], bool]]] = [
    (10, "events", within(60)),
    (11, "errors", lambda e: e.severity == "error"),
    (12, "mahavishnu_events", lambda e: e.system == "mahavishnu"),
    (13, "events", lambda e: e.system in ("mahavishnu", "crackerjack")),
    (14, "events", lambda e: e.severity in ("error", "critical")),
    (15, "events", lambda e: {"workflow", "rag"} <= set(e.tags)),
    (16, "events", lambda e: bool({"test", "quality"} & set(e.tags))),
    (17, "events", within(24 * 60)),
    (18, "events", lambda e: e.correlation_id == "workflow_abc123"),
    (19, "events", lambda e: "database" in f"{e.title} {e.description}".lower()),
    (20, "events",
     lambda e: e.system == "mahavishnu" and e.severity == "error" and "workflow" in e.tags),
    (22, "recent_errors", lambda e: e.severity == "error"),
]  # fmt: skip


@pytest.mark.parametrize(("number", "variable", "predicate"), QUERY_EXAMPLES)
async def test_query_examples(
    process_collector: EventCollector,
    seeded: list[Event],
    number: int,
    variable: str,
    predicate: Callable[[Event], bool],
) -> None:
    ns = await run_example(number, base_namespace(process_collector))
    expected = newest_first(seeded, predicate)
    assert expected, "the seeded data must exercise the example"
    assert [e.id for e in ns[variable]] == expected


async def test_query_example_8_explicit_range(
    process_collector: EventCollector, seeded: list[Event]
) -> None:
    ns = await run_example(17, base_namespace(process_collector))
    builder = EventQueryBuilder(process_collector).time_range(since=ns["since"], until=ns["until"])
    assert [e.id for e in await builder.execute()] == newest_first(
        seeded, lambda e: ns["since"] <= e.timestamp < ns["until"]
    )


async def test_query_example_12_ordering(
    process_collector: EventCollector, seeded: list[Event]
) -> None:
    ns = await run_example(21, base_namespace(process_collector))
    completed = [e for e in seeded if e.event_type == "workflow.completed"]
    by_duration = sorted(completed, key=lambda e: e.duration_ms or 0, reverse=True)
    assert [e.id for e in ns["events"]] == [e.id for e in by_duration]
    oldest_first = EventQueryBuilder(process_collector).system(System.MAHAVISHNU)
    found = await oldest_first.order_by("timestamp", ascending=True).execute()
    assert [e.id for e in found] == list(
        reversed(newest_first(seeded, lambda e: e.system == "mahavishnu"))
    )


async def test_query_example_14_count(
    process_collector: EventCollector, seeded: list[Event]
) -> None:
    ns = await run_example(23, base_namespace(process_collector))
    assert ns["error_count"] == len(
        newest_first(seeded, lambda e: e.severity == "error" and within(60)(e))
    )
    assert ns["error_count"] == 1


async def test_query_example_15_slow_workflows(
    process_collector: EventCollector, seeded: list[Event]
) -> None:
    ns = await run_example(24, base_namespace(process_collector))
    assert [e.title for e in ns["events"]] == ["Workflow completed", "Quick workflow"]
    assert [e.title for e in ns["slow_workflows"]] == ["Workflow completed"]


@pytest.mark.parametrize("number", [29, 30, 31, 32, 33, 34])
async def test_builder_reference_snippets(
    process_collector: EventCollector, seeded: list[Event], number: int
) -> None:
    builder = EventQueryBuilder(process_collector)
    ns = await run_example(
        number, base_namespace(process_collector) | {"builder": builder, "datetime": datetime}
    )
    await run_example(35, ns)
    query = builder.build()
    reference = [e for e in seeded if query.matches(e)]
    assert ns["count"] == len(reference)
    assert {e.id for e in ns["events"]} <= {e.id for e in reference}


# -- API reference ------------------------------------------------------------------


async def test_api_reference_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"System": System, "EventType": EventType, "Severity": Severity}
    await run_example(25, ns)
    collector: EventCollector = ns["collector"]
    try:
        assert collector.running
        assert Path(collector.db_path) == tmp_path / "data" / "events.db"
        await run_example(26, ns)
        assert await collector.get_event(ns["event"].id) == ns["event"]
        assert ns["event"].metadata == {"key": "value"}
        await run_example(27, ns)
        assert ns["stats"]["total_events"] == 1
        assert ns["stats"]["by_system"] == {"mahavishnu": 1}
        await run_example(28, ns)
        assert ns["health"]["status"] == "healthy"
        assert ns["health"]["running"] is True
    finally:
        await collector.stop()


async def test_api_reference_analyzer(
    process_collector: EventCollector, seeded: list[Event]
) -> None:
    ns = base_namespace(process_collector)
    await run_example(36, ns)
    assert ns["analysis"]["total_errors"] == 3
    assert ns["analysis"]["critical_errors"] == 1
    await run_example(37, ns)
    assert ns["patterns"]["total_events"] == len(seeded)
    await run_example(38, ns)
    assert [e.title for e in ns["events"]] == ["Workflow failed", "Session created"]
    await run_example(39, ns)
    assert ns["report"]["total_events"] == len(seeded) - 1
    for key in ("analysis", "patterns", "report"):
        json.dumps(ns[key])


# -- real-time monitoring ---------------------------------------------------------------


async def wait_for(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - subscribers run on other tasks and threads
            await asyncio.sleep(0.005)


async def test_subscribing_example(
    process_collector: EventCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    alerts: list[Event] = []

    async def send_alert(event: Event) -> None:
        alerts.append(event)

    ns = base_namespace(process_collector) | {"send_alert": send_alert}
    subscribe_part, unsubscribe_part = SPEC_EXAMPLES[40].split("# Unsubscribe")
    await run_example(40, ns, subscribe_part)
    error = await process_collector.collect(
        system="a", event_type="b", title="bad", severity="error"
    )
    await process_collector.collect(system="a", event_type="b", title="fine")
    output: list[str] = []

    def printed_both() -> bool:
        output.append(capsys.readouterr().out)
        return "New event: fine from a" in "".join(output)

    await wait_for(printed_both)
    assert "New event: bad from a" in "".join(output)
    assert alerts == [error]
    await run_example(40, ns, unsubscribe_part)
    assert process_collector.subscriber_count == 0


async def test_filtering_subscriptions_example(process_collector: EventCollector) -> None:
    handled: list[tuple[str, Event]] = []

    async def handle_error(event: Event) -> None:
        handled.append(("error", event))

    async def handle_mahavishnu_event(event: Event) -> None:
        handled.append(("mahavishnu", event))

    ns = base_namespace(process_collector) | {
        "handle_error": handle_error,
        "handle_mahavishnu_event": handle_mahavishnu_event,
    }
    await run_example(41, ns)
    crit = await process_collector.collect(
        system="akosha", event_type="b", title="x", severity="critical"
    )
    mv = await process_collector.collect(system="mahavishnu", event_type="b", title="y")
    await process_collector.collect(system="akosha", event_type="b", title="ignored")
    await wait_for(lambda: len(handled) == 2)
    assert sorted(handled, key=lambda h: h[0]) == [("error", crit), ("mahavishnu", mv)]


async def test_websocket_streaming_example(process_collector: EventCollector) -> None:
    sent: list[dict[str, Any]] = []
    closed = asyncio.Event()

    class WebSocket:
        async def send_json(self, payload: dict[str, Any]) -> None:
            sent.append(payload)

        async def wait_closed(self) -> None:
            await closed.wait()

    ns = await run_example(42, base_namespace(process_collector))
    task = asyncio.create_task(ns["stream_events"](WebSocket()))
    await wait_for(lambda: process_collector.subscriber_count == 1)
    event = await process_collector.collect(system="a", event_type="b", title="streamed")
    await wait_for(lambda: sent == [event.to_dict()])
    closed.set()
    await task
    assert process_collector.subscriber_count == 0


# -- analysis and insights ----------------------------------------------------------------


@pytest.mark.parametrize("number", [43, 44, 45, 46])
async def test_analysis_examples(
    process_collector: EventCollector,
    seeded: list[Event],
    number: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    ns = base_namespace(process_collector) | {"analyzer": EventAnalyzer(process_collector)}
    await run_example(number, ns)
    out = capsys.readouterr().out
    if number == 43:
        assert "Total errors: 3" in out
        assert "  - Workflow failed: Database error: connection refused" in out
    elif number == 44:
        assert f"Total events: {len(seeded)}" in out
    elif number == 45:
        assert "Workflow has 2 events" in out
        assert "Total duration: 200ms" in out
    else:
        report = json.loads((tmp_path / "event_report.json").read_text())
        assert report["total_events"] == len(seeded) - 1
        assert "  Min: 100ms" in out
        assert "  Max: 6000ms" in out


def test_debug_logging_example() -> None:
    root = logging.getLogger()
    named = logging.getLogger("eventcollector")
    levels, handlers = (root.level, named.level), list(root.handlers)
    try:
        ns: dict[str, Any] = {}
        exec(SPEC_EXAMPLES[47].replace("mahavishnu.core.event_collector", "eventcollector"), ns)  # noqa: S102
        assert named.level == logging.DEBUG
    finally:
        root.setLevel(levels[0])
        named.setLevel(levels[1])
        root.handlers[:] = handlers


# -- performance tuning ----------------------------------------------------------------


async def test_batch_operations_example(process_collector: EventCollector) -> None:
    ns = await run_example(48, base_namespace(process_collector))
    data = [
        {"system": "mahavishnu", "event_type": "workflow.started", "severity": "info",
         "title": f"batch {i}", "description": "from collect_batch"}
        for i in range(100)
    ]  # fmt: skip
    await ns["collect_batch"](data)
    assert await EventQueryBuilder(process_collector).search("batch").count() == 100


@pytest.mark.parametrize("number", [49, 50])
async def test_query_optimisation_examples(
    process_collector: EventCollector, seeded: list[Event], number: int
) -> None:
    ns = await run_example(number, base_namespace(process_collector))
    recent_errors = newest_first(seeded, lambda e: e.severity == "error" and within(60)(e))
    if number == 49:
        assert [e.id for e in ns["events"]] == newest_first(
            seeded, lambda e: e.system == "mahavishnu" and e.id in recent_errors
        )
    else:
        assert ns["count"] == len(recent_errors)


async def test_regular_cleanup_example(
    process_collector: EventCollector, seeded: list[Event], capsys: pytest.CaptureFixture[str]
) -> None:
    old = await process_collector.collect(
        system="a",
        event_type="b",
        title="ancient",
        timestamp=datetime.now(UTC) - timedelta(days=40),
    )
    ns = await run_example(51, base_namespace(process_collector))
    await ns["cleanup_events"]()
    assert "Deleted 1 old events" in capsys.readouterr().out
    assert await process_collector.get_event(old.id) is None
    assert await process_collector.count(Query()) == len(seeded)


async def test_monitoring_example(
    process_collector: EventCollector, seeded: list[Event], capsys: pytest.CaptureFixture[str]
) -> None:
    class Stop(Exception):
        pass

    async def sleep(seconds: float) -> None:
        assert seconds == 60
        raise Stop

    ns = await run_example(
        52, base_namespace(process_collector) | {"asyncio": SimpleNamespace(sleep=sleep)}
    )
    with pytest.raises(Stop):
        await ns["monitor_performance"]()
    out = capsys.readouterr().out
    assert "Status: healthy" in out
    assert f"Total events: {len(seeded)}" in out


SPEC_EXAMPLES: dict[int, str] = {
    0: r"""
@dataclass
class Event:
    id: str                          # Unique UUID4
    timestamp: datetime              # UTC timestamp
    system: System                   # Source system
    event_type: EventType            # Event category
    severity: Severity               # Severity level
    title: str                       # Human-readable title
    description: str                 # Detailed description
    data: dict[str, Any]             # Event payload
    tags: list[str]                  # Filterable tags
    correlation_id: str | None       # For tracing
    source_component: str | None     # Source component
    duration_ms: int | None          # Duration (ms)
    metadata: dict[str, Any]         # Additional metadata
""",
    1: r"""
class System(str, Enum):
    MAHAVISHNU = "mahavishnu"       # Orchestration
    CRACKERJACK = "crackerjack"     # Quality checks
    SESSION_BUDDY = "session_buddy" # Session management
    AKOSHA = "akosha"               # Analytics
    ONEIRIC = "oneiric"             # Configuration
""",
    2: r"""
class EventType(str, Enum):
    # Lifecycle events
    LIFECYCLE_START = "lifecycle.start"
    LIFECYCLE_STOP = "lifecycle.stop"
    LIFECYCLE_RESTART = "lifecycle.restart"

    # Workflow events
    WORKFLOW_STARTED = "workflow.started"
    WORKFLOW_COMPLETED = "workflow.completed"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_CANCELLED = "workflow.cancelled"

    # Quality events
    QUALITY_CHECK_STARTED = "quality_check.started"
    QUALITY_CHECK_COMPLETED = "quality_check.completed"
    TEST_RUN = "test.run"
    TEST_PASSED = "test.passed"
    TEST_FAILED = "test.failed"

    # Session events
    SESSION_CREATED = "session.created"
    SESSION_UPDATED = "session.updated"
    SESSION_DELETED = "session.deleted"

    # Code indexing
    CODE_INDEXED = "code.indexed"
    CODE_INDEX_FAILED = "code.index_failed"

    # Analytics
    ANALYTICS_QUERY = "analytics.query"
    INSIGHT_DETECTED = "insight.detected"

    # Configuration
    CONFIG_CHANGED = "config.changed"
    CONFIG_RELOADED = "config.reloaded"

    # Errors
    ERROR_OCCURRED = "error.occurred"
    ERROR_RECOVERED = "error.recovered"
""",
    3: r"""
class Severity(str, Enum):
    DEBUG = "debug"       # Detailed diagnostics
    INFO = "info"         # Informational
    WARNING = "warning"   # Warning conditions
    ERROR = "error"       # Error events
    CRITICAL = "critical" # Critical conditions
""",
    4: r"""
from mahavishnu.core.event_collector import (
    get_event_collector,
    System,
    EventType,
    Severity,
)

# In your orchestrator
async def run_workflow(workflow_id: str, repo: str):
    collector = get_event_collector()

    # Collect workflow started
    await collector.collect(
        system=System.MAHAVISHNU,
        event_type=EventType.WORKFLOW_STARTED,
        severity=Severity.INFO,
        title=f"Workflow started: {workflow_id}",
        description=f"Starting workflow for {repo}",
        data={
            "workflow_id": workflow_id,
            "repo": repo,
            "workflow_type": "rag_pipeline",
        },
        tags=["workflow", "rag", "orchestration"],
        correlation_id=workflow_id,  # For tracing
        source_component="orchestrator",
    )

    try:
        # Run workflow...
        await execute_workflow(workflow_id)

        # Collect completion
        await collector.collect(
            system=System.MAHAVISHNU,
            event_type=EventType.WORKFLOW_COMPLETED,
            severity=Severity.INFO,
            title=f"Workflow completed: {workflow_id}",
            description="Workflow executed successfully",
            correlation_id=workflow_id,
            duration_ms=duration,
        )

    except Exception as e:
        # Collect error
        await collector.collect(
            system=System.MAHAVISHNU,
            event_type=EventType.WORKFLOW_FAILED,
            severity=Severity.ERROR,
            title=f"Workflow failed: {workflow_id}",
            description=f"Workflow error: {str(e)}",
            correlation_id=workflow_id,
            data={"error": str(e), "error_type": type(e).__name__},
        )
        raise
""",
    5: r"""
# In your quality checker
async def run_quality_checks(repo: str):
    collector = get_event_collector()

    # Quality check started
    await collector.collect(
        system=System.CRACKERJACK,
        event_type=EventType.QUALITY_CHECK_STARTED,
        severity=Severity.INFO,
        title="Quality check started",
        description=f"Running quality checks for {repo}",
        data={"repo": repo},
        tags=["quality", "testing"],
        source_component="quality_checker",
    )

    # Run checks...
    results = await execute_checks(repo)

    # Test results
    for test in results.tests:
        await collector.collect(
            system=System.CRACKERJACK,
            event_type=EventType.TEST_PASSED if test.passed else EventType.TEST_FAILED,
            severity=Severity.INFO,
            title=f"Test {test.name}: {test.status}",
            description=f"Test {test.name} {test.status}",
            data={
                "test_name": test.name,
                "test_file": test.file,
                "duration_ms": test.duration,
            },
            tags=["test", "unit"] if test.is_unit else ["test", "integration"],
        )

    # Quality check completed
    await collector.collect(
        system=System.CRACKERJACK,
        event_type=EventType.QUALITY_CHECK_COMPLETED,
        severity=Severity.INFO,
        title="Quality check completed",
        description=f"Quality checks completed: {results.passed}/{results.total} passed",
        data={
            "passed": results.passed,
            "failed": results.failed,
            "skipped": results.skipped,
            "coverage": results.coverage,
        },
    )
""",
    6: r"""
# In your session manager
async def create_session(session_id: str, context: dict):
    collector = get_event_collector()

    # Session created
    await collector.collect(
        system=System.SESSION_BUDDY,
        event_type=EventType.SESSION_CREATED,
        severity=Severity.INFO,
        title=f"Session created: {session_id}",
        description="New session created",
        data={
            "session_id": session_id,
            "context": context,
        },
        tags=["session", "created"],
        correlation_id=session_id,
        source_component="session_manager",
    )

async def update_session(session_id: str, updates: dict):
    collector = get_event_collector()

    await collector.collect(
        system=System.SESSION_BUDDY,
        event_type=EventType.SESSION_UPDATED,
        severity=Severity.INFO,
        title=f"Session updated: {session_id}",
        description=f"Session updated with {len(updates)} fields",
        data={
            "session_id": session_id,
            "updates": updates,
        },
        correlation_id=session_id,
        source_component="session_manager",
    )

async def restore_session(session_id: str):
    collector = get_event_collector()

    await collector.collect(
        system=System.SESSION_BUDDY,
        event_type=EventType.SESSION_RESTORED,
        severity=Severity.INFO,
        title=f"Session restored: {session_id}",
        description="Session restored from storage",
        data={"session_id": session_id},
        correlation_id=session_id,
        source_component="session_manager",
    )
""",
    7: r"""
# In your analytics engine
async def execute_query(query: str, params: dict):
    collector = get_event_collector()

    # Query started
    await collector.collect(
        system=System.AKOSHA,
        event_type=EventType.ANALYTICS_QUERY,
        severity=Severity.INFO,
        title="Analytics query executed",
        description=f"Query: {query[:100]}",
        data={
            "query": query,
            "params": params,
        },
        tags=["analytics", "query"],
        source_component="analytics_engine",
    )

    # Execute...
    results = await run_query(query, params)

    # Insight detected
    if results.has_insights:
        await collector.collect(
            system=System.AKOSHA,
            event_type=EventType.INSIGHT_DETECTED,
            severity=Severity.INFO,
            title="Insight detected",
            description=f"Discovered {len(results.insights)} insights",
            data={
                "insights": results.insights,
                "confidence": results.confidence,
            },
            tags=["insight", "analytics"],
        )

    return results
""",
    8: r"""
# In your configuration manager
async def reload_config(config_path: str):
    collector = get_event_collector()

    # Config reload started
    await collector.collect(
        system=System.ONEIRIC,
        event_type=EventType.CONFIG_RELOADED,
        severity=Severity.INFO,
        title="Configuration reloaded",
        description=f"Reloaded config from {config_path}",
        data={
            "config_path": config_path,
            "config_keys": list(config.keys()),
        },
        tags=["config", "reload"],
        source_component="config_manager",
    )

async def validate_config(config: dict):
    collector = get_event_collector()

    # Validate
    errors = validate(config)

    await collector.collect(
        system=System.ONEIRIC,
        event_type=EventType.CONFIG_VALIDATED,
        severity=Severity.WARNING if errors else Severity.INFO,
        title="Configuration validated",
        description=f"Found {len(errors)} validation errors",
        data={
            "valid": len(errors) == 0,
            "errors": errors,
        },
        tags=["config", "validation"],
    )
""",
    9: r'''
from mahavishnu.core.event_collector import collect_event, System, EventType

@collect_event(System.MAHAVISHNU, EventType.WORKFLOW_STARTED)
async def run_workflow(repo: str):
    """
    This function will automatically collect:
    1. Workflow started event (before execution)
    2. Workflow completed event (after successful execution)
    3. Error event (if exception occurs)
    """
    # Your workflow logic here
    await process_repo(repo)
    return {"status": "success"}
''',
    10: r"""
from mahavishnu.core.event_collector import EventQueryBuilder

builder = EventQueryBuilder(collector)
events = await builder.time_range(hours=1).execute()
""",
    11: r"""
from mahavishnu.core.event_collector import Severity

errors = await EventQueryBuilder(collector).severity(Severity.ERROR).execute()
""",
    12: r"""
from mahavishnu.core.event_collector import System

mahavishnu_events = await EventQueryBuilder(collector).system(System.MAHAVISHNU).execute()
""",
    13: r"""
events = await EventQueryBuilder(collector)\
    .systems([System.MAHAVISHNU, System.CRACKERJACK])\
    .execute()
""",
    14: r"""
from mahavishnu.core.event_collector import Severity

# Get errors and critical events
events = await EventQueryBuilder(collector)\
    .severities([Severity.ERROR, Severity.CRITICAL])\
    .execute()
""",
    15: r"""
# Events with both "workflow" AND "rag" tags
events = await EventQueryBuilder(collector)\
    .tags(["workflow", "rag"])\
    .execute()
""",
    16: r"""
# Events with "test" OR "quality" tag
events = await EventQueryBuilder(collector)\
    .any_tags(["test", "quality"])\
    .execute()
""",
    17: r"""
from datetime import datetime, UTC, timedelta

# Explicit time range
since = datetime.now(UTC) - timedelta(hours=2)
until = datetime.now(UTC) - timedelta(hours=1)

events = await EventQueryBuilder(collector)\
    .time_range(since=since, until=until)\
    .execute()

# Last 24 hours
events = await EventQueryBuilder(collector)\
    .time_range(days=1)\
    .execute()
""",
    18: r"""
# Trace all events in a workflow
correlation_id = "workflow_abc123"

events = await EventQueryBuilder(collector)\
    .correlation_id(correlation_id)\
    .execute()
""",
    19: r"""
# Search for "database" in events
events = await EventQueryBuilder(collector)\
    .search("database")\
    .execute()
""",
    20: r"""
# Complex query: Mahavishnu errors from last hour with "workflow" tag
events = await EventQueryBuilder(collector)\
    .system(System.MAHAVISHNU)\
    .severity(Severity.ERROR)\
    .time_range(hours=1)\
    .tags(["workflow"])\
    .execute()
""",
    21: r"""
# Oldest events first
events = await EventQueryBuilder(collector)\
    .system(System.MAHAVISHNU)\
    .order_by("timestamp", ascending=True)\
    .execute()

# Order by duration (longest first)
events = await EventQueryBuilder(collector)\
    .event_type(EventType.WORKFLOW_COMPLETED)\
    .order_by("duration_ms", ascending=False)\
    .execute()
""",
    22: r"""
# Get last 10 errors
recent_errors = await EventQueryBuilder(collector)\
    .severity(Severity.ERROR)\
    .limit(10)\
    .execute()
""",
    23: r"""
# Count errors in last hour
builder = EventQueryBuilder(collector)
error_count = await builder\
    .severity(Severity.ERROR)\
    .time_range(hours=1)\
    .count()
""",
    24: r"""
# Find slow workflows from last 24 hours
events = await EventQueryBuilder(collector)\
    .system(System.MAHAVISHNU)\
    .event_type(EventType.WORKFLOW_COMPLETED)\
    .time_range(days=1)\
    .order_by("duration_ms", ascending=False)\
    .limit(20)\
    .execute()

# Filter for slow ones (> 5 seconds)
slow_workflows = [e for e in events if e.duration_ms and e.duration_ms > 5000]
""",
    25: r"""
from mahavishnu.core.event_collector import EventCollector

collector = EventCollector(db_path="data/events.db")
await collector.start()
""",
    26: r"""
event = await collector.collect(
    system=System.MAHAVISHNU,
    event_type=EventType.WORKFLOW_STARTED,
    severity=Severity.INFO,
    title="Workflow started",
    description="RAG pipeline workflow",
    data={"workflow_id": "wf_123"},
    tags=["workflow", "rag"],
    correlation_id="corr_abc",
    source_component="orchestrator",
    duration_ms=1500,
    metadata={"key": "value"},
)
""",
    27: r"""
stats = await collector.get_statistics()
# Returns: {
#     "total_events": 12345,
#     "by_system": {"mahavishnu": 5000, "crackerjack": 3000, ...},
#     "by_severity": {"info": 10000, "error": 500, ...},
#     "last_hour_count": 150
# }
""",
    28: r"""
health = await collector.health_check()
# Returns: {
#     "status": "healthy",
#     "running": True,
#     "db_path": "data/events.db",
#     "subscriber_count": 2
# }
""",
    29: r"""
# Single system
builder.system(System.MAHAVISHNU)

# Multiple systems
builder.systems([System.MAHAVISHNU, System.CRACKERJACK])
""",
    30: r"""
# Single type
builder.event_type(EventType.WORKFLOW_STARTED)

# Multiple types
builder.event_types([EventType.WORKFLOW_STARTED, EventType.WORKFLOW_COMPLETED])
""",
    31: r"""
# Single severity
builder.severity(Severity.ERROR)

# Multiple severities
builder.severities([Severity.ERROR, Severity.CRITICAL])
""",
    32: r"""
# All tags must be present
builder.tags(["workflow", "rag"])

# Any tag can be present
builder.any_tags(["test", "quality"])
""",
    33: r"""
# Last N units
builder.time_range(minutes=30)
builder.time_range(hours=1)
builder.time_range(days=7)

# Explicit range
builder.time_range(
    since=datetime(2025, 1, 1),
    until=datetime(2025, 1, 2)
)
""",
    34: r"""
# Correlation ID
builder.correlation_id("workflow_123")

# Source component
builder.source_component("orchestrator")

# Search text
builder.search("database error")

# Limit results
builder.limit(100)

# Order
builder.order_by("timestamp", ascending=False)
builder.order_by("duration_ms", ascending=True)
""",
    35: r"""
# Get events
events = await builder.execute()

# Count only
count = await builder.count()
""",
    36: r"""
analyzer = EventAnalyzer(collector)

analysis = await analyzer.analyze_errors(hours=24)
# Returns: {
#     "total_errors": 150,
#     "critical_errors": 5,
#     "errors_by_type": {...},
#     "errors_by_system": {...},
#     "errors_by_component": {...},
#     "recent_errors": [...]
# }
""",
    37: r"""
patterns = await analyzer.detect_patterns(days=7)
# Returns: {
#     "total_events": 50000,
#     "hourly_distribution": {...},
#     "event_types": {...},
#     "systems": {...},
#     "avg_duration_ms": 250,
#     "patterns": [...]
# }
""",
    38: r"""
events = await analyzer.trace_correlation("workflow_123")
# Returns: [Event, Event, ...] (chronological order)
""",
    39: r"""
report = await analyzer.generate_report(hours=24)
# Returns: {
#     "period_hours": 24,
#     "total_events": 5000,
#     "severity_distribution": {...},
#     "system_distribution": {...},
#     "event_type_distribution": {...},
#     "duration_stats": {...},
#     "recent_events": [...]
# }
""",
    40: r'''
from mahavishnu.core.event_collector import get_event_collector, Event

collector = get_event_collector()

async def event_subscriber(event: Event):
    """Called for each new event."""
    print(f"New event: {event.title} from {event.system.value}")

    # Filter for errors
    if event.severity == Severity.ERROR:
        # Send alert
        await send_alert(event)

# Subscribe
collector.subscribe(event_subscriber)

# Unsubscribe
collector.unsubscribe(event_subscriber)
''',
    41: r"""
# Subscribe to errors only
async def error_subscriber(event: Event):
    if event.severity in [Severity.ERROR, Severity.CRITICAL]:
        await handle_error(event)

collector.subscribe(error_subscriber)

# Subscribe to specific system
async def mahavishnu_subscriber(event: Event):
    if event.system == System.MAHAVISHNU:
        await handle_mahavishnu_event(event)

collector.subscribe(mahavishnu_subscriber)
""",
    42: r'''
# Stream events to WebSocket clients
async def stream_events(websocket):
    """Stream events to WebSocket client."""
    collector = get_event_collector()

    async def subscriber(event: Event):
        await websocket.send_json(event.to_dict())

    collector.subscribe(subscriber)

    try:
        # Keep connection open
        await websocket.wait_closed()
    finally:
        collector.unsubscribe(subscriber)
''',
    43: r"""
analyzer = EventAnalyzer(collector)

# Analyze last 24 hours
errors = await analyzer.analyze_errors(hours=24)

print(f"Total errors: {errors['total_errors']}")
print(f"Critical errors: {errors['critical_errors']}")
print(f"Errors by system: {errors['errors_by_system']}")
print(f"Errors by component: {errors['errors_by_component']}")

# Get recent errors
for error in errors['recent_errors']:
    print(f"  - {error['title']}: {error['description']}")
""",
    44: r"""
# Detect patterns in last 7 days
patterns = await analyzer.detect_patterns(days=7)

print(f"Total events: {patterns['total_events']}")
print(f"Average duration: {patterns['avg_duration_ms']:.0f}ms")

# Check for anomalies
for anomaly in patterns['patterns']:
    print(f"Anomaly detected: {anomaly['hour']}")
    print(f"  Count: {anomaly['count']}")
    print(f"  Deviation: {anomaly['deviation']:.2f}σ")
""",
    45: r"""
# Trace a complete workflow
workflow_id = "workflow_123"
events = await analyzer.trace_correlation(workflow_id)

print(f"Workflow has {len(events)} events")

for event in events:
    print(f"  {event.timestamp}: {event.event_type.value} - {event.title}")

# Calculate total duration
if events[0].duration_ms and events[-1].duration_ms:
    total_ms = events[-1].duration_ms - events[0].duration_ms
    print(f"Total duration: {total_ms}ms")
""",
    46: r"""
# Generate custom report
report = await analyzer.generate_report(hours=24)

# Save to file
import json

with open("event_report.json", "w") as f:
    json.dump(report, f, indent=2)

# Print summary
print(f"Report Period: {report['period_hours']} hours")
print(f"Total Events: {report['total_events']}")
print(f"Severity Distribution: {report['severity_distribution']}")
print(f"System Distribution: {report['system_distribution']}")

# Duration statistics
duration = report['duration_stats']
print(f"Duration Stats:")
print(f"  Min: {duration['min']}ms")
print(f"  Max: {duration['max']}ms")
print(f"  Avg: {duration['avg']:.0f}ms")
""",
    47: r"""
import logging

logging.basicConfig(level=logging.DEBUG)
logging.getLogger("mahavishnu.core.event_collector").setLevel(logging.DEBUG)
""",
    48: r"""
# Collect multiple events efficiently
async def collect_batch(events_data):
    tasks = [
        collector.collect(
            system=data["system"],
            event_type=data["event_type"],
            severity=data["severity"],
            title=data["title"],
            description=data["description"],
        )
        for data in events_data
    ]
    await asyncio.gather(*tasks)
""",
    49: r"""
# Add specific filters for faster queries
events = await EventQueryBuilder(collector)\
    .system(System.MAHAVISHNU)\
    .severity(Severity.ERROR)\
    .time_range(hours=1)\
    .limit(100)\
    .execute()
""",
    50: r"""
# Faster if you only need the count
count = await EventQueryBuilder(collector)\
    .severity(Severity.ERROR)\
    .time_range(hours=1)\
    .count()
""",
    51: r"""
# Clean up old events regularly
async def cleanup_events():
    deleted = await collector._storage.cleanup_old_events(retention_days=30)
    print(f"Deleted {deleted} old events")

# Run weekly
""",
    52: r"""
# Monitor collector performance
async def monitor_performance():
    while True:
        health = await collector.health_check()
        stats = await collector.get_statistics()

        print(f"Status: {health['status']}")
        print(f"Total events: {stats['total_events']}")
        print(f"Last hour: {stats['last_hour_count']}")

        await asyncio.sleep(60)  # Check every minute
""",
}
