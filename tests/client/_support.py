"""Real network peers for the remote-client tests (helpers; fixtures in conftest).

``peer``: the scripted ingest peer (``_peer.py``) in a subprocess. ``Server``: the real
``eventcollector serve`` in a subprocess on a free port with a tmp_path database; it
can be killed and restarted on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from _common import free_port, serve_command, terminate, wait_for_health
from eventcollector.client import HTTPStorage

_PEER = Path(__file__).with_name("_peer.py")


class Peer:
    """The scripted ingest peer; ``script()`` sets the answers to the next requests."""

    def __init__(self, port: int | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(_PEER), str(port or 0)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def script(self, *steps: dict[str, Any], delay: float = 0.0, reset: bool = False) -> None:
        body = {"script": list(steps), "delay": delay, "reset": reset}
        httpx.post(f"{self.url}/_control", json=body, timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/_state", timeout=5).json()
        return result

    def ids(self) -> list[str]:
        ids: list[str] = self.state()["ids"]
        return ids

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def make_storage(url: str, spool_dir: Path | None, **options: Any) -> HTTPStorage:
    defaults: dict[str, Any] = {
        "timeout": 2.0,
        "flush_interval": 0.05,
        "backoff_base": 0.05,
        "backoff_max": 0.5,
        "exit_timeout": 1.0,
    }
    defaults.update(options)
    if spool_dir is None:
        defaults.setdefault("spool", False)
    else:
        defaults.setdefault("spool_dir", spool_dir)
    return HTTPStorage(url, **defaults)


class Server:
    """``eventcollector serve`` on a fixed port; ``kill()`` and ``start()`` again."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.directory = directory
        self.db = directory / "events.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.options = options
        self.log = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = serve_command(self.port, self.db, *self.options)
        env = {**os.environ, "EVENTCOLLECTOR_KEYS_FILE": str(self.directory / "keys.json")}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        wait_for_health(
            self.process, self.url, self.log, timeout=20, probe_timeout=1, give_up=self.kill
        )

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        terminate(self.process)


def server_available() -> bool:
    try:
        import eventcollector.server  # noqa: F401
    except ImportError:
        return False
    return True
