"""A real HTTP receiver for alert notices, run as a subprocess by ``_common.Receiver``:

``python tests/_receiver.py PORT LOG [SECRET]`` answers every POST and appends one JSON
line per request to LOG: path, headers, body, and whether X-Eventcollector-Signature
verifies with SECRET (the recipe of docs/alerts.md). A path ``/fail/N/...`` answers 500
to its first N requests; ``/slow/S/...`` waits S seconds before answering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]
SECRET = sys.argv[3].encode() if len(sys.argv) > 3 else None
_seen: Counter[str] = Counter()
_lock = threading.Lock()


def verified(body: bytes, header: str | None) -> bool | None:
    """The receiver's check: compare in constant time with the HMAC of the raw body."""
    if SECRET is None or header is None:
        return None
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parts = self.path.strip("/").split("/")
        with _lock:
            _seen[self.path] += 1
            attempt = _seen[self.path]
        if parts[0] == "slow":
            time.sleep(float(parts[1]))
        status = 500 if parts[0] == "fail" and attempt <= int(parts[1]) else 200
        record = {
            "path": self.path,
            "attempt": attempt,
            "status": status,
            "headers": dict(self.headers),
            "body": json.loads(body),
            "signature_ok": verified(body, self.headers.get("X-Eventcollector-Signature")),
        }
        with _lock, open(LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
