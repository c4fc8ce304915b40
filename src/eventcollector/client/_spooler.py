"""The remote client's spooler thread: moves the buffer to the spool file.

While the server is down (or the buffer is half full because the server is slow) the
spooler drains the in-memory buffer into the spool, so that a sender stuck in a
request that will time out never makes the buffer overflow. The sender later sends the
spool's oldest lines before the buffer, so events keep their order. It has no state of
its own: ``DeliveryState`` hands it chunks and takes the written lines.
"""

from __future__ import annotations

from eventcollector.client._delivery import event_line
from eventcollector.client._inside import INSIDE_CLIENT, log
from eventcollector.client._spool import Spool
from eventcollector.client._state import DeliveryState

__all__ = ["run"]

_SPOOL_CHUNK = 1_000
_SPOOL_LINGER = 0.05  # while down, gather this long so each spool write carries many events


def run(state: DeliveryState) -> None:
    """The spooler thread's target: open the spool, then spool chunks until stopped."""
    INSIDE_CLIENT.set(True)
    try:
        _open_spool(state)
        while (events := state.next_chunk(_SPOOL_CHUNK, _SPOOL_LINGER)) is not None:
            state.spool_lines([event_line(e) for e in events])
    except Exception:
        log.exception("eventcollector spooler thread failed")
    finally:
        state.thread_done()


def _open_spool(state: DeliveryState) -> None:
    config = state.config
    if config.spool_dir is None:
        return
    spool = Spool(config.spool_dir, max_bytes=config.spool_max_bytes)
    try:
        spool.open()
    except OSError as exc:
        log.warning("cannot use spool directory %s: %s", config.spool_dir, exc)
        state.spool_opened(None)
        return
    state.spool_opened(spool)
