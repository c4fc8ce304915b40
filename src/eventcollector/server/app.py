"""``create_app(collector, settings)``: the Starlette application, built from arguments.

The collector is started by the app's lifespan (on the server's event loop) and
stopped when the server shuts down, which waits until every accepted event is
committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from eventcollector.collector import EventCollector
from eventcollector.server import (
    aggregates,
    alerts,
    ingest,
    issues,
    openapi,
    queries,
    streams,
    ui,
)
from eventcollector.server.auth import KeyStore
from eventcollector.server.crosssite import CrossSiteGuard
from eventcollector.server.errors import (
    ApiError,
    api_error_handler,
    http_error_handler,
    internal_error_handler,
    json_response,
)
from eventcollector.server.settings import ServerSettings
from eventcollector.server.state import ServerState
from eventcollector.storage import QueryTimeout, StorageError

__all__ = ["Service", "create_app"]


class Service(Protocol):
    """A listener beside HTTP (syslog), started and stopped with the app."""

    async def start(self, state: ServerState) -> None: ...

    async def stop(self) -> None: ...


class _OtlpPort:
    """Requests arriving on ``port`` reach only the OTLP endpoints (``--otlp-port``)."""

    def __init__(self, app: ASGIApp, port: int, paths: frozenset[str]) -> None:
        self.app = app
        self.port = port
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if (
            scope["type"] != "lifespan"
            and server is not None
            and server[1] == self.port
            and scope["path"] not in self.paths
        ):
            await json_response({"error": "path: not found on the OTLP port"}, 404)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def _health(state: ServerState) -> Route:
    async def health(request: Request) -> Response:
        report = await state.collector.health_check()
        report.update((name, section()) for name, section in state.reports.items())
        return json_response(report, 200 if report["status"] == "healthy" else 503)

    return Route("/health", health, methods=["GET"])


async def _storage_error(request: Request, exc: Exception) -> Response:
    # The store is down or full: retryable, and never a false acknowledgement.
    if isinstance(exc, QueryTimeout):  # a read past the statement time budget
        body = {"error": str(exc), "limit": "query_timeout", "max": exc.budget}
        return json_response(body, 503, {"Retry-After": "1"})
    return json_response({"error": f"storage: {exc}"}, 503, {"Retry-After": "1"})


def create_app(
    collector: EventCollector,
    settings: ServerSettings | None = None,
    *,
    keys: KeyStore | None = None,
    otlp_port: int | None = None,
    services: Sequence[Service] = (),
) -> Starlette:
    """The HTTP API over ``collector``; ``keys`` None means no authentication.

    ``otlp_port``: a second listening port that serves only the OTLP endpoints;
    ``services`` start after the collector and stop before it (so it drains them).
    """
    settings = settings or ServerSettings()
    state = ServerState(collector, settings, keys)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await collector.start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                for service in services:
                    await service.start(state)
                    stack.push_async_callback(service.stop)
                yield
        finally:
            await collector.stop()

    route_list: list[BaseRoute] = [
        *ingest.routes(state),
        *queries.routes(state),
        *issues.routes(state),
        *alerts.routes(state),
        *aggregates.routes(state),
        *streams.routes(state),
        _health(state),
        Route("/metrics", state.metrics.endpoint, methods=["GET"]),
        *openapi.routes(settings),
        *ui.routes(),
    ]
    app = Starlette(
        routes=route_list,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            StorageError: _storage_error,
            Exception: internal_error_handler,
        },
    )
    app.add_middleware(CrossSiteGuard, allowed=settings.allow_origins)
    if otlp_port is not None:
        app.add_middleware(_OtlpPort, port=otlp_port, paths=ingest.OTLP_PATHS)
    app.state.server = state
    return app
