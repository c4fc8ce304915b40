"""The remote client (extra "client"): events queued for a collector server over HTTP.

``EventCollector(url="http://collector:8765", api_key=...)`` uses ``HTTPStorage``, a
``QueuedStore``: writes go to a bounded buffer that background threads deliver (see
docs/client.md). Importing this package does not import httpx: ``HTTPStorage``,
``ENV_SPOOL_DIR`` and ``default_spool_root`` load ``_remote`` on first access, so the
logging handler can check ``INSIDE_CLIENT`` in a process without the extra. The retry
policy is shared with ``eventcollector tail``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from eventcollector.client._inside import INSIDE_CLIENT
from eventcollector.client._retry import RETRYABLE_STATUS, backoff_delay, parse_retry_after

if TYPE_CHECKING:
    from eventcollector.client._remote import ENV_SPOOL_DIR, HTTPStorage, default_spool_root

__all__ = [
    "ENV_SPOOL_DIR",
    "INSIDE_CLIENT",
    "RETRYABLE_STATUS",
    "HTTPStorage",
    "backoff_delay",
    "default_spool_root",
    "parse_retry_after",
]

_NEEDS_HTTPX = frozenset({"ENV_SPOOL_DIR", "HTTPStorage", "default_spool_root"})


def __getattr__(name: str) -> Any:
    """The httpx-backed names, imported on first use (an ImportError without httpx)."""
    if name in _NEEDS_HTTPX:
        return getattr(import_module("eventcollector.client._remote"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
