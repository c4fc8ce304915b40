"""``GET /v1/aggregate`` and ``GET /v1/facets`` through the real server, and the remote
client's ``aggregate``/``facets`` against it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from _common import event
from eventcollector import EventCollector
from eventcollector.aggregation import AggregateSpec
from eventcollector.query import Query

from .conftest import Server, start
from .test_streams import post

NOW = datetime.now(UTC).replace(microsecond=0)
EVENTS = [
    event(id=f"a-{i}", system=system, severity=severity, duration_ms=ms, data={"repo": repo},
          tags=tags, timestamp=(NOW - timedelta(minutes=minutes)).isoformat())
    for i, (system, severity, ms, repo, minutes, tags) in enumerate(
        [
            ("alpha", "error", 10, "acme/web", 5, ["deploy", "prod"]),
            ("alpha", "info", 20, "acme/web", 70, ["prod"]),
            ("beta", "error", 30, "acme/api", 10, ["prod", "db"]),
            ("gamma", "warning", None, "other", 20, []),
        ]
    )
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    for s in start(tmp_path_factory, "aggregate", "--rate-limit", "0"):
        post(s, EVENTS)
        yield s


def test_aggregate_groups_with_metrics_and_other(server: Server) -> None:
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("by", "system"),
        ("metric", "count"),
        ("metric", "max:duration_ms"),
        ("top", "1"),
        ("hours", "3"),
    ]
    with server.client() as c:
        r = c.get("/v1/aggregate", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "by": ["system"],
        "interval": None,
        "metrics": ["count", "max:duration_ms"],
        "rows": [
            {"key": {"system": "alpha"}, "values": {"count": 2, "max:duration_ms": 20}},
            {"key": {"system": None}, "other": ["system"],
             "values": {"count": 2, "max:duration_ms": 30}},
        ],
    }  # fmt: skip


def test_aggregate_by_bucket_fills_empty_buckets(server: Server) -> None:
    params = {"by": "severity", "interval": "1h", "severity": "error", "hours": "3"}
    with server.client() as c:
        rows = c.get("/v1/aggregate", params=params).json()["rows"]
    assert len(rows) in (3, 4)  # the range's hours, whether or not "now" is on the hour
    assert sum(r["values"]["count"] for r in rows) == 2
    assert all(r["key"] == {"severity": "error"} and "bucket" in r for r in rows)


def test_facets_in_one_call(server: Server) -> None:
    with server.client() as c:
        r = c.get("/v1/facets", params={"field": "system,data.repo", "top": "2"})
    assert r.status_code == 200, r.text
    first, repo = r.json()["facets"]
    assert first == {
        "field": "system",
        "values": [{"value": "alpha", "count": 2}, {"value": "beta", "count": 1}],
        "other": 1,
    }
    assert repo["values"][0] == {"value": "acme/web", "count": 2}


def test_a_tag_facet_counts_each_tag_of_every_matching_event(server: Server) -> None:
    with server.client() as c:
        every = c.get("/v1/facets", params={"field": "tags", "top": "2"})
        filtered = c.get("/v1/facets", params={"field": "tag,system", "q": "-tag:deploy"})
    assert every.status_code == 200, every.text
    # Five (event, tag) pairs, the untagged event's null included: prod 3, db 1, deploy 1.
    assert every.json()["facets"] == [
        {
            "field": "tag",
            "values": [{"value": "prod", "count": 3}, {"value": None, "count": 1}],
            "other": 2,
        }
    ]
    tags, systems = filtered.json()["facets"]
    assert tags == {
        "field": "tag",
        "values": [
            {"value": "prod", "count": 2},
            {"value": None, "count": 1},
            {"value": "db", "count": 1},
        ],
        "other": 0,
    }
    assert systems["values"] == [
        {"value": "alpha", "count": 1},
        {"value": "beta", "count": 1},
        {"value": "gamma", "count": 1},
    ]


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/v1/aggregate", {"by": "title"}, "by"),
        ("/v1/aggregate", {"metric": "p95:system"}, "metric"),
        ("/v1/aggregate", {"interval": "7m"}, "interval"),
        ("/v1/aggregate", {"interval": "auto"}, "interval"),
        ("/v1/aggregate", {"top": "x"}, "top"),
        ("/v1/aggregate", {"top": "0"}, "top"),
        ("/v1/aggregate", {"nope": "1"}, "nope"),
        ("/v1/aggregate", {"q": "severity:"}, "q"),
        ("/v1/facets", {}, "field"),
        ("/v1/facets", {"field": "title"}, "field"),
        ("/v1/aggregate", {"by": "tag"}, "by"),
        ("/v1/facets", {"field": "system", "top": "5000"}, "top"),
    ],
)
def test_bad_input_is_400_naming_the_parameter(
    server: Server, path: str, params: dict[str, str], name: str
) -> None:
    with server.client() as c:
        r = c.get(path, params=params)
    assert r.status_code == 400
    assert r.json()["error"].startswith(f"{name}:")


def test_openapi_documents_both(server: Server) -> None:
    with server.client() as c:
        doc = c.get("/openapi.json").json()
    assert {"/v1/aggregate", "/v1/facets"} <= set(doc["paths"])
    assert {"Aggregate", "Facets"} <= set(doc["components"]["schemas"])


async def test_the_remote_client_aggregates_through_the_server(server: Server) -> None:
    async with EventCollector(url=server.url) as c:
        spec = AggregateSpec.parse(["data.repo"], metrics=["count", "p50:duration_ms"])
        result = await c.aggregate(Query(since=NOW - timedelta(hours=3)), spec)
        facets = await c.facets(Query(), ["severity"], 1)
    assert [(r.keys, r.values) for r in result.rows] == [
        (("acme/web",), (2, 15.0)),
        (("acme/api",), (1, 30.0)),
        (("other",), (1, None)),
    ]
    assert [(f.field, f.values, f.other) for f in facets] == [("severity", (("error", 2),), 2)]
