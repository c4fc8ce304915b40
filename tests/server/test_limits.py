"""Rate limit (429 + Retry-After, per key and system), a full ingest queue (503), and
the defaults: a server started without options takes what one client sends at the
benchmark's rate (benchmarks/_http.py) with only 2xx answers, keyed or not."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from _common import cli, event

from .conftest import Server, start

#: The benchmark's shapes: wrk's 32 connections of single events, and 4 connections
#: of 1,000-event batches. Bounded in count, so the test's length follows the machine.
SINGLE_CONNECTIONS = 32
SINGLE_REQUESTS = 1_600
BATCH_CONNECTIONS = 4
BATCHES = 12
BATCH = 1_000


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


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory, "defaults")  # the options a user gets: none


REQUESTS = SINGLE_REQUESTS + BATCHES
EVENTS = SINGLE_REQUESTS + BATCHES * BATCH


async def _burst(server: Server, key: str | None = None) -> dict[int, int]:
    """The benchmark's two loads from one client, back to back: the statuses."""
    statuses: dict[int, int] = {}
    one = orjson.dumps(event(system="mahavishnu", title="burst"))
    batch = orjson.dumps([event(system="mahavishnu", title=f"b{i}") for i in range(BATCH)])

    async def connection(c: httpx.AsyncClient, body: bytes, requests: int) -> None:
        for _ in range(requests):
            r = await c.post("/v1/events", content=body)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=SINGLE_CONNECTIONS)
    async with server.async_client(key, limits=limits) as c:
        per = SINGLE_REQUESTS // SINGLE_CONNECTIONS
        await asyncio.gather(*(connection(c, one, per) for _ in range(SINGLE_CONNECTIONS)))
        per = BATCHES // BATCH_CONNECTIONS
        await asyncio.gather(*(connection(c, batch, per) for _ in range(BATCH_CONNECTIONS)))
    return statuses


async def test_default_server_takes_one_clients_burst_with_only_2xx(
    default_server: Server,
) -> None:
    # With the former default (1,000 events/s for the one anonymous key) most of
    # these were 429.
    assert await _burst(default_server) == {200: REQUESTS}
    with default_server.client() as c:
        assert c.get("/v1/events/count").json()["count"] == EVENTS


@pytest.fixture(scope="module")
def keyed_default_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, str, str]]:
    keys_file = Path(tmp_path_factory.mktemp("keyed-defaults-keys")) / "keys.json"
    keys = []
    for name in ("busy", "quiet"):
        done = cli("keys", "create", "--scope", "ingest", "--scope", "read", "--name", name,
                   "--keys-file", str(keys_file))  # fmt: skip
        assert done.returncode == 0, done.stderr
        keys.append(done.stdout.strip())
    for server in start(tmp_path_factory, "keyed-defaults", "--keys-file", str(keys_file)):
        yield server, keys[0], keys[1]


async def test_keyed_default_is_generous_and_per_key(
    keyed_default_server: tuple[Server, str, str],
) -> None:
    """One key at the benchmark's rate is not refused by the default per-key limit, and
    another key writing the same system meanwhile is answered 200 throughout."""
    server, busy, quiet = keyed_default_server
    quiet_statuses: list[int] = []
    done = threading.Event()

    def quiet_writer() -> None:
        with server.client(quiet) as c:
            while not done.is_set() or not quiet_statuses:
                body = orjson.dumps([event(system="mahavishnu") for _ in range(10)])
                quiet_statuses.append(c.post("/v1/events", content=body).status_code)
                done.wait(0.05)

    thread = threading.Thread(target=quiet_writer)
    thread.start()
    try:
        statuses = await _burst(server, busy)
    finally:
        done.set()
        thread.join(60)
    assert statuses == {200: REQUESTS}
    assert set(quiet_statuses) == {200}
