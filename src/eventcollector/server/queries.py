"""Read endpoints: events with cursor paging, count, group, durations, traces,
statistics, analysis, and the admin cleanup.

Paging by timestamp is keyset paging without a core change: the cursor holds the
timestamp of the last event returned and how many events with exactly that
timestamp were returned, and the next page narrows ``until`` (or ``since``) to it
and skips only those ties. Pages therefore stay stable while new events arrive.
Other orders have no range filter in ``Query``, so their cursor is an offset.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector.filters import parse_filter
from eventcollector.model import Event, format_timestamp, parse_timestamp
from eventcollector.query import GROUP_FIELDS, Query
from eventcollector.query_params import FILTER_PARAMS, PAGING_PARAMS, query_from_params
from eventcollector.server.errors import ApiError, json_response
from eventcollector.server.limits import request_json
from eventcollector.server.state import ServerState
from eventcollector.storage.base import MAX_RETENTION_DAYS

__all__ = ["routes"]

_MICROSECOND = timedelta(microseconds=1)
_MAX_HOURS = 24 * 366 * 10
_ADMIN_BODY_BYTES = 4_096


def _params(request: Request, *extra: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Multi-valued query parameters, with the single-valued ``extra`` ones split off."""
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    picked: dict[str, str] = {}
    for name in extra:
        values = params.pop(name, [])
        if len(values) > 1:
            raise ApiError(400, f"{name}: give at most one value")
        if values:
            picked[name] = values[0]
    return params, picked


def _filters(params: dict[str, list[str]], *, paging: bool = False, state: ServerState) -> Query:
    s = state.settings
    try:
        return query_from_params(
            params,
            allowed=FILTER_PARAMS | PAGING_PARAMS if paging else FILTER_PARAMS,
            default_limit=s.default_limit if paging else None,
            max_limit=s.max_limit if paging else None,
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).rstrip(b"=").decode()


def _decode_cursor(text: str, query: Query) -> dict[str, Any]:
    try:
        position = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(position, dict) or not isinstance(position.get("o"), str):
            raise ValueError
    except (ValueError, binascii.Error):
        raise ApiError(400, "cursor: not a cursor this server made") from None
    if position["o"] != query.order_by or position.get("a") != query.ascending:
        raise ApiError(400, "cursor: made for another order_by/ascending; resend the same query")
    return position


def _page_query(query: Query, cursor: dict[str, Any] | None) -> Query:
    """``query`` narrowed to start after the cursor's position."""
    if cursor is None:
        return query
    if query.offset:
        raise ApiError(400, "offset: cannot be combined with cursor")
    try:
        if query.order_by != "timestamp":
            return query.with_(offset=int(cursor["k"]))
        at = parse_timestamp(cursor["t"], "cursor")
        ties = int(cursor["n"])
        if query.ascending:
            if query.since is None or at >= query.since:
                return query.with_(since=at, offset=ties)
            return query
        bound = at + _MICROSECOND  # until is exclusive; keep the ties at ``at``
        if query.until is None or bound <= query.until:
            return query.with_(until=bound, offset=ties)
        return query
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "cursor: not a cursor this server made") from None


def _next_cursor(
    query: Query, page_query: Query, cursor: dict[str, Any] | None, events: list[Event]
) -> str:
    position: dict[str, Any] = {"o": query.order_by, "a": query.ascending}
    if query.order_by != "timestamp":
        position["k"] = page_query.offset + len(events)
        return _encode_cursor(position)
    last = events[-1].timestamp
    ties = sum(1 for e in events if e.timestamp == last)
    stamp = format_timestamp(last)
    if cursor is not None and cursor.get("t") == stamp:
        ties += page_query.offset  # the earlier pages' events at this same instant
    position.update(t=stamp, n=ties)
    return _encode_cursor(position)


def _number(picked: dict[str, str], name: str, default: float, maximum: float) -> float:
    text = picked.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"{name}: expected a number, got {text!r}") from None
    if not 0 < value <= maximum:
        raise ApiError(400, f"{name}: must be more than 0 and at most {maximum:g}")
    return value


def _no_params(request: Request) -> None:
    if request.query_params:
        name = next(iter(request.query_params.keys()))
        raise ApiError(400, f"{name}: unknown query parameter")


class _Reads:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.collector = state.collector

    def _read(self, request: Request) -> None:
        self.state.authorize(request.headers, "read")

    async def list_events(self, request: Request) -> Response:
        self._read(request)
        params, picked = _params(request, "cursor")
        query = _filters(params, paging=True, state=self.state)
        cursor = _decode_cursor(picked["cursor"], query) if "cursor" in picked else None
        page_query = _page_query(query, cursor)
        limit = query.limit or 0
        if limit == 0:
            return json_response({"events": [], "next_cursor": None})
        # One more than asked tells whether another page exists.
        found = await self.collector.query(page_query.with_(limit=limit + 1))
        events = found[:limit]
        more = len(found) > limit
        next_cursor = _next_cursor(query, page_query, cursor, events) if more else None
        return json_response({"events": [e.to_dict() for e in events], "next_cursor": next_cursor})

    async def count(self, request: Request) -> Response:
        self._read(request)
        params, _ = _params(request)
        query = _filters(params, state=self.state)
        return json_response({"count": await self.collector.count(query)})

    async def get_event(self, request: Request) -> Response:
        self._read(request)
        _no_params(request)
        event_id = request.path_params["event_id"]
        event = await self.collector.get_event(event_id)
        if event is None:
            raise ApiError(404, f"id: no event {event_id!r}")
        return json_response(event.to_dict())

    async def group(self, request: Request) -> Response:
        self._read(request)
        params, picked = _params(request, "field")
        field = picked.get("field")
        if field not in GROUP_FIELDS:
            allowed = ", ".join(sorted(GROUP_FIELDS))
            raise ApiError(400, f"field: required, one of {allowed}")
        query = _filters(params, state=self.state)
        counts = await self.collector.group_count(query, field)  # type: ignore[arg-type]
        return json_response({"field": field, "counts": counts})

    async def duration_stats(self, request: Request) -> Response:
        self._read(request)
        params, _ = _params(request)
        query = _filters(params, state=self.state)
        return json_response((await self.collector.duration_stats(query)).to_dict())

    async def trace(self, request: Request) -> Response:
        self._read(request)
        _no_params(request)
        correlation_id = request.path_params["correlation_id"]
        events = await self.state.analyzer.trace_correlation(correlation_id)
        span = (
            (events[-1].timestamp - events[0].timestamp) / timedelta(milliseconds=1)
            if events
            else None
        )
        return json_response(
            {
                "correlation_id": correlation_id,
                "events": [e.to_dict() for e in events],
                "span_ms": span,
            }
        )

    async def stats(self, request: Request) -> Response:
        self._read(request)
        _no_params(request)
        return json_response(await self.collector.get_statistics())

    async def _analysis(self, request: Request, name: str, default: float) -> float:
        self._read(request)
        params, picked = _params(request, name)
        if params:
            raise ApiError(400, f"{next(iter(params))}: unknown query parameter")
        limit = _MAX_HOURS if name == "hours" else _MAX_HOURS / 24
        return _number(picked, name, default, limit)

    async def errors(self, request: Request) -> Response:
        hours = await self._analysis(request, "hours", 24)
        return json_response(await self.state.analyzer.analyze_errors(hours))

    async def patterns(self, request: Request) -> Response:
        days = await self._analysis(request, "days", 7)
        return json_response(await self.state.analyzer.detect_patterns(days))

    async def report(self, request: Request) -> Response:
        hours = await self._analysis(request, "hours", 24)
        return json_response(await self.state.analyzer.generate_report(hours))

    async def cleanup(self, request: Request) -> Response:
        self.state.authorize(request.headers, "admin")
        payload = await request_json(request, _ADMIN_BODY_BYTES)
        if not isinstance(payload, dict) or not {"retention_days"} <= set(payload) <= {
            "retention_days",
            "q",
        }:
            raise ApiError(400, 'body: expected {"retention_days": <number>, "q": <filter>?}')
        days = payload["retention_days"]
        if isinstance(days, bool) or not isinstance(days, int | float) or not days >= 0:
            raise ApiError(400, "retention_days: expected a non-negative number")
        if days > MAX_RETENTION_DAYS:  # the cutoff would fall before year 1: OverflowError
            raise ApiError(400, f"retention_days: at most {MAX_RETENTION_DAYS}")
        where = None
        if "q" in payload:
            if not isinstance(payload["q"], str):
                raise ApiError(400, "q: expected a filter (a string)")
            try:
                where = parse_filter(payload["q"])
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        deleted = await self.collector.cleanup_old_events(days, where=where)
        return json_response({"deleted": deleted})


def routes(state: ServerState) -> list[Route]:
    r = _Reads(state)
    return [
        Route("/v1/events", r.list_events, methods=["GET"]),
        Route("/v1/events/count", r.count, methods=["GET"]),
        Route("/v1/events/group", r.group, methods=["GET"]),
        Route("/v1/events/duration-stats", r.duration_stats, methods=["GET"]),
        Route("/v1/events/{event_id}", r.get_event, methods=["GET"]),
        Route("/v1/traces/{correlation_id}", r.trace, methods=["GET"]),
        Route("/v1/stats", r.stats, methods=["GET"]),
        Route("/v1/analysis/errors", r.errors, methods=["GET"]),
        Route("/v1/analysis/patterns", r.patterns, methods=["GET"]),
        Route("/v1/analysis/report", r.report, methods=["GET"]),
        Route("/v1/admin/cleanup", r.cleanup, methods=["POST"]),
    ]
