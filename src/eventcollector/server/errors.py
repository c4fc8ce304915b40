"""JSON errors: one exception type for every refusal, and the app's handlers.

Every error body is ``{"error": "<field or limit>: <reason>", ...}`` so a client
can tell which parameter or limit it hit; nothing a client sends becomes a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["ApiError", "json_response"]

log = logging.getLogger("eventcollector.server")


class ApiError(Exception):
    """A refusal with its status, message and optional headers / extra members."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> Response:
        return json_response({"error": self.message, **self.extra}, self.status, self.headers)


def limit_error(status: int, limit: str, maximum: int | float, what: str) -> ApiError:
    """An error naming the limit it enforces (``max_body_bytes: ... larger than N``)."""
    return ApiError(status, f"{limit}: {what} {maximum}", limit=limit, max=maximum)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_error_handler(request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405 (unknown path, wrong method), as JSON like the rest.
    assert isinstance(exc, HTTPException)
    what = {404: "path: not found", 405: f"method: {request.method} not allowed"}
    message = what.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return json_response({"error": message}, exc.status_code, headers)


def _allowed_methods(request: Request) -> str:
    # Starlette names only the first route that matched the path; a path served by
    # two routes (GET and POST /v1/events) allows the methods of both.
    path = request.url.path
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.fullmatch(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return json_response({"error": "internal: unexpected server error"}, 500)
