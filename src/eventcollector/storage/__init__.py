"""Storage backends behind one small protocol; ``open_storage`` picks one from a URL."""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING

from eventcollector.storage.base import Storage, StorageError, StorageUnavailable

if TYPE_CHECKING:
    from eventcollector.storage.sqlite import SQLiteStorage

__all__ = ["Storage", "StorageError", "StorageUnavailable", "open_storage"]


def open_storage(target: str | os.PathLike[str]) -> Storage:
    """A backend for ``sqlite:///path``, a plain file path, or ``postgresql://...``.

    The PostgreSQL backend needs the ``postgres`` extra; its absence is named.
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
        storage: Storage = module.PostgresStorage(text)
        return storage
    return _sqlite(text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else text)


def _sqlite(path: str) -> SQLiteStorage:
    from eventcollector.storage.sqlite import SQLiteStorage

    if path.startswith(("http://", "https://")):
        raise ValueError(f"db_path: {path!r} is a server URL; pass it as url= instead")
    return SQLiteStorage(path)
