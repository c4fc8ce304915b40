"""Rate limit (429 + Retry-After, per key and system) and a full ingest queue (503)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest

from _common import event

from .conftest import Server, start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A tiny queue makes 503 reachable; a small bucket makes 429 reachable.
    yield from start(
        tmp_path_factory, "limits", "--rate-limit", "20", "--rate-burst", "20",
        "--max-pending", "1", "--max-batch", "10000",
    )  # fmt: skip


def test_rate_limit_429_with_retry_after(server: Server) -> None:
    with server.client() as c:
        statuses = []
        for _ in range(10):
            r = c.post("/v1/events", content=orjson.dumps([event(system="flooder")] * 5))
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error"].startswith("rate_limit:")
                assert r.json()["limit"] == "rate_limit"
                break
            assert r.status_code == 200, r.text
        assert statuses[-1] == 429
        # Another system is unaffected by the flood.
        ok = c.post("/v1/events", content=orjson.dumps(event(system="quiet")))
        assert ok.status_code == 200
        assert 'reason="rate_limit"' in c.get("/metrics").text


def test_a_batch_larger_than_the_bucket_still_passes_once(server: Server) -> None:
    with server.client() as c:
        big = orjson.dumps([event(system="bulk")] * 100)
        assert c.post("/v1/events", content=big).status_code == 200
        assert c.post("/v1/events", content=big).status_code == 429


async def test_full_queue_is_503_with_retry_after(server: Server) -> None:
    # With --max-pending 1, any request arriving while a large batch is being
    # committed is refused; every system is fresh so the rate limit stays out of it.
    async with server.async_client() as c:
        for attempt in range(20):
            big = orjson.dumps([event(system=f"big-{attempt}") for _ in range(10_000)])
            small = [orjson.dumps(event(system=f"s-{attempt}-{i}")) for i in range(30)]

            async def trickle(bodies: list[bytes]) -> list[httpx.Response]:
                out = []
                for body in bodies:
                    out.append(await c.post("/v1/events", content=body))
                    await asyncio.sleep(0.002)
                return out

            big_response, smalls = await asyncio.gather(
                c.post("/v1/events", content=big), trickle(small)
            )
            assert big_response.status_code in (200, 503)
            refused = [r for r in smalls if r.status_code == 503]
            assert all(r.status_code in (200, 503) for r in smalls)
            if refused:
                assert int(refused[0].headers["retry-after"]) >= 1
                assert refused[0].json()["error"].startswith("max_pending:")
                return
        pytest.fail("no request was refused with 503 while the queue was full")
