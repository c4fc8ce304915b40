"""What a rule measures now: its value per group over the window, and sample events.

Counts and percentiles come from the store's aggregation (``collector.aggregate``:
SQL on both backends, never a scan in Python); a group seen before that has no
events in the window now counts 0 (so ``count < N`` per system notices a system that
went quiet) and has no percentile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import orjson

from eventcollector.aggregation import MAX_TOP, OTHER, AggregateSpec, Key
from eventcollector.alert_rules import AlertRule
from eventcollector.collector import EventCollector
from eventcollector.filters import Compare, Filter, all_of
from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.query_params import query_to_params

__all__ = ["SAMPLES", "Measured", "group_text", "link", "measure", "samples", "window_query"]

#: Sample events a notification carries.
SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Measured:
    """One group's value now (None: no value, e.g. no durations in the window)."""

    group: str
    key: Key
    value: float | None


def group_text(key: Key) -> str:
    """How a group's value is stored and shown: strings as they are, others as JSON."""
    return key if isinstance(key, str) else orjson.dumps(key).decode()


def window_query(rule: AlertRule, now: datetime, where: Filter | None = None) -> Query:
    assert rule.window is not None
    return Query(
        since=now - timedelta(seconds=rule.window),
        until=now,
        where=where if where is not None else rule.where(now),
    )


async def measure(
    collector: EventCollector, rule: AlertRule, now: datetime, known: set[str]
) -> list[Measured]:
    """The rule's value per group (one group "" without group_by); ``known``: the
    groups with a stored state, measured even when they have no events now."""
    assert rule.condition is not None
    metric = rule.condition.metric
    by = () if rule.group_by is None else (rule.group_by,)
    spec = AggregateSpec(by=by, metrics=(metric,), top=MAX_TOP)
    result = await collector.aggregate(window_query(rule, now), spec)
    empty = 0.0 if metric.counts else None
    found: dict[str, Measured] = {}
    for row in result.rows:
        key = row.keys[0] if by else None
        if key is OTHER:
            continue
        text = group_text(key) if by else ""
        value = row.values[0]
        found[text] = Measured(text, key, empty if value is None else float(value))
    if not by and "" not in found:
        found[""] = Measured("", None, empty)
    for text in known - found.keys():
        if by:
            found[text] = Measured(text, _key_of(text), empty)
    return [found[g] for g in sorted(found)]


def _key_of(text: str) -> Key:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def _group_filter(rule: AlertRule, key: Key, now: datetime) -> Filter | None:
    where = rule.where(now)
    if rule.group_by is None or key is None or key is OTHER:
        return where
    term = Compare(rule.group_by, "=", key)  # type: ignore[arg-type]
    return term if where is None else all_of(where, term)


async def samples(
    collector: EventCollector, rule: AlertRule, key: Key, now: datetime
) -> list[Event]:
    """The newest events of the group in the window (or, for a trigger, matching)."""
    where = _group_filter(rule, key, now)
    if rule.window is None:
        return await collector.query(Query(where=where, until=now, limit=SAMPLES))
    query = window_query(rule, now, where)
    return await collector.query(Query(since=query.since, until=now, where=where, limit=SAMPLES))


def link(base_url: str | None, rule: AlertRule, key: Key, now: datetime) -> str | None:
    """``GET /v1/events`` of the rule's filter (and group) over its window."""
    if base_url is None:
        return None
    where = _group_filter(rule, key, now)
    since = None if rule.window is None else now - timedelta(seconds=rule.window)
    params = query_to_params(Query(since=since, until=now if since else None, where=where))
    return f"{base_url.rstrip('/')}/v1/events?{urlencode(params)}"
