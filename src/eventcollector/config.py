"""Process-wide configuration: the default store and ``get_event_collector()``.

With nothing configured every process of a user (a component in one directory,
the CLI in another) must find the same store, so the default is a per-user data
directory, not the working directory.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from eventcollector.collector import EventCollector

__all__ = ["ENV_API_KEY", "ENV_DB", "ENV_URL", "default_db_path", "get_event_collector"]

ENV_DB = "EVENTCOLLECTOR_DB"
ENV_URL = "EVENTCOLLECTOR_URL"
ENV_API_KEY = "EVENTCOLLECTOR_API_KEY"

_collector: EventCollector | None = None
_lock = threading.Lock()


def default_db_path() -> Path:
    """``$EVENTCOLLECTOR_DB``, else ``$XDG_DATA_HOME/eventcollector/events.db``."""
    configured = os.environ.get(ENV_DB)
    if configured:
        return Path(configured)
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data_home) / "eventcollector" / "events.db"


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
