"""The client's own logging: the marker of its own code and the logger it writes to.

No httpx here: the logging handler imports ``INSIDE_CLIENT`` in processes that may
not have the client extra.
"""

from __future__ import annotations

import contextvars
import logging

__all__ = ["INSIDE_CLIENT", "log"]

log = logging.getLogger("eventcollector.client")

#: True while the client's own code runs (its threads, its HTTP calls): a logging handler
#: that forwards records to the collector must ignore records made there, or it would
#: feed on itself (httpx logs every request at INFO).
INSIDE_CLIENT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "eventcollector_inside_client", default=False
)
