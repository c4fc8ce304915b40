"""The real server in a subprocess (``python -m eventcollector serve``) on a free port.

Server start costs about a second, so each test module starts the servers it
needs once (module-scoped fixtures) with the options its tests exercise.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _common import PortTaken, free_port, serve_command, terminate, wait_for_health


class Server:
    """One ``eventcollector serve`` process and an HTTP client for it."""

    def __init__(self, directory: Path, *options: str, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.db = directory / "events.db"
        self.keys_file = directory / "events.keys.json"
        self.log = directory / "server.log"
        for attempt in range(3):  # another worker may take the free port first
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            command = serve_command(self.port, self.db, "--host", host, *options)
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(command, stdout=log, stderr=log)
            try:
                wait_for_health(
                    self.process,
                    self.url,
                    self.log,
                    timeout=20.0,
                    probe_timeout=1,
                    give_up=self.stop,
                    db=None if "--db" in options else self.db,  # a URL in its place
                )
                return
            except PortTaken:
                if attempt == 2:
                    raise

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def async_client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def stop(self) -> str:
        """Stop gracefully (SIGTERM) and return the server's log."""
        terminate(self.process)
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
