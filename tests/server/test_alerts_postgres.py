"""Two ``eventcollector serve`` processes on one PostgreSQL schema evaluate the alert
rules once: exactly one notification per episode and per new issue, whichever server
stored the events; when the evaluating server dies, the other takes over."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from _common import (
    Receiver,
    drop_schema,
    event,
    fresh_schema,
    postgres_url,
    wait_until,
    with_schema,
)

from .conftest import Server

pytestmark = pytest.mark.postgres

RULES = """
[[alert]]
name = "api errors"
filter = "system:api severity:>=error"
window = "1s"
condition = "count > 2"
every = "0.05s"
on_resolve = true
notify = ["webhook:RECEIVER/burst"]

[[alert]]
name = "new issue"
trigger = "new_issue"
filter = "system:billing"
notify = ["webhook:RECEIVER/new"]
"""


@pytest.fixture
def database() -> Iterator[str]:
    url = postgres_url()
    schema = fresh_schema("ect_alerts_")
    try:
        yield with_schema(url, schema)
    finally:
        asyncio.run(drop_schema(url, schema))


def _server(directory: Path, db: str, rules: Path) -> Server:
    directory.mkdir()
    return Server(
        directory, "--db", db, "--keys-file", str(directory / "keys.json"), "--alerts", str(rules),
        "--alerts-min-interval", "0.05", "--notify-backoff", "0.05",
    )  # fmt: skip


def _post(server: Server, events: list[dict[str, object]]) -> None:
    with server.client() as c:
        assert c.post("/v1/events", json=events).status_code == 200


def _burst(n: int = 3) -> list[dict[str, object]]:
    return [event(system="api", severity="error", title=f"failed {i}") for i in range(n)]


def test_two_servers_notify_once_and_the_survivor_takes_over(tmp_path: Path, database: str) -> None:
    receiver = Receiver(tmp_path)
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES.replace("RECEIVER", receiver.url), encoding="utf-8")
    first = _server(tmp_path / "a", database, rules)
    second: Server | None = None
    try:
        # The first server evaluates before the second starts: it holds the lease.
        def evaluated(server: Server) -> bool:
            with server.client() as c:
                states = c.get("/v1/alerts/api errors").json()["states"]
            return bool(states) and states[0]["evaluated"] is not None

        wait_until(lambda: evaluated(first), timeout=20)
        second = _server(tmp_path / "b", database, rules)
        _post(second, _burst())  # stored by the server that does not evaluate
        wait_until(lambda: len(receiver.received("/burst")) == 2, timeout=20)  # fired, resolved
        assert [r["body"]["state"] for r in receiver.received("/burst")] == ["firing", "resolved"]
        _post(second, [event(system="billing", severity="error", title="card declined")])
        _post(second, [event(system="billing", severity="error", title="card declined")])
        _post(first, [event(system="billing", severity="critical", title="ledger off by 3")])
        wait_until(lambda: len(receiver.received("/new")) == 2, timeout=20)
        titles = sorted(r["body"]["issue"]["title"] for r in receiver.received("/new"))
        assert titles == ["card declined", "ledger off by 3"]

        first.process.kill()  # dies holding the lease: PostgreSQL releases it
        first.process.wait(10)
        _post(second, _burst())
        wait_until(lambda: len(receiver.received("/burst")) == 4, timeout=30)
        states = [r["body"]["state"] for r in receiver.received("/burst")]
        assert states == ["firing", "resolved", "firing", "resolved"]
        _post(second, [event(system="billing", severity="error", title="refund failed")])
        wait_until(lambda: len(receiver.received("/new")) == 3, timeout=20)
        assert len(receiver.received("/new")) == 3
    finally:
        first.stop()
        if second is not None:
            assert "Traceback" not in second.stop()
        receiver.stop()
