"""The identifiers both SQL backends may put in ORDER BY and GROUP BY: allow-lists.

Only these strings ever reach those clauses; every value is a bound parameter.
"""

from __future__ import annotations

from eventcollector.model import Severity


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
