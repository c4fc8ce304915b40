"""The web UI (docs/ui.md): one HTML shell for every view, and its static assets.

The shell and the assets are package data (``assets/``), read once at startup, so a
wheel serves them offline with no build step. Asset URLs carry a hash of all the
asset files (``/ui/assets/<hash>/js/app.js``): a browser may keep them for a year,
and any change to a file changes every URL. The views fetch their data from the
JSON API with the key the user typed; these routes serve only static text and need
no key, so that the page can ask for one.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector.server.errors import ApiError

__all__ = ["PAGES", "SECURITY_HEADERS", "routes"]

#: The paths that serve the shell, and the view (js/views/<name>.js) that the router in
#: js/app.js mounts for each.
PAGES = {
    "/": "explore",
    "/live": "live",
    "/trace/{correlation_id}": "trace",
    "/errors": "errors",
    "/overview": "overview",
    "/alerts": "alerts",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_IMMUTABLE = "public, max-age=31536000, immutable"
_PLACEHOLDER = b"%ASSETS%"
_PRELOAD = b"%PRELOAD%"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class _Assets:
    files: dict[str, bytes]
    version: str

    @classmethod
    def load(cls) -> _Assets:
        root = resources.files(__package__).joinpath("assets")
        files = dict(_walk(root, ""))
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        return cls(files, digest.hexdigest()[:12])


def _walk(node: Traversable, prefix: str) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for child in node.iterdir():
        name = f"{prefix}{child.name}"
        if child.is_dir():
            found.extend(_walk(child, f"{name}/"))
        elif child.is_file():
            found.append((name, child.read_bytes()))
    return found


def _content_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def routes() -> list[Route]:
    assets = _Assets.load()
    base = f"/ui/assets/{assets.version}".encode()
    shared = [n for n in sorted(assets.files) if n.startswith("js/") and n.count("/") == 1]
    template = assets.files["index.html"].replace(_PLACEHOLDER, base)

    def shell(view: str) -> bytes:
        # The modules this view needs announced up front: one round of requests, not one
        # per level of imports.
        modules = [n for n in shared if n != "js/app.js"] + [f"js/views/{view}.js"]
        preload = b"\n".join(
            b'<link rel="modulepreload" href="%s/%s">' % (base, n.encode()) for n in modules
        )
        return template.replace(_PRELOAD, preload)

    def page(body: bytes) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            # no-cache: the shell names the current asset version; it must be revalidated.
            headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
            return Response(body, 200, headers, media_type="text/html; charset=utf-8")

        return serve

    async def asset(request: Request) -> Response:
        name = request.path_params["path"]
        body = assets.files.get(name)
        if body is None or name == "index.html":
            raise ApiError(404, f"path: no UI asset {name!r}")
        # A page loaded before an upgrade may ask with its old version: serve the
        # current file, but let nobody keep it under that URL.
        fresh = request.path_params["version"] == assets.version
        headers = {**SECURITY_HEADERS, "Cache-Control": _IMMUTABLE if fresh else "no-cache"}
        return Response(body, 200, headers, media_type=_content_type(name))

    return [
        *(Route(path, page(shell(view)), methods=["GET"]) for path, view in PAGES.items()),
        Route("/ui/assets/{version}/{path:path}", asset, methods=["GET"]),
    ]
