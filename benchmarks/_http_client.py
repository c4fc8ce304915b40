"""Batch-ingest load: ``python -m benchmarks._http_client --url URL --events N``.

Bodies are serialised before the clock starts (without ids, so every request
stores new events) and sent from a few threads over keep-alive connections, so
the client costs little next to the server it measures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from collections.abc import Iterator
from itertools import islice
from urllib.parse import urlsplit

import orjson

from benchmarks._data import generate

BATCH = 1_000
CONNECTIONS = 4
_DISTINCT_BODIES = 20


def post_bodies(
    url_text: str, bodies: Iterator[bytes], content_type: str
) -> tuple[dict[int, int], float]:
    """POST every body over ``CONNECTIONS`` keep-alive connections; statuses and seconds."""
    url = urlsplit(url_text)
    assert url.hostname is not None, url_text
    host = url.hostname
    lock = threading.Lock()
    statuses: dict[int, int] = {}

    def worker() -> None:
        conn = http.client.HTTPConnection(host, url.port, timeout=120)
        while True:
            with lock:
                body = next(bodies, None)
            if body is None:
                break
            conn.request("POST", url.path, body, {"Content-Type": content_type})
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()
    source = generate(BATCH * _DISTINCT_BODIES)
    bodies = []
    for _ in range(_DISTINCT_BODIES):
        batch = list(islice(source, BATCH))
        for event in batch:
            event["timestamp"] = event["timestamp"].isoformat()
        bodies.append(orjson.dumps(batch))
    batches = args.events // BATCH
    statuses, elapsed = post_bodies(
        args.url, (bodies[i % len(bodies)] for i in range(batches)), "application/json"
    )
    sent = batches * BATCH
    print(
        json.dumps(
            {
                "events": sent,
                "batch_size": BATCH,
                "connections": CONNECTIONS,
                "seconds": round(elapsed, 3),
                "events_per_s": round(sent / elapsed),
                "statuses": statuses,
                "non_2xx": sum(n for status, n in statuses.items() if not 200 <= status < 300),
            }
        )
    )


if __name__ == "__main__":
    main()
