"""Process-wide configuration: ``get_event_collector()`` from the environment.

``$EVENTCOLLECTOR_URL`` sends to a collector server; else ``$EVENTCOLLECTOR_DB`` or
the per-user default store (``storage.default_db_path``).
"""

from __future__ import annotations

import os
import threading

from eventcollector.collector import EventCollector
from eventcollector.storage import ENV_DB, default_db_path

__all__ = ["ENV_API_KEY", "ENV_DB", "ENV_URL", "default_db_path", "get_event_collector"]

ENV_URL = "EVENTCOLLECTOR_URL"
ENV_API_KEY = "EVENTCOLLECTOR_API_KEY"

_collector: EventCollector | None = None
_lock = threading.Lock()


def collector_from_environment() -> EventCollector:
    """A new collector for ``$EVENTCOLLECTOR_URL`` if set, else the local store."""
    url = os.environ.get(ENV_URL)
    if url:
        return EventCollector(url=url, api_key=os.environ.get(ENV_API_KEY))
    return EventCollector(os.environ.get(ENV_DB) or default_db_path())


def get_event_collector() -> EventCollector:
    """The process-wide collector, created from the environment on first use.

    It starts itself on the first ``collect()`` or query, as the spec's examples expect.
    """
    global _collector
    with _lock:
        if _collector is None:
            _collector = collector_from_environment()
        return _collector


def set_event_collector(collector: EventCollector | None) -> None:
    """Replace the process-wide collector (for tests and embedding applications)."""
    global _collector
    with _lock:
        _collector = collector
