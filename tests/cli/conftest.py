"""The real console script in a subprocess against a real SQLite file in tmp_path.

Each subprocess costs about 0.3 s, so most option-parsing variants run in-process
through typer's CliRunner (``invoke``) and every command also runs for real (``ec``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventcollector import Event, EventCollector
from eventcollector.cli import app


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


def seed(db: Path, events: Iterable[Event]) -> list[Event]:
    """Store events through the library (fast: no subprocess)."""
    batch = list(events)

    async def main() -> None:
        c = EventCollector(db)
        try:
            await c.ingest(batch)
        finally:
            await c.stop()

    asyncio.run(main())
    return batch


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
