"""@collect_event: started / completed / failed events around sync and async functions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from eventcollector import (
    Event,
    EventCollector,
    EventQueryBuilder,
    EventType,
    Severity,
    System,
    collect_event,
)


async def recorded(collector: EventCollector) -> list[Event]:
    await collector.flush()
    return await EventQueryBuilder(collector).order_by("timestamp", ascending=True).execute()


def check_success(events: list[Event], function: str) -> None:
    started, completed = events
    assert started.event_type == EventType.WORKFLOW_STARTED
    assert completed.event_type == EventType.WORKFLOW_COMPLETED
    assert started.system == completed.system == System.MAHAVISHNU
    assert started.correlation_id is not None
    assert completed.correlation_id == started.correlation_id
    assert started.duration_ms is None
    assert completed.duration_ms is not None
    assert completed.duration_ms >= 0
    assert completed.severity is Severity.INFO
    assert completed.data["function"].endswith(function)


def check_failure(events: list[Event], error_type: str, message: str) -> None:
    started, failed = events
    assert failed.event_type == EventType.WORKFLOW_FAILED
    assert failed.correlation_id == started.correlation_id
    assert failed.severity is Severity.ERROR
    assert failed.duration_ms is not None
    assert failed.data["error_type"] == error_type
    assert failed.data["error"] == message


async def test_async_function_success(process_collector: EventCollector) -> None:
    @collect_event(System.MAHAVISHNU, EventType.WORKFLOW_STARTED)
    async def run_workflow(repo: str) -> dict[str, str]:
        await asyncio.sleep(0)
        return {"status": "success", "repo": repo}

    assert await run_workflow("repo-a") == {"status": "success", "repo": "repo-a"}
    assert run_workflow.__name__ == "run_workflow"
    check_success(await recorded(process_collector), "run_workflow")


async def test_async_function_failure_is_recorded_and_reraised(
    process_collector: EventCollector,
) -> None:
    @collect_event(System.MAHAVISHNU, EventType.WORKFLOW_STARTED)
    async def run_workflow() -> None:
        raise KeyError("missing repo")

    with pytest.raises(KeyError, match="missing repo"):
        await run_workflow()
    check_failure(await recorded(process_collector), "KeyError", "'missing repo'")


async def test_sync_function_success(collector: EventCollector) -> None:
    @collect_event("mahavishnu", "workflow.started", collector=collector, tags=["sync"])
    def compute(x: int) -> int:
        return x * 2

    assert compute(21) == 42
    events = await recorded(collector)
    check_success(events, "compute")
    assert all(e.tags == ["sync"] for e in events)


async def test_sync_function_failure_is_recorded_and_reraised(collector: EventCollector) -> None:
    @collect_event(System.MAHAVISHNU, EventType.WORKFLOW_STARTED, collector=collector)
    def compute() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        compute()
    check_failure(await recorded(collector), "ValueError", "bad input")


async def test_each_call_has_its_own_correlation_id(collector: EventCollector) -> None:
    @collect_event("mahavishnu", "workflow.started", collector=collector)
    async def job(n: int) -> int:
        return n

    # gather() returns a list; typeshed declares a tuple for a fixed number of awaitables.
    assert await asyncio.gather(job(1), job(2), job(3)) == [1, 2, 3]  # type: ignore[comparison-overlap]
    events = await recorded(collector)
    by_corr: dict[str | None, list[str]] = {}
    for e in events:
        by_corr.setdefault(e.correlation_id, []).append(e.event_type.value)
    assert len(by_corr) == 3
    assert all(
        sorted(types) == ["workflow.completed", "workflow.started"] for types in by_corr.values()
    )


async def test_other_event_types_get_completed_and_failed_suffixes(
    collector: EventCollector,
) -> None:
    @collect_event("deployer", "deploy", collector=collector)
    async def deploy() -> None:
        return None

    await deploy()
    assert [e.event_type.value for e in await recorded(collector)] == [
        "deploy",
        "deploy.completed",
    ]


async def _broken(collector: EventCollector) -> EventCollector:
    """A running collector whose storage has gone away underneath it."""
    await collector._storage.close()
    return collector


async def test_async_recording_failure_is_logged_not_raised(
    collector: EventCollector, caplog: pytest.LogCaptureFixture
) -> None:
    broken = await _broken(collector)

    @collect_event("mahavishnu", "workflow.started", collector=broken)
    async def work() -> str:
        return "done"

    with caplog.at_level(logging.ERROR, logger="eventcollector"):
        assert await work() == "done"
    assert sum("could not record" in r.getMessage() for r in caplog.records) == 2


async def test_sync_recording_failure_is_logged_not_raised(
    collector: EventCollector, caplog: pytest.LogCaptureFixture
) -> None:
    broken = await _broken(collector)

    @collect_event("mahavishnu", "workflow.started", collector=broken)
    def work() -> str:
        return "done"

    with caplog.at_level(logging.ERROR, logger="eventcollector"):
        assert work() == "done"
        await broken.flush()
    assert sum("could not store" in r.getMessage() for r in caplog.records) == 2
    assert broken.counters["emit_failures"] == 2


@pytest.mark.parametrize("is_async", [False, True])
async def test_invalid_event_fields_are_logged_not_raised(
    collector: EventCollector, caplog: pytest.LogCaptureFixture, is_async: bool
) -> None:
    decorate = collect_event("mahavishnu", "workflow.started", collector=collector, tags=["a b"])

    def plain() -> int:
        return 1

    async def coro() -> int:
        return 1

    with caplog.at_level(logging.ERROR, logger="eventcollector"):
        result: Any = await decorate(coro)() if is_async else decorate(plain)()
    assert result == 1
    assert sum("could not record" in r.getMessage() for r in caplog.records) == 2
    assert await recorded(collector) == []


def test_bad_decorator_arguments_fail_at_decoration_time() -> None:
    with pytest.raises(ValueError, match=r"^system: "):
        collect_event("Not A System", "workflow.started")
    with pytest.raises(ValueError, match=r"^event_type: "):
        collect_event("mahavishnu", "Workflow Started")
    fn: Callable[[], int] = collect_event("mahavishnu", "workflow.started")(lambda: 1)
    assert callable(fn)
