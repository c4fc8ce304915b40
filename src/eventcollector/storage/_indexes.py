"""Expression indexes on data/metadata paths, shared by both SQL backends.

A path is indexed only when its keys match ``[A-Za-z0-9_]+``: the index DDL and the
compiler's expression for it (``_where.IndexedField``) are written with the keys as
literals, from the ``event_indexes`` registry alone, so both say exactly the same text
(an expression index serves only a query that repeats its expression).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any, Protocol

from eventcollector.filters import Field

__all__ = ["MAX_INDEXES", "index_name", "literals", "parse_index_path"]

_PATH = re.compile(r"(data|metadata)((?:\.[A-Za-z0-9_]+){1,8})")
REGISTRY = "SELECT path, index_name, created_at FROM event_indexes ORDER BY path"
#: Each index costs every insert; a handful serves the often-filtered paths.
MAX_INDEXES = 32


class _LiteralDialect(Protocol):
    def index_literal(self, root: str, keys: tuple[str, ...]) -> str: ...


def parse_index_path(text: str) -> Field:
    """``data.repo`` -> ``Field("data", ("repo",))``; ValueError naming the rule."""
    match = _PATH.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"index: {text!r} is not a data path to index: data.KEY or metadata.KEY"
            " (keys of letters, digits and '_', at most 8 of them)"
        )
    return Field(match[1], tuple(match[2][1:].split(".")))


def path_text(field: Field) -> str:
    return ".".join((field.name, *field.path))


def index_name(field: Field) -> str:
    """A stable name from the path (keys may be long; names are at most 63 bytes)."""
    digest = hashlib.blake2b(path_text(field).encode(), digest_size=6).hexdigest()
    return f"idx_events_{field.name}_{digest}"


def literals(paths: Iterable[str], dialect: _LiteralDialect) -> dict[Field, str]:
    """The registry's paths -> their expression text (for ``_where.mark_indexed``)."""
    found: dict[Field, str] = {}
    for text in paths:
        field = parse_index_path(text)
        found[field] = dialect.index_literal(field.name, field.path)
    return found


def describe(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Registry rows (path, index_name, created_at) as health/CLI output."""
    return [
        {"path": path, "index": name, "created_at": str(created)} for path, name, created in rows
    ]
