"""Helpers shared by the test directories (``from _common import ...``; ``tests/`` is on
sys.path through the root conftest).

* the real server: ``free_port``, ``serve_command`` and ``wait_for_health`` for the
  ``Server`` classes of tests/server, tests/client and tests/reliability (each keeps the
  kill/restart behaviour its tests need), ``cli`` for the console entry point;
* events: ``event`` (an ingest request body), ``make_event`` (an ``Event``);
* PostgreSQL: ``postgres_url`` (or a skip naming EVENTCOLLECTOR_TEST_POSTGRES),
  ``fresh_schema``/``with_schema``/``drop_schema`` and ``admin`` statements.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventcollector import Event, EventCollector

PG_ENV = "EVENTCOLLECTOR_TEST_POSTGRES"


# -- the real server -----------------------------------------------------------------


#: Ports handed out by ``free_port``: below Linux's ephemeral range (32768 up), where
#: ``bind(0)`` and outgoing connections take theirs.
_PORTS = range(10_000, 32_000)


def _worker_ports() -> Iterator[int]:
    """This test worker's own share of ``_PORTS``, round and round (pytest-xdist names
    its workers gw0, gw1, ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = len(_PORTS) // max(count, 1)
    start = _PORTS.start + share * (int(worker) % max(count, 1) if worker.isdigit() else 0)
    return itertools.cycle(range(start, start + share))


_next_ports = _worker_ports()


def free_port() -> int:
    """A port to start a server on that no other test worker hands out: ports from
    ``bind(0)`` were taken by another worker's server now and then between the check
    and the server's own bind. One that something else holds is skipped."""
    for port in _next_ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable: the ports cycle")


def serve_command(port: int, db: str | Path, *options: str) -> list[str]:
    """``python -m eventcollector serve`` on ``port`` with ``db``, logging warnings only."""
    command = [sys.executable, "-m", "eventcollector", "serve", "--port", str(port)]
    return [*command, "--db", str(db), "--log-level", "warning", *options]


def terminate(process: subprocess.Popen[Any] | None, grace: float = 15) -> None:
    """Stop ``process`` with SIGTERM, or SIGKILL once ``grace`` seconds have passed."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class PortTaken(RuntimeError):
    """The server could not bind its port: another process took it first."""


def wait_for_health(
    process: subprocess.Popen[bytes],
    url: str,
    log: Path,
    *,
    timeout: float,
    probe_timeout: float,
    give_up: Callable[[], object],
    db: Path | None = None,
) -> None:
    """Return once ``url``/health answers 200 (with ``db``: from the server on that
    file); raise if the process exits or ``timeout`` passes (then after calling
    ``give_up`` to stop it), with the server's log.

    ``free_port`` cannot reserve the port: should another process take it meanwhile,
    that one may answer too, and ours then exits, unable to bind (``PortTaken``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text()
            if "address already in use" in text:
                raise PortTaken(text)
            raise RuntimeError(f"server exited: {text}")
        try:
            r = httpx.get(f"{url}/health", timeout=probe_timeout)
            if r.status_code == 200 and (db is None or r.json().get("db_path") == str(db)):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    give_up()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point."""
    return subprocess.run(
        [sys.executable, "-m", "eventcollector", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


# -- events --------------------------------------------------------------------------


def event(**overrides: Any) -> dict[str, Any]:
    """The JSON body of one event for the HTTP API, with defaults for the required fields."""
    fields: dict[str, Any] = {
        "system": "deployer",
        "event_type": "workflow.started",
        "title": "Deploy started",
    }
    fields.update(overrides)
    return fields


def make_event(**overrides: Any) -> Event:
    """A valid ``Event`` with defaults for the required fields."""
    fields: dict[str, Any] = {
        "system": "mahavishnu",
        "event_type": "workflow.started",
        "title": "Workflow started",
    }
    fields.update(overrides)
    return Event.create(**fields)


def seed(target: str | Path, events: Iterable[Event]) -> list[Event]:
    """Store ``events`` through the library (no subprocess) in ``target``: an SQLite file
    or a ``postgresql://`` URL; the events."""
    batch = list(events)

    async def main() -> None:
        c = EventCollector(target)
        try:
            await c.ingest(batch)
        finally:
            await c.stop()

    asyncio.run(main())
    return batch


# -- PostgreSQL ----------------------------------------------------------------------


def postgres_url() -> str:
    """The test server's URL, or skip naming the variable that enables these tests."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    try:
        import asyncpg  # type: ignore[import-untyped]  # noqa: F401 (no type information)
    except ImportError:
        pytest.skip("PostgreSQL tests need the 'postgres' extra (asyncpg)")
    return url


def fresh_schema(prefix: str = "ect_") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def with_schema(url: str, schema: str) -> str:
    """``url`` with ``schema=<schema>`` added to its query string."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


async def drop_schema(url: str, schema: str) -> None:
    await admin(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def admin(url: str, statement: str, *args: Any) -> list[Any]:
    """Run one statement on a separate superuser connection; its rows."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows: list[Any] = await conn.fetch(statement, *args)
        return rows
    finally:
        await conn.close()


# -- retention -----------------------------------------------------------------------


def aged_events(now: datetime) -> list[Event]:
    """Forty events over ten days before ``now``, of four severities, a third tagged noise."""
    severities = ["debug", "info", "warning", "error"]
    return [
        make_event(
            title=f"event {i}",
            severity=severities[i % 4],
            tags=["noise"] if i % 3 == 0 else [],
            data={"n": i},
            timestamp=now - timedelta(days=i // 4, hours=i % 4, minutes=1),
        )
        for i in range(40)
    ]


def retained_out(events: list[Event], rules: list[Any], now: datetime) -> set[str]:
    """The reference of retention rules (``RetentionRule``s) at ``now``: the ids of the
    events that some rule's filter matches (``filters.matches``) and that are older than
    that rule's age."""
    from eventcollector.filters import matches

    gone = set()
    for e in events:
        for rule in rules:
            node = rule.where(now)
            if e.timestamp < now - rule.age and (node is None or matches(node, e)):
                gone.add(e.id)
    return gone


class Receiver:
    """The real HTTP receiver of alert notices (tests/_receiver.py) in a subprocess."""

    def __init__(self, directory: Path, secret: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / f"received-{self.port}.jsonl"
        self.log.touch()
        script = Path(__file__).with_name("_receiver.py")
        args = [sys.executable, str(script), str(self.port), str(self.log)]
        self.process = subprocess.Popen([*args, *([secret] if secret else [])])
        wait_until(self._listening, timeout=15)

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        """The requests so far (to ``path`` only, when given), oldest first."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        found = [json.loads(line) for line in lines if line]
        return [r for r in found if path is None or r["path"] == path]

    def stop(self) -> None:
        terminate(self.process, grace=5)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` until true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


#: The storage tests' clock: events at BASE + i minutes, validated as if "now" were later.
BASE = datetime(2024, 3, 10, tzinfo=UTC)


def ev(i: int = 0, **fields: Any) -> Event:
    """A valid event ``i`` minutes after ``BASE``, with ``fields`` changed."""
    values: dict[str, Any] = {
        "system": "alpha",
        "event_type": "job.run",
        "title": f"Event {i}",
        "timestamp": BASE + timedelta(minutes=i),
        "now": BASE + timedelta(days=400),
    }
    values.update(fields)
    return Event.create(**values)
