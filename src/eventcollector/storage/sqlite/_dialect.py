"""SQLite's side of the shared WHERE compiler (``storage._where``): ``?`` placeholders,
JSON through ``json_extract``/``json_type`` on the TEXT columns with the path bound,
FTS5 for full text, the ``event_tags`` table, timestamps as fixed-width ISO text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from eventcollector.filters import Field, Value
from eventcollector.model import format_timestamp
from eventcollector.storage._where import JSON_COLUMNS, Dialect, IndexedField, Params

__all__ = ["DIALECT", "Expansions", "SQLiteDialect", "fts_query"]

#: Full-text words (a term's, or a search's) -> an equivalent FTS5 query.
Expansions = Mapping[tuple[str, ...], str]

_INDEX_KEY = re.compile(r"[A-Za-z0-9_]+")
# SQLite compares a path's quoted label with the key as written in the JSON text, so a
# key JSON writes escaped cannot be addressed (orjson escapes '"', '\' and controls).
_UNADDRESSABLE = re.compile(r'["\\\x00-\x1f]')
_NUMBER_TYPES = "('integer', 'real')"


def fts_query(words: Sequence[str], phrase: bool) -> str:
    """An FTS5 query: each word a prefix, ANDed, or adjacent in order for a phrase.
    Words are letters and digits only (``search_terms``); quoting leaves no syntax."""
    return (" + " if phrase else " AND ").join(f'"{w}"*' for w in words)


def _json_kind(value: Value) -> str:
    return "null" if value is None else "true" if value is True else "false"


@lru_cache(maxsize=1_024)  # the same few paths come back in filter after filter
def _json_path(root: str, keys: tuple[str, ...]) -> str:
    """The JSON path of ``keys``, each a quoted label."""
    for key in keys:
        if _UNADDRESSABLE.search(key):
            raise ValueError(
                f"q: the SQLite backend cannot address the key {key!r} in "
                f"{root}: keys with '\"', '\\' or control characters"
            )
    return "$." + ".".join([f'"{k}"' for k in keys])


class SQLiteDialect(Dialect):
    """``rowids``: bounds on the rowids a statement may select (from ``rowid_blocks``),
    which the sets computed over the whole store (the full-text match, an issue's events)
    are then restricted to: a statement over one hour or one range of rows computes only
    its part of them. ``expansions``: per full-text term (its words), an equivalent FTS5
    query with each prefix replaced by the indexed words it starts."""

    true = "1"
    false = "0"

    def __init__(
        self, rowids: tuple[int, int] | None = None, expansions: Expansions | None = None
    ) -> None:
        self.rowids = rowids
        self.expansions = expansions

    def timestamp(self, value: datetime) -> Any:
        return format_timestamp(value)

    def number(self, value: int | float, p: Params) -> str:
        return p.add(value)

    def any_of(self, column: str, values: Sequence[str], p: Params) -> str:
        if len(values) == 1:
            return f"{column} = {p.add(values[0])}"
        return f"{column} IN ({', '.join(p.add(v) for v in values)})"

    def tags_all(self, tags: Sequence[str], p: Params) -> str:
        return " AND ".join(self.tags_any((tag,), p) for tag in tags)

    def tags_any(self, tags: Sequence[str], p: Params) -> str:
        condition = self.any_of("t.tag", tags, p)
        return f"EXISTS (SELECT 1 FROM event_tags t WHERE {condition} AND t.event_rowid = e.rowid)"

    def tag_range(self, low: str, high: str | None, p: Params) -> str:
        condition = f"t.tag >= {p.add(low)}"  # placeholders in text order
        if high is not None:
            condition += f" AND t.tag < {p.add(high)}"
        return f"EXISTS (SELECT 1 FROM event_tags t WHERE {condition} AND t.event_rowid = e.rowid)"

    def has_tag(self) -> str:
        return "e.tags <> '[]'"

    def issue_events(self, condition: str, p: Params) -> str:
        within = self._within("ei.event_rowid", p)
        return (
            "e.rowid IN (SELECT ei.event_rowid FROM event_issues ei"
            f" JOIN issues i ON i.id = ei.issue_id WHERE {condition}{within})"
        )

    def text(
        self,
        words: Sequence[str],
        phrase: bool,
        p: Params,
        *,
        drives: bool = True,
        match: str | None = None,
    ) -> str:
        # "+e.rowid" keeps SQLite from driving the query by the full-text index (_select).
        plus = "" if drives else "+"
        if match is None and not phrase and self.expansions is not None:
            match = self.expansions.get(tuple(words))
        query = fts_query(words, phrase) if match is None else match
        return (
            f"{plus}e.rowid IN (SELECT rowid FROM events_fts"
            f" WHERE events_fts MATCH {p.add(query)}{self._within('rowid', p)})"
        )

    def _within(self, rowid: str, p: Params) -> str:
        if self.rowids is None:
            return ""
        low, high = self.rowids
        return f" AND {rowid} BETWEEN {p.add(low)} AND {p.add(high)}"

    # -- data paths: each use binds the path again (``?`` are positional) ----------

    def _path(self, field: Field, p: Params) -> str:
        if isinstance(field, IndexedField):
            return field.literal
        return p.add(_json_path(field.name, field.path))

    def _value(self, field: Field, p: Params) -> str:
        return f"json_extract({JSON_COLUMNS[field.name]}, {self._path(field, p)})"

    def _type(self, field: Field, p: Params) -> str:
        return f"json_type({JSON_COLUMNS[field.name]}, {self._path(field, p)})"

    def json_in(self, field: Field, values: Sequence[Value], p: Params) -> str:
        strings = list(dict.fromkeys(v for v in values if isinstance(v, str)))
        numbers = list(
            dict.fromkeys(
                v for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            )
        )
        kinds = list(
            dict.fromkeys(_json_kind(v) for v in values if v is None or v is True or v is False)
        )
        parts = []
        if strings:
            part = f"{self._value(field, p)} IN ({', '.join(p.add(s) for s in strings)})"
            # json_extract gives an object or array as its JSON text: only a literal
            # that starts like one could be mistaken for it.
            if any(s[:1] in ("{", "[") for s in strings):
                part = f"({part} AND {self._type(field, p)} = 'text')"
            parts.append(part)
        if numbers:
            # true and false come back as 1 and 0: the type tells them from numbers.
            parts.append(
                f"({self._type(field, p)} IN {_NUMBER_TYPES} AND"
                f" {self._value(field, p)} IN ({', '.join(p.add(n) for n in numbers)}))"
            )
        if kinds:
            parts.append(f"{self._type(field, p)} IN ({', '.join(p.add(k) for k in kinds)})")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def json_compare(self, field: Field, op: str, value: int | float, p: Params) -> str:
        return (
            f"({self._type(field, p)} IN {_NUMBER_TYPES} AND"
            f" {self._value(field, p)} {op} {p.add(value)})"
        )

    def json_range(self, field: Field, low: str, high: str | None, p: Params) -> str:
        condition = f"{self._type(field, p)} = 'text' AND {self._value(field, p)} >= {p.add(low)}"
        if high is not None:
            condition += f" AND {self._value(field, p)} < {p.add(high)}"
        return f"({condition})"

    def json_exists(self, field: Field, p: Params) -> str:
        return f"{self._type(field, p)} IS NOT NULL"

    def index_literal(self, root: str, keys: Sequence[str]) -> str:
        if not keys or not all(_INDEX_KEY.fullmatch(k) for k in keys):
            raise ValueError("index: keys must match [A-Za-z0-9_]+")
        return "'$." + ".".join(keys) + "'"

    def index_expression(self, root: str, keys: Sequence[str]) -> str:
        """The expression an index is built on, as the compiler writes it (``e.``
        resolves to the same column, so SQLite matches the two)."""
        return f"json_extract({root}, {self.index_literal(root, keys)})"


DIALECT = SQLiteDialect()
