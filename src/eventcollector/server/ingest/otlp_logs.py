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
    ScopeContext,
    Signal,
    any_value,
    attributes,
    hex_ids_to_base64,
    json_records,
    nested,
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


def _events(
    record: Any, context: ScopeContext, max_event_bytes: int, max_depth: int, now: datetime
) -> list[Event]:
    encoded = record.SerializeToString()
    if len(encoded) > max_event_bytes:
        raise ValueError(f"max_event_bytes: log record larger than {max_event_bytes} bytes")
    attrs = attributes(record.attributes, max_depth)
    severity = _severity(record.severity_number, record.severity_text)
    name = record.event_name or attrs.get("event.name")
    event_type = (name_token(name) if isinstance(name, str) else "") or f"log.{severity}"
    title = description = ""
    body = record.body
    kind = body.WhichOneof("value")
    under: dict[str, Any] | None = None
    fixed: dict[str, Any] = {}
    if kind == "string_value":
        text = body.string_value.replace("\x00", "\ufffd")
        description = text[: LIMITS.description_length]
        title = first_line(text)
    elif kind == "kvlist_value":
        under = any_value(body, max_depth)
    elif kind is not None:
        fixed["body"] = any_value(body, max_depth)
    if record.span_id:
        fixed["span_id"] = record.span_id.hex()
    data = nested(attrs, max_depth, under, fixed)
    unix_nano = record.time_unix_nano or record.observed_time_unix_nano
    event = Event.create(
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
    return [event]


def _fix_json_ids(payload: dict[str, Any]) -> None:
    for record in json_records(payload, _NAMES):
        hex_ids_to_base64(record, "traceId", "spanId")


LOGS = Signal(
    path="/v1/logs",
    request_type=ExportLogsServiceRequest,
    response_type=ExportLogsServiceResponse,
    rejected_field="rejected_log_records",
    names=_NAMES,
    fix_json_ids=_fix_json_ids,
    events_of=_events,
)
