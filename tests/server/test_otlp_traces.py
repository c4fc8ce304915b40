"""POST /v1/traces: the real Python SDK (TracerProvider, BatchSpanProcessor, OTLPSpanExporter)
against the real server, with a nested span and an exception; resends; OTLP JSON spans."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ._otlp import PROTOBUF, OtlpServer, start_otlp

# Each batch is exported twice, as a retrying exporter would after a lost answer.
PYTHON_SDK = """
import json, time
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

class ResendingExporter(OTLPSpanExporter):
    def export(self, spans):
        super().export(spans)
        return super().export(spans)

provider = TracerProvider(resource=Resource.create({"service.name": "Billing"}))
provider.add_span_processor(BatchSpanProcessor(ResendingExporter()))
tracer = provider.get_tracer("billing.api", "3.2")
with tracer.start_as_current_span("POST /invoices", kind=SpanKind.SERVER,
                                  attributes={"http.request.method": "POST",
                                              "http.route": "/invoices"}) as root:
    time.sleep(0.02)
    try:
        with tracer.start_as_current_span("charge card", attributes={"amount": 12.5}) as child:
            time.sleep(0.01)
            raise ValueError("card declined")
    except ValueError:
        pass
provider.shutdown()
print(json.dumps({"trace_id": format(root.get_span_context().trace_id, "032x"),
                  "root": format(root.get_span_context().span_id, "016x"),
                  "child": format(child.get_span_context().span_id, "016x")}))
"""


@pytest.fixture(scope="module")
def otlp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtlpServer]:
    yield from start_otlp(tmp_path_factory, "otlp-traces", "--rate-limit", "0")


@pytest.fixture(scope="module")
def trace(otlp: OtlpServer) -> dict[str, Any]:
    before = otlp.metric("eventcollector_events_duplicate")
    ids: dict[str, Any] = json.loads(otlp.run_sdk(PYTHON_SDK))
    ids["duplicates"] = otlp.metric("eventcollector_events_duplicate") - before
    ids["events"] = otlp.events(correlation_id=ids["trace_id"])
    return ids


def test_spans_become_events(trace: dict[str, Any]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in trace["events"]:
        by_type.setdefault(event["event_type"], []).append(event)
    spans = {e["title"]: e for e in by_type["span"]}
    assert set(spans) == {"POST /invoices", "charge card"}
    root, child = spans["POST /invoices"], spans["charge card"]
    assert root["system"] == child["system"] == "billing"
    assert root["severity"] == "info"
    assert root["data"]["span_id"] == trace["root"]
    assert "parent_span_id" not in root["data"]
    assert root["data"]["kind"] == "server"
    assert root["data"]["status"]["code"] == "unset"
    assert root["data"]["http"] == {"request": {"method": "POST"}, "route": "/invoices"}
    assert root["duration_ms"] >= 30
    assert root["data"]["duration_us"] // 1000 == root["duration_ms"]
    assert root["metadata"]["scope"] == {"name": "billing.api", "version": "3.2"}
    assert child["severity"] == "error"
    assert child["data"]["parent_span_id"] == trace["root"]
    assert child["data"]["span_id"] == trace["child"]
    assert child["data"]["kind"] == "internal"
    assert child["data"]["status"] == {"code": "error", "message": "ValueError: card declined"}
    assert child["data"]["amount"] == 12.5
    assert 10 <= child["duration_ms"] < root["duration_ms"]
    assert child["timestamp"] > root["timestamp"]
    (error,) = by_type["span.exception"]
    assert error["severity"] == "error"
    assert error["title"] == "ValueError: card declined"
    assert "Traceback" in error["description"]
    assert error["data"]["exception"]["type"] == "ValueError"
    assert error["data"]["exception"]["message"] == "card declined"
    assert error["data"]["span_id"] == trace["child"]
    assert error["data"]["span_name"] == "charge card"


def test_span_attributes_are_found_by_filter_paths(otlp: OtlpServer, trace: dict[str, Any]) -> None:
    found = otlp.events(q="data.http.request.method:POST data.http.route:/invoices")
    assert [e["data"]["span_id"] for e in found] == [trace["root"]]


def test_resent_spans_are_stored_once(trace: dict[str, Any]) -> None:
    assert len(trace["events"]) == 3
    assert trace["duplicates"] == 3


def spec_spans() -> dict[str, Any]:
    """An ExportTraceServiceRequest in OTLP JSON as the specification writes it."""
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "parentSpanId": "00f067aa0ba902b7",
                                "name": "GET /health",
                                "kind": 3,
                                "startTimeUnixNano": str(now - 2_500_000),
                                "endTimeUnixNano": str(now),
                                "status": {"code": 1},
                                "links": [
                                    {
                                        "traceId": "0af7651916cd43dd8448eb211c80319d",
                                        "spanId": "b7ad6b7169203332",
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }


def test_spec_written_json_spans(otlp: OtlpServer) -> None:
    body = spec_spans()
    with otlp.otlp() as client:
        r = client.post("/v1/traces", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {}
    (span,) = otlp.events(correlation_id="0af7651916cd43dd8448eb211c80319c")
    assert span["system"] == "unknown_service"
    assert span["data"]["kind"] == "client"
    assert span["data"]["status"] == {"code": "ok", "message": ""}
    assert span["data"]["parent_span_id"] == "00f067aa0ba902b7"
    assert span["duration_ms"] == 2
    assert span["data"]["duration_us"] == 2500


def test_partial_success_and_bad_bodies(otlp: OtlpServer) -> None:
    body = spec_spans()
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"] = str(time.time_ns() + 3600 * 10**9)
    with otlp.otlp() as client:
        r = client.post("/v1/traces", json=body)
        assert r.status_code == 200
        assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
        from google.protobuf import json_format

        for field in ("traceId", "spanId", "parentSpanId"):
            del span[field]
        del span["links"]
        request = json_format.ParseDict(body, ExportTraceServiceRequest())
        r = client.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
        assert r.status_code == 200
        assert ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == 1
        r = client.post("/v1/traces", content=b"\x0a\xff\xff", headers=PROTOBUF)
        assert r.status_code == 400
        assert b"ExportTraceServiceRequest" in r.content
        r = client.post("/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [
            {"spanId": "not-hex"}]}]}]})  # fmt: skip
        assert r.status_code == 400
        assert r.json()["error"].startswith("spanId: not a hex string")
    with otlp.server.client() as main:
        assert main.get("/health").status_code == 200
        # The GET /v1/traces/{correlation_id} query shares the prefix and still answers.
        read = {"Authorization": f"Bearer {otlp.keys['read']}"}
        trace = main.get("/v1/traces/0af7651916cd43dd8448eb211c80319c", headers=read)
        assert trace.status_code == 200
        assert [e["title"] for e in trace.json()["events"]] == ["GET /health"]
