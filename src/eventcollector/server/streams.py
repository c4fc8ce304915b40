"""Live streams: Server-Sent Events (``/v1/stream``) and WebSocket (``/v1/ws``).

Each connection reads its own ``JsonStream`` from the collector, bounded in events
(``stream_queue``) and bytes (``stream_max_bytes``), so the ingest path only ever
enqueues: a consumer that falls behind loses events (and is told how many with a
``missed`` message), and one that accepts nothing for ``stream_send_timeout``
seconds is disconnected. At most ``max_streams`` are open at once (503 beyond). A
watcher task closes the stream when the caller's key is revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from eventcollector._subscribers import JsonStream, Missed
from eventcollector.query import Query
from eventcollector.query_params import FILTER_PARAMS, query_from_params
from eventcollector.server.auth import Principal
from eventcollector.server.crosssite import own_origin
from eventcollector.server.errors import ApiError
from eventcollector.server.state import ServerState

__all__ = ["routes"]

log = logging.getLogger("eventcollector.server")

_POLICY_VIOLATION = 1008
_GOING_AWAY = 1001
_TRY_AGAIN_LATER = 1013


def _missed_json(count: int) -> bytes:
    return orjson.dumps({"count": count})


class _CutOffTolerantResponse(EventSourceResponse):
    """An SSE response whose slow-client cut-off is a normal end, not a server error."""

    cut_off = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except* SendTimeoutError:
            self.cut_off = True
            log.info("SSE client accepted nothing for %ss: disconnected", self.send_timeout)


class _Streams:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.live: set[JsonStream] = set()

    def _admit(self, conn: HTTPConnection) -> tuple[Principal, Query]:
        """Auth, Origin and filters of a stream request, or ``ApiError``."""
        params: dict[str, list[str]] = {}
        for name, value in conn.query_params.multi_items():
            params.setdefault(name, []).append(value)
        tokens = params.pop("access_token", [])
        principal = self.state.authorize(conn.headers, "read", tokens[0] if tokens else None)
        origin = conn.headers.get("origin")
        # The UI's own page may open a stream; other pages only when allowed.
        own = own_origin(conn.scope, conn.headers)
        if origin is not None and origin not in (own, *self.state.settings.allow_origins):
            self.state.metrics.http_rejections.labels("origin").inc()
            raise ApiError(403, f"origin: {origin!r} is not allowed (see --allow-origin)")
        try:
            query = query_from_params(params, allowed=FILTER_PARAMS)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return principal, query

    async def _watch(self, stream: JsonStream, principal: Principal) -> bool:
        """Close ``stream`` once the caller's key is revoked; True if it was."""
        interval = self.state.settings.stream_key_check
        while not stream.closed:
            await asyncio.sleep(interval)
            if not self.state.key_active(principal):
                self.state.collector.close_stream(stream)
                return True
        return False

    def _check_room(self) -> None:
        limit = self.state.settings.max_streams
        if len(self.live) >= limit:
            self.state.metrics.http_rejections.labels("max_streams").inc()
            raise ApiError(
                503,
                f"max_streams: {limit} live streams are open, the most this server keeps",
                headers={"Retry-After": str(self.state.settings.retry_after)},
                limit="max_streams",
                max=limit,
            )

    def _open(self, principal: Principal, query: Query) -> tuple[JsonStream, asyncio.Task[bool]]:
        s = self.state.settings
        stream = self.state.collector.open_json_stream(query, s.stream_queue, s.stream_max_bytes)
        self.live.add(stream)
        watcher = asyncio.get_running_loop().create_task(self._watch(stream, principal))
        return stream, watcher

    def _close(self, stream: JsonStream, watcher: asyncio.Task[bool]) -> None:
        """The connection's end, however it came (its finally)."""
        watcher.cancel()
        self.live.discard(stream)
        self.state.collector.close_stream(stream)

    async def sse(self, request: Request) -> Response:
        principal, query = self._admit(request)
        self._check_room()
        stream, watcher = self._open(principal, query)

        async def frames() -> object:
            try:
                async for item in stream:
                    if isinstance(item, Missed):
                        yield ServerSentEvent(
                            data=_missed_json(item.count).decode(), event="missed"
                        )
                    else:
                        yield ServerSentEvent(data=item.decode(), event="event")
            finally:
                self._close(stream, watcher)

        settings = self.state.settings
        return _CutOffTolerantResponse(
            frames(),  # type: ignore[arg-type]
            ping=settings.stream_ping,
            send_timeout=settings.stream_send_timeout,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def websocket_without_upgrade(self, request: Request) -> Response:
        """A plain GET of ``/v1/ws``: the handshake's own refusals, else 426."""
        self._admit(request)
        raise ApiError(
            426,
            "upgrade: /v1/ws is a WebSocket endpoint (send Upgrade: websocket)",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    async def websocket(self, websocket: WebSocket) -> None:
        try:
            principal, query = self._admit(websocket)
            self._check_room()
        except ApiError as exc:
            await _deny(websocket, exc)
            return
        # Subscribe before the handshake completes, so that the client sees every
        # event committed after its connection is open.
        stream, watcher = self._open(principal, query)
        close_code = _GOING_AWAY
        reason = "server shutting down"
        receiver: asyncio.Task[None] | None = None
        try:
            await websocket.accept()
            receiver = asyncio.get_running_loop().create_task(
                self._until_disconnect(websocket, stream)
            )
            async for item in stream:
                if isinstance(item, Missed):
                    message = b'{"type":"missed","count":%d}' % item.count
                else:
                    message = _event_message(item)
                try:
                    await asyncio.wait_for(
                        websocket.send_text(message.decode()),
                        self.state.settings.stream_send_timeout,
                    )
                except TimeoutError:
                    close_code, reason = _TRY_AGAIN_LATER, "consumer too slow: disconnected"
                    break
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return
            if watcher.done() and not watcher.cancelled() and watcher.result():
                close_code, reason = _POLICY_VIOLATION, "API key revoked"
        finally:
            self._close(stream, watcher)
            if receiver is not None:
                receiver.cancel()
        if (
            websocket.application_state is WebSocketState.CONNECTED
            and receiver is not None
            and not receiver.done()
        ):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(close_code, reason), 1.0)

    async def _until_disconnect(self, websocket: WebSocket, stream: JsonStream) -> None:
        # The client need not send anything; we read only to notice that it left.
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        finally:
            self.state.collector.close_stream(stream)


def _event_message(encoded: bytes) -> bytes:
    return b'{"type":"event","event":' + encoded + b"}"


async def _deny(websocket: WebSocket, exc: ApiError) -> None:
    """Refuse the handshake with the error's status and JSON body where supported."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(exc.response())
    else:
        await websocket.close(_POLICY_VIOLATION, exc.message[:120])


def routes(state: ServerState) -> list[Route | WebSocketRoute]:
    s = _Streams(state)
    return [
        Route("/v1/stream", s.sse, methods=["GET"]),
        WebSocketRoute("/v1/ws", s.websocket),
        # Without an Upgrade header the request is HTTP and would miss the route above.
        Route("/v1/ws", s.websocket_without_upgrade, methods=["GET"]),
    ]
