"""``serve --query-timeout``: a read past the statement time budget is a 503 with
Retry-After and a body naming the budget, the CLI's one stderr line says the same, and
the server goes on storing and answering."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from _common import cli, event

from .conftest import Server, start

EVENTS = 20_000
#: No event matches, so every row is checked against every term (about 1 s unbudgeted).
HEAVY = " OR ".join(f"data.k{i % 8}.x:>{10**9 + i}" for i in range(64))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    for s in start(tmp_path_factory, "budget", "--query-timeout", "0.05", "--rate-limit", "0"):
        with s.client() as c:
            for start_at in range(0, EVENTS, 10_000):
                batch = [
                    event(title=f"job {i}", data={f"k{j}": {"x": i + j} for j in range(8)})
                    for i in range(start_at, start_at + 10_000)
                ]
                assert c.post("/v1/events", content=orjson.dumps(batch)).status_code == 200
        yield s


def test_a_read_past_the_budget_is_a_503_naming_it(server: Server) -> None:
    with server.client() as c:
        r = c.get("/v1/events/count", params={"q": HEAVY})
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json() == {
            "error": "query_timeout: the query ran past its 0.05 s budget and was cancelled",
            "limit": "query_timeout",
            "max": 0.05,
        }
        # The writer still commits and other reads still answer.
        assert c.post("/v1/events", json=event(title="after the timeout")).status_code == 200
        found = c.get("/v1/events/count", params={"q": '"after the timeout"'})
        assert found.status_code == 200
        assert found.json()["count"] == 1
        assert c.get("/v1/events/count").json()["count"] == EVENTS + 1


def test_the_cli_says_so_in_one_line(server: Server) -> None:
    done = cli("facets", HEAVY, "--field", "data.k0.x", "--url", server.url)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: storage: ")
    assert lines[0].endswith(
        "503: query_timeout: the query ran past its 0.05 s budget and was cancelled"
    )
