"""``EventAnalyzer``: error analysis, patterns and anomalies, traces, reports.

The analyzer asks the collector for counts, groupings and a bounded number of
events, and turns them into plain JSON-serialisable dicts with pure functions
(``find_anomalies``, ``group_errors``), which the tests exercise directly.
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from eventcollector.issues import Issue
from eventcollector.model import Event, Severity, format_timestamp
from eventcollector.query import DurationStats, GroupField, Query

__all__ = ["ANOMALY_THRESHOLD_SIGMA", "EventAnalyzer", "find_anomalies", "group_errors"]

#: An hour is anomalous when its count is this many standard deviations from the mean.
ANOMALY_THRESHOLD_SIGMA = 2.5
#: Fewer hours than this give no meaningful baseline.
_MIN_HOURS_FOR_ANOMALIES = 6
_ERROR_SEVERITIES = (Severity.ERROR.value, Severity.CRITICAL.value)
_RECENT = 10
_TOP_ISSUES = 10
_GROUPING_SAMPLE = 1_000
_TRACE_LIMIT = 10_000


class AnalysisSource(Protocol):
    async def query(self, query: Query) -> list[Event]: ...
    async def count(self, query: Query) -> int: ...
    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]: ...
    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats: ...


@runtime_checkable
class IssueSource(Protocol):
    """A collector that keeps issues (``EventCollector``)."""

    async def issues(
        self, *, seen_since: datetime | None = None, order_by: str = ..., limit: int = ...
    ) -> list[Issue]: ...


class EventAnalyzer:
    """The spec's analyzer over any collector (embedded or remote)."""

    def __init__(self, collector: AnalysisSource) -> None:
        self._collector = collector

    async def analyze_errors(self, hours: float = 24) -> dict[str, Any]:
        """Errors and critical events of the last ``hours``, counted and grouped."""
        now = datetime.now(UTC)
        errors = Query(severities=_ERROR_SEVERITIES, since=now - timedelta(hours=hours))
        c = self._collector
        by_severity, by_type, by_system, by_component, sample = await asyncio.gather(
            c.group_count(errors, "severity"),
            c.group_count(errors, "event_type"),
            c.group_count(errors, "system"),
            c.group_count(errors, "source_component"),
            c.query(errors.with_(limit=_GROUPING_SAMPLE)),
        )
        by_component.pop("", None)
        top_issues: list[dict[str, Any]] = []
        if isinstance(c, IssueSource):
            try:
                found = await c.issues(
                    seen_since=now - timedelta(hours=hours), order_by="count", limit=_TOP_ISSUES
                )
            except NotImplementedError:  # a store that keeps no issues
                found = []
            top_issues = [i.to_dict() for i in found]
        return {
            "period_hours": hours,
            "total_errors": sum(by_severity.values()),
            "critical_errors": by_severity.get(Severity.CRITICAL.value, 0),
            "errors_by_type": by_type,
            "errors_by_system": by_system,
            "errors_by_component": by_component,
            "error_groups": group_errors(sample),
            "recent_errors": [e.to_dict() for e in sample[:_RECENT]],
            # The stored issues seen in the period, the most frequent first (all time counts).
            "top_issues": top_issues,
        }

    async def detect_patterns(self, days: float = 7) -> dict[str, Any]:
        """Hourly distribution, type and system counts, and hourly-volume anomalies."""
        now = datetime.now(UTC)
        window = Query(since=now - timedelta(days=days))
        c = self._collector
        hourly, types, systems, durations = await asyncio.gather(
            c.group_count(window, "hour"),
            c.group_count(window, "event_type"),
            c.group_count(window, "system"),
            c.duration_stats(window, percentiles=False),
        )
        hourly = dict(sorted(hourly.items()))
        return {
            "period_days": days,
            "total_events": sum(systems.values()),
            "hourly_distribution": hourly,
            "event_types": types,
            "systems": systems,
            "avg_duration_ms": durations.avg or 0.0,
            "duration_count": durations.count,
            "patterns": find_anomalies(hourly, until=now),
        }

    async def trace_correlation(self, correlation_id: str) -> list[Event]:
        """Every event sharing ``correlation_id``, oldest first."""
        return await self._collector.query(
            Query(correlation_id=correlation_id, ascending=True, limit=_TRACE_LIMIT)
        )

    async def generate_report(self, hours: float = 24) -> dict[str, Any]:
        """Distributions, duration statistics and the latest events of the last ``hours``."""
        now = datetime.now(UTC)
        window = Query(since=now - timedelta(hours=hours))
        c = self._collector
        severities, systems, types, durations, recent = await asyncio.gather(
            c.group_count(window, "severity"),
            c.group_count(window, "system"),
            c.group_count(window, "event_type"),
            c.duration_stats(window),
            c.query(window.with_(limit=_RECENT)),
        )
        stats = durations.to_dict()
        # The spec formats min/max/avg as numbers, so an empty period reports zeros.
        for key in ("min", "max", "avg"):
            stats[key] = stats[key] or 0
        return {
            "period_hours": hours,
            "generated_at": format_timestamp(now),
            "since": format_timestamp(window.since or now),
            "total_events": sum(severities.values()),
            "severity_distribution": severities,
            "system_distribution": systems,
            "event_type_distribution": types,
            "duration_stats": stats,
            "recent_events": [e.to_dict() for e in recent],
        }


def find_anomalies(
    hourly: dict[str, int],
    *,
    until: datetime | None = None,
    threshold: float = ANOMALY_THRESHOLD_SIGMA,
) -> list[dict[str, Any]]:
    """Hours whose event count is ``threshold`` σ or more from the mean.

    Hours between the first counted hour and ``until`` with no events count as
    zero, so a burst after silence (or silence after steady traffic) shows up.
    """
    if not hourly:
        return []
    series = _fill_hours(hourly, until)
    if len(series) < _MIN_HOURS_FOR_ANOMALIES:
        return []
    counts = list(series.values())
    mean = statistics.fmean(counts)
    std = statistics.pstdev(counts, mean)
    if std == 0:
        return []
    # The hour ``until`` falls in has not finished: few events there are no drop.
    unfinished = None if until is None else format_hour(until)
    anomalies = []
    for hour, count in series.items():
        deviation = (count - mean) / std
        if hour == unfinished and deviation < 0:
            continue
        if abs(deviation) >= threshold:
            anomalies.append(
                {
                    "type": "spike" if deviation > 0 else "drop",
                    "hour": hour,
                    "count": count,
                    "expected": round(mean, 3),
                    "deviation": round(deviation, 3),
                }
            )
    return sorted(anomalies, key=lambda a: -abs(a["deviation"]))


def _fill_hours(hourly: dict[str, int], until: datetime | None) -> dict[str, int]:
    hours = sorted(datetime.fromisoformat(h) for h in hourly)
    last = hours[-1]
    if until is not None:
        last = max(last, until.replace(minute=0, second=0, microsecond=0))
    filled: dict[str, int] = {}
    current = hours[0]
    while current <= last:
        key = format_hour(current)
        filled[key] = hourly.get(key, 0)
        current += timedelta(hours=1)
    return filled


def format_hour(ts: datetime) -> str:
    """The hour-bucket key storage uses: "YYYY-MM-DDTHH:00:00+00:00"."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat()


# Numbers, hex ids and UUIDs vary between occurrences of the same error.
_VARIABLE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|0x[0-9a-f]+|\b[0-9a-f]{12,}\b|\d+",
    re.IGNORECASE,
)


def fingerprint(event: Event) -> str:
    """What makes two errors "the same": system, type and title with variable parts masked."""
    error_type = event.data.get("error_type") if isinstance(event.data, dict) else None
    title = _VARIABLE.sub("<*>", event.title)
    return f"{event.system.value}|{event.event_type.value}|{error_type or ''}|{title}"


def group_errors(events: Sequence[Event]) -> list[dict[str, Any]]:
    """Errors grouped by fingerprint, largest group first."""
    groups: dict[str, dict[str, Any]] = {}
    for event in events:
        key = fingerprint(event)
        group = groups.get(key)
        ts = format_timestamp(event.timestamp)
        if group is None:
            groups[key] = {
                "fingerprint": key,
                "system": event.system.value,
                "event_type": event.event_type.value,
                "title": _VARIABLE.sub("<*>", event.title),
                "count": 1,
                "first_seen": ts,
                "last_seen": ts,
                "example_id": event.id,
            }
        else:
            group["count"] += 1
            group["first_seen"] = min(group["first_seen"], ts)
            group["last_seen"] = max(group["last_seen"], ts)
    return sorted(groups.values(), key=lambda g: (-g["count"], g["fingerprint"]))
