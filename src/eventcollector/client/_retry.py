"""Which ingest failures the remote client retries, and how long it waits.

Only failures where trying again can succeed are retried: the network (connection
refused or reset, timeouts) and the statuses that say "later" (408, 429, 502, 503,
504). Anything else (400, 401, 403, 413 of one event, 500, ...) would fail the same
way again, so those events are dropped, counted and logged instead of blocking the
queue behind them.

Waits grow exponentially up to a cap, with jitter so that many clients that lost
the same server do not come back in lockstep; a ``Retry-After`` from the server is
a floor, never shortened by jitter.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE_STATUS", "backoff_delay", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})


def backoff_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), 32))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def parse_retry_after(value: str | None, *, limit: float) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), capped at ``limit``."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), limit)
