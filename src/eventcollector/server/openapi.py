"""The OpenAPI 3.1 document: schemas generated from msgspec types, paths listed here.

The types are in ``_openapi_types`` (those of the alerts in ``_openapi_alerts``).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector import __version__
from eventcollector.aggregation import INTERVALS, MAX_BUCKETS, MAX_TOP
from eventcollector.issue_activity import ACTIVITY_INTERVALS, MAX_ACTIVITY_ISSUES
from eventcollector.issues import ISSUE_ORDERS, ISSUE_STATUSES
from eventcollector.model import Severity
from eventcollector.query import ORDER_FIELDS
from eventcollector.server import _openapi_alerts
from eventcollector.server._openapi_types import NAME_PATTERN, NO_SPACE_OR_COMMA, NOT_BLANK, TYPES
from eventcollector.server.issues import MAX_PAGE
from eventcollector.server.settings import ServerSettings

__all__ = ["openapi_document", "routes"]

# Filters as the parser (query_params) takes them: what a schema allows, the server
# accepts, as for the wire types.
_SEVERITY_NAMES = [s.value for s in Severity]
_NAMES = {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN}}
_SEVERITIES = {"type": "array", "items": {"enum": _SEVERITY_NAMES}}
_TOKENS = {"type": "array", "items": {"type": "string", "pattern": NO_SPACE_OR_COMMA}}
_TIME = {"type": "string", "format": "date-time"}
_SPAN = {"type": "number", "minimum": 0}
_TEXT = {"type": "string", "pattern": NOT_BLANK}

_FILTERS: list[tuple[str, str, dict[str, Any]]] = [
    ("system", "One or more systems.", _NAMES),
    ("event_type", "One or more event types.", _NAMES),
    ("severity", "One or more severities.", _SEVERITIES),
    ("min_severity", "This severity or worse.", {"enum": _SEVERITY_NAMES}),
    ("tags", "Events with all of these tags.", _TOKENS),
    ("any_tags", "Events with at least one of these tags.", _TOKENS),
    ("since", "ISO 8601 lower bound (inclusive, naive = UTC).", _TIME),
    ("until", "ISO 8601 upper bound (exclusive).", _TIME),
    ("minutes", "The last N minutes (instead of since).", _SPAN),
    ("hours", "The last N hours (instead of since).", _SPAN),
    ("days", "The last N days (instead of since).", _SPAN),
    ("correlation_id", "One correlation id.", _TEXT),
    ("source_component", "One or more source components.", _TOKENS),
    ("search", "Every word must start a word of title or description.", _TEXT),
    ("min_duration_ms", "At least this many milliseconds.", {"type": "integer", "minimum": 0}),
    ("id", "One or more event ids.", _TOKENS),
    ("q", "A filter (docs/filters.md), ANDed with the other parameters.", _TEXT),
]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(
    name: str,
    description: str,
    schema: dict[str, Any],
    *,
    where: str = "query",
    required: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


def _filter_params() -> list[dict[str, Any]]:
    return [
        {**_param(name, description, schema), "explode": True}
        for name, description, schema in _FILTERS
    ]


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


def _issue_paths() -> dict[str, Any]:
    issue_id = _param("issue_id", "Issue id.", {"type": "integer"}, where="path")
    listing = [
        _param("status", "Only this status.", {"enum": list(ISSUE_STATUSES)}),
        _param("system", "Only issues seen in this system.", _TEXT),
        _param("seen_since", "Last seen at or after (ISO 8601).", _TIME),
        _param("order_by", "Newest first by.", {"enum": list(ISSUE_ORDERS)}),
        _param("limit", "Page size (default 50).", {"type": "integer", "maximum": MAX_PAGE}),
        _param("offset", "next_offset of the previous page.", {"type": "integer", "minimum": 0}),
    ]
    change = {
        "summary": "Change the status: resolve, ignore, reopen, or mute until a time (triage).",
        "parameters": [issue_id],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("IssueStatusChange")}},
        },
        "responses": {"200": _json(_ref("Issue")), **_errors(400, 401, 403, 404, 503)},
    }
    limit = _param("limit", "At most (default 100).", {"type": "integer", "maximum": MAX_PAGE})
    return {
        "/v1/issues": _get("Error issues, latest seen first.", _ref("IssuePage"), listing),
        "/v1/issues/{issue_id}": {
            **_get("One issue.", _ref("Issue"), [issue_id], 404),
            "post": change,
            "patch": change,
        },
        "/v1/issue-activity": _get(
            "Each issue's event count per hour or day (sparklines).",
            _ref("IssueActivity"),
            [
                _param(
                    "id",
                    f"Issue ids, separated by commas (1 to {MAX_ACTIVITY_ISSUES}).",
                    {"type": "string", "pattern": "^[0-9]{1,18}(,[0-9]{1,18}){0,199}$"},
                    required=True,
                ),
                _param("since", "The range's start (ISO 8601), required.", _TIME, required=True),
                _param("until", "The range's end, exclusive (default now).", _TIME),
                _param(
                    "interval", "Bucket width (default 1h).", {"enum": list(ACTIVITY_INTERVALS)}
                ),
            ],
        ),
        "/v1/issues/{issue_id}/events": _get(
            "The issue's events, newest first.", _ref("IssueEvents"), [issue_id, limit], 404
        ),
    }


_LIST = {"type": "array", "items": {"type": "string"}}
# Facets: 1 to 10 names of the countable fields (aggregation.FACET_FIELDS and aliases) or
# data/metadata paths; a comma inside one value would split it into more.
_FIELD_NAMES = {
    "type": "array",
    "items": {
        "type": "string",
        "pattern": "^(system|event_type|type|severity|level|source_component|component"
        "|correlation_id|tag|tags|(data|metadata)(\\.[A-Za-z0-9_]+)+)$",
    },
    "minItems": 1,
    "maxItems": 10,
}
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
        TYPES, ref_template="#/components/schemas/{name}"
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
        required=True,
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
                    "400": _json(
                        {"anyOf": [_ref("IngestRejected"), _ref("Error")]},
                        "Every event rejected (IngestRejected), or a bad body (Error)",
                    ),
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
                {
                    **_param(
                        "field",
                        "Field names (repeat or commas); tag counts each tag of an event.",
                        _FIELD_NAMES,
                        required=True,
                    ),
                    "explode": True,
                },
                _param("top", "Values per field (default 10).", _TOP),
                *filters,
            ],
        ),
        "/v1/events/{event_id}": _get(
            "One event.", _ref("Event"), [_param("event_id", "Event id.", {}, where="path")], 404
        ),
        "/v1/traces/{correlation_id}": _get(
            "All events of a correlation id, oldest first.",
            _ref("Trace"),
            [_param("correlation_id", "Correlation id.", {}, where="path")],
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
        **_issue_paths(),
        **_openapi_alerts.paths(_ref, _json, _errors, _param),
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
                    **_errors(400, 401, 403, 503),  # 503: --max-streams are open
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
                    # 426: a plain GET without the WebSocket upgrade headers; 503: max_streams.
                    **_errors(400, 401, 403, 426, 503),
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
    paths.update(_otlp_paths())
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


def _otlp_paths() -> dict[str, Any]:
    """OTLP/HTTP exports; the messages are the OpenTelemetry protocol's, not ours."""
    status = {
        "type": "object",
        "description": "google.rpc.Status (protobuf for a protobuf request), plus error.",
        "properties": {
            "code": {"type": "integer"},
            "message": {"type": "string"},
            "error": {"type": "string"},
        },
        "required": ["code", "message", "error"],
    }
    paths = {}
    for path, signal, rejected in (
        ("/v1/logs", "Logs", "rejectedLogRecords"),
        ("/v1/traces", "Trace", "rejectedSpans"),
    ):
        partial = {
            "type": "object",
            "properties": {
                rejected: {"type": ["string", "integer"]},
                "errorMessage": {"type": "string"},
            },
        }
        answer = {"type": "object", "properties": {"partialSuccess": partial}}
        paths[path] = {
            "post": {
                "summary": f"OTLP/HTTP Export{signal}ServiceRequest (see docs/ingest.md).",
                "description": "application/x-protobuf or OTLP JSON (hex ids), gzip accepted; "
                "answered after the commit.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-protobuf": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": _json(answer, f"Export{signal}ServiceResponse"),
                    # A body without a content type is read as protobuf, so is its answer.
                    **{
                        str(code): {
                            "description": "Status",
                            "content": {
                                "application/json": {"schema": status},
                                "application/x-protobuf": {
                                    "schema": {"type": "string", "format": "binary"}
                                },
                            },
                        }
                        for code in (400, 401, 403, 413, 415, 429, 503)
                    },
                },
            }
        }
    return paths


def routes(settings: ServerSettings) -> list[Route]:
    document = orjson.dumps(openapi_document(settings))

    async def serve(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [Route("/openapi.json", serve, methods=["GET"])]
