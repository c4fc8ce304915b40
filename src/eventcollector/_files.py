"""Files written whole or not at all: exports and archives."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["durable_file"]


@contextlib.contextmanager
def durable_file(path: Path, *, replace: bool = True) -> Iterator[IO[bytes] | gzip.GzipFile]:
    """A binary sink that becomes ``path`` only once complete and on disk.

    It is written to a temporary file beside ``path`` (gzip when the name ends in
    ``.gz``), synced, then renamed over ``path`` or, without ``replace``, linked to it,
    which fails with FileExistsError rather than overwrite a file: an archive is never
    replaced. On any failure the temporary file is removed and ``path`` is untouched.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw) as gz:
                    yield gz
            else:
                yield raw
            raw.flush()
            os.fsync(raw.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
        _sync_directory(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sync_directory(directory: Path) -> None:
    # The new name is durable only once its directory is (POSIX; not on Windows).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
