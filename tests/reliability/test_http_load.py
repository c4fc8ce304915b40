"""Properties 6, 7 and 8 over HTTP: idempotency on PostgreSQL, backpressure, key isolation.

6. The same batch from 16 concurrent clients is stored once per id. SQLite:
   tests/server/test_ingest.py::test_same_batch_from_16_concurrent_clients_is_stored_once;
   here the PostgreSQL variant (several connections race on the same ids).
7. Ten times what the server can take: only 200, 429 or 503 (with Retry-After), the
   server's RSS stays bounded, and every event answered 200 is stored.
8. One key flooding into its rate limit does not change another key's acceptance.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from _common import cli, drop_schema, event, fresh_schema, postgres_url, with_schema

from ._support import Server, rss_kib


@pytest.fixture
async def pg_db() -> AsyncIterator[str]:
    """A ``postgresql://...?schema=<unique>`` URL; the schema is dropped afterwards."""
    base = postgres_url()
    schema = fresh_schema("ecr_")
    try:
        yield with_schema(base, schema)
    finally:
        await drop_schema(base, schema)


@pytest.mark.postgres
async def test_postgres_same_batch_from_16_concurrent_clients_is_stored_once(
    tmp_path: Path, pg_db: str
) -> None:
    server = Server(tmp_path, "--rate-limit", "0", db=pg_db)
    try:
        batch = orjson.dumps([event(id=f"pg-conc-{i}", title=f"c{i}") for i in range(200)])

        async def send() -> dict[str, int]:
            async with server.async_client() as c:
                r = await c.post("/v1/events", content=batch)
                assert r.status_code == 200, r.text
                result: dict[str, int] = r.json()
                return result

        for _ in range(3):  # the first round races inserts, the later ones duplicates
            results = await asyncio.gather(*(send() for _ in range(16)))
            assert sum(r["accepted"] + r["duplicates"] for r in results) == 200 * 16
        async with server.async_client() as c:
            r = await c.get("/v1/events/count")
            assert r.json() == {"count": 200}
            ids = ",".join(f"pg-conc-{i}" for i in range(200))
            assert (await c.get("/v1/events/count", params={"id": ids})).json()["count"] == 200
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


# -- backpressure -------------------------------------------------------------------

CLIENTS = 16
BATCH = 500
FLOOD_SECONDS = 4.0
#: Allowed RSS growth of the server over its idle size while flooded.
RSS_GROWTH_KIB = 300 * 1024


def _flood(server: Server) -> tuple[dict[int, int], list[str], int]:
    """16 clients post 500-event batches back to back, ignoring Retry-After."""
    statuses: dict[int, int] = {}
    acked: list[str] = []
    peak = [rss_kib(server.pid)]
    idle = peak[0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(server.pid))
            time.sleep(0.05)

    async def client(k: int) -> None:
        async with server.async_client(timeout=60) as c:
            deadline = time.monotonic() + FLOOD_SECONDS
            while time.monotonic() < deadline:
                ids = [uuid.uuid4().hex for _ in range(BATCH)]
                body = orjson.dumps([event(id=i, system=f"flood{k % 4}") for i in ids])
                r = await c.post("/v1/events", content=body)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    assert r.json()["accepted"] == BATCH
                    acked.extend(ids)
                elif r.status_code in (429, 503):
                    assert float(r.headers["retry-after"]) >= 1
                    assert r.json()["error"].split(":")[0] in ("rate_limit", "max_pending")

    async def run() -> None:
        await asyncio.gather(*(client(k) for k in range(CLIENTS)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        asyncio.run(run())
    finally:
        stop.set()
        sampler.join()
    return statuses, acked, peak[0] - idle


def _check_flood(server: Server, statuses: dict[int, int], acked: list[str], growth: int) -> None:
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses.get(200, 0) > 0
    assert statuses.get(429, 0) + statuses.get(503, 0) > 0, statuses
    assert growth < RSS_GROWTH_KIB, f"server RSS grew by {growth} KiB"
    with server.client() as c:
        for start in range(0, len(acked), 500):
            chunk = acked[start : start + 500]
            r = c.get("/v1/events/count", params={"id": ",".join(chunk)})
            assert r.json()["count"] == len(chunk)
    print(f"flood: {statuses}, {len(acked)} stored, server RSS +{growth / 1024:.0f} MiB")


FLOOD_OPTIONS = ("--rate-limit", "5000", "--rate-burst", "5000", "--max-pending", "2000")


def test_flood_gets_only_200_429_503_and_every_200_is_stored(tmp_path: Path) -> None:
    server = Server(tmp_path, *FLOOD_OPTIONS)
    try:
        statuses, acked, growth = _flood(server)
        _check_flood(server, statuses, acked, growth)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


@pytest.mark.postgres
def test_flood_on_postgres(tmp_path: Path, pg_db: str) -> None:
    server = Server(tmp_path, *FLOOD_OPTIONS, db=pg_db)
    try:
        statuses, acked, growth = _flood(server)
        _check_flood(server, statuses, acked, growth)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


# -- key isolation ------------------------------------------------------------------


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[tuple[Server, str, str]]:
    keys_file = tmp_path / "keys.json"
    keys = []
    for name in ("flooder", "quiet"):
        done = cli("keys", "create", "--scope", "ingest", "--name", name, "--keys-file",
                   str(keys_file), timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        keys.append(done.stdout.strip())
    server = Server(tmp_path, "--keys-file", str(keys_file), "--rate-limit", "200",
                    "--rate-burst", "200")  # fmt: skip
    try:
        yield server, keys[0], keys[1]
    finally:
        log = server.stop()
        assert "Traceback" not in log, log


def test_one_key_flooding_does_not_change_another_keys_acceptance(
    keyed_server: tuple[Server, str, str],
) -> None:
    server, flooder, quiet = keyed_server
    stop = threading.Event()
    flood_statuses: list[int] = []

    def flood() -> None:
        with server.client(flooder) as c:
            while not stop.is_set():
                body = orjson.dumps([event(system="deployer") for _ in range(100)])
                flood_statuses.append(c.post("/v1/events", content=body).status_code)

    thread = threading.Thread(target=flood)
    thread.start()
    quiet_statuses = []
    try:
        with server.client(quiet) as c:
            for _ in range(30):  # 10 events every 0.1 s: half the quiet key's limit
                body = orjson.dumps([event(system="deployer") for _ in range(10)])
                quiet_statuses.append(c.post("/v1/events", content=body).status_code)
                time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert 429 in flood_statuses  # the flooder is limited ...
    assert set(flood_statuses) <= {200, 429}
    assert quiet_statuses == [200] * 30  # ... and the same system under another key is not
