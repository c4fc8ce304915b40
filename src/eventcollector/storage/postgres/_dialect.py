"""PostgreSQL's side of the shared WHERE compiler (``storage._where``): ``$n``
placeholders, jsonb with each key bound (``->`` with a text key looks into objects
only, as the reference does: ``#>`` would index arrays), the ``search`` tsvector,
``text[]`` tags, timestamptz."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from eventcollector.filters import Field, Value
from eventcollector.storage import _where
from eventcollector.storage._where import JSON_COLUMNS, Dialect, IndexedField

__all__ = ["DIALECT", "Params", "PostgresDialect", "tsquery_text"]

_INDEX_KEY = re.compile(r"[A-Za-z0-9_]+")
_INT64 = 2**63
_TSQUERY = "to_tsquery('simple'::regconfig, {})"


class Params(_where.Params):
    """Numbered placeholders ($1, $2, ...) for bound values."""

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def tsquery_text(words: Sequence[str], phrase: bool) -> str:
    """``to_tsquery`` input: every word a prefix, ANDed or (a phrase) adjacent in order;
    words are letters and digits only (``search_terms``)."""
    return (" <-> " if phrase else " & ").join(f"{w}:*" for w in words)


def _json(value: Value) -> str:
    return orjson.dumps(value).decode()


class PostgresDialect(Dialect):
    def timestamp(self, value: datetime) -> Any:
        return value

    def number(self, value: int | float, p: _where.Params) -> str:
        if isinstance(value, int) and -_INT64 <= value < _INT64:
            return f"{p.add(value)}::bigint"
        return f"{p.add(float(value))}::float8"

    def any_of(self, column: str, values: Sequence[str], p: _where.Params) -> str:
        if len(values) == 1:
            return f"{column} = {p.add(values[0])}"
        return f"{column} = ANY({p.add(list(values))}::text[])"

    def tags_all(self, tags: Sequence[str], p: _where.Params) -> str:
        return f"e.tags @> {p.add(list(tags))}::text[]"

    def tags_any(self, tags: Sequence[str], p: _where.Params) -> str:
        return f"e.tags && {p.add(list(tags))}::text[]"

    def tag_range(self, low: str, high: str | None, p: _where.Params) -> str:
        condition = f"t.tag >= {p.add(low)}::text"
        if high is not None:
            condition += f" AND t.tag < {p.add(high)}::text"
        return f"EXISTS (SELECT 1 FROM unnest(e.tags) AS t(tag) WHERE {condition})"

    def has_tag(self) -> str:
        return "cardinality(e.tags) > 0"

    def issue_events(self, condition: str, p: _where.Params) -> str:
        return (
            "e.id IN (SELECT ei.event_id FROM event_issues ei"
            f" JOIN issues i ON i.id = ei.issue_id WHERE {condition})"
        )

    def text(
        self,
        words: Sequence[str],
        phrase: bool,
        p: _where.Params,
        *,
        drives: bool = True,
        match: str | None = None,
    ) -> str:
        query = _TSQUERY.format(p.add(tsquery_text(words, phrase)))
        if not phrase:
            return f"e.search @@ {query}"
        # ``search`` joins title and description: a phrase found there may span the
        # two, so the candidates are checked in each one (``event_words``: the same
        # words as ``search``, see _schema).
        return (
            f"(e.search @@ {query} AND (event_words(e.title) @@ {query}"
            f" OR event_words(e.description) @@ {query}))"
        )

    # -- data paths: the value expression is written once, its $n reused -------------

    def _value(self, field: Field, p: _where.Params) -> str:
        if isinstance(field, IndexedField):
            return field.literal
        keys = "".join(f" -> {p.add(k)}::text" for k in field.path)
        return f"({JSON_COLUMNS[field.name]}{keys})"

    def json_in(self, field: Field, values: Sequence[Value], p: _where.Params) -> str:
        value = self._value(field, p)
        # jsonb equality holds within one type only (5 is not "5", true is not 1).
        encoded = list(dict.fromkeys(_json(v) for v in values))
        if len(encoded) == 1:
            return f"{value} = {p.add(encoded[0])}::jsonb"
        return f"{value} = ANY({p.add(encoded)}::jsonb[])"

    def json_compare(self, field: Field, op: str, value: int | float, p: _where.Params) -> str:
        # jsonb orders types before values; the type test keeps numbers only (jsonb
        # comparison never fails, so the order of evaluation does not matter).
        expr = self._value(field, p)
        return f"(jsonb_typeof({expr}) = 'number' AND {expr} {op} {p.add(_json(value))}::jsonb)"

    def json_range(self, field: Field, low: str, high: str | None, p: _where.Params) -> str:
        expr = self._value(field, p)
        text = f"({expr} #>> '{{}}') COLLATE \"C\""
        condition = f"jsonb_typeof({expr}) = 'string' AND {text} >= {p.add(low)}::text"
        if high is not None:
            condition += f" AND {text} < {p.add(high)}::text"
        return f"({condition})"

    def json_exists(self, field: Field, p: _where.Params) -> str:
        return f"{self._value(field, p)} IS NOT NULL"

    def index_literal(self, root: str, keys: Sequence[str]) -> str:
        if root not in JSON_COLUMNS or not keys or not all(_INDEX_KEY.fullmatch(k) for k in keys):
            raise ValueError("index: keys must match [A-Za-z0-9_]+")
        # The keys are checked above: safe to write as literals.
        return "(" + " -> ".join([JSON_COLUMNS[root], *(f"'{k}'" for k in keys)]) + ")"

    def index_expression(self, root: str, keys: Sequence[str]) -> str:
        """The expression an index is built on (the compiler's, without the alias)."""
        return self.index_literal(root, keys).replace("e.", "", 1)


DIALECT = PostgresDialect()
