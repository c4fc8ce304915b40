"""Backoff and Retry-After parsing (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from eventcollector.client import RETRYABLE_STATUS, backoff_delay, parse_retry_after


def test_retryable_statuses_are_exactly_the_transient_ones() -> None:
    assert frozenset({408, 429, 502, 503, 504}) == RETRYABLE_STATUS
    assert 500 not in RETRYABLE_STATUS


@pytest.mark.parametrize("attempt", [1, 2, 5, 40, 10_000])
def test_backoff_grows_is_capped_and_jittered(attempt: int) -> None:
    delays = [backoff_delay(attempt, base=0.5, cap=30.0) for _ in range(200)]
    ceiling = 30.0 if attempt > 20 else min(30.0, 0.5 * 2 ** (attempt - 1))
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_retry_after_is_a_floor() -> None:
    assert all(backoff_delay(1, base=0.5, cap=30, retry_after=7.0) >= 7.0 for _ in range(50))


def test_parse_retry_after() -> None:
    assert parse_retry_after("3", limit=300) == 3.0
    assert parse_retry_after("0.25", limit=300) == 0.25
    assert parse_retry_after("99999", limit=300) == 300
    assert parse_retry_after("-5", limit=300) == 0.0
    assert parse_retry_after(None, limit=300) is None
    assert parse_retry_after("soon", limit=300) is None
    assert parse_retry_after("nan", limit=300) is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    parsed = parse_retry_after(when, limit=300)
    assert parsed is not None
    assert 17 <= parsed <= 20
