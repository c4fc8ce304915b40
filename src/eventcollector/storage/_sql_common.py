"""What both SQL backends share: the ORDER BY / GROUP BY allow-lists, and turning a
stored row back into an ``Event``.

Only the allow-listed strings ever reach those clauses; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from eventcollector.aggregation import PERCENTILES, Metric, field_text
from eventcollector.filters import Field
from eventcollector.model import Event, EventType, Severity, System


def _severity_rank(column: str) -> str:
    """Severities sort by rank (debug < ... < critical), not by name."""
    arms = " ".join(f"WHEN '{s.value}' THEN {s.rank}" for s in Severity)
    return f"CASE {column} {arms} END"


#: Query.order_by field -> expression.
ORDER_COLUMNS = {
    "timestamp": "e.timestamp",
    "system": "e.system",
    "event_type": "e.event_type",
    "severity": _severity_rank("e.severity"),
    "duration_ms": "e.duration_ms",
    "title": "e.title",
    "source_component": "e.source_component",
}
#: Aggregation key and metric field -> column (``aggregation.KEY_FIELDS`` and duration_ms).
AGGREGATE_COLUMNS = {
    "system": "e.system",
    "event_type": "e.event_type",
    "severity": "e.severity",
    "source_component": "e.source_component",
    "correlation_id": "e.correlation_id",
    "duration_ms": "e.duration_ms",
}


def metric_columns(
    metrics: Sequence[Metric],
    key: Callable[[Field], str],
    number: Callable[[Field], str],
    percentile: Callable[[str, float], str],
) -> list[str]:
    """An aggregation's metric expressions, then ``count(*)`` (which tells an empty
    ungrouped result from a group). ``key`` and ``number`` add the inner columns (one
    per numeric field); ``percentile(column, q)`` is the dialect's percentile."""
    out = []
    numbers: dict[str, str] = {}
    for metric in metrics:
        if metric.field is None:
            out.append("count(*)")
        elif metric.op == "count_distinct":
            out.append(f"count(DISTINCT nullif({key(metric.field)}, ''))")
        else:
            name = field_text(metric.field)
            if name not in numbers:
                numbers[name] = number(metric.field)
            column = numbers[name]
            q = PERCENTILES.get(metric.op)
            out.append(f"{metric.op}({column})" if q is None else percentile(column, q))
    return [*out, "count(*)"]


#: Order fields that may be NULL (sorted last in both directions).
NULLABLE = frozenset({"duration_ms", "source_component"})


def group_expressions(hour: str) -> dict[str, str]:
    """GroupField -> expression, with the backend's expression for the hour bucket."""
    return {
        "system": "e.system",
        "event_type": "e.event_type",
        "severity": "e.severity",
        "source_component": "coalesce(e.source_component, '')",
        "hour": hour,
    }


_systems = System._value2member_map_
_types = EventType._value2member_map_
_severities = Severity._value2member_map_


def stored_event(row: Sequence[Any], timestamp: datetime, tags: list[str]) -> Event:
    """An ``Event`` from a row in ``COLUMNS`` order (insertion position first), with the
    backend's own decoding of timestamp and tags. Trusted: no validation."""
    system, event_type, severity = row[3], row[4], row[5]
    return Event(
        id=row[1],
        timestamp=timestamp,
        # Member lookups by value skip EnumType.__call__, which costs ~1 µs each.
        system=_systems.get(system) or System(system),  # type: ignore[arg-type]
        event_type=_types.get(event_type) or EventType(event_type),  # type: ignore[arg-type]
        severity=_severities.get(severity) or Severity(severity),  # type: ignore[arg-type]
        title=row[6],
        description=row[7],
        data=orjson.loads(row[8]),
        tags=tags,
        correlation_id=row[10],
        source_component=row[11],
        duration_ms=row[12],
        metadata=orjson.loads(row[13]),
    )
