"""OTLP protobuf log ingest against our own JSON batch endpoint, in one run.

    python -m benchmarks --only otlp --events 200000

Each side gets a fresh server (one uvicorn worker, a new SQLite file) and the same
events from ``benchmarks._data``: the JSON side through ``benchmarks._http_client``
(arrays of 1,000), the OTLP side as ``ExportLogsServiceRequest``s of 1,000 records
posted by this module's client (``python -m benchmarks._otlp --url URL --events N``)
over as many keep-alive connections. OTLP records carry no id and the server derives
one from each record, so every OTLP body is built distinct before the clock starts
(a repeated body would only store duplicates).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks._data import generate
from benchmarks._http import free_port, start_server, stored
from benchmarks._http_client import post_bodies

BATCH = 1_000
CONNECTIONS = 4
_SEVERITY_NUMBERS = {"debug": 5, "info": 9, "warning": 13, "error": 17, "critical": 21}


def run_otlp(workdir: Path, events: int) -> dict[str, Any]:
    """Events/s of both doors, and their ratio (the issue's target: at least 0.8)."""
    report: dict[str, Any] = {}
    for name, module, path in (
        ("json_batch_1000", "benchmarks._http_client", "/v1/events"),
        ("otlp_protobuf_1000", "benchmarks._otlp", "/v1/logs"),
    ):
        port = free_port()
        server = start_server(workdir / f"{name}.db", port)
        try:
            out = subprocess.run(
                [sys.executable, "-m", module, "--url", f"http://127.0.0.1:{port}{path}",
                 "--events", str(events)],
                check=True, stdout=subprocess.PIPE, text=True,
            ).stdout  # fmt: skip
            report[name] = json.loads(out)
            report[name]["stored_after"] = stored(port)
        finally:
            server.terminate()
            server.wait(timeout=60)
    report["otlp_to_json_ratio"] = round(
        report["otlp_protobuf_1000"]["events_per_s"] / report["json_batch_1000"]["events_per_s"], 3
    )
    return report


def _bodies(events: int) -> list[bytes]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def attribute(key: str, value: Any) -> KeyValue:
        if isinstance(value, str):
            return KeyValue(key=key, value=AnyValue(string_value=value))
        return KeyValue(key=key, value=AnyValue(int_value=value))

    bodies = []
    source = generate(events)
    for _ in range(events // BATCH):
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = "benchmark"
        for i in range(BATCH):
            event = next(source)
            if i == 0:
                resource_logs.resource.attributes.append(attribute("service.name", event["system"]))
            record = scope_logs.log_records.add()
            record.time_unix_nano = int(event["timestamp"].timestamp() * 1e9)
            record.severity_number = _SEVERITY_NUMBERS[event["severity"]]  # type: ignore[assignment]  # an enum's int; stubs name a ValueType
            record.body.string_value = f"{event['title']}\n{event['description']}"
            record.event_name = event["event_type"]
            record.trace_id = hashlib.md5(event["correlation_id"].encode()).digest()  # noqa: S324 - an id, not security
            for key, value in event["data"].items():
                record.attributes.append(attribute(key, value))
            record.attributes.append(attribute("component", event["source_component"]))
        bodies.append(request.SerializeToString())
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()
    bodies = _bodies(args.events)
    statuses, elapsed = post_bodies(args.url, iter(bodies), "application/x-protobuf")
    sent = len(bodies) * BATCH
    print(
        json.dumps(
            {
                "events": sent,
                "batch_size": BATCH,
                "connections": CONNECTIONS,
                "seconds": round(elapsed, 3),
                "events_per_s": round(sent / elapsed),
                "statuses": statuses,
            }
        )
    )


if __name__ == "__main__":
    main()
