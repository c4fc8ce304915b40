"""The reference semantics of aggregations and facets, in plain Python over events.

Tests compare every backend with these, as they compare queries with ``Query.matches``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from eventcollector.aggregation import (
    OTHER,
    PERCENTILES,
    TAG,
    AggregateResult,
    AggregateSpec,
    Facet,
    GroupId,
    Groups,
    Key,
    Metric,
    Number,
    facet,
    field_text,
    finish,
    floor_bucket,
    group_id,
    identity,
    percentile,
    rank,
)
from eventcollector.filters import Field
from eventcollector.model import Event
from eventcollector.query import Query

__all__ = ["aggregate_events", "facet_events", "facet_values", "key_value"]

_MISSING = object()


def key_value(event: Event, field: Field) -> Key:
    """The group key of ``event`` for ``field`` (see ``aggregation``)."""
    if not field.path:
        value = getattr(event, field.name)
        return getattr(value, "value", value)  # type: ignore[no-any-return]
    found: Any = event.data if field.name == "data" else event.metadata
    for key in field.path:
        if type(found) is not dict or key not in found:
            return None
        found = found[key]
    return found if type(found) in (str, int, float, bool) else None


def _number(event: Event, field: Field) -> Number | None:
    if field.name == "duration_ms":
        return event.duration_ms
    value = key_value(event, field)
    return value if type(value) in (int, float) else None  # type: ignore[return-value]


def _metric(metric: Metric, events: Sequence[Event]) -> Number | None:
    if metric.op == "count":
        return len(events)
    assert metric.field is not None
    if metric.op == "count_distinct":
        seen = {identity(key_value(e, metric.field)) for e in events}
        seen.discard(identity(None))
        return len(seen)
    values = sorted(v for e in events if (v := _number(e, metric.field)) is not None)
    if not values:
        return None
    if metric.op == "min":
        return values[0]
    if metric.op == "max":
        return values[-1]
    if metric.op == "sum":
        return sum(values)
    if metric.op == "avg":
        return sum(values) / len(values)
    return percentile(values, PERCENTILES[metric.op])


def _tops(events: Sequence[Event], fields: Iterable[Field], top: int) -> list[list[Key]]:
    out = []
    for field in fields:
        counts: Counter[tuple[int, Any]] = Counter(identity(key_value(e, field)) for e in events)
        out.append([v for v, _ in rank(((k[1], n) for k, n in counts.items()), top)])
    return out


def aggregate_events(
    events: Iterable[Event], query: Query, spec: AggregateSpec, now: datetime | None = None
) -> AggregateResult:
    """``spec`` over the events matching ``query``."""
    now = now or datetime.now(UTC)
    chosen = [e for e in events if query.matches(e)]
    seconds = spec.bucket_seconds(query.since, query.until, now)
    tops = _tops(chosen, spec.by, spec.top)
    kept = [{identity(v) for v in order} for order in tops]
    grouped: dict[GroupId, tuple[tuple[Key, ...], list[Event]]] = {}
    for e in chosen:
        keys = tuple(
            v if identity(v) in k else OTHER
            for v, k in zip((key_value(e, f) for f in spec.by), kept, strict=True)
        )
        bucket = None if seconds is None else floor_bucket(e.timestamp, seconds)
        grouped.setdefault(group_id(bucket, keys), (keys, []))[1].append(e)
    groups: Groups = {
        group: (keys, tuple(_metric(m, members) for m in spec.metrics))
        for group, (keys, members) in grouped.items()
    }
    orders = [[*order, OTHER] for order in tops]
    return finish(spec, seconds, query.since, query.until or now, groups, orders)


def facet_values(event: Event, field: Field) -> list[Key]:
    """The values ``event`` counts under in a facet of ``field``: one, or for ``tag``
    each of its tags (None for an event without any)."""
    if field == TAG:
        return list(event.tags) or [None]
    return [key_value(event, field)]


def facet_events(
    events: Iterable[Event], query: Query, fields: Sequence[Field], top: int
) -> list[Facet]:
    """The top values of each field over the events matching ``query``."""
    chosen = [e for e in events if query.matches(e)]
    out = []
    for field in fields:
        counts: Counter[tuple[int, Any]] = Counter(
            identity(v) for e in chosen for v in facet_values(e, field)
        )
        total = sum(counts.values())
        out.append(facet(field_text(field), ((v, n) for (_, v), n in counts.items()), total, top))
    return out
