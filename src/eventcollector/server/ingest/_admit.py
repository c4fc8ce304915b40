"""What every HTTP door does with the events it parsed: the pinned-system check, the
rate limit, the store (answered after the commit) and the counters.

Our JSON format and OTLP share it, so a key's system pin, its rate limit, the
collector's queue bound (``QueueFull`` -> 503) and storage failures (503) hold
the same at each door.
"""

from __future__ import annotations

import math
from collections import Counter

from eventcollector.collector import QueueFull
from eventcollector.model import Event
from eventcollector.server.auth import Principal
from eventcollector.server.errors import ApiError
from eventcollector.server.metrics import Metrics
from eventcollector.server.state import ServerState
from eventcollector.storage import StorageError

__all__ = ["admit", "count_stored"]


async def admit(state: ServerState, principal: Principal, events: list[Event]) -> list[bool]:
    """Store ``events`` for ``principal``; per event True if new, False if a duplicate.

    Raises ``ApiError`` 403 (another system than the key's), 429 (rate limit, with
    Retry-After) or 503 (queue full or storage down, with Retry-After).
    """
    systems = Counter(event.system.value for event in events)
    if principal.system is not None and set(systems) - {principal.system}:
        state.metrics.http_rejections.labels("pinned_system").inc()
        other = sorted(set(systems) - {principal.system})[0]
        raise ApiError(
            403,
            f"system: this key may only write system {principal.system!r}, not {other!r}",
            system=principal.system,
        )
    wait = state.rate_wait(principal, systems)
    if wait:
        state.metrics.http_rejections.labels("rate_limit").inc()
        raise ApiError(
            429,
            f"rate_limit: more than {state.limiter.rate:g} events/s for this key and system",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
            limit="rate_limit",
            retry_after=wait,
        )
    stored = await _store(state, events)
    count_stored(state.metrics, events, stored)
    return stored


def count_stored(metrics: Metrics, events: list[Event], stored: list[bool]) -> None:
    """Count new and duplicate events per system (one counter update per system)."""
    fresh: Counter[str] = Counter()
    dupes: Counter[str] = Counter()
    for event, new in zip(events, stored, strict=True):
        (fresh if new else dupes)[event.system.value] += 1
    metrics.count(metrics.accepted, fresh)
    metrics.count(metrics.duplicates, dupes)


async def _store(state: ServerState, events: list[Event]) -> list[bool]:
    if not events:
        return []
    retry = {"Retry-After": str(state.settings.retry_after)}
    try:
        return await state.collector.ingest(events, wait=False)
    except QueueFull as exc:
        state.metrics.http_rejections.labels("queue_full").inc()
        raise ApiError(503, f"max_pending: {exc}", headers=retry, limit="max_pending") from None
    except StorageError as exc:
        state.metrics.http_rejections.labels("storage").inc()
        raise ApiError(503, f"storage: {exc}", headers=retry) from None
