"""The real console script in a subprocess against a real SQLite file in tmp_path, and
a real server for --url (``live_server``) and long-running children (``spawn``).

Each subprocess costs about 0.3 s, so most option-parsing variants run in-process
through typer's CliRunner (``invoke``) and every command also runs for real (``ec``).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from typer.testing import CliRunner

from _common import free_port, make_event, serve_command, terminate, wait_for_health
from eventcollector import Event
from eventcollector.cli import app
from eventcollector.server.auth import KeyStore


def _script() -> str:
    # The script next to this interpreter, not a pyenv shim (which adds ~0.2 s a run).
    local = Path(sys.executable).parent / "eventcollector"
    found = str(local) if local.exists() else shutil.which("eventcollector")
    assert found, "the eventcollector console script is not installed"
    return found


SCRIPT = _script()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()


Runner = Callable[..., Result]


def assert_error(result: Result, code: int, *words: str) -> None:
    """Exactly one line on stderr naming the problem, the exit status, no traceback."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in result.err + result.out
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def env(tmp_path: Path, db: Path) -> dict[str, str]:
    """An environment where nothing reaches the real home or a configured server."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EVENTCOLLECTOR_") and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    base.update(
        XDG_DATA_HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path / "state"),
        EVENTCOLLECTOR_DB=str(db),
        COLUMNS="200",
    )
    return base


@pytest.fixture
def ec(env: dict[str, str]) -> Runner:
    """``ec("query", "--hours", "1")``: run the real console script."""

    def run(
        *args: str,
        input: str | bytes | None = None,
        extra_env: Mapping[str, str] | None = None,
        module: bool = False,
    ) -> Result:
        command = [sys.executable, "-m", "eventcollector"] if module else [SCRIPT]
        proc = subprocess.run(
            [*command, *args],
            input=input.encode() if isinstance(input, str) else input,
            capture_output=True,
            env={**env, **(extra_env or {})},
            timeout=60,
            check=False,
        )
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    return run


@pytest.fixture
def invoke(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    """In-process run through CliRunner: same app, same error handler, no process start."""
    for key in [k for k in os.environ if k.startswith("EVENTCOLLECTOR_") or k == "NO_COLOR"]:
        monkeypatch.delenv(key)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        r = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr)

    return run


# -- long-running children: tail, and a real server for --url -------------------------


class Lines:
    """Lines of a child's stdout, read on a thread so a test can wait with a timeout."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._queue: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[bytes]) -> None:
        try:
            for line in iter(stream.readline, b""):
                self._queue.put(line)
        except (OSError, ValueError):  # closed by the fixture's teardown
            pass

    def raw(self, timeout: float = 10.0) -> str:
        return self._queue.get(timeout=timeout).decode()

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return dict(json.loads(self.raw(timeout)))

    def empty(self) -> bool:
        return self._queue.empty()


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], Lines]:
        proc = subprocess.Popen(
            [SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        procs.append(proc)
        assert proc.stdout is not None
        return proc, Lines(proc.stdout)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


class RestartableServer:
    """``eventcollector serve`` with one admin key, restartable on the same port and db."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.db = directory / "events.db"
        self.keys_file = directory / "keys.json"
        _, self.key = KeyStore(self.keys_file).create(["admin"])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = serve_command(self.port, self.db, "--keys-file", str(self.keys_file))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        wait_for_health(
            self.process, self.url, self.log, timeout=20, probe_timeout=1, give_up=self.stop
        )

    def stop(self) -> None:
        terminate(self.process)

    def post(self, *ids: str) -> None:
        self.post_events([make_event(id=i, title=i) for i in ids])

    def post_events(self, events: Iterable[Event]) -> None:
        body = b"\n".join(e.to_json() for e in events)
        response = httpx.post(
            f"{self.url}/v1/events",
            content=body,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/x-ndjson",
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[RestartableServer]:
    server = RestartableServer(tmp_path / "server")
    try:
        yield server
    finally:
        server.stop()
        assert "Traceback" not in server.log.read_text()
