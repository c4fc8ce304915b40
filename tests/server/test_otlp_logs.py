"""POST /v1/logs: the real OpenTelemetry SDKs (Python: protobuf; Node.js: JSON) against
the real server's OTLP port, the mapping on what is stored, resends, and bad input."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from ._otlp import PROTOBUF, OtlpServer, start_otlp

# A service logging through the stdlib with the SDK's LoggingHandler and exporter; the
# exporter sends every batch twice, as a retrying exporter would after a lost answer.
PYTHON_SDK = """
import json, logging, sys, warnings
warnings.simplefilter("ignore")  # LoggingHandler is deprecated in favour of a contrib package
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

class ResendingExporter(OTLPLogExporter):
    def export(self, batch):
        super().export(batch)
        return super().export(batch)

resource = Resource.create({"service.name": "Checkout Service", "deployment.environment": "ci"})
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(BatchLogRecordProcessor(ResendingExporter()))
log = logging.getLogger("shop.checkout")
log.setLevel(logging.DEBUG)
log.addHandler(LoggingHandler(logger_provider=provider))
log.propagate = False
tracer = TracerProvider().get_tracer("shop")
log.debug("cache warm")
log.info("order placed\\nfor 3 items", extra={"order_id": 42, "event.name": "order.placed"})
log.warning("stock low", extra={"sku": "A-1"})
with tracer.start_as_current_span("pay") as span:
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("payment failed")
    context = span.get_span_context()
log.critical("shutting down")
provider.shutdown()
print(json.dumps({"trace_id": format(context.trace_id, "032x"),
                  "span_id": format(context.span_id, "016x")}))
"""

NODE_SDK = """
const { LoggerProvider, SimpleLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const [url, key] = process.argv.slice(2);
const exporter = new OTLPLogExporter({ url, headers: { Authorization: `Bearer ${key}` } });
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': 'node-shop' }),
  processors: [new SimpleLogRecordProcessor({ exporter })],
});
const logger = provider.getLogger('node.scope', '2.1.0');
logger.emit({
  severityNumber: 17, severityText: 'ERROR', body: 'node failed\\nat line 3',
  attributes: { 'user.id': 'u-7', retries: 3, nested: { deep: [1, 'two'] } },
});
logger.emit({ severityNumber: 0, severityText: 'WARN', body: { reason: 'slow', ms: 1500 } });
provider.shutdown().then(() => console.log('done'));
"""


@pytest.fixture(scope="module")
def otlp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtlpServer]:
    yield from start_otlp(
        tmp_path_factory, "otlp-logs", "--rate-limit", "0", "--max-batch", "50",
        "--max-body-bytes", "200000", "--max-event-bytes", "20000", "--max-depth", "8",
    )  # fmt: skip


@pytest.fixture(scope="module")
def python_sdk(otlp: OtlpServer) -> dict[str, Any]:
    """The Python SDK's logs (gzip-compressed protobuf), stored."""
    before = otlp.metric("eventcollector_events_duplicate")
    ids: dict[str, Any] = json.loads(
        otlp.run_sdk(PYTHON_SDK, OTEL_EXPORTER_OTLP_COMPRESSION="gzip")
    )
    ids["duplicates"] = otlp.metric("eventcollector_events_duplicate") - before
    ids["events"] = {e["title"]: e for e in otlp.events(system="checkout_service")}
    return ids


def test_python_sdk_log_mapping(python_sdk: dict[str, Any]) -> None:
    events = python_sdk["events"]
    assert set(events) == {
        "cache warm", "order placed", "stock low", "payment failed", "shutting down",
    }  # fmt: skip
    severity = {title: e["severity"] for title, e in events.items()}
    assert severity == {
        "cache warm": "debug", "order placed": "info", "stock low": "warning",
        "payment failed": "error", "shutting down": "critical",
    }  # fmt: skip
    placed = events["order placed"]
    assert placed["event_type"] == "order.placed"  # the event.name attribute
    assert placed["description"] == "order placed\nfor 3 items"
    assert placed["data"]["order_id"] == 42
    # Dotted attribute names are namespaces: nested, so a filter path finds them.
    assert placed["metadata"]["resource"]["service"]["name"] == "Checkout Service"
    assert placed["metadata"]["resource"]["deployment"]["environment"] == "ci"
    assert placed["data"]["event"]["name"] == "order.placed"
    assert placed["metadata"]["scope"]["name"] == "shop.checkout"
    assert placed["correlation_id"] is None
    assert events["stock low"]["event_type"] == "log.warning"
    assert events["stock low"]["data"]["sku"] == "A-1"
    failed = events["payment failed"]
    assert failed["correlation_id"] == python_sdk["trace_id"]
    assert failed["data"]["span_id"] == python_sdk["span_id"]
    exception = failed["data"]["exception"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["message"] == "division by zero"
    assert "Traceback" in exception["stacktrace"]
    for event in events.values():
        assert event["system"] == "checkout_service"
        age = time.time() - _epoch(event["timestamp"])
        assert 0 <= age < 120


def test_dotted_attributes_are_found_by_filter_paths(
    otlp: OtlpServer, python_sdk: dict[str, Any]
) -> None:
    found = otlp.events(q="data.exception.type:ZeroDivisionError")
    assert [e["title"] for e in found] == ["payment failed"]
    found = otlp.events(q='metadata.resource.service.name:"Checkout Service" severity:>=error')
    assert {e["title"] for e in found} == {"payment failed", "shutting down"}


def test_otlp_exceptions_group_by_their_type(otlp: OtlpServer, python_sdk: dict[str, Any]) -> None:
    with otlp.server.client(otlp.keys["read"]) as client:
        response = client.get("/v1/issues", params={"system": "checkout_service"})
    assert response.status_code == 200, response.text
    types = {issue["title"]: issue["error_type"] for issue in response.json()["issues"]}
    assert types["division by zero"] == "ZeroDivisionError"


def test_resent_export_is_stored_once(python_sdk: dict[str, Any]) -> None:
    assert len(python_sdk["events"]) == 5  # each export arrived twice
    assert python_sdk["duplicates"] == 5


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp).timestamp()


# -- OTLP JSON -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("Node.js and npm are not installed (the spec-written JSON test still runs)")
    directory = tmp_path_factory.mktemp("node-otlp")
    packages = [
        "@opentelemetry/sdk-logs@0.223.1", "@opentelemetry/exporter-logs-otlp-http@0.223.1",
        "@opentelemetry/resources@2.12.1",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(directory), *packages],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip("npm install of the OpenTelemetry JS SDK took over 180 s")
    if done.returncode != 0:
        pytest.skip(f"npm install of the OpenTelemetry JS SDK failed: {done.stderr[-500:]}")
    return directory


def test_node_sdk_sends_otlp_json(otlp: OtlpServer, node_modules: Path) -> None:
    script = node_modules / "send.js"
    script.write_text(NODE_SDK)
    done = subprocess.run(
        ["node", str(script), f"{otlp.otlp_url}/v1/logs", otlp.keys["ingest"]],
        capture_output=True, text=True, timeout=60, check=False, cwd=node_modules,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = {e["severity"]: e for e in otlp.events(system="node-shop")}
    assert set(events) == {"error", "warning"}
    failed = events["error"]
    assert failed["title"] == "node failed"
    assert failed["event_type"] == "log.error"
    assert failed["data"] == {"user": {"id": "u-7"}, "retries": 3, "nested": {"deep": [1, "two"]}}
    assert failed["metadata"]["scope"] == {"name": "node.scope", "version": "2.1.0"}
    slow = events["warning"]  # severity from SeverityText; a map body becomes data
    assert slow["data"] == {"reason": "slow", "ms": 1500}
    assert slow["title"] == "log.warning"


TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"


def spec_body(**record: Any) -> dict[str, Any]:
    """An ExportLogsServiceRequest in OTLP JSON as the specification writes it."""
    base = {
        "timeUnixNano": str(time.time_ns()),
        "severityNumber": 13,
        "severityText": "WARN",
        "traceId": TRACE_ID,
        "spanId": SPAN_ID,
        "body": {"stringValue": "disk almost full"},
        "attributes": [
            {"key": "disk.free", "value": {"intValue": "1024"}},
            {"key": "ok", "value": {"boolValue": False}},
            {"key": "ratio", "value": {"doubleValue": 0.5}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
        ],
    }
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "Disk-Watch"}}]
                },
                "scopeLogs": [{"scope": {"name": "watcher"}, "logRecords": [{**base, **record}]}],
            }
        ]
    }


def test_spec_written_json(otlp: OtlpServer) -> None:
    body = spec_body(eventName="disk.low", extraUnknownField=1)
    with otlp.otlp() as client:
        r = client.post(
            "/v1/logs", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {}
    with otlp.server.client(otlp.keys["ingest"]) as main:  # the API port serves OTLP too
        again = main.post("/v1/logs", json=body)
        assert again.status_code == 200
    (stored,) = otlp.events(system="disk-watch")
    assert stored["event_type"] == "disk.low"
    assert stored["severity"] == "warning"
    assert stored["correlation_id"] == TRACE_ID
    assert stored["data"] == {
        "disk": {"free": 1024}, "ok": False, "ratio": 0.5, "tags": ["a"], "span_id": SPAN_ID,
    }  # fmt: skip


def test_json_and_protobuf_of_one_record_are_one_event(otlp: OtlpServer) -> None:
    from google.protobuf import json_format

    body = spec_body(body={"stringValue": "same record both ways"})
    with otlp.otlp() as client:
        assert client.post("/v1/logs", json=body).status_code == 200
        record = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
        record["traceId"] = "W47/95gDgQPSabYzgT/GDA=="  # base64 for protobuf's own JSON
        record["spanId"] = "7uGbfsPBsXQ="
        message = json_format.ParseDict(body, ExportLogsServiceRequest())
        r = client.post("/v1/logs", content=message.SerializeToString(), headers=PROTOBUF)
        assert r.status_code == 200
    assert len(otlp.events(search="same record both ways")) == 1


def test_partial_success_counts_rejected_records(otlp: OtlpServer) -> None:
    future = str(time.time_ns() + 3600 * 10**9)
    body = spec_body(timeUnixNano=future)
    body["resourceLogs"][0]["scopeLogs"][0]["logRecords"].append(
        spec_body(body={"stringValue": "the good one"})["resourceLogs"][0]["scopeLogs"][0][
            "logRecords"
        ][0]
    )
    with otlp.otlp() as client:
        r = client.post("/v1/logs", json=body)
        assert r.status_code == 200
        partial = r.json()["partialSuccess"]
        assert partial["rejectedLogRecords"] == "1"
        assert partial["errorMessage"].startswith("1 rejected; first: timestamp:")
        message = ExportLogsServiceRequest()
        from google.protobuf import json_format

        body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = ""
        body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["spanId"] = ""
        del body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]
        json_format.ParseDict(body, message)
        r = client.post("/v1/logs", content=message.SerializeToString(), headers=PROTOBUF)
        assert r.status_code == 200
        answer = ExportLogsServiceResponse.FromString(r.content)
        assert answer.partial_success.rejected_log_records == 1
    assert otlp.events(search="the good one")


# -- refusals ------------------------------------------------------------------------


def _status(content: bytes) -> tuple[int, str]:
    """A google.rpc.Status (code 1, message 2) as the server encodes it."""
    assert content[0] == 0x08
    code = content[1]
    assert content[2] == 0x12
    length, start = content[3], 4
    if length & 0x80:
        length, start = (length & 0x7F) | (content[4] << 7), 5
    return code, content[start : start + length].decode()


def test_keys_are_required(otlp: OtlpServer) -> None:
    request = ExportLogsServiceRequest().SerializeToString()
    with otlp.otlp(key=None) as client:
        r = client.post("/v1/logs", content=request, headers=PROTOBUF)
        assert r.status_code == 401
        assert _status(r.content) == (16, "authorization: an API key is required")
    with otlp.otlp("read") as client:
        r = client.post("/v1/logs", json=spec_body())
        assert r.status_code == 403
        assert r.json()["error"] == "scope: this key lacks the 'ingest' scope"


def test_bad_bodies_are_4xx_and_the_server_stays_up(otlp: OtlpServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    many: dict[str, Any] = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{}] * 51}]}]}
    cases: list[tuple[bytes, dict[str, str], int, str]] = [
        (b"\xff\xff\xff garbage", PROTOBUF, 400, "body: not a valid protobuf"),
        (b"\x0a\x05\x0a\x03", PROTOBUF, 400, "body: not a valid protobuf"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "content-type: unsupported 'text/plain'"),
        (b"{}", {}, 415, "content-type: unsupported ''"),
        (bomb, {**PROTOBUF, "Content-Encoding": "gzip"}, 413, "max_body_bytes"),
        (b"x" * 300_000, PROTOBUF, 413, "max_body_bytes"),
        (b"\x1f\x8b broken", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "content-encoding"),
        (b"{nope", {"Content-Type": "application/json"}, 400, "body: invalid JSON"),
        (b"[1]", {"Content-Type": "application/json"}, 400, "body: expected an OTLP JSON"),
        (
            orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}),
            {"Content-Type": "application/json"}, 400, "traceId: not a hex string",
        ),
        (
            orjson.dumps({"resourceLogs": "many"}),
            {"Content-Type": "application/json"}, 400, "body: not a valid OTLP JSON",
        ),
        (orjson.dumps(many), {"Content-Type": "application/json"}, 413, "max_batch"),
    ]  # fmt: skip
    with otlp.otlp() as client:
        for content, headers, status, error in cases:
            r = client.post("/v1/logs", content=content, headers=headers)
            assert r.status_code == status, (content[:40], r.text)
            if r.headers["content-type"] == "application/json":
                assert r.json()["error"].startswith(error), r.text
            else:
                assert _status(r.content)[1].startswith(error), r.content
        assert client.get("/health").status_code == 404  # the OTLP port serves OTLP only
    with otlp.server.client() as main:
        assert main.get("/health").status_code == 200


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(levels):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return spec_body(attributes=[{"key": "deep", "value": value}])


def test_deep_attributes_reject_the_record(otlp: OtlpServer) -> None:
    with otlp.otlp() as client:
        r = client.post("/v1/logs", json=_nested(12))  # the server's --max-depth is 8
        assert r.status_code == 200
        assert "max_depth" in r.json()["partialSuccess"]["errorMessage"]
        # Deeper than protobuf's own decoder goes: the body cannot be decoded at all.
        r = client.post("/v1/logs", json=_nested(60))
        assert r.status_code == 400
        assert r.json()["error"].startswith("body: not a valid OTLP JSON")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtlpServer]:
    yield from start_otlp(tmp_path_factory, "otlp-limited", "--rate-limit", "1")


def test_rate_limit_is_429_with_retry_after(limited: OtlpServer) -> None:
    with limited.otlp() as client:
        assert client.post("/v1/logs", json=spec_body()).status_code == 200
        for _ in range(20):  # the bucket refills a little between requests
            second = client.post("/v1/logs", json=spec_body(timeUnixNano=str(time.time_ns())))
            if second.status_code != 200:
                break
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert second.json()["error"].startswith("rate_limit:")
