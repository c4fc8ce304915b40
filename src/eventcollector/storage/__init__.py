"""Storage backends behind one small protocol; ``open_storage`` picks one from a URL.

With nothing configured every process of a user (a component in one directory,
the CLI in another) must find the same store, so the default is a per-user data
directory, not the working directory.
"""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from eventcollector.storage.base import (
    DEFAULT_QUERY_TIMEOUT,
    Aggregating,
    AlertStore,
    EnqueueAppend,
    EventsCallback,
    EventStore,
    FileBacked,
    Flushable,
    Followable,
    Indexable,
    IssueFeed,
    IssueStore,
    QueryTimeout,
    QueuedStore,
    SharedFeed,
    Storage,
    StorageError,
    StorageUnavailable,
)

if TYPE_CHECKING:
    from eventcollector.storage.sqlite import SQLiteStorage

__all__ = [
    "DEFAULT_QUERY_TIMEOUT",
    "ENV_DB",
    "Aggregating",
    "AlertStore",
    "EnqueueAppend",
    "EventStore",
    "EventsCallback",
    "FileBacked",
    "Flushable",
    "Followable",
    "Indexable",
    "IssueFeed",
    "IssueStore",
    "QueryTimeout",
    "QueuedStore",
    "SharedFeed",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "default_db_path",
    "open_storage",
]

ENV_DB = "EVENTCOLLECTOR_DB"


def default_db_path() -> Path:
    """``$EVENTCOLLECTOR_DB``, else ``$XDG_DATA_HOME/eventcollector/events.db``."""
    configured = os.environ.get(ENV_DB)
    if configured:
        return Path(configured)
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data_home) / "eventcollector" / "events.db"


def open_storage(
    target: str | os.PathLike[str], *, query_timeout: float | None = DEFAULT_QUERY_TIMEOUT
) -> Storage:
    """A backend for ``sqlite:///path``, a plain file path, or ``postgresql://...``.

    ``query_timeout``: seconds one read statement may run before it is cancelled with
    ``QueryTimeout`` (None: no budget). The PostgreSQL backend needs the ``postgres``
    extra; its absence is named.
    """
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            module = import_module("eventcollector.storage.postgres")
        except ImportError as exc:
            raise ImportError(
                "PostgreSQL storage needs the 'postgres' extra: "
                "pip install 'eventcollector[postgres]'"
                f" ({exc})"
            ) from exc
        storage: Storage = module.PostgresStorage(text, query_timeout=query_timeout)
        return storage
    path = text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else text
    return _sqlite(path, query_timeout)


def _sqlite(path: str, query_timeout: float | None) -> SQLiteStorage:
    from eventcollector.storage.sqlite import SQLiteStorage

    if path.startswith(("http://", "https://")):
        raise ValueError(f"db_path: {path!r} is a server URL; pass it as url= instead")
    return SQLiteStorage(path, query_timeout=query_timeout)
