"""The syslog listeners: TCP (octet counting and newline framing) and UDP.

Both run on the server's event loop and hand their events to the collector like
the HTTP doors, in one ``ingest`` per chunk read (TCP) or per loop iteration
(UDP). Bounds: a message is at most ``max_message`` bytes (larger ones are counted
as malformed and skipped), TCP takes at most ``max_connections`` at once and
closes one idle for ``idle_timeout`` seconds, and a connection stops being read
while ``_INFLIGHT`` of its events wait for a commit (TCP's own flow control then
slows the sender). UDP has no flow control: when the collector's queue is full a
datagram's events are dropped and counted. A malformed message is counted in
/metrics, logged at most once per ``_LOG_INTERVAL`` and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge

from eventcollector.collector import QueueFull
from eventcollector.model import Event
from eventcollector.server.ingest._admit import count_stored
from eventcollector.server.state import ServerState
from eventcollector.server.syslog._parser import parse_message
from eventcollector.storage import StorageError

__all__ = ["SyslogListener"]

log = logging.getLogger("eventcollector.server.syslog")

MAX_MESSAGE = 64 * 1024
_INFLIGHT = 10_000  # events of one TCP connection awaiting their commit
_LOG_INTERVAL = 60.0
_MAX_LENGTH_DIGITS = 7  # octet counting: "65536 " fits, anything longer is not a frame
_BETWEEN_FRAMES = b"\r\n\x00 "
_FRAME_STARTS = frozenset(b"<0123456789\r\n")


class _Throttled:
    """A warning logged at most once per interval, with how many were not logged."""

    def __init__(self, interval: float = _LOG_INTERVAL) -> None:
        self.interval = interval
        self._last = -interval
        self._quiet = 0

    def warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._quiet += 1
            return
        more = f" (and {self._quiet} more since the last report)" if self._quiet else ""
        log.warning("syslog: %s%s", message, more)
        self._last, self._quiet = now, 0


class SyslogListener:
    """``serve --syslog-tcp`` / ``--syslog-udp``: a ``Service`` of the app."""

    def __init__(
        self,
        *,
        tcp: tuple[str, int] | None = None,
        udp: tuple[str, int] | None = None,
        max_connections: int = 256,
        idle_timeout: float = 300.0,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections: must be at least 1")
        if idle_timeout <= 0:
            raise ValueError("idle_timeout: must be positive")
        self.tcp, self.udp = tcp, udp
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_message = max_message
        self.connections: set[_TcpConnection] = set()
        self._warnings = _Throttled()
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, state: ServerState) -> None:
        self.state = state
        registry = state.metrics.registry
        self.messages = Counter(
            "eventcollector_syslog_messages",
            "Syslog messages by transport and outcome (accepted, malformed, dropped).",
            ["transport", "outcome"],
            registry=registry,
        )
        self.refused = Counter(
            "eventcollector_syslog_refused_connections",
            "TCP connections closed at once: max connections reached.",
            registry=registry,
        )
        open_connections = Gauge(
            "eventcollector_syslog_connections", "Open syslog TCP connections.", registry=registry
        )
        open_connections.set_function(lambda: len(self.connections))
        loop = asyncio.get_running_loop()
        if self.tcp is not None:
            host, port = self.tcp
            self._servers.append(await loop.create_server(lambda: _TcpConnection(self), host, port))
        if self.udp is not None:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=self.udp
            )

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.close()
        if self._udp is not None:
            self._udp.close()
        if self._tasks:  # what was read goes to the collector, which drains it on stop
            await asyncio.wait(self._tasks, timeout=10)

    # -- messages ------------------------------------------------------------

    def malformed(self, transport: str, error: str) -> None:
        self.messages.labels(transport, "malformed").inc()
        self.warn(f"skipped a malformed message over {transport}: {error}")

    def warn(self, message: str) -> None:
        self._warnings.warn(message)

    def submit(
        self, transport: str, frames: list[bytes], done: Callable[[int], None] | None = None
    ) -> int:
        """Parse ``frames`` and store their events; ``done(n)`` once they are committed.

        Returns the number of events handed on (0: nothing to wait for).
        """
        now = datetime.now(UTC)
        events: list[Event] = []
        for frame in frames:
            try:
                events.append(parse_message(frame, now))
            except ValueError as exc:
                self.malformed(transport, str(exc))
        if events:
            task = asyncio.get_running_loop().create_task(self._store(transport, events, done))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(events)

    async def _store(
        self, transport: str, events: list[Event], done: Callable[[int], None] | None
    ) -> None:
        try:
            # TCP waits for room (its reads are paused meanwhile); UDP cannot wait.
            stored = await self.state.collector.ingest(events, wait=transport == "tcp")
        except (QueueFull, StorageError) as exc:
            self.messages.labels(transport, "dropped").inc(len(events))
            self.warn(f"dropped {len(events)} messages over {transport}: {exc}")
        else:
            self.messages.labels(transport, "accepted").inc(len(events))
            count_stored(self.state.metrics, events, stored)
        finally:
            if done is not None:
                done(len(events))


class _TcpConnection(asyncio.Protocol):
    """One sender: frames split by octet counting (``LEN SP MSG``), newline or NUL."""

    def __init__(self, listener: SyslogListener) -> None:
        self.listener = listener
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.skip = 0  # bytes left of an oversized octet-counted frame
        self.discarding = False  # inside an oversized newline-framed message
        self.nul_framed = False
        self.inflight = 0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        listener = self.listener
        if len(listener.connections) >= listener.max_connections:
            listener.refused.inc()
            transport.close()
            return
        self.transport = transport
        listener.connections.add(self)
        loop = asyncio.get_running_loop()
        self.last_read = loop.time()
        self.timer = loop.call_later(listener.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        idle = loop.time() - self.last_read
        if idle >= self.listener.idle_timeout:
            self.close()
        else:
            self.timer = loop.call_later(self.listener.idle_timeout - idle, self._check_idle)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.last_read = asyncio.get_running_loop().time()
        self.buffer += data
        frames = self._frames()
        if frames:
            self.inflight += self.listener.submit("tcp", frames, self._committed)
            if self.inflight >= _INFLIGHT and self.transport is not None:
                self.transport.pause_reading()

    def _committed(self, n: int) -> None:
        self.inflight -= n
        if self.inflight < _INFLIGHT // 2 and self.transport is not None:
            self.transport.resume_reading()

    def _frames(self) -> list[bytes]:
        """The complete frames in the buffer (removed from it)."""
        buf, limit, frames = self.buffer, self.listener.max_message, []
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                del buf[:n]
                self.skip -= n
                continue
            if self.discarding:
                end = self._frame_end(buf)
                if end < 0:
                    buf.clear()
                    break
                del buf[: end + 1]
                self.discarding = False
            del buf[: len(buf) - len(buf.lstrip(_BETWEEN_FRAMES))]
            if not buf:
                break
            if 0x30 <= buf[0] <= 0x39:  # a digit: octet counting
                space = buf.find(b" ", 0, _MAX_LENGTH_DIGITS + 1)
                if space < 0:
                    if len(buf) > _MAX_LENGTH_DIGITS or not buf.isdigit():
                        self._lost_framing("octet count without a space")
                    break
                if not buf[:space].isdigit():
                    self._lost_framing("octet count is not a number")
                    break
                length = int(buf[:space])
                if length > limit:
                    self.listener.malformed("tcp", f"message of {length} bytes over {limit}")
                    del buf[: space + 1]
                    self.skip = length
                    continue
                if len(buf) < space + 1 + length:
                    break
                frames.append(bytes(buf[space + 1 : space + 1 + length]))
                del buf[: space + 1 + length]
                continue
            end = self._frame_end(buf)
            if end < 0:
                if len(buf) > limit:
                    self.listener.malformed("tcp", f"message longer than {limit} bytes")
                    buf.clear()
                    self.discarding = True
                break
            if end > limit:
                self.listener.malformed("tcp", f"message longer than {limit} bytes")
            else:
                frames.append(bytes(buf[:end]))
            del buf[: end + 1]
        return frames

    def _frame_end(self, buf: bytearray) -> int:
        """Where a non-octet-counted message ends, or -1.

        A newline ends it, unless what follows cannot start a frame: Python's
        SysLogHandler ends its messages (which may hold newlines) with a NUL instead,
        and once a connection has done that only a NUL ends its messages.
        """
        nul = buf.find(b"\x00")
        if self.nul_framed:
            return nul
        start = 0
        while True:
            newline = buf.find(b"\n", start)
            if newline < 0 or 0 <= nul < newline:
                self.nul_framed = nul >= 0
                return nul
            after = newline + 1
            if after == len(buf) or buf[after] in _FRAME_STARTS:
                return newline
            start = after

    def _lost_framing(self, error: str) -> None:
        # The next frame's start cannot be found: drop this connection (only).
        self.listener.malformed("tcp", f"{error}; connection closed")
        self.buffer.clear()
        self.close()


class _Datagrams(asyncio.DatagramProtocol):
    """One message per datagram; the datagrams of one loop iteration are one ingest."""

    def __init__(self, listener: SyslogListener) -> None:
        self.listener = listener
        self.pending: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) > self.listener.max_message:
            self.listener.malformed("udp", f"datagram over {self.listener.max_message} bytes")
            return
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append(data)

    def _flush(self) -> None:
        frames, self.pending = self.pending, []
        self.listener.submit("udp", frames)

    def error_received(self, exc: Exception) -> None:
        self.listener.warn(f"UDP error: {exc}")
