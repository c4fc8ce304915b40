"""The HTTP server (extra ``server``): ``create_app(collector, settings)``.

The library never imports this package; it imports the library.
"""

from __future__ import annotations

from typing import Any

try:
    import opentelemetry.proto  # noqa: F401
    import prometheus_client  # noqa: F401
    import sse_starlette  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the eventcollector server needs the 'server' extra: "
        f"pip install 'eventcollector[server]' ({exc})"
    ) from exc

from eventcollector.server.app import create_app
from eventcollector.server.auth import KeyStore, default_keys_file
from eventcollector.server.settings import DEFAULT_HOST, DEFAULT_PORT, ServerSettings

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "KeyStore",
    "ServerSettings",
    "create_app",
    "default_keys_file",
    "http_protocol",
]


def http_protocol() -> Any:
    """uvicorn's ``http=`` for this server: one write per response where httptools is."""
    try:
        from eventcollector.server._protocol import CoalescingHttpToolsProtocol
    except ImportError:  # httptools comes with uvicorn[standard] on CPython only
        return "auto"
    return CoalescingHttpToolsProtocol
