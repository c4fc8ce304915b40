"""Alert rows as both SQL backends store them (``AlertStore``): the column lists and
the conversions between rows and ``AlertRule``/``AlertState``/``AlertRecord``/
``AlertSilence``.

Rules are stored as their JSON definition (``AlertRule.to_dict``) and read back
without the bounds of ``RuleLimits``: they were checked when they were added, by a
server that may have lowered them (``--alerts-min-interval``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState, RuleLimits, parse_rule
from eventcollector.alert_silences import AlertSilence
from eventcollector.model import format_timestamp, parse_timestamp

__all__ = [
    "HISTORY_KEPT",
    "RECORD_COLUMNS",
    "SILENCE_COLUMNS",
    "STATE_COLUMNS",
    "definition",
    "record_from_row",
    "record_row",
    "rule_from_row",
    "silence_from_row",
    "silence_row",
    "state_from_row",
    "state_row",
]

#: The newest history records kept per rule (older ones are deleted as new ones come).
HISTORY_KEPT = 1_000
STATE_COLUMNS = "rule, grp, state, since, value, evaluated, notified"
RECORD_COLUMNS = "rule, grp, at, kind, state, value, target, error, sample_ids"
#: After ``id``, which the database gives.
SILENCE_COLUMNS = "rule, grp, until, reason, created"
_STORED = RuleLimits(min_window=0.0, min_every=0.0)


def definition(rule: AlertRule) -> str:
    return orjson.dumps(rule.to_dict()).decode()


def rule_from_row(text: str, source: str) -> tuple[AlertRule, str]:
    return parse_rule(orjson.loads(text), _STORED), source


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_timestamp(value, "timestamp")


def state_from_row(row: Sequence[Any]) -> AlertState:
    rule, group, state, since, value, evaluated, notified = row
    since_at = _time(since)
    assert since_at is not None
    return AlertState(rule, group, state, since_at, value, _time(evaluated), _time(notified))


def state_row(state: AlertState, text: bool) -> tuple[Any, ...]:
    """The values of ``STATE_COLUMNS``; timestamps as text for SQLite (``text``)."""
    times = [state.since, state.evaluated, state.notified]
    if text:
        times = [None if t is None else format_timestamp(t) for t in times]  # type: ignore[misc]
    return (state.rule, state.group, state.state, times[0], state.value, times[1], times[2])


def record_from_row(row: Sequence[Any]) -> AlertRecord:
    rule, group, at, kind, state, value, target, error, samples = row
    at_time = _time(at)
    assert at_time is not None
    return AlertRecord(
        rule, group, at_time, kind, state, value, target, error, tuple(orjson.loads(samples))
    )


def record_row(record: AlertRecord, text: bool) -> tuple[Any, ...]:
    """The values of ``RECORD_COLUMNS``."""
    at: Any = format_timestamp(record.at) if text else record.at
    samples = orjson.dumps(list(record.sample_ids)).decode()
    return (record.rule, record.group, at, record.kind, record.state, record.value,
            record.target, record.error, samples)  # fmt: skip


def silence_from_row(row: Sequence[Any]) -> AlertSilence:
    """From ``id`` and ``SILENCE_COLUMNS``."""
    silence_id, rule, group, until, reason, created = row
    until_at = _time(until)
    assert until_at is not None
    return AlertSilence(rule, until_at, group, reason, _time(created), silence_id)


def silence_row(silence: AlertSilence, now: datetime, text: bool) -> tuple[Any, ...]:
    """The values of ``SILENCE_COLUMNS`` (created ``now`` unless it says when)."""
    times: list[Any] = [silence.until, silence.created or now]
    if text:
        times = [format_timestamp(t) for t in times]
    return (silence.rule, silence.group, times[0], silence.reason, times[1])
