"""The real server in a subprocess (``python -m eventcollector serve``) on a free port.

Server start costs about a second, so each test module starts the servers it
needs once (module-scoped fixtures) with the options its tests exercise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point."""
    return subprocess.run(
        [sys.executable, "-m", "eventcollector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


class Server:
    """One ``eventcollector serve`` process and an HTTP client for it."""

    def __init__(self, directory: Path, *options: str, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.db = directory / "events.db"
        self.keys_file = directory / "events.keys.json"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"
        command = [sys.executable, "-m", "eventcollector", "serve", "--host", host]
        command += ["--port", str(self.port), "--db", str(self.db), "--log-level", "warning"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([*command, *options], stdout=log, stderr=log)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def async_client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def stop(self) -> str:
        """Stop gracefully (SIGTERM) and return the server's log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.log.read_text()


def start(
    tmp_path_factory: pytest.TempPathFactory, name: str, *options: str, **kwargs: Any
) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp(name), *options, **kwargs)
    try:
        yield server
    finally:
        log = server.stop()
        # Nothing a test sends may surface as a server-side traceback.
        assert "Traceback" not in log, log


def event(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "system": "deployer",
        "event_type": "workflow.started",
        "title": "Deploy started",
    }
    fields.update(overrides)
    return fields
