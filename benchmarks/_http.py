"""HTTP ingest figures against the real server in a subprocess (one uvicorn worker).

- batches: a client in a separate process POSTs JSON arrays of 1,000 events over
  keep-alive connections (``benchmarks._http_client``);
- single events: wrk (Debian package ``wrk``) POSTs one event per request over 32
  connections, as the issue names; skipped with a note when wrk is not installed.

The server runs with the options a user gets from the README (none but the database
and port), so the figures are what a default server takes. Each figure comes with its
count of non-2xx answers; a run that had any says so in ``refused``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"system":"mahavishnu","event_type":"workflow.started","title":"wrk event",\
"tags":["bench"],"data":{"n":1}}'
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    db: Path, port: int, module: str = "eventcollector serve"
) -> subprocess.Popen[bytes]:
    """``python -m MODULE --db DB --port PORT``, once its /health answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", *module.split(), "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not become healthy within 30 s")


def stored(port: int) -> int:
    url = f"http://127.0.0.1:{port}/v1/events/count"
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(json.load(response)["count"])


def run_http(workdir: Path, events: int) -> dict[str, Any]:
    report: dict[str, Any] = {}
    port = free_port()
    server = start_server(workdir / "http.db", port)
    try:
        report["batch_1000"] = post_batches(port, events)
        report["single_event_posts"] = wrk(port)
    finally:
        server.terminate()
        server.wait(timeout=60)
    refused = {name: figure["non_2xx"] for name, figure in report.items() if figure.get("non_2xx")}
    if refused:
        report["refused"] = (
            f"non-2xx answers {refused}: these figures include refused requests, "
            "not only stored events"
        )
    return report


def post_batches(port: int, events: int) -> dict[str, Any]:
    """Batches of 1,000 from a client process over 4 keep-alive connections."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._http_client", "--url",
         f"http://127.0.0.1:{port}/v1/events", "--events", str(events)],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout  # fmt: skip
    figures: dict[str, Any] = json.loads(out)
    figures["stored_after"] = stored(port)
    # What was stored, not what was sent: a refused batch (or one whose connection broke)
    # must not count as throughput.
    figures["stored_per_s"] = round(figures["stored_after"] / figures["seconds"])
    return figures


def wrk(port: int, seconds: int = 10) -> dict[str, Any]:
    """Single-event POSTs from wrk over 32 connections for ``seconds``."""
    binary = shutil.which("wrk")
    if binary is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    before = stored(port)
    out = subprocess.run(
        [binary, "-t2", "-c32", f"-d{seconds}s", "-s", script.name,
         f"http://127.0.0.1:{port}/v1/events"],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout  # fmt: skip
    Path(script.name).unlink()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    latency = re.search(r"Latency\s+([\d.]+\w+)", out)
    return {
        "connections": 32,
        "seconds": seconds,
        "requests_per_s": float(rate.group(1)) if rate else None,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
        "mean_latency": latency.group(1) if latency else None,
        "stored": stored(port) - before,
    }
