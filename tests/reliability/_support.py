"""Helpers for the reliability suite: the real server in a subprocess, RSS, events.

The server can be killed with SIGKILL and restarted on the same port and database,
which is what the crash tests need; ``rss_kib`` reads ``/proc`` so no extra package
is involved.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

PG_ENV = "EVENTCOLLECTOR_TEST_POSTGRES"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def event(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "system": "deployer",
        "event_type": "workflow.started",
        "title": "Deploy started",
    }
    fields.update(overrides)
    return fields


def postgres_base() -> str:
    """The PostgreSQL URL of the test server, or skip naming the variable."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL variant needs {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL variant needs the 'postgres' extra (asyncpg)")
    return url


def fresh_schema() -> str:
    return f"ecr_{uuid.uuid4().hex[:16]}"


async def drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


class Server:
    """``python -m eventcollector serve`` on a fixed port; kill -9 and restart keep both."""

    def __init__(
        self, directory: Path, *options: str, db: str | None = None, start: bool = True
    ) -> None:
        self.directory = directory
        self.db = db or str(directory / "events.db")
        self.options = options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        if start:
            self.start()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        command = [sys.executable, "-m", "eventcollector", "serve", "--port", str(self.port)]
        command += ["--db", self.db, "--log-level", "warning", *self.options]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)

    def async_client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kwargs.setdefault("timeout", 30)
        return httpx.AsyncClient(base_url=self.url, headers=headers, **kwargs)

    def stop(self) -> str:
        """Stop gracefully (SIGTERM) and return the server's log."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.log.read_text() if self.log.exists() else ""


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventcollector", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
