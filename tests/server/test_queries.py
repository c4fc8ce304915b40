"""Read endpoints against the plain-Python reference (``Query.matches``), and paging."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from eventcollector.model import Event, format_timestamp
from eventcollector.query_params import query_from_params

from .conftest import Server, start

NOW = datetime.now(UTC).replace(microsecond=0)
SYSTEMS = ["deployer", "builder", "session_buddy"]
TYPES = ["workflow.started", "workflow.failed", "test.run"]
SEVERITIES = ["debug", "info", "warning", "error", "critical"]
WORDS = ["database", "timeout", "network", "cache", "deploy"]


def _seed() -> list[dict[str, Any]]:
    rng = random.Random(7)
    events = []
    for i in range(240):
        # Every 5th event shares its timestamp with the one before: ties for paging.
        ts = NOW - timedelta(minutes=(i - i % 5 // 4) * 17)
        events.append(
            {
                "id": f"q-{i:03d}",
                "timestamp": format_timestamp(ts),
                "system": rng.choice(SYSTEMS),
                "event_type": rng.choice(TYPES),
                "severity": rng.choice(SEVERITIES),
                "title": f"{rng.choice(WORDS)} event {i}",
                "description": rng.choice(WORDS),
                "tags": rng.sample(["a", "b", "c", "d"], rng.randint(0, 3)),
                "correlation_id": f"corr-{i % 12}",
                "source_component": rng.choice(["api", "worker", None]),
                "duration_ms": rng.choice([None, rng.randint(0, 5000)]),
            }
        )
    return events


SEEDED = _seed()
REFERENCE = [Event.from_dict(e) for e in SEEDED]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    for s in start(tmp_path_factory, "queries", "--rate-limit", "0"):
        with s.client() as c:
            r = c.post("/v1/events", content=orjson.dumps(SEEDED))
            assert r.json()["accepted"] == len(SEEDED)
        yield s


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def expected_ids(params: dict[str, Any]) -> set[str]:
    multi = {k: [str(v)] for k, v in params.items()}
    query = query_from_params(multi)
    return {e.id for e in REFERENCE if query.matches(e)}


FILTERS: list[dict[str, Any]] = [
    {"system": "deployer"},
    {"system": "deployer,builder"},
    {"event_type": "test.run"},
    {"severity": "error"},
    {"min_severity": "warning"},
    {"tags": "a,b"},
    {"any_tags": "c,d"},
    {"since": format_timestamp(NOW - timedelta(hours=20))},
    {"until": format_timestamp(NOW - timedelta(hours=30))},
    {"hours": 10},
    {"days": 1, "minutes": 30},
    {"correlation_id": "corr-3"},
    {"source_component": "api"},
    {"search": "data"},
    {"search": "time event"},
    {"min_duration_ms": 2500},
    {"id": "q-001,q-002,q-999"},
    {"system": "builder", "min_severity": "error", "tags": "a", "hours": 48},
]


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: ",".join(p))
def test_filter_round_trip(client: httpx.Client, params: dict[str, Any]) -> None:
    want = expected_ids(params)
    r = client.get("/v1/events", params={**params, "limit": 1000})
    assert r.status_code == 200, r.text
    got = [e["id"] for e in r.json()["events"]]
    assert set(got) == want
    assert len(got) == len(want)
    assert client.get("/v1/events/count", params=params).json() == {"count": len(want)}
    group = client.get("/v1/events/group", params={**params, "field": "system"}).json()
    assert group["field"] == "system"
    want_groups = Counter(e.system.value for e in REFERENCE if e.id in want)
    assert group["counts"] == dict(want_groups)


def _walk(client: httpx.Client, params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(200):
        page = client.get("/v1/events", params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [e["id"] for e in body["events"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("ascending", [False, True])
def test_cursor_pages_cover_everything_once_in_order(client: httpx.Client, ascending: bool) -> None:
    params: dict[str, Any] = {
        "limit": 7,
        "ascending": str(ascending).lower(),
        "system": "deployer,builder",
    }
    walked = _walk(client, params)
    full = client.get("/v1/events", params={**params, "limit": 1000}).json()["events"]
    assert walked == [e["id"] for e in full]
    assert len(walked) == len(set(walked)) == len(expected_ids({"system": "deployer,builder"}))


def test_cursor_is_stable_while_new_events_arrive(client: httpx.Client) -> None:
    params: dict[str, Any] = {"limit": 10, "correlation_id": "corr-5"}
    first = client.get("/v1/events", params=params).json()
    newer = [
        {"system": "deployer", "event_type": "x.y", "title": "late", "id": f"late-{i}",
         "correlation_id": "corr-5"}
        for i in range(3)
    ]  # fmt: skip
    assert client.post("/v1/events", content=orjson.dumps(newer)).status_code == 200
    rest = _walk(client, {**params, "cursor": first["next_cursor"]})
    seen = [e["id"] for e in first["events"]] + rest
    assert len(seen) == len(set(seen))
    assert set(seen) == expected_ids({"correlation_id": "corr-5"})


def test_other_orders_page_too(client: httpx.Client) -> None:
    params = {"limit": 50, "order_by": "title", "ascending": "true"}
    walked = _walk(client, params)
    assert len(walked) == len(set(walked)) >= len(SEEDED)


def test_paging_limits(client: httpx.Client) -> None:
    assert len(client.get("/v1/events").json()["events"]) == 100  # the default page
    r = client.get("/v1/events", params={"limit": 1001})
    assert r.status_code == 400
    assert r.json()["error"].startswith("limit:")
    r = client.get("/v1/events", params={"cursor": "garbage!"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("cursor:")
    cursor = client.get("/v1/events", params={"limit": 2}).json()["next_cursor"]
    r = client.get("/v1/events", params={"limit": 2, "cursor": cursor, "ascending": "true"})
    assert r.status_code == 400
    r = client.get("/v1/events", params={"limit": 2, "cursor": cursor, "offset": 3})
    assert r.json()["error"].startswith("offset:")


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/v1/events", {"colour": "red"}, "colour"),
        ("/v1/events", {"severity": "loud"}, "severity"),
        ("/v1/events", {"since": "yesterday"}, "since"),
        ("/v1/events", {"order_by": "id; DROP TABLE events"}, "order_by"),
        ("/v1/events/count", {"limit": "5"}, "limit"),
        ("/v1/events/group", {"field": "title"}, "field"),
        ("/v1/events/group", {}, "field"),
        ("/v1/analysis/errors", {"hours": "-1"}, "hours"),
        ("/v1/analysis/patterns", {"days": "many"}, "days"),
        ("/v1/stats", {"x": "1"}, "x"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    client: httpx.Client, path: str, params: dict[str, str], name: str
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400
    assert r.json()["error"].startswith(f"{name}:")


def test_get_by_id_and_404(client: httpx.Client) -> None:
    got = client.get("/v1/events/q-010").json()
    assert got == REFERENCE[10].to_dict()
    r = client.get("/v1/events/nope")
    assert r.status_code == 404
    assert r.json()["error"].startswith("id:")


def test_trace(client: httpx.Client) -> None:
    body = client.get("/v1/traces/corr-4").json()
    want = sorted((e for e in REFERENCE if e.correlation_id == "corr-4"), key=lambda e: e.timestamp)
    assert [e["id"] for e in body["events"]] == [e.id for e in want]
    span = (want[-1].timestamp - want[0].timestamp) / timedelta(milliseconds=1)
    assert body["span_ms"] == span
    assert client.get("/v1/traces/none-such").json()["events"] == []


def test_duration_stats(client: httpx.Client) -> None:
    body = client.get("/v1/events/duration-stats", params={"system": "deployer"}).json()
    durations = [
        e.duration_ms for e in REFERENCE if e.system == "deployer" and e.duration_ms is not None
    ]
    assert body["count"] == len(durations)
    assert body["min"] == min(durations)
    assert body["max"] == max(durations)


def test_hourly_groups(client: httpx.Client) -> None:
    counts = client.get("/v1/events/group", params={"field": "hour"}).json()["counts"]
    assert sum(counts.values()) >= len(SEEDED)
    assert all(k.endswith(":00:00+00:00") for k in counts)


def test_stats_and_analysis(client: httpx.Client) -> None:
    stats = client.get("/v1/stats").json()
    assert stats["total_events"] >= len(SEEDED)
    assert set(stats["by_system"]) >= set(SYSTEMS)
    errors = client.get("/v1/analysis/errors", params={"hours": 24}).json()
    assert errors["period_hours"] == 24
    assert errors["total_errors"] == len(expected_ids({"min_severity": "error", "hours": 24}))
    patterns = client.get("/v1/analysis/patterns", params={"days": 7}).json()
    assert "anomalies" in patterns or patterns
    report = client.get("/v1/analysis/report").json()
    assert report["period_hours"] == 24


def test_admin_cleanup(client: httpx.Client) -> None:
    old = {"system": "deployer", "event_type": "x.y", "title": "ancient", "id": "ancient-1",
           "timestamp": "2001-01-01T00:00:00+00:00"}  # fmt: skip
    assert client.post("/v1/events", content=orjson.dumps(old)).status_code == 200
    r = client.post("/v1/admin/cleanup", json={"retention_days": 3650})
    assert r.status_code == 200
    assert r.json() == {"deleted": 1}
    assert client.get("/v1/events/ancient-1").status_code == 404
    for bad in ({"retention_days": -1}, {"retention_days": "x"}, {"days": 1}, [1]):
        r = client.post("/v1/admin/cleanup", json=bad)
        assert r.status_code == 400
        assert "error" in r.json()


def test_admin_cleanup_with_a_filter(client: httpx.Client) -> None:
    old = [
        {"system": "deployer", "event_type": "x.y", "title": f"ancient {s}", "id": f"ancient-{s}",
         "severity": s, "timestamp": "2001-01-01T00:00:00+00:00"}
        for s in ("debug", "info")
    ]  # fmt: skip
    assert client.post("/v1/events", content=orjson.dumps(old)).status_code == 200
    r = client.post("/v1/admin/cleanup", json={"retention_days": 3650, "q": "severity:debug"})
    assert (r.status_code, r.json()) == (200, {"deleted": 1})
    assert client.get("/v1/events/ancient-debug").status_code == 404
    assert client.get("/v1/events/ancient-info").status_code == 200
    r = client.post("/v1/admin/cleanup", json={"retention_days": 1, "q": "severity:"})
    assert r.status_code == 400
    assert r.json()["error"] == "q: expected a value after 'severity:' at column 10"
