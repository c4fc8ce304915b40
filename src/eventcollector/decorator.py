"""``@collect_event``: started / completed / failed events around a function.

Recording must never break the host: a failure to record is logged, not raised,
while the function's own exception is always re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from eventcollector._ids import new_event_id
from eventcollector.collector import EventCollector
from eventcollector.model import EventType, Severity, System
from eventcollector.query import normalise_names

__all__ = ["collect_event", "phase_types"]

log = logging.getLogger("eventcollector.decorator")

P = ParamSpec("P")
R = TypeVar("R")

_STARTED_SUFFIXES = (".started", ".start")


def phase_types(event_type: EventType | str) -> tuple[str, str, str]:
    """(started, completed, failed) event types derived from the decorated type.

    ``workflow.started`` gives workflow.started / workflow.completed / workflow.failed;
    any other type ``x`` gives x / x.completed / x.failed.
    """
    value = normalise_names(event_type, EventType)[0]  # ValueError naming event_type
    for suffix in _STARTED_SUFFIXES:
        if value.endswith(suffix):
            base = value.removesuffix(suffix)
            return value, f"{base}.completed", f"{base}.failed"
    return value, f"{value}.completed", f"{value}.failed"


def collect_event(
    system: System | str,
    event_type: EventType | str,
    *,
    collector: EventCollector | None = None,
    tags: list[str] | None = None,
    source_component: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a sync or async function to record its start, completion and failure.

    All three events of one call share a fresh correlation id; the completed and
    failed events carry ``duration_ms``; the failed one has error severity and the
    exception's type and message in ``data``.
    """
    system_value = normalise_names(system, System)[0]  # ValueError naming system
    started, completed, failed = phase_types(event_type)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        name = getattr(func, "__qualname__", repr(func))
        common: dict[str, Any] = {
            "system": system_value,
            "tags": tags,
            "source_component": source_component or getattr(func, "__module__", None),
        }

        def fields(phase: str, kind: str, correlation_id: str, **extra: Any) -> dict[str, Any]:
            data = {"function": name, **extra.pop("data", {})}
            return {
                **common,
                "event_type": kind,
                "title": f"{name} {phase}",
                "correlation_id": correlation_id,
                "data": data,
                **extra,
            }

        def target() -> EventCollector:
            if collector is not None:
                return collector
            from eventcollector.config import get_event_collector

            return get_event_collector()

        def failure_fields(exc: BaseException, corr: str, t0: float) -> dict[str, Any]:
            return fields(
                "failed",
                failed,
                corr,
                severity=Severity.ERROR,
                description=f"{type(exc).__name__}: {exc}"[:1000],
                duration_ms=_elapsed_ms(t0),
                data={"error_type": type(exc).__name__, "error": str(exc)[:10_000]},
            )

        if inspect.iscoroutinefunction(func):

            async def _record(payload: dict[str, Any]) -> None:
                try:
                    await target().collect(**payload)
                except Exception:
                    log.exception("could not record %s event for %s", payload["event_type"], name)

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                corr = new_event_id()
                await _record(fields("started", started, corr))
                t0 = time.perf_counter()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    await _record(failure_fields(exc, corr, t0))
                    raise
                await _record(fields("completed", completed, corr, duration_ms=_elapsed_ms(t0)))
                return result

            return cast(Callable[P, R], async_wrapper)

        def _emit(payload: dict[str, Any]) -> None:
            try:
                target().emit(**payload)
            except Exception:
                log.exception("could not record %s event for %s", payload["event_type"], name)

        @functools.wraps(func)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            corr = new_event_id()
            _emit(fields("started", started, corr))
            t0 = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                _emit(failure_fields(exc, corr, t0))
                raise
            _emit(fields("completed", completed, corr, duration_ms=_elapsed_ms(t0)))
            return result

        return sync_wrapper

    return decorate


def _elapsed_ms(t0: float) -> int:
    return round((time.perf_counter() - t0) * 1000)
