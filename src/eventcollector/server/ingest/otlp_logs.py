"""OTLP log records -> events (the mapping table is in docs/ingest.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from eventcollector.model import LIMITS, Event
from eventcollector.server.ingest._names import first_line, name_token
from eventcollector.server.ingest._otlp_common import (
    Mapped,
    ScopeContext,
    Signal,
    any_value,
    attributes,
    children,
    hex_ids_to_base64,
    scoped_records,
    timestamp,
)

__all__ = ["LOGS"]

_NAMES = ("resource_logs", "scope_logs", "log_records")
# SeverityNumber 1-24 in four-number bands (TRACE..FATAL); TRACE is our debug.
_BY_NUMBER = ("", *["debug"] * 8, *["info"] * 4, *["warning"] * 4, *["error"] * 4)
_BY_NUMBER += ("critical",) * 4
_BY_TEXT = {
    "trace": "debug", "debug": "debug", "info": "info", "notice": "info", "warn": "warning",
    "warning": "warning", "error": "error", "err": "error", "fatal": "critical",
    "critical": "critical", "crit": "critical", "alert": "critical", "emerg": "critical",
}  # fmt: skip


def _severity(number: int, text: str) -> str:
    if 0 < number < len(_BY_NUMBER):
        return _BY_NUMBER[number]
    # "WARN2" and friends: the band's name with a digit.
    return _BY_TEXT.get(text.strip().lower().rstrip("0123456789"), "info")


def _event(
    record: Any, context: ScopeContext, max_event_bytes: int, max_depth: int, now: datetime
) -> Event:
    encoded = record.SerializeToString()
    if len(encoded) > max_event_bytes:
        raise ValueError(f"max_event_bytes: log record larger than {max_event_bytes} bytes")
    data = attributes(record.attributes, max_depth)
    severity = _severity(record.severity_number, record.severity_text)
    name = record.event_name or data.get("event.name")
    event_type = (name_token(name) if isinstance(name, str) else "") or f"log.{severity}"
    title = description = ""
    body = record.body
    kind = body.WhichOneof("value")
    if kind == "string_value":
        text = body.string_value.replace("\x00", "\ufffd")
        description = text[: LIMITS.description_length]
        title = first_line(text)
    elif kind == "kvlist_value":
        data = {**any_value(body, max_depth), **data}
    elif kind is not None:
        data["body"] = any_value(body, max_depth)
    if record.span_id:
        data["span_id"] = record.span_id.hex()
    unix_nano = record.time_unix_nano or record.observed_time_unix_nano
    return Event.create(
        id=context.event_id(unix_nano, encoded),
        timestamp=timestamp(unix_nano) if unix_nano else now,
        system=context.system,
        event_type=event_type,
        severity=severity,
        title=title or event_type,
        description=description,
        data=data,
        correlation_id=record.trace_id.hex() if record.trace_id else None,
        metadata=context.metadata,
        now=now,
    )


def _to_events(
    request: ExportLogsServiceRequest, max_event_bytes: int, max_depth: int, now: datetime
) -> Mapped:
    mapped = Mapped([])
    for context, record in scoped_records(request, _NAMES, max_depth, mapped):
        try:
            mapped.events.append(_event(record, context, max_event_bytes, max_depth, now))
        except ValueError as exc:
            mapped.reject(context.system, str(exc))
    return mapped


def _fix_json_ids(payload: dict[str, Any]) -> None:
    for resource in children(payload, "resourceLogs", "resource_logs"):
        for scoped in children(resource, "scopeLogs", "scope_logs"):
            for record in children(scoped, "logRecords", "log_records"):
                hex_ids_to_base64(record, "traceId", "spanId", "trace_id", "span_id")


LOGS = Signal(
    path="/v1/logs",
    request_type=ExportLogsServiceRequest,
    response_type=ExportLogsServiceResponse,
    rejected_field="rejected_log_records",
    names=_NAMES,
    fix_json_ids=_fix_json_ids,
    to_events=_to_events,
)
