"""What the remote client's sender and spooler threads share.

``INSIDE_CLIENT`` marks the client's own code, ``event_line`` is the NDJSON line of an
event (the same bytes go to the spool and over the wire).
"""

from __future__ import annotations

import contextvars
import logging

import orjson

from eventcollector.model import Event

__all__ = ["INSIDE_CLIENT", "event_line", "log"]

log = logging.getLogger("eventcollector.client")

#: True while the client's own code runs (its threads, its HTTP calls): a logging handler
#: that forwards records to the collector must ignore records made there, or it would
#: feed on itself (httpx logs every request at INFO).
INSIDE_CLIENT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "eventcollector_inside_client", default=False
)


def event_line(event: Event) -> bytes:
    """One event as a line of NDJSON (without the newline)."""
    return orjson.dumps(event.to_dict())
