"""The remote client's spooler thread: moves the buffer to the spool file.

While the server is down (or the buffer is half full because the server is slow) the
spooler drains the ``Sender``'s in-memory buffer into the spool, so that a sender stuck
in a request that will time out never makes the buffer overflow. The sender later
sends the spool's oldest lines before the buffer, so events keep their order.

It has no state of its own: it works on the sender's buffer, counters and spool under
the sender's lock (see ``_http_sender`` for the accounting they keep).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eventcollector.model import Event
from eventcollector.storage._http_common import INSIDE_CLIENT, event_line, log
from eventcollector.storage._spool import Spool

if TYPE_CHECKING:
    from eventcollector.storage._http_sender import Sender

__all__ = ["_Spooler"]

_SPOOL_CHUNK = 1_000
_SPOOL_LINGER = 0.05  # while down, gather this long so each spool write carries many events


class _Spooler:
    """The spooler thread of one ``Sender``; ``run`` is the thread's target."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def run(self) -> None:
        INSIDE_CLIENT.set(True)
        s = self._sender
        try:
            self._open_spool()
            while (events := self._next_chunk()) is not None:
                lines = [event_line(e) for e in events]
                assert s._spool is not None
                with s._spool_lock:
                    written = s._safe_spool(s._spool.append, lines)
                with s._cv:
                    s._spooling -= len(events)
                    if written < len(events):
                        s._drop(len(events) - written, "spool_full")
                    s._cv.notify_all()
        except Exception:
            log.exception("eventcollector spooler thread failed")
        finally:
            s._thread_done()

    def _open_spool(self) -> None:
        s = self._sender
        if s.config.spool_dir is None:
            return
        spool = Spool(s.config.spool_dir, max_bytes=s.config.spool_max_bytes)
        try:
            spool.open()
        except OSError as exc:
            log.warning("cannot use spool directory %s: %s", s.config.spool_dir, exc)
            with s._cv:
                s._spool_state = "failed"
                s._cv.notify_all()
            return
        with s._cv:
            s._spool = spool
            s._spool_state = "ready"
            s.counters["recovered"] += spool.adopted
            s._cv.notify_all()

    def _next_chunk(self) -> list[Event] | None:
        s = self._sender
        high = max(s.config.max_buffer // 2, 1)
        with s._cv:
            while True:
                if s._spool_state != "ready":
                    return None  # no spool: the buffer is all there is
                buffer = s._buffer
                if buffer and (s._down or len(buffer) >= high or s._stop):
                    lingering = time.monotonic() - s._first_at < _SPOOL_LINGER
                    if len(buffer) < _SPOOL_CHUNK and lingering and not (s._flushers or s._stop):
                        s._cv.wait(_SPOOL_LINGER)
                        continue
                    n = min(len(buffer), _SPOOL_CHUNK)
                    events = [buffer.popleft() for _ in range(n)]
                    s._first_at = time.monotonic()
                    s._spooling += n
                    return events
                if s._stop:
                    return None
                s._cv.wait(0.5 if buffer else None)
