"""OTLP spans -> events: one per span, and one error event per ``exception`` span event
(the mapping table is in docs/ingest.md)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from eventcollector._ids import derived_event_id
from eventcollector.model import LIMITS, Event
from eventcollector.server.ingest._names import first_line
from eventcollector.server.ingest._otlp_common import (
    ScopeContext,
    Signal,
    attributes,
    children,
    hex_ids_to_base64,
    json_records,
    nested,
    timestamp,
)

__all__ = ["TRACES"]

_NAMES = ("resource_spans", "scope_spans", "spans")
_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS_CODES = ("unset", "ok", "error")
_STATUS_ERROR = 2


def _id(unix_nano: int, *parts: bytes) -> str:
    return derived_event_id(unix_nano, hashlib.blake2b(b"".join(parts), digest_size=16).digest())


def _span_event(
    span: Any, context: ScopeContext, max_event_bytes: int, max_depth: int, now: datetime
) -> Event:
    if span.ByteSize() > max_event_bytes:
        raise ValueError(f"max_event_bytes: span larger than {max_event_bytes} bytes")
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    duration_ns = max(0, end - start) if end else 0
    code = span.status.code
    fixed: dict[str, Any] = {"span_id": span.span_id.hex()}
    if span.parent_span_id:
        fixed["parent_span_id"] = span.parent_span_id.hex()
    fixed["kind"] = _KINDS[span.kind] if 0 <= span.kind < len(_KINDS) else str(span.kind)
    fixed["status"] = {
        "code": _STATUS_CODES[code] if 0 <= code < len(_STATUS_CODES) else str(code),
        "message": span.status.message,
    }
    fixed["duration_us"] = duration_ns // 1000
    data = nested(attributes(span.attributes, max_depth), max_depth, fixed=fixed)
    return Event.create(
        id=_id(start, span.trace_id, span.span_id),
        timestamp=timestamp(start) if start else now,
        system=context.system,
        event_type="span",
        severity="error" if code == _STATUS_ERROR else "info",
        title=span.name.strip()[: LIMITS.title_length] or "span",
        data=data,
        correlation_id=span.trace_id.hex() if span.trace_id else None,
        duration_ms=duration_ns // 1_000_000,
        metadata=context.metadata,
        now=now,
    )


def _exception_event(
    span: Any, index: int, context: ScopeContext, max_depth: int, now: datetime
) -> Event:
    event = span.events[index]
    attrs = attributes(event.attributes, max_depth)
    kind, message = attrs.get("exception.type"), attrs.get("exception.message")
    summary = ": ".join(str(part) for part in (kind, message) if part) or "exception"
    stacktrace = attrs.get("exception.stacktrace")
    fixed = {"span_id": span.span_id.hex(), "span_name": span.name}
    data = nested(attrs, max_depth, fixed=fixed)
    return Event.create(
        id=_id(event.time_unix_nano, span.trace_id, span.span_id, b"exception%d" % index),
        timestamp=timestamp(event.time_unix_nano) if event.time_unix_nano else now,
        system=context.system,
        event_type="span.exception",
        severity="error",
        title=first_line(summary),
        description=stacktrace[: LIMITS.description_length] if isinstance(stacktrace, str) else "",
        data=data,
        correlation_id=span.trace_id.hex() if span.trace_id else None,
        metadata=context.metadata,
        now=now,
    )


def _events(
    span: Any, context: ScopeContext, max_event_bytes: int, max_depth: int, now: datetime
) -> list[Event]:
    events = [_span_event(span, context, max_event_bytes, max_depth, now)]
    for index, event in enumerate(span.events):
        if event.name == "exception":
            events.append(_exception_event(span, index, context, max_depth, now))
    return events


def _fix_json_ids(payload: dict[str, Any]) -> None:
    for span in json_records(payload, _NAMES):
        hex_ids_to_base64(span, "traceId", "spanId", "parentSpanId")
        for link in children(span, "links"):
            hex_ids_to_base64(link, "traceId", "spanId")


TRACES = Signal(
    path="/v1/traces",
    request_type=ExportTraceServiceRequest,
    response_type=ExportTraceServiceResponse,
    rejected_field="rejected_spans",
    names=_NAMES,
    fix_json_ids=_fix_json_ids,
    events_of=_events,
)
