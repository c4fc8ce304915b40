"""emit, and tail following the embedded store and a server's SSE stream (also across a
restart of the real server)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from _common import make_event, seed

from .conftest import Lines, RestartableServer, Runner, assert_error


def test_emit_prints_the_id_and_stores_the_event(ec: Runner, db: Path) -> None:
    result = ec(
        "emit", "--system", "crackerjack", "--type", "test.failed", "--severity", "error",
        "--title", "3 tests failed", "--description", "see log", "--tags", "ci,nightly",
        "--tags", "linux", "--data", '{"failed": 3}', "--metadata", '{"runner": "r1"}',
        "--correlation-id", "pipe-7", "--component", "pytest", "--duration-ms", "1234",
    )  # fmt: skip
    assert result.code == 0, result.err
    event_id = result.out.strip()
    stored = json.loads(ec("query", "--correlation-id", "pipe-7").out)
    assert stored["id"] == event_id
    assert stored["tags"] == ["ci", "nightly", "linux"]
    assert stored["data"] == {"failed": 3}
    assert stored["metadata"] == {"runner": "r1"}
    assert (stored["severity"], stored["source_component"], stored["duration_ms"]) == (
        "error", "pytest", 1234
    )  # fmt: skip


def test_emit_with_an_id_is_idempotent(ec: Runner, invoke: Runner, db: Path) -> None:
    args = ["emit", "-s", "ci", "-t", "deploy.done", "--title", "v1", "--id", "deploy-1"]
    assert invoke(*args).out.strip() == "deploy-1"
    assert invoke(*args).out.strip() == "deploy-1"
    as_json = json.loads(invoke(*args, "--timestamp", "2024-05-01T10:00:00", "-f", "json").out)
    assert as_json[0]["timestamp"] == "2024-05-01T10:00:00.000000+00:00"
    assert len(ec("query").lines()) == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--severity", "loud"], ["severity", "'loud'"]),
        (["--data", "[1, 2]"], ["--data", "object"]),
        (["--data", "{oops"], ["--data", "JSON"]),
        (["--timestamp", "soon"], ["timestamp"]),
        (["--tags", "has space"], ["tags"]),
    ],
)
def test_emit_rejects_bad_input(
    invoke: Runner, db: Path, args: list[str], words: list[str]
) -> None:
    result = invoke("emit", "-s", "ci", "-t", "x.y", "--title", "t", *args)
    assert_error(result, 2, *words)
    assert not db.exists()  # validated before the store is opened


def test_emit_for_real_with_bad_system(ec: Runner, db: Path) -> None:
    assert_error(ec("emit", "-s", "Not Valid", "-t", "x", "--title", "t"), 2, "system")


def test_tail_follows_new_matching_events(spawn: Any, db: Path) -> None:
    seed(db, [make_event(id="before", severity="error", title="before")])
    proc, lines = spawn(
        "tail", "-f", "jsonl", "-n", "1", "--interval", "0.05", "--min-severity", "error"
    )
    assert lines.next()["id"] == "before"  # the backlog: tail is running
    seed(db, [make_event(id="skip", severity="info"), make_event(id="live", severity="error")])
    assert lines.next()["id"] == "live"
    # Stored late with an old timestamp: still new to a follower.
    late = datetime.now(UTC) - timedelta(days=3)
    seed(db, [make_event(id="late", severity="critical", timestamp=late)])
    assert lines.next()["id"] == "late"
    proc.terminate()  # SIGTERM ends tail cleanly
    assert proc.wait(timeout=10) == 0
    assert lines.empty()
    assert proc.stderr is not None
    assert b"Traceback" not in proc.stderr.read()


def test_tail_table_header_and_bad_options(spawn: Any, invoke: Runner, db: Path) -> None:
    proc, lines = spawn("tail", "-f", "table", "-n", "0")
    assert lines.raw().split()[:3] == ["TIME", "SEVERITY", "SYSTEM"]  # at once, before events
    seed(db, [make_event(title="shown\r\nforged")])
    row = lines.raw()
    assert "shown\\r\\nforged" in row
    assert "mahavishnu" in row
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert_error(invoke("tail", "-f", "json"), 2, "jsonl")
    assert_error(invoke("tail", "--severity", "nope"), 2, "--severity")
    assert_error(invoke("tail", "--interval", "0"), 2, "--interval")


class _SSEHandler(BaseHTTPRequestHandler):
    """The server's stream contract, reduced to its frames."""

    requests: ClassVar[list[tuple[str, str | None]]] = []
    release = threading.Event()

    def do_GET(self) -> None:
        type(self).requests.append((self.path, self.headers.get("Authorization")))
        if not self.path.startswith("/v1/stream"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        first = make_event(id="sse-1", title="over the wire").to_json().decode()
        second = make_event(id="sse-2", title="multi\nline title").to_json().decode()
        frames = (
            ": ping\n\n"
            f"event: event\ndata: {first}\n\n"
            'event: missed\ndata: {"count": 3}\n\n'
            f"event: event\ndata: {second}\n\n"
        )
        self.wfile.write(frames.encode())
        self.wfile.flush()
        type(self).release.wait(20)  # keep the stream open, as a live server does

    def log_message(self, *args: Any) -> None:
        pass


def test_tail_url_reads_the_sse_stream(spawn: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SSEHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        proc, lines = spawn(
            "tail", "--url", url, "--api-key", "k-123", "-n", "0", "-f", "jsonl",
            "--system", "mahavishnu", "--severity", "error,critical",
        )  # fmt: skip
        assert lines.next()["id"] == "sse-1"
        assert lines.next()["title"] == "multi\nline title"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        assert "dropped 3 events" in err
        assert "Traceback" not in err
        path, auth = next(r for r in _SSEHandler.requests if r[0].startswith("/v1/stream"))
        assert auth == "Bearer k-123"
        params = parse_qs(urlsplit(path).query)
        assert params["system"] == ["mahavishnu"]
        assert params["severity"] == ["error", "critical"]
    finally:
        _SSEHandler.release.set()
        server.shutdown()
        server.server_close()


def _wait_for(lines: Lines, words: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.raw(timeout=max(deadline - time.monotonic(), 0.01))
        if words in line:
            return line


def test_tail_url_follows_across_a_server_restart(
    spawn: Any, live_server: RestartableServer
) -> None:
    server = live_server
    server.post("r0")
    proc, out = spawn(
        "tail", "--url", server.url, "--api-key", server.key, "-n", "1", "-f", "jsonl"
    )  # fmt: skip
    assert proc.stderr is not None
    err = Lines(proc.stderr)
    shown = [out.next()["id"]]  # the backlog, read once subscribed
    server.post("r1", "r2", "r3")
    shown += [out.next()["id"] for _ in range(3)]

    server.stop()
    assert _wait_for(err, "lost the stream").startswith("warning: ")
    # Stored while the server is down: only the catch-up after reconnecting can find them.
    seed(server.db, [make_event(id=i, title=i) for i in ("r4", "r5")])
    server.start()  # same port, same database
    server.post("r6")  # before or after tail is back: the catch-up or the stream has it
    back = _wait_for(err, "reconnected")
    assert back.startswith("reconnected to "), back
    assert int(back.split("caught up ")[1].split()[0]) >= 2, back  # r4 and r5 (maybe r6)
    server.post("r7", "r8")
    shown += [out.next()["id"] for _ in range(5)]
    server.post("r9")  # the next line: nothing came twice before it
    shown.append(out.next()["id"])

    assert sorted(shown) == [f"r{i}" for i in range(10)], shown
    assert proc.poll() is None  # still following
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert out.empty()
    rest = proc.stderr.read().decode()
    assert "Traceback" not in rest


def test_tail_url_with_a_bad_key_fails_without_retrying(
    ec: Runner, live_server: RestartableServer
) -> None:
    started = time.monotonic()
    result = ec("tail", "--url", live_server.url, "--api-key", "eck_0_wrong", "-n", "0")
    assert_error(result, 1, "401")
    assert time.monotonic() - started < 10
