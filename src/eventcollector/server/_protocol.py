"""uvicorn's httptools protocol, with each response written in one system call.

uvicorn writes a response's head when the app sends ``http.response.start`` and its
body when it sends ``http.response.body``: two ``send()`` calls for every small JSON
answer. On uvloop those run while holding the GIL, and on loopback each one also
wakes the peer; profiled under wrk, they were over 40% of the server's GIL time for
single-event POSTs. Writes made in one event-loop iteration are joined here and
written together at its end (one ``call_soon``), which raised single-event POSTs by
about a quarter. WebSocket upgrades get the plain transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol"]


class _CoalescingTransport:
    """A transport whose writes in one loop iteration leave as one write."""

    __slots__ = ("_chunks", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._chunks:
            self._loop.call_soon(self.flush)
        self._chunks.append(data)

    def flush(self) -> None:
        chunks, self._chunks = self._chunks, []
        if chunks and not self.transport.is_closing():
            self.transport.write(b"".join(chunks))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing through ``_CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = _CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(coalescing)  # type: ignore[arg-type]

    def handle_websocket_upgrade(self) -> None:
        coalescing = self.transport
        if isinstance(coalescing, _CoalescingTransport):
            coalescing.flush()
            self.transport = coalescing.transport
        super().handle_websocket_upgrade()
