"""The OpenAPI 3.1 document: schemas generated from msgspec types, paths listed here.

The types below describe the wire format only; the server validates with the
library's own model (``Event.from_dict``) and never decodes into them.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector import __version__
from eventcollector.aggregation import INTERVALS, MAX_BUCKETS, MAX_TOP
from eventcollector.query import ORDER_FIELDS
from eventcollector.server.settings import ServerSettings

__all__ = ["openapi_document", "routes"]

_SEVERITY = Literal["debug", "info", "warning", "error", "critical"]


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    system: str
    event_type: str
    title: str
    id: str | None = None
    timestamp: str | None = None
    severity: _SEVERITY = "info"
    description: str = ""
    data: dict[str, Any] = {}
    tags: list[str] = []
    correlation_id: str | None = None
    source_component: str | None = None
    duration_ms: int | None = None
    metadata: dict[str, Any] = {}


class Event(msgspec.Struct):
    id: str
    timestamp: str
    system: str
    event_type: str
    severity: _SEVERITY
    title: str
    description: str
    data: dict[str, Any]
    tags: list[str]
    correlation_id: str | None
    source_component: str | None
    duration_ms: int | None
    metadata: dict[str, Any]


class Rejection(msgspec.Struct):
    index: int
    error: str


class IngestResult(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[Rejection]
    ids: list[str | None]


class EventPage(msgspec.Struct):
    events: list[Event]
    next_cursor: str | None


class Count(msgspec.Struct):
    count: int


class GroupCounts(msgspec.Struct):
    field: str
    counts: dict[str, int]


class DurationStats(msgspec.Struct):
    count: int
    min: int | None
    max: int | None
    avg: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class Trace(msgspec.Struct):
    correlation_id: str
    events: list[Event]
    span_ms: float | None


class Statistics(msgspec.Struct):
    total_events: int
    by_system: dict[str, int]
    by_severity: dict[str, int]
    by_event_type: dict[str, int]
    last_hour_count: int


class CleanupRequest(msgspec.Struct, forbid_unknown_fields=True):
    retention_days: float


class Deleted(msgspec.Struct):
    deleted: int


class Error(msgspec.Struct):
    error: str


class AggregateRow(msgspec.Struct, omit_defaults=True):
    key: dict[str, str | int | float | bool | None]
    values: dict[str, int | float | None]
    #: Present with an interval: the bucket's start.
    bucket: str | None = None
    #: The keys whose value is the group of everything outside the top N (value null).
    other: list[str] = []


class Aggregate(msgspec.Struct):
    by: list[str]
    interval: str | None
    metrics: list[str]
    rows: list[AggregateRow]


class FacetValue(msgspec.Struct):
    value: str | int | float | bool | None
    count: int


class Facet(msgspec.Struct):
    field: str
    values: list[FacetValue]
    other: int


class Facets(msgspec.Struct):
    facets: list[Facet]


class StreamEvent(msgspec.Struct, tag="event", tag_field="type"):
    event: Event


class StreamMissed(msgspec.Struct, tag="missed", tag_field="type"):
    count: int


_TYPES: tuple[Any, ...] = (
    EventIn,
    Event,
    IngestResult,
    EventPage,
    Count,
    GroupCounts,
    DurationStats,
    Trace,
    Statistics,
    CleanupRequest,
    Deleted,
    Error,
    Aggregate,
    Facets,
    StreamEvent | StreamMissed,
)

_FILTERS: list[tuple[str, str, bool]] = [
    # name, description, list-valued
    ("system", "One or more systems.", True),
    ("event_type", "One or more event types.", True),
    ("severity", "One or more severities.", True),
    ("min_severity", "This severity or worse.", False),
    ("tags", "Events with all of these tags.", True),
    ("any_tags", "Events with at least one of these tags.", True),
    ("since", "ISO 8601 lower bound (inclusive, naive = UTC).", False),
    ("until", "ISO 8601 upper bound (exclusive).", False),
    ("minutes", "The last N minutes (instead of since).", False),
    ("hours", "The last N hours (instead of since).", False),
    ("days", "The last N days (instead of since).", False),
    ("correlation_id", "One correlation id.", False),
    ("source_component", "One or more source components.", True),
    ("search", "Every word must start a word of title or description.", False),
    ("min_duration_ms", "At least this many milliseconds.", False),
    ("id", "One or more event ids.", True),
    ("q", "A filter (docs/filters.md), ANDed with the other parameters.", False),
]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> Any:
    where = "path" if required else "query"
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
    }


def _filter_params() -> list[dict[str, Any]]:
    out = []
    for name, description, many in _FILTERS:
        schema: dict[str, Any] = {"type": "string"}
        if many:
            schema = {"type": "array", "items": {"type": "string"}}
        out.append({**_param(name, description, schema), "explode": True})
    return out


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ref("Error"), "Error") for code in codes}


def _get(summary: str, ok: dict[str, Any], params: list[Any], *codes: int) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": _json(ok), **_errors(400, 401, 403, 503, *codes)},
        }
    }


_LIST = {"type": "array", "items": {"type": "string"}}
_TOP = {"type": "integer", "minimum": 1, "maximum": MAX_TOP}


def _aggregate_params() -> list[dict[str, Any]]:
    return [
        {
            **_param("by", "Up to three keys: fixed fields or data./metadata. paths.", _LIST),
            "explode": True,
        },
        _param("interval", "Time bucket.", {"enum": [*INTERVALS, "auto"]}),
        {
            **_param(
                "metric", "count, count_distinct:FIELD, min|max|avg|sum|p50|p95|p99:FIELD.", _LIST
            ),
            "explode": True,
        },
        _param("top", "Values kept per key; the rest form one 'other' group (default 10).", _TOP),
        _param(
            "buckets",
            "For interval=auto: about this many buckets.",
            {"type": "integer", "minimum": 1, "maximum": MAX_BUCKETS},
        ),
    ]


def openapi_document(settings: ServerSettings) -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        _TYPES, ref_template="#/components/schemas/{name}"
    )
    filters = _filter_params()
    paging = [
        _param("order_by", "Sort field.", {"enum": sorted(ORDER_FIELDS)}),
        _param("ascending", "Oldest/smallest first.", {"type": "boolean"}),
        _param(
            "limit",
            f"Page size (default {settings.default_limit}).",
            {"type": "integer", "minimum": 0, "maximum": settings.max_limit},
        ),
        _param("cursor", "next_cursor of the previous page.", {"type": "string"}),
    ]
    event_list = {"type": "array", "items": _ref("EventIn")}
    ingest_body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [_ref("EventIn"), event_list]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
    hours = [_param("hours", "Window in hours.", {"type": "number", "exclusiveMinimum": 0})]
    days = [_param("days", "Window in days.", {"type": "number", "exclusiveMinimum": 0})]
    group_field = _param(
        "field",
        "What to count by.",
        {"enum": ["system", "event_type", "severity", "source_component", "hour"]},
    )
    stream_doc = "Live events; see docs/http-api.md. Also accepts access_token."
    analysis = {"type": "object", "additionalProperties": True}
    paths: dict[str, Any] = {
        "/v1/events": {
            "post": {
                "summary": "Ingest one event, a JSON array or NDJSON (gzip accepted).",
                "requestBody": ingest_body,
                "responses": {
                    "200": _json(_ref("IngestResult"), "Committed"),
                    "400": _json(_ref("IngestResult"), "Every event rejected, or bad JSON"),
                    **_errors(401, 403, 413, 415, 429, 503),
                },
            },
            **_get("List events, newest first.", _ref("EventPage"), filters + paging),
        },
        "/v1/events/count": _get("Count matching events.", _ref("Count"), filters),
        "/v1/events/group": _get(
            "Count by one field.", _ref("GroupCounts"), [group_field, *filters]
        ),
        "/v1/events/duration-stats": _get(
            "duration_ms statistics.", _ref("DurationStats"), filters
        ),
        "/v1/aggregate": _get(
            "Group by up to three keys and a time bucket; metrics per group.",
            _ref("Aggregate"),
            [*_aggregate_params(), *filters],
        ),
        "/v1/facets": _get(
            "The top values of several fields with their counts.",
            _ref("Facets"),
            [
                {**_param("field", "Field names (repeat or commas).", _LIST), "explode": True},
                _param("top", "Values per field (default 10).", _TOP),
                *filters,
            ],
        ),
        "/v1/events/{event_id}": _get(
            "One event.", _ref("Event"), [_param("event_id", "Event id.", {}, required=True)], 404
        ),
        "/v1/traces/{correlation_id}": _get(
            "All events of a correlation id, oldest first.",
            _ref("Trace"),
            [_param("correlation_id", "Correlation id.", {}, required=True)],
        ),
        "/v1/stats": _get("Totals.", _ref("Statistics"), []),
        "/v1/analysis/errors": _get("Error analysis.", analysis, hours),
        "/v1/analysis/patterns": _get("Patterns and anomalies.", analysis, days),
        "/v1/analysis/report": _get("Report.", analysis, hours),
        "/v1/admin/cleanup": {
            "post": {
                "summary": "Delete events older than retention_days (admin scope).",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CleanupRequest")}},
                },
                "responses": {"200": _json(_ref("Deleted")), **_errors(400, 401, 403, 503)},
            }
        },
        "/v1/stream": {
            "get": {
                "summary": "Server-Sent Events: event frames and missed frames.",
                "description": stream_doc,
                "parameters": filters,
                "responses": {
                    "200": {
                        "description": "event: event / event: missed",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/ws": {
            "get": {
                "summary": "WebSocket; messages are StreamEvent | StreamMissed.",
                "description": stream_doc,
                "parameters": filters,
                "responses": {
                    "101": {"description": "Switching protocols"},
                    **_errors(400, 401, 403),
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness and storage check.",
                "responses": {"200": _json(analysis), "503": _json(analysis, "Unhealthy")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics.",
                "responses": {
                    "200": {"description": "OK", "content": {"text/plain": {"schema": {}}}}
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "eventcollector", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }


def routes(settings: ServerSettings) -> list[Route]:
    document = orjson.dumps(openapi_document(settings))

    async def serve(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [Route("/openapi.json", serve, methods=["GET"])]
