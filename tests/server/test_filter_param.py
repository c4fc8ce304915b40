"""``q=`` over HTTP through the real server: a bad filter is a 400 naming its column on
every endpoint that takes filters, and ``q`` filters the live streams (which use the
reference semantics)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from _common import event

from .conftest import Server, start
from .test_streams import first_sse_ids, post

BAD = "severity:"
BAD_ERROR = "q: expected a value after 'severity:' at column 10"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory, "filters", "--rate-limit", "0")


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/v1/events", {}),
        ("/v1/events/count", {}),
        ("/v1/events/group", {"field": "system"}),
        ("/v1/stream", {}),
    ],
)
def test_a_bad_filter_is_400_naming_the_column(
    server: Server, path: str, extra: dict[str, str]
) -> None:
    with server.client() as c:
        r = c.get(path, params={"q": BAD, **extra})
    assert r.status_code == 400
    assert r.json() == {"error": BAD_ERROR}


async def test_a_bad_filter_refuses_the_websocket(server: Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{server.port}/v1/ws?q={quote(BAD)}"):
            pass
    assert refused.value.response.status_code == 400
    assert orjson.loads(refused.value.response.body or b"{}") == {"error": BAD_ERROR}


STREAM = [
    event(id="f-1", system="alpha", severity="error", data={"repo": "acme/web"}),
    event(id="f-2", system="alpha", severity="info", data={"repo": "acme/api"}),
    event(id="f-3", system="beta", severity="critical", data={"repo": "other/x"}),
    event(id="f-4", system="beta", severity="warning", data={"repo": "acme/db", "n": 5}),
    event(id="f-5", system="gamma", severity="error", tags=["noise"], data={"repo": "acme/x"}),
]
FILTER = "severity:>=warning data.repo:acme/* -tag:noise"


async def test_q_filters_the_sse_stream(server: Server) -> None:
    assert await first_sse_ids(server, {"q": FILTER}, STREAM, 2) == ["sse-f-1", "sse-f-4"]


async def test_q_filters_the_websocket_and_ands_with_other_parameters(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/v1/ws?system=beta&q={quote(FILTER)}"
    async with connect(url) as ws:
        await asyncio.to_thread(post, server, [{**e, "id": f"ws-{e['id']}"} for e in STREAM])
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["event"]["id"] == "ws-f-4"


def test_openapi_lists_q_wherever_filters_are_taken(server: Server) -> None:
    with server.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    for path in ("/v1/events", "/v1/events/count", "/v1/events/group", "/v1/stream", "/v1/ws"):
        names = [p["name"] for p in paths[path]["get"]["parameters"]]
        assert "q" in names, path
