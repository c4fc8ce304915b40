"""A small real HTTP peer for the client tests: ``POST /v1/events`` with scripted failures.

Run as ``python _peer.py`` (prints its port on the first line of stdout). It validates
events with the real model, stores each id once (as the real server does), and answers
the next ingest requests from a script set through ``POST /_control``:

    {"script": [{"status": 503, "retry_after": "1", "times": 2}, {"hang": 30}], "delay": 0}

``GET /_state`` returns the stored ids (in arrival order) and a log of every ingest
request: its time, status, event count and Content-Encoding.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eventcollector.model import Event

_lock = threading.Lock()
_ids: list[str] = []
_seen: set[str] = set()
_log: list[dict[str, Any]] = []
_script: list[dict[str, Any]] = []
_delay = 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return data

    def do_GET(self) -> None:
        if self.path == "/_state":
            with _lock:
                self._reply(200, {"ids": list(_ids), "log": list(_log)})
        elif self.path == "/health":
            self._reply(200, {"status": "healthy", "peer": True})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        global _delay
        body = self._body()
        if self.path == "/_control":
            control = json.loads(body)
            with _lock:
                _script[:] = control.get("script", [])
                _delay = float(control.get("delay", 0))
                if control.get("reset"):
                    _ids.clear()
                    _seen.clear()
                    _log.clear()
            self._reply(200, {"ok": True})
            return
        if self.path != "/v1/events":
            self._reply(404, {"error": "not found"})
            return
        lines = [line for line in body.split(b"\n") if line.strip()]
        with _lock:
            step = _script[0] if _script else None
            if step is not None:
                step["times"] = step.get("times", 1) - 1
                if step["times"] <= 0:
                    _script.pop(0)
            delay = _delay
            entry = {
                "t": time.time(),
                "n": len(lines),
                "encoding": self.headers.get("Content-Encoding"),
                "auth": self.headers.get("Authorization"),
            }
            _log.append(entry)
        if step is not None and "hang" in step:
            time.sleep(step["hang"])
        if delay:
            time.sleep(delay)
        if step is not None and "status" in step:
            entry["status"] = step["status"]
            headers = {"Retry-After": step["retry_after"]} if "retry_after" in step else {}
            self._reply(step["status"], {"error": f"scripted {step['status']}"}, headers)
            return
        self._ingest(lines, entry)

    def _ingest(self, lines: list[bytes], entry: dict[str, Any]) -> None:
        accepted = duplicates = 0
        rejected = []
        with _lock:
            for index, line in enumerate(lines):
                try:
                    event = Event.from_dict(json.loads(line))
                except ValueError as exc:
                    rejected.append({"index": index, "error": str(exc)})
                    continue
                if event.id in _seen:
                    duplicates += 1
                else:
                    _seen.add(event.id)
                    _ids.append(event.id)
                    accepted += 1
        status = 400 if lines and len(rejected) == len(lines) else 200
        entry["status"] = status
        self._reply(status, {"accepted": accepted, "duplicates": duplicates, "rejected": rejected})


def main() -> None:
    server = ThreadingHTTPServer(
        ("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler
    )
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
