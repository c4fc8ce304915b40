"""Issue endpoints (docs/issues.md): list and show need ``read``; changing a status
needs ``triage`` (or ``admin``).

- ``GET /v1/issues?status=&system=&order_by=&limit=&offset=``: a page, with
  ``next_offset`` (None on the last page);
- ``GET /v1/issues/{id}``; ``GET /v1/issues/{id}/events?limit=``;
- ``GET /v1/issue-activity?id=&since=&until=&interval=``: counts per hour or day of
  several issues (the UI's sparklines);
- ``POST /v1/issues/{id}`` with ``{"status": ..., "until": ...}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector.issues import IssueQuery
from eventcollector.model import parse_timestamp
from eventcollector.server.errors import ApiError, json_response
from eventcollector.server.limits import request_json, single_params
from eventcollector.server.state import ServerState

__all__ = ["MAX_PAGE", "routes"]

#: The largest page of issues (and of an issue's events) one request may ask for.
MAX_PAGE = 1_000

_BODY_BYTES = 4_096
_LIST_PARAMS = frozenset({"status", "system", "seen_since", "order_by", "limit", "offset"})
_ACTIVITY_PARAMS = frozenset({"id", "since", "until", "interval"})


def _int(picked: dict[str, str], name: str, default: int) -> int:
    text = picked.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{name}: expected an integer, got {text!r}") from None


def _issue_id(request: Request) -> int:
    text = request.path_params["issue_id"]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, f"id: no issue {text!r}")
    return int(text)


def _id_param(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 18:
        raise ValueError(f"id: expected issue ids (integers), got {text!r}")
    return int(text)


class _Issues:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.collector = state.collector

    async def list_issues(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        picked = single_params(request, _LIST_PARAMS)
        try:
            since = picked.get("seen_since")
            query = IssueQuery(
                status=picked.get("status"),
                system=picked.get("system"),
                seen_since=None if since is None else parse_timestamp(since, "seen_since"),
                order_by=picked.get("order_by", "last_seen"),
                limit=_int(picked, "limit", 50),
                offset=_int(picked, "offset", 0),
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        if query.limit > MAX_PAGE:
            raise ApiError(400, f"limit: expected an integer from 0 to {MAX_PAGE}")
        # One more than asked tells whether another page exists.
        found = await self.collector.issues(
            status=query.status,
            system=query.system,
            seen_since=query.seen_since,
            order_by=query.order_by,
            limit=query.limit + 1,
            offset=query.offset,
        )
        more = len(found) > query.limit
        return json_response(
            {
                "issues": [i.to_dict() for i in found[: query.limit]],
                "next_offset": query.offset + query.limit if more else None,
            }
        )

    async def get_issue(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        single_params(request, frozenset())
        issue_id = _issue_id(request)
        issue = await self.collector.get_issue(issue_id)
        if issue is None:
            raise ApiError(404, f"id: no issue {issue_id}")
        return json_response(issue.to_dict())

    async def issue_events(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        picked = single_params(request, frozenset({"limit"}))
        issue_id = _issue_id(request)
        limit = _int(picked, "limit", 100)
        if not 1 <= limit <= MAX_PAGE:
            raise ApiError(400, f"limit: expected an integer from 1 to {MAX_PAGE}")
        if await self.collector.get_issue(issue_id) is None:
            raise ApiError(404, f"id: no issue {issue_id}")
        events = await self.collector.issue_events(issue_id, limit)
        return json_response({"issue_id": issue_id, "events": [e.to_dict() for e in events]})

    async def activity(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        picked = single_params(request, _ACTIVITY_PARAMS)
        try:
            ids = [_id_param(v) for v in picked.get("id", "").split(",") if v.strip()]
            if "since" not in picked:
                raise ValueError("since: required (ISO 8601)")
            until = picked.get("until")
            found = await self.collector.issue_activity(
                ids,
                since=parse_timestamp(picked["since"], "since"),
                until=None if until is None else parse_timestamp(until, "until"),
                interval=picked.get("interval", "1h"),
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(found.to_dict())

    async def set_status(self, request: Request) -> Response:
        self.state.authorize(request.headers, "triage")
        single_params(request, frozenset())
        issue_id = _issue_id(request)
        payload = await self._body(request)
        until = payload.get("until")
        try:
            when = None if until is None else parse_timestamp(until, "until")
            issue = await self.collector.set_issue_status(issue_id, payload["status"], until=when)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        if issue is None:
            raise ApiError(404, f"id: no issue {issue_id}")
        return json_response(issue.to_dict())

    async def _body(self, request: Request) -> dict[str, Any]:
        payload = await request_json(request, _BODY_BYTES)
        if not isinstance(payload, dict) or "status" not in payload:
            raise ApiError(400, 'body: expected {"status": ..., "until": <timestamp, for muted>}')
        unknown = set(payload) - {"status", "until"}
        if unknown:
            raise ApiError(400, f"{sorted(unknown)[0]}: unknown field")
        if not isinstance(payload["status"], str):
            raise ApiError(400, "status: expected a string")
        if payload.get("until") is not None and not isinstance(payload["until"], str):
            raise ApiError(400, "until: expected an ISO 8601 timestamp")
        return payload


def routes(state: ServerState) -> list[Route]:
    r = _Issues(state)
    return [
        Route("/v1/issues", r.list_issues, methods=["GET"]),
        Route("/v1/issue-activity", r.activity, methods=["GET"]),
        Route("/v1/issues/{issue_id}", r.get_issue, methods=["GET"]),
        Route("/v1/issues/{issue_id}", r.set_status, methods=["POST", "PATCH"]),
        Route("/v1/issues/{issue_id}/events", r.issue_events, methods=["GET"]),
    ]
