"""Issue endpoints against the real server: list, show, events, status changes with
the triage scope, bad input as 4xx naming the field, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from _common import cli, event
from eventcollector.model import format_timestamp

from .conftest import Server, start

SCOPES = {"ingest": "ingest", "read": "read", "triage": "triage"}


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, str]) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("issue-keys")
    keys_file = directory / "keys.json"
    for name, scope in SCOPES.items():
        done = cli("keys", "create", "--scope", scope, "--keys-file", str(keys_file))
        assert done.returncode == 0, done.stderr
        keys[name] = done.stdout.strip()
    yield from start(tmp_path_factory, "issues", "--keys-file", str(keys_file))


@pytest.fixture(scope="module")
def seeded(server: Server, keys: dict[str, str]) -> dict[str, int]:
    errors = [
        event(system="akosha", event_type="error.occurred", severity="error",
              title=f"Timeout after {i}ms", data={"error_type": "TimeoutError"})
        for i in range(1, 4)
    ] + [event(system="oneiric", severity="critical", title="Disk /dev/sdb full")]  # fmt: skip
    with server.client(keys["ingest"]) as c:
        assert c.post("/v1/events", json=errors).status_code == 200
    with server.client(keys["read"]) as c:
        listed = c.get("/v1/issues", params={"order_by": "count"}).json()["issues"]
    return {i["title"]: i["id"] for i in listed}


def test_list_show_and_events(server: Server, keys: dict[str, str], seeded: dict[str, int]) -> None:
    timeout = seeded["Timeout after 1ms"]
    with server.client(keys["read"]) as c:
        assert c.get("/v1/issues", params={"limit": 1000}).status_code == 200  # the largest
        page = c.get("/v1/issues", params={"system": "akosha"}).json()
        assert [i["id"] for i in page["issues"]] == [timeout]
        assert page["next_offset"] is None
        first = c.get("/v1/issues", params={"limit": 1, "order_by": "count"}).json()
        assert first["next_offset"] == 1
        assert first["issues"][0]["count"] == 3
        shown = c.get(f"/v1/issues/{timeout}").json()
        assert (shown["error_type"], shown["status"], shown["systems"]) == (
            "TimeoutError", "unresolved", ["akosha"],
        )  # fmt: skip
        assert shown["fingerprint"].startswith("v1:")
        events = c.get(f"/v1/issues/{timeout}/events", params={"limit": 2}).json()["events"]
        assert len(events) == 2
        assert all(e["system"] == "akosha" for e in events)


def test_activity_counts_per_hour_for_the_sparklines(
    server: Server, keys: dict[str, str], seeded: dict[str, int]
) -> None:
    timeout, disk = seeded["Timeout after 1ms"], seeded["Disk /dev/sdb full"]
    now = datetime.now(UTC)
    params = {"id": f"{timeout},{disk}", "since": format_timestamp(now - timedelta(hours=3))}
    with server.client(keys["read"]) as c:
        hourly = c.get("/v1/issue-activity", params=params).json()
        daily = c.get("/v1/issue-activity", params={**params, "interval": "1d"}).json()
        assert c.get("/v1/issue-activity", params=params | {"id": "1"}).status_code == 200
    with server.client() as c:
        assert c.get("/v1/issue-activity", params=params).status_code == 401
    assert hourly["interval"] == "1h"
    assert len(hourly["buckets"]) in (4, 5)  # the hours from 3 h ago to now
    assert {k: sum(v) for k, v in hourly["issues"].items()} == {str(timeout): 3, str(disk): 1}
    assert all(len(v) == len(hourly["buckets"]) for v in hourly["issues"].values())
    assert hourly["issues"][str(timeout)][-1] + hourly["issues"][str(timeout)][-2] == 3
    assert {k: sum(v) for k, v in daily["issues"].items()} == {str(timeout): 3, str(disk): 1}


def test_status_change_needs_triage(
    server: Server, keys: dict[str, str], seeded: dict[str, int]
) -> None:
    disk = seeded["Disk /dev/sdb full"]
    with server.client(keys["read"]) as c:
        refused = c.post(f"/v1/issues/{disk}", json={"status": "resolved"})
        assert refused.status_code == 403
        assert refused.json()["error"].startswith("scope:")
    with server.client(keys["triage"]) as c:
        done = c.post(f"/v1/issues/{disk}", json={"status": "resolved"})
        assert done.status_code == 200
        assert done.json()["status"] == "resolved"
        muted = c.patch(
            f"/v1/issues/{disk}", json={"status": "muted", "until": "2999-01-01T00:00:00Z"}
        )
        assert muted.json()["status"] == "muted"
        assert muted.json()["muted_until"].startswith("2999-01-01")
    with server.client(keys["read"]) as c:
        assert [i["id"] for i in c.get("/v1/issues?status=muted").json()["issues"]] == [disk]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("GET", "/v1/issues?status=closed", None, 400, "status:"),
        ("GET", "/v1/issues?limit=x", None, 400, "limit:"),
        ("GET", "/v1/issues?limit=1001", None, 400, "limit:"),
        ("GET", "/v1/issues?order_by=title", None, 400, "order_by:"),
        ("GET", "/v1/issues?seen_since=yesterday", None, 400, "seen_since:"),
        ("GET", "/v1/issues?colour=red", None, 400, "colour:"),
        ("GET", "/v1/issues/999999", None, 404, "id:"),
        ("GET", "/v1/issues/abc", None, 404, "id:"),
        ("GET", "/v1/issues/1/events?limit=0", None, 400, "limit:"),
        ("POST", "/v1/issues/1", {"status": "closed"}, 400, "status:"),
        ("POST", "/v1/issues/1", {"status": "muted"}, 400, "until:"),
        ("POST", "/v1/issues/1", {"status": "muted", "until": "soon"}, 400, "until:"),
        ("POST", "/v1/issues/1", {"state": "resolved"}, 400, "body:"),
        ("POST", "/v1/issues/1", {"status": "resolved", "x": 1}, 400, "x:"),
        ("POST", "/v1/issues/999999", {"status": "resolved"}, 404, "id:"),
        ("GET", "/v1/issue-activity?since=2026-01-01T00:00:00Z", None, 400, "id:"),
        ("GET", "/v1/issue-activity?id=1,x&since=2026-01-01T00:00:00Z", None, 400, "id:"),
        ("GET", "/v1/issue-activity?id=1", None, 400, "since:"),
        ("GET", "/v1/issue-activity?id=1&since=soon", None, 400, "since:"),
        (
            "GET",
            "/v1/issue-activity?id=1&since=2026-01-01T00:00:00Z&interval=5m",
            None,
            400,
            "interval:",
        ),
        (
            "GET",
            "/v1/issue-activity?id=1&since=2026-01-01T00:00:00Z&until=2025-01-01T00:00:00Z",
            None,
            400,
            "until:",
        ),
        ("GET", "/v1/issue-activity?id=1&since=2020-01-01T00:00:00Z", None, 400, "interval:"),
        ("GET", "/v1/issue-activity?id=1&id=2&since=2026-01-01T00:00:00Z", None, 400, "id:"),
    ],
)
def test_bad_requests_name_the_field(
    server: Server,
    keys: dict[str, str],
    seeded: dict[str, int],
    method: str,
    path: str,
    body: object,
    status: int,
    field: str,
) -> None:
    with server.client(keys["triage"]) as c:
        r = c.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"].startswith(field)


def test_openapi_lists_the_issue_endpoints(server: Server) -> None:
    with server.client() as c:
        doc = c.get("/openapi.json").json()
    assert {"get", "post", "patch"} <= set(doc["paths"]["/v1/issues/{issue_id}"])
    assert "/v1/issues" in doc["paths"]
    assert "/v1/issues/{issue_id}/events" in doc["paths"]
    assert "/v1/issue-activity" in doc["paths"]
    assert "Issue" in doc["components"]["schemas"]


async def test_remote_client_reads_and_triages(
    server: Server, keys: dict[str, str], seeded: dict[str, int]
) -> None:
    from eventcollector import EventCollector

    timeout = seeded["Timeout after 1ms"]
    remote = EventCollector(url=server.url, api_key=keys["triage"])
    try:
        listed = await remote.issues(system="akosha")
        assert [i.id for i in listed] == [timeout]
        assert await remote.get_issue(timeout) == listed[0]
        assert await remote.get_issue(999_999) is None
        assert len(await remote.issue_events(timeout, limit=5)) == 3
        since = datetime.now(UTC) - timedelta(days=2)
        activity = await remote.issue_activity([timeout], since=since, interval="1d")
        assert sum(activity.counts[timeout]) == 3
        assert activity.buckets[0] == since.replace(hour=0, minute=0, second=0, microsecond=0)
        with pytest.raises(ValueError, match=r"^interval:"):
            await remote.issue_activity([timeout], since=since, interval="1w")
        ignored = await remote.set_issue_status(timeout, "ignored")
        assert ignored is not None
        assert ignored.status == "ignored"
        with pytest.raises(ValueError, match=r"^status:"):
            await remote.set_issue_status(timeout, "closed")
    finally:
        await remote.stop()
