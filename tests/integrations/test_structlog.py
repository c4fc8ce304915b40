"""The structlog processor with the real structlog: an application in a subprocess logs
into an embedded SQLite collector and into the real server; it never blocks, never
raises, and does not feed on the collector's own logging."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from _common import free_port, serve_command, terminate, wait_for_health
from eventcollector import EventCollector
from eventcollector.client import HTTPStorage
from eventcollector.integrations.structlog import EventCollectorProcessor
from eventcollector.query import Query

APP = """
import json, sys
import structlog
from eventcollector import EventCollector
from eventcollector.integrations.structlog import EventCollectorProcessor

target = sys.argv[1]
collector = EventCollector(url=target) if target.startswith("http") else EventCollector(target)
processor = EventCollectorProcessor(collector, system="shop")
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        processor,
        structlog.processors.JSONRenderer(),
    ],
    logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
)
log = structlog.get_logger("shop.orders")
structlog.contextvars.bind_contextvars(request_path="/orders")
log.info("order placed", order_id=42, items=["a", "b"], correlation_id="req-1")
log.warning("slow answer\\nfrom the bank", ms=1500, trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("payment failed", amount=12.5)
log.debug("odd values", thing=object(), when={1: "int key"})
log.critical("going down")
print(json.dumps({"errors": processor.errors}))
"""


def run_app(target: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", APP, target],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"errors": 0}
    assert "order placed" in done.stderr  # the renderer still got every event


def check_mapping(events: list[dict[str, Any]]) -> None:
    by_title = {e["title"]: e for e in events}
    assert set(by_title) == {
        "order placed", "slow answer", "payment failed", "odd values", "going down",
    }  # fmt: skip
    placed = by_title["order placed"]
    assert placed["system"] == "shop"
    assert placed["event_type"] == "log.record"
    assert placed["severity"] == "info"
    assert placed["correlation_id"] == "req-1"
    assert placed["data"] == {"order_id": 42, "items": ["a", "b"], "request_path": "/orders"}
    slow = by_title["slow answer"]
    assert slow["severity"] == "warning"
    assert slow["description"] == "slow answer\nfrom the bank"
    assert slow["correlation_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    failed = by_title["payment failed"]
    assert failed["severity"] == "error"
    assert failed["data"]["amount"] == 12.5
    assert "ZeroDivisionError: division by zero" in failed["data"]["exception"]
    odd = by_title["odd values"]
    assert odd["severity"] == "debug"
    assert odd["data"]["thing"].startswith("<object object at")
    assert odd["data"]["when"] == {"1": "int key"}
    assert by_title["going down"]["severity"] == "critical"


def test_embedded_collector(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    run_app(str(db))  # the collector drains what was emitted at exit

    async def read() -> list[dict[str, Any]]:
        async with EventCollector(db) as collector:
            return [e.to_dict() for e in await collector.query(Query(limit=100))]

    check_mapping(asyncio.run(read()))


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("structlog-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            serve_command(port, directory / "events.db", "--rate-limit", "0"),
            stdout=out, stderr=out,
        )  # fmt: skip
    try:
        wait_for_health(
            process, url, log, timeout=20, probe_timeout=1, give_up=lambda: terminate(process)
        )
        yield url
    finally:
        terminate(process)
        assert "Traceback" not in log.read_text()


def test_remote_collector(server_url: str) -> None:
    run_app(server_url)
    deadline = time.monotonic() + 10
    while True:
        events = httpx.get(f"{server_url}/v1/events", params={"system": "shop"}).json()["events"]
        if len(events) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check_mapping(events)


@pytest.fixture
def unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventCollector]:
    monkeypatch.setenv("EVENTCOLLECTOR_SPOOL_DIR", str(tmp_path / "spool"))
    collector = EventCollector(url=f"http://127.0.0.1:{free_port()}")
    try:
        yield collector
    finally:
        _client(collector).close_sync(2)


def _client(collector: EventCollector) -> HTTPStorage:
    storage = collector.storage
    assert isinstance(storage, HTTPStorage)
    return storage


def test_never_blocks_raises_or_recurses(unreachable: EventCollector) -> None:
    """The collector's client logs its failed deliveries (and httpx its requests) through
    the stdlib; here those records run through the same processor, as they do in an
    application that sends stdlib logging through structlog."""
    processor = EventCollectorProcessor(unreachable, system="shop")
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.add_log_level,
                           processor],
    )  # fmt: skip
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    app = logging.getLogger("shop.app")
    try:
        started = time.perf_counter()
        for i in range(500):
            app.warning("still logging %d", i)
        app.error("with a value JSON cannot hold", extra={"blob": b"\xff" * 10})
        assert time.perf_counter() - started < 2.0
        assert _client(unreachable).flush_sync(1) is False
        own = logging.getLogger("eventcollector.test")
        own.warning("the collector's own logger")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    stats = _client(unreachable).client_stats()
    assert stats["emitted"] == 501  # the application's records, none of the client's own
    assert processor.errors == 0


def test_invalid_system_fails_fast() -> None:
    with pytest.raises(ValueError, match="system"):
        EventCollectorProcessor(system="Not Valid")
