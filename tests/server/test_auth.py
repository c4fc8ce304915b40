"""API keys: CLI management, scopes, system pinning, revocation, the bind rule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from _common import cli, event, free_port

from .conftest import Server, start

SCOPES = {
    "ingest": ["--scope", "ingest"],
    "pinned": ["--scope", "ingest", "--system", "deployer"],
    "read": ["--scope", "read"],
    "admin": ["--scope", "admin"],
    "doomed_reader": ["--scope", "read"],
    "doomed_writer": ["--scope", "ingest"],
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, str]) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("auth-keys")
    keys_file = directory / "keys.json"
    for name, args in SCOPES.items():
        done = cli("keys", "create", *args, "--name", name, "--keys-file", str(keys_file))
        assert done.returncode == 0, done.stderr
        keys[name] = done.stdout.strip()
    # With keys the server may bind beyond loopback.
    for s in start(
        tmp_path_factory, "auth", "--keys-file", str(keys_file), "--rate-limit", "0",
        host="0.0.0.0",  # noqa: S104 - binding beyond loopback is the point
    ):  # fmt: skip
        s.keys_file = keys_file
        yield s


def test_refuses_to_bind_beyond_loopback_without_keys(tmp_path: Path) -> None:
    everywhere = "0.0.0.0"  # noqa: S104 - the bind the server must refuse
    done = cli(
        "serve", "--host", everywhere, "--port", str(free_port()), "--db", str(tmp_path / "e.db")
    )
    assert done.returncode == 2
    assert "refusing to bind 0.0.0.0" in done.stderr
    assert "keys create" in done.stderr


def test_keys_are_stored_hashed_and_listed(server: Server, keys: dict[str, str]) -> None:
    keys_file = server.keys_file
    text = keys_file.read_text()
    for key in keys.values():
        assert key.startswith("eck_")
        assert key.split("_", 2)[2] not in text
    assert keys_file.stat().st_mode & 0o077 == 0
    listed = cli("keys", "list", "--json", "--keys-file", str(keys_file))
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert {r["name"] for r in rows} == set(SCOPES)
    assert all("hash" not in r for r in rows)
    pinned = next(r for r in rows if r["name"] == "pinned")
    assert pinned["system"] == "deployer"


def test_missing_and_wrong_keys_are_401(server: Server) -> None:
    with server.client() as c:
        r = c.get("/v1/events")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"].startswith("authorization:")
    for bad in ("eck_nope_nope", "garbage", "eck_" + "x" * 40):
        with server.client(bad) as c:
            assert c.get("/v1/events").status_code == 401
    with server.client() as c:
        r = c.get("/v1/events", headers={"Authorization": "Basic dXNlcjpwdw=="})
        assert r.status_code == 401


def test_health_metrics_openapi_need_no_key(server: Server) -> None:
    with server.client() as c:
        for path in ("/health", "/metrics", "/openapi.json"):
            assert c.get(path).status_code == 200


def test_scopes(server: Server, keys: dict[str, str]) -> None:
    body = orjson.dumps(event(system="builder"))
    with server.client(keys["read"]) as c:
        assert c.get("/v1/events").status_code == 200
        r = c.post("/v1/events", content=body)
        assert r.status_code == 403
        assert r.json()["error"].startswith("scope:")
        assert c.post("/v1/admin/cleanup", json={"retention_days": 1}).status_code == 403
    with server.client(keys["ingest"]) as c:
        assert c.post("/v1/events", content=body).status_code == 200
        for path in ("/v1/events", "/v1/stats", "/v1/events/count", "/v1/analysis/report"):
            assert c.get(path).status_code == 403
    with server.client(keys["admin"]) as c:
        assert c.post("/v1/admin/cleanup", json={"retention_days": 1}).status_code == 200
        assert c.get("/v1/events").status_code == 200
        assert c.post("/v1/events", content=body).status_code == 200


def test_pinned_key_cannot_write_as_another_system(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["pinned"]) as c:
        assert (
            c.post("/v1/events", content=orjson.dumps(event(system="deployer"))).status_code == 200
        )
        r = c.post("/v1/events", content=orjson.dumps([event(system="deployer", id="pin-x"),
                                                       event(system="builder")]))  # fmt: skip
        assert r.status_code == 403
        assert r.json()["error"].startswith("system:")
    with server.client(keys["read"]) as c:
        assert c.get("/v1/events/pin-x").status_code == 404  # nothing of a refused batch


def test_stream_needs_read_scope(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["ingest"]) as c:
        assert c.get("/v1/stream").status_code == 403
    with server.client() as c:
        assert c.get("/v1/stream").status_code == 401


async def test_websocket_needs_a_read_key(server: Server, keys: dict[str, str]) -> None:
    url = f"ws://127.0.0.1:{server.port}/v1/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": f"Bearer {keys['ingest']}"}):
            pass
    assert refused.value.response.status_code == 403
    async with connect(f"{url}?access_token={keys['read']}"):
        pass


async def test_revoked_key_is_refused_and_its_streams_close(
    server: Server, keys: dict[str, str]
) -> None:
    keys_file = server.keys_file
    reader = keys["doomed_reader"]
    url = f"ws://127.0.0.1:{server.port}/v1/ws"
    async with (
        connect(url, additional_headers={"Authorization": f"Bearer {reader}"}) as ws,
        server.async_client(reader) as http,
        http.stream("GET", "/v1/stream") as sse,
    ):
        assert sse.status_code == 200
        key_id = reader.split("_")[1]
        done = await asyncio.to_thread(cli, "keys", "revoke", key_id, "--keys-file", str(keys_file))
        assert done.returncode == 0, done.stderr
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        # The SSE response ends.
        await asyncio.wait_for(sse.aread(), 10)
    writer = keys["doomed_writer"]
    revoked = cli("keys", "revoke", writer.split("_")[1], "--keys-file", str(keys_file))
    assert revoked.returncode == 0
    deadline = time.monotonic() + 10
    with server.client(writer) as c:
        while c.post("/v1/events", content=orjson.dumps(event())).status_code != 401:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    again = cli("keys", "revoke", writer.split("_")[1], "--keys-file", str(keys_file))
    assert again.returncode == 1
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reader}"}) as c:
        assert c.get("/v1/events").status_code == 401


def test_the_start_up_line_says_where_events_go_and_who_may_use_it(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with_keys = server.log.read_text()
    assert f"eventcollector: events in {server.db} (SQLite); web UI and API at " in with_keys
    assert f"API keys from {server.keys_file}" in with_keys
    for open_server in start(tmp_path_factory, "no-keys"):
        summary = open_server.log.read_text()
        assert f"web UI and API at http://127.0.0.1:{open_server.port}/;" in summary
        assert "no API keys: anyone who can reach the port may read and write" in summary


def test_the_start_up_line_hides_a_database_password() -> None:
    from eventcollector.cli.serve import _summary
    from eventcollector.server.auth import KeyStore

    line = _summary(
        "postgresql://app:s3cret@db.internal:5433/events", KeyStore("/nonexistent"), "u"
    )
    assert "events in PostgreSQL (postgresql://app@db.internal:5433/events)" in line
    assert "s3cret" not in line
