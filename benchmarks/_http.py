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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "eventcollector", "serve", "--db", str(db), "--port", str(port)],
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


def _stored(port: int) -> int:
    url = f"http://127.0.0.1:{port}/v1/events/count"
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(json.load(response)["count"])


def run_http(workdir: Path, events: int) -> dict[str, Any]:
    report: dict[str, Any] = {}
    port = _free_port()
    server = _start_server(workdir / "http.db", port)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks._http_client", "--url",
             f"http://127.0.0.1:{port}/v1/events", "--events", str(events)],
            check=True, stdout=subprocess.PIPE, text=True,
        ).stdout  # fmt: skip
        report["batch_1000"] = json.loads(out)
        report["batch_1000"]["stored_after"] = _stored(port)
        report["single_event_posts"] = _wrk(port)
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


def _wrk(port: int, seconds: int = 10) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    before = _stored(port)
    out = subprocess.run(
        [wrk, "-t2", "-c32", f"-d{seconds}s", "-s", script.name,
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
        "stored": _stored(port) - before,
    }
