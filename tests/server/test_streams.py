"""Live streams over SSE and WebSocket: filters, Origin, missed events, cut-off."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from _common import event

from .conftest import Server, start

GOOD_ORIGIN = "http://good.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(
        tmp_path_factory, "streams", "--rate-limit", "0", "--stream-queue", "10",
        "--stream-send-timeout", "1", "--allow-origin", GOOD_ORIGIN,
    )  # fmt: skip


async def sse_frames(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    kind, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data = line.partition(":")[2].strip()
        elif not line and kind:
            yield kind, orjson.loads(data)
            kind, data = "", ""


def post(server: Server, events: list[dict[str, Any]]) -> None:
    with server.client() as c:
        r = c.post("/v1/events", content=orjson.dumps(events))
        assert r.status_code == 200, r.text


MIXED = [
    event(system="alpha", severity="error", id="m-1"),
    event(system="beta", severity="error", id="m-2"),
    event(system="alpha", severity="info", id="m-3"),
    event(system="alpha", severity="critical", id="m-4", tags=["x"]),
]


async def first_sse_ids(
    server: Server, params: dict[str, str], events: list[dict[str, Any]], count: int
) -> list[str]:
    """Open an SSE stream with ``params``, post ``events`` (ids prefixed "sse-"), and
    return the ids of the first ``count`` event frames."""
    async with (
        server.async_client() as c,
        c.stream("GET", "/v1/stream", params=params) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await asyncio.to_thread(post, server, [{**e, "id": f"sse-{e['id']}"} for e in events])
        got = []
        async for kind, data in sse_frames(response):
            assert kind == "event"
            got.append(data["id"])
            if len(got) == count:
                break
    return got


async def test_sse_applies_filters(server: Server) -> None:
    params = {"system": "alpha", "min_severity": "error"}
    assert await first_sse_ids(server, params, MIXED, 2) == ["sse-m-1", "sse-m-4"]


async def test_websocket_applies_filters(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/v1/ws?system=alpha&tags=x"
    async with connect(url) as ws:
        await asyncio.to_thread(post, server, [{**e, "id": f"ws-{e['id']}"} for e in MIXED])
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "event"
        assert message["event"]["id"] == "ws-m-4"
        assert message["event"]["tags"] == ["x"]


async def test_bad_stream_filter_is_400(server: Server) -> None:
    async with server.async_client() as c:
        r = await c.get("/v1/stream", params={"severity": "loud"})
        assert r.status_code == 400
        assert r.json()["error"].startswith("severity:")
        r = await c.get("/v1/stream", params={"limit": "3"})
        assert r.status_code == 400


def test_websocket_path_without_upgrade_is_426_with_json(server: Server) -> None:
    with server.client() as c:
        plain = c.get("/v1/ws")
        bad_filter = c.get("/v1/ws", params={"severity": "loud"})
        wrong_method = c.post("/v1/events/count")
    assert plain.status_code == 426
    assert plain.headers["upgrade"] == "websocket"
    assert plain.json()["error"].startswith("upgrade:")
    # The handshake's own refusals come first, as they would for a WebSocket client.
    assert bad_filter.status_code == 400
    assert bad_filter.json()["error"].startswith("severity:")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, HEAD"


async def test_origin_allow_list(server: Server) -> None:
    async with server.async_client() as c:
        r = await c.get("/v1/stream", headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        assert r.json()["error"].startswith("origin:")
        async with c.stream("GET", "/v1/stream", headers={"Origin": GOOD_ORIGIN}) as ok:
            assert ok.status_code == 200
    url = f"ws://127.0.0.1:{server.port}/v1/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=Origin("http://evil.example")):
            pass
    assert refused.value.response.status_code == 403
    async with connect(url, origin=Origin(GOOD_ORIGIN)):
        pass


async def _drain(ws: ClientConnection, total: int) -> tuple[int, int]:
    events = missed = 0
    while events + missed < total:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == "missed":
            missed += message["count"]
        else:
            events += 1
    return events, missed


async def test_lagging_consumer_is_told_what_it_missed(server: Server) -> None:
    # One batch of 100 lands in a stream buffer of 10: the rest is reported missed.
    url = f"ws://127.0.0.1:{server.port}/v1/ws?system=burst"
    async with (
        connect(url) as ws,
        server.async_client() as c,
        c.stream("GET", "/v1/stream", params={"system": "burst"}) as sse,
    ):
        await asyncio.to_thread(post, server, [event(system="burst") for _ in range(100)])
        events, missed = await _drain(ws, 100)
        assert missed > 0
        assert events >= 10
        sse_events = sse_missed = 0
        async for kind, data in sse_frames(sse):
            if kind == "missed":
                sse_missed += data["count"]
            else:
                sse_events += 1
            if sse_events + sse_missed == 100:
                break
        assert sse_missed > 0


def _subscribers(server: Server) -> int:
    with server.client() as c:
        count: int = c.get("/health").json()["subscriber_count"]
        return count


def _stalled(server: Server, request: bytes) -> socket.socket:
    """A client that sends its request and then never reads, with a tiny buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(request)
    return sock


async def test_consumer_that_stops_reading_is_cut_off_and_ingest_goes_on(server: Server) -> None:
    sse = _stalled(server, b"GET /v1/stream?system=flood HTTP/1.1\r\nHost: x\r\n\r\n")
    ws = _stalled(
        server,
        b"GET /v1/ws?system=flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
    )
    try:
        assert ws.recv(12) == b"HTTP/1.1 101"
        deadline = time.monotonic() + 5
        while _subscribers(server) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        big = orjson.dumps([event(system="flood", description="x" * 60_000) for _ in range(20)])
        deadline = time.monotonic() + 30
        statuses = []
        with server.client() as c:
            while _subscribers(server) > 0:
                assert time.monotonic() < deadline, "slow consumers were not cut off"
                statuses.append(c.post("/v1/events", content=big).status_code)
                await asyncio.sleep(0.05)
        assert set(statuses) == {200}  # ingest neither stalled nor failed meanwhile
    finally:
        sse.close()
        ws.close()


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose streams hold 20,000 bytes at most and of which two may be open."""
    yield from start(
        tmp_path_factory, "tight-streams", "--rate-limit", "0", "--stream-max-bytes", "20000",
        "--max-streams", "2",
    )  # fmt: skip


async def test_the_byte_bound_holds_a_batch_of_big_events(tight: Server) -> None:
    # 50 events of ~2 KB in one batch reach the stream at once: ~9 fit in 20,000 bytes.
    batch = [event(system="bytes", description="b" * 2_000, id=f"big-{i}") for i in range(50)]
    url = f"ws://127.0.0.1:{tight.port}/v1/ws?system=bytes"
    async with connect(url) as ws:
        await asyncio.to_thread(post, tight, batch)
        events, missed = await _drain(ws, 50)
    assert events + missed == 50
    assert 5 <= events <= 10, events  # what 20,000 bytes of their JSON hold
    assert missed == 50 - events


async def test_max_streams_refuses_one_more_with_503_and_frees_on_close(tight: Server) -> None:
    url = f"ws://127.0.0.1:{tight.port}/v1/ws"
    async with tight.async_client() as c, c.stream("GET", "/v1/stream") as first:
        assert first.status_code == 200
        async with connect(url):
            third = await c.get("/v1/stream")
            assert third.status_code == 503
            body = third.json()
            assert (body["limit"], body["max"]) == ("max_streams", 2)
            assert body["error"].startswith("max_streams: 2 live streams are open")
            assert third.headers["retry-after"] == "1"
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url):
                    pass
            assert refused.value.response.status_code == 503
        # The WebSocket's end frees its place.
        deadline = time.monotonic() + 5
        while (await c.get("/health")).json()["subscriber_count"] > 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        async with connect(url) as again:
            assert again.protocol.state.name == "OPEN"
