"""Query latencies (p50/p95 in ms) over a store the ingest phase filled.

Each query runs a few times to warm caches, then ``repeat`` times measured; the
queries are the spec's own examples at the shapes the issue names.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from eventcollector import (
    Event,
    EventAnalyzer,
    EventCollector,
    EventQueryBuilder,
    Severity,
    System,
)
from eventcollector.aggregation import AggregateSpec
from eventcollector.query import Query
from eventcollector.storage import Storage
from eventcollector.storage.sqlite import SQLiteStorage

WARMUP = 3
MIXED_FILTER = 'severity:>=warning system:[mahavishnu, crackerjack] -tag:staging "timeout"'


def simple_query(c: EventCollector) -> Awaitable[list[Event]]:
    """The 1,000 newest events of one system."""
    return EventQueryBuilder(c).system(System.MAHAVISHNU).limit(1000).execute()


def complex_query(c: EventCollector) -> Awaitable[list[Event]]:
    """The spec's complex query: one system's errors of the last day tagged production."""
    return (
        EventQueryBuilder(c)
        .system(System.MAHAVISHNU)
        .severity(Severity.ERROR)
        .time_range(days=1)
        .tags(["production"])
        .limit(1000)
        .execute()
    )


async def _time(fn: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, Any]:
    for _ in range(WARMUP):
        result = await fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = await fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    size = len(result) if isinstance(result, list) else None
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 3),
        "rows": size,
    }


_BY_15M_SEVERITY = AggregateSpec.parse(["severity"], interval="15m")
_FACETS = ["system", "event_type", "severity", "source_component", "data.stage"]
#: The Explore sidebar's call (top 8) before and since it counts tags on the server.
_SIDEBAR = ["system", "severity", "event_type", "source_component"]


def _last_day() -> Query:
    return Query(since=datetime.now(UTC) - timedelta(hours=24))


def _last_hour() -> Query:
    return Query(since=datetime.now(UTC) - timedelta(hours=1))


def _first_view(storage: Storage, call: Awaitable[Any]) -> Awaitable[Any]:
    """``call`` with the SQLite store's kept facet counts forgotten first."""
    if isinstance(storage, SQLiteStorage):
        storage._hour_cache.clear()
    return call


async def query_latencies(
    storage: Storage, repeat: int = 30, *, only_filters: bool = False
) -> dict[str, Any]:
    async with EventCollector(storage=storage) as c:
        a = EventAnalyzer(c)
        stats = await c.get_statistics()
        # A trace from the middle of the data: 50 events (benchmarks._data.TRACE_LENGTH).
        trace_id = f"trace-{stats['total_events'] // 100}"
        b = lambda: EventQueryBuilder(c)  # noqa: E731 - a fresh builder per run

        def repo_query() -> Awaitable[Any]:
            return b().where("data.repo:acme").time_range(hours=24).limit(100).execute()

        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "simple_query_1000": lambda: simple_query(c),
            "simple_time_range_1000": lambda: b().time_range(hours=24).limit(1000).execute(),
            "complex_query": lambda: complex_query(c),
            "count_filtered": lambda: (
                b()
                .system(System.CRACKERJACK)
                .severity(Severity.ERROR)
                .event_type("test.failed")
                .time_range(hours=24)
                .count()
            ),
            "count_all": lambda: b().count(),
            "get_statistics": c.get_statistics,
            "search_100": lambda: b().search("database").limit(100).execute(),
            "trace_correlation_50": lambda: a.trace_correlation(trace_id),
            "analyze_errors_24h": lambda: a.analyze_errors(24),
            "generate_report_24h": lambda: a.generate_report(24),
            "detect_patterns_7d": lambda: a.detect_patterns(7),
            # Issue #12: 96 buckets x 5 severities, and a UI sidebar's facets.
            "aggregate_15m_x_severity_24h": lambda: c.aggregate(_last_day(), _BY_15M_SEVERITY),
            "facets_top10_5_fields_24h": lambda: c.facets(_last_day(), _FACETS, 10),
            # The same as a first view: no hour's counts kept from an earlier call.
            "facets_top10_5_fields_24h_first": lambda: _first_view(
                storage, c.facets(_last_day(), _FACETS, 10)
            ),
            # The tag facet: each matching event's tags counted (json_each / unnest).
            "facets_top10_tag_1h": lambda: c.facets(_last_hour(), ["tag"], 10),
            "facets_top10_tag_24h": lambda: c.facets(_last_day(), ["tag"], 10),
            "facets_top10_tag_all": lambda: c.facets(Query(), ["tag"], 10),
            "facets_sidebar_4_fields_24h": lambda: c.facets(_last_day(), _SIDEBAR, 8),
            "facets_sidebar_with_tag_24h": lambda: c.facets(_last_day(), [*_SIDEBAR, "tag"], 8),
            # Issue 12: filters (targets 15 ms, and 50 / 5 ms unindexed / indexed).
            "filter_mixed_24h_100": lambda: (
                b().where(MIXED_FILTER).time_range(hours=24).limit(100).execute()
            ),
            "filter_repo_24h_100_unindexed": repo_query,
        }
        if only_filters:
            cases = {name: fn for name, fn in cases.items() if name in FILTER_CASES}
        figures: dict[str, Any] = {name: await _time(fn, repeat) for name, fn in cases.items()}
        indexes = await c.indexes()
        started = time.perf_counter()
        await indexes.add_index("data.repo")
        figures["index_add_data_repo_s"] = round(time.perf_counter() - started, 2)
        figures["filter_repo_24h_100_indexed"] = await _time(repo_query, repeat)
        await indexes.remove_index("data.repo")  # the store stays as ingest left it
        # The facets' data path indexed: counted in its index instead of every row's JSON.
        await indexes.add_index("data.stage")
        figures["facets_top10_5_fields_24h_indexed"] = await _time(
            lambda: c.facets(_last_day(), _FACETS, 10), repeat
        )
        await indexes.remove_index("data.stage")
        return figures


#: Issue 12's query figures: ``--only filter_queries`` measures these alone.
FILTER_CASES = frozenset(
    {
        "aggregate_15m_x_severity_24h",
        "facets_top10_5_fields_24h",
        "facets_top10_5_fields_24h_first",
        "filter_mixed_24h_100",
        "filter_repo_24h_100_unindexed",
    }
)


def run(storage: Storage, repeat: int = 30, *, only_filters: bool = False) -> dict[str, Any]:
    return asyncio.run(query_latencies(storage, repeat, only_filters=only_filters))
