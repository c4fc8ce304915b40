"""EventAnalyzer and its pure functions, against real SQLite and Python references."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from eventcollector import Event, EventAnalyzer, EventCollector
from eventcollector.analyzer import ANOMALY_THRESHOLD_SIGMA, find_anomalies, group_errors

EventFactory = Callable[..., Event]


def hour_key(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:00:00+00:00")


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def percentile(values: list[int], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- pure functions ----------------------------------------------------------------


def series(counts: list[int], start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> dict[str, int]:
    return {hour_key(start + timedelta(hours=i)): n for i, n in enumerate(counts)}


def test_find_anomalies_flat_series_has_none() -> None:
    assert find_anomalies(series([10] * 48)) == []


def test_find_anomalies_finds_a_spike_with_its_deviation() -> None:
    counts = [10] * 24
    counts[12] = 100
    hourly = series(counts)
    [anomaly] = find_anomalies(hourly)
    mean = statistics.fmean(counts)
    sigma = statistics.pstdev(counts)
    assert anomaly["type"] == "spike"
    assert anomaly["hour"] == list(hourly)[12]
    assert anomaly["count"] == 100
    assert anomaly["expected"] == pytest.approx(mean, abs=1e-3)
    assert anomaly["deviation"] == pytest.approx((100 - mean) / sigma, abs=1e-3)
    assert anomaly["deviation"] >= ANOMALY_THRESHOLD_SIGMA


def test_find_anomalies_fills_silent_hours_with_zero() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    hourly = {hour_key(start): 5, hour_key(start + timedelta(hours=30)): 500}
    anomalies = find_anomalies(hourly, until=start + timedelta(hours=30, minutes=10))
    assert [a["hour"] for a in anomalies] == [hour_key(start + timedelta(hours=30))]


def test_find_anomalies_needs_a_baseline() -> None:
    assert find_anomalies({}) == []
    assert find_anomalies(series([1, 1, 100])) == []


def test_find_anomalies_ignores_the_unfinished_current_hour() -> None:
    # Steady traffic up to now; the current hour has only just begun.
    start = datetime(2025, 1, 1, tzinfo=UTC)
    hourly = series([10] * 24, start)
    assert find_anomalies(hourly, until=start + timedelta(hours=24, minutes=1)) == []


def test_group_errors_masks_variable_parts(make_event: EventFactory) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    events = [
        make_event(
            severity="error",
            title=f"Timeout after {n} ms on job 3f2a9c1e-0000-4000-8000-00000000000{n}",
            data={"error_type": "TimeoutError"},
            timestamp=base + timedelta(minutes=n),
        )
        for n in range(3)
    ] + [make_event(severity="error", title="Disk full", timestamp=base)]
    groups = group_errors(events)
    assert [g["count"] for g in groups] == [3, 1]
    assert groups[0]["title"] == "Timeout after <*> ms on job <*>"
    assert groups[0]["first_seen"] == "2025-01-01T00:00:00.000000+00:00"
    assert groups[0]["last_seen"] == "2025-01-01T00:02:00.000000+00:00"
    assert "TimeoutError" in groups[0]["fingerprint"]
    assert groups[1]["example_id"] == events[3].id
    json.dumps(groups)


# -- analyzer over a store ----------------------------------------------------------------


async def test_analyze_errors(collector: EventCollector, make_event: EventFactory) -> None:
    now = datetime.now(UTC)
    await collector.ingest(
        [
            make_event(severity="error", title="DB error 1", source_component="db",
                       timestamp=now - timedelta(hours=2)),
            make_event(severity="error", title="DB error 2", source_component="db",
                       timestamp=now - timedelta(hours=1)),
            make_event(system="crackerjack", event_type="test.failed", severity="critical",
                       title="Suite crashed", timestamp=now - timedelta(minutes=5)),
            make_event(severity="info", title="fine"),
            make_event(severity="error", title="too old", timestamp=now - timedelta(hours=30)),
        ]
    )  # fmt: skip
    analysis = await EventAnalyzer(collector).analyze_errors(hours=24)
    json.dumps(analysis)
    assert {
        "total_errors", "critical_errors", "errors_by_type", "errors_by_system",
        "errors_by_component", "recent_errors",
    } <= set(analysis)  # fmt: skip
    assert analysis["total_errors"] == 3
    assert analysis["critical_errors"] == 1
    assert analysis["errors_by_system"] == {"mahavishnu": 2, "crackerjack": 1}
    assert analysis["errors_by_type"] == {"workflow.started": 2, "test.failed": 1}
    assert analysis["errors_by_component"] == {"db": 2}
    assert [e["title"] for e in analysis["recent_errors"]] == [
        "Suite crashed", "DB error 2", "DB error 1",
    ]  # fmt: skip
    assert analysis["error_groups"][0]["count"] == 2  # "DB error <*>"


async def test_analyze_errors_lists_the_top_issues_of_the_period(
    collector: EventCollector, make_event: EventFactory
) -> None:
    now = datetime.now(UTC)
    await collector.ingest(
        [
            *(make_event(severity="error", title=f"Timeout after {i}ms",
                         timestamp=now - timedelta(minutes=i)) for i in range(1, 4)),
            make_event(severity="critical", title="Disk full", timestamp=now),
            make_event(severity="error", title="Gone", timestamp=now - timedelta(hours=30)),
        ]
    )  # fmt: skip
    analysis = await EventAnalyzer(collector).analyze_errors(hours=24)
    assert analysis["error_groups"][0]["count"] == 3  # the spec's keys stay
    assert [(i["title"], i["count"]) for i in analysis["top_issues"]] == [
        ("Timeout after 1ms", 3), ("Disk full", 1),
    ]  # fmt: skip


async def test_detect_patterns_finds_an_injected_spike(
    collector: EventCollector, make_event: EventFactory
) -> None:
    top = this_hour()
    events = [
        make_event(timestamp=top - timedelta(hours=h), duration_ms=100)
        for h in range(48)
        for _ in range(3)
    ]
    spike_hour = top - timedelta(hours=10)
    events += [make_event(timestamp=spike_hour + timedelta(minutes=m)) for m in range(50)]
    await collector.ingest(events)
    patterns = await EventAnalyzer(collector).detect_patterns(days=7)
    json.dumps(patterns)
    assert {
        "total_events", "hourly_distribution", "event_types", "systems", "avg_duration_ms",
        "patterns",
    } <= set(patterns)  # fmt: skip
    assert patterns["total_events"] == len(events)
    assert patterns["hourly_distribution"][hour_key(spike_hour)] == 53
    assert patterns["hourly_distribution"][hour_key(top)] == 3
    assert patterns["avg_duration_ms"] == 100
    [anomaly] = patterns["patterns"]
    assert anomaly["hour"] == hour_key(spike_hour)
    assert anomaly["count"] == 53
    counts = [53 if h == 10 else 3 for h in range(48)]
    expected = (53 - statistics.fmean(counts)) / statistics.pstdev(counts)
    assert anomaly["deviation"] == pytest.approx(expected, abs=1e-3)


async def test_detect_patterns_flat_series_has_no_anomalies(
    collector: EventCollector, make_event: EventFactory
) -> None:
    top = this_hour()
    await collector.ingest(
        [make_event(timestamp=top - timedelta(hours=h)) for h in range(1, 48) for _ in range(2)]
    )
    patterns = await EventAnalyzer(collector).detect_patterns(days=7)
    assert patterns["patterns"] == []
    assert set(patterns["hourly_distribution"].values()) == {2}


async def test_trace_correlation_is_chronological(
    collector: EventCollector, make_event: EventFactory
) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    late = make_event(correlation_id="wf_1", title="late", timestamp=t0 + timedelta(minutes=5))
    early = make_event(correlation_id="wf_1", title="early", timestamp=t0)
    tie = make_event(correlation_id="wf_1", title="tie", timestamp=t0)
    other = make_event(correlation_id="wf_2", title="other", timestamp=t0)
    await collector.ingest([late, early, tie, other])
    assert await EventAnalyzer(collector).trace_correlation("wf_1") == [early, tie, late]
    assert await EventAnalyzer(collector).trace_correlation("nope") == []


async def test_generate_report_duration_stats(
    collector: EventCollector, make_event: EventFactory
) -> None:
    durations = [5, 1, 250, 30, 30, 7, 1200, 64, 99, 3, 18, 42, 800, 11, 2]
    now = datetime.now(UTC)
    await collector.ingest(
        [make_event(duration_ms=d, severity="warning") for d in durations]
        + [
            make_event(title="no duration"),
            make_event(duration_ms=10**6, timestamp=now - timedelta(days=3)),
        ]
    )
    report = await EventAnalyzer(collector).generate_report(hours=24)
    json.dumps(report)
    assert {
        "period_hours", "total_events", "severity_distribution", "system_distribution",
        "event_type_distribution", "duration_stats", "recent_events",
    } <= set(report)  # fmt: skip
    assert report["period_hours"] == 24
    assert report["total_events"] == len(durations) + 1
    assert report["severity_distribution"] == {"warning": len(durations), "info": 1}
    stats = report["duration_stats"]
    assert stats["count"] == len(durations)
    assert stats["min"] == min(durations)
    assert stats["max"] == max(durations)
    assert stats["avg"] == pytest.approx(statistics.fmean(durations))
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        assert stats[name] == pytest.approx(percentile(durations, q)), name
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    assert (stats["p50"], stats["p95"], stats["p99"]) == pytest.approx(
        (cuts[49], cuts[94], cuts[98])
    )
    assert len(report["recent_events"]) == 10


async def test_generate_report_of_an_empty_store(collector: EventCollector) -> None:
    report = await EventAnalyzer(collector).generate_report(hours=1)
    json.dumps(report)
    assert report["total_events"] == 0
    assert report["duration_stats"]["min"] == 0
    assert report["duration_stats"]["avg"] == 0
    assert report["recent_events"] == []
