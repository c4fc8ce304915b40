"""Helpers for the reliability suite: the real server in a subprocess, RSS.

The server can be killed with SIGKILL and restarted on the same port and database,
which is what the crash tests need; ``rss_kib`` reads ``/proc`` so no extra package
is involved.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx

from _common import free_port, serve_command, terminate, wait_for_health


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


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
        command = serve_command(self.port, self.db, *self.options)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        wait_for_health(
            self.process, self.url, self.log, timeout=timeout, probe_timeout=2, give_up=self.stop
        )

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
        terminate(self.process, grace=20)
        return self.log.read_text() if self.log.exists() else ""
