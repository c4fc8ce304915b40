"""No cross-site request changes state: the guard in front of every unsafe method.

A page on another site can make a browser send a form POST (text/plain, urlencoded,
multipart) to this server without any CORS preflight, and a keyless server on
127.0.0.1 would store it. Browsers mark such requests: ``Sec-Fetch-Site: cross-site``
and an ``Origin`` naming the other page (``null`` from sandboxes and files). So an
unsafe method is refused when its ``Origin`` is neither this server's own origin nor
one given with ``--allow-origin``, or when ``Sec-Fetch-Site`` says cross-site without
such an allowed Origin. Clients that are not browsers send neither header and pass.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from eventcollector.server.errors import json_response

__all__ = ["CrossSiteGuard", "own_origin"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def own_origin(scope: Scope, headers: Mapping[str, str]) -> str:
    """The origin a page served by this server has (scheme and the Host it asked for)."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{headers.get('host', '')}"


def _refusal(scope: Scope, allowed: tuple[str, ...]) -> str | None:
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin is not None:
        if origin == own_origin(scope, headers) or origin in allowed:
            return None
        return f"origin: {origin!r} may not send {scope['method']} requests (see --allow-origin)"
    if headers.get("sec-fetch-site") == "cross-site":
        return f"origin: a cross-site {scope['method']} request is refused"
    return None


class CrossSiteGuard:
    """Refuse unsafe methods sent by a page of another origin (403, JSON error)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in _SAFE:
            reason = _refusal(scope, self.allowed)
            if reason is not None:
                await json_response({"error": reason}, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
