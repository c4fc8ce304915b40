"""One WHERE compiler for both SQL backends: a ``Query``'s fixed fields and its filter
AST (``filters.nodes``), with what differs between SQLite and PostgreSQL in a small
dialect per backend (``sqlite/_dialect.py``, ``postgres/_dialect.py``).

Identifiers come from the allow-lists below; every value and JSON path is bound. The
meaning is ``filters.evaluate.matches``: every term is true or false, never unknown.
A leaf may be NULL where the reference says false (NULL and false select alike under
AND and OR), and ``NOT x`` is written ``(x) IS NOT TRUE``, so a term on a missing value
is false and its negation true.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from eventcollector.filters import (
    DATA_ROOTS,
    And,
    AnyOf,
    Compare,
    Exists,
    Field,
    Filter,
    Not,
    Or,
    Prefix,
    Text,
    Value,
    search_terms,
)
from eventcollector.model import Severity
from eventcollector.query import Query

__all__ = [
    "SEVERITY_NAMES",
    "Dialect",
    "IndexedField",
    "Params",
    "compile_where",
    "prefix_bounds",
]

#: Fixed filter fields -> column (``tag`` has its own table or array).
COLUMNS = {
    "id": "e.id",
    "timestamp": "e.timestamp",
    "system": "e.system",
    "event_type": "e.event_type",
    "severity": "e.severity",
    "title": "e.title",
    "description": "e.description",
    "correlation_id": "e.correlation_id",
    "source_component": "e.source_component",
    "duration_ms": "e.duration_ms",
}
#: data/metadata -> column.
JSON_COLUMNS = {"data": "e.data", "metadata": "e.metadata"}
_NOT_TEXT = frozenset({"timestamp", "duration_ms"})
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_SQL_OPS = {"=": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class Params:
    """Bound values and their placeholders: ``?`` in order (a backend with numbered
    placeholders overrides ``add``)."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return "?"


class IndexedField(Field, frozen=True):
    """A data/metadata path with an expression index: ``literal`` is the dialect's
    expression text for it, built from the index registry (keys ``[A-Za-z0-9_]+``), so
    the query says exactly what the index DDL says."""

    literal: str = ""


class Dialect(ABC):
    """What SQLite and PostgreSQL write differently; ``p`` receives bound values."""

    true = "TRUE"
    false = "FALSE"

    @abstractmethod
    def timestamp(self, value: datetime) -> Any:
        """A timestamp as bound for comparison with ``e.timestamp``."""

    @abstractmethod
    def number(self, value: int | float, p: Params) -> str:
        """A placeholder for a number compared with ``e.duration_ms``."""

    @abstractmethod
    def any_of(self, column: str, values: Sequence[str], p: Params) -> str:
        """A text column equal to one of ``values``."""

    @abstractmethod
    def tags_all(self, tags: Sequence[str], p: Params) -> str: ...

    @abstractmethod
    def tags_any(self, tags: Sequence[str], p: Params) -> str: ...

    @abstractmethod
    def tag_range(self, low: str, high: str | None, p: Params) -> str:
        """Some tag in [low, high) (high None: unbounded)."""

    @abstractmethod
    def has_tag(self) -> str: ...

    @abstractmethod
    def issue_events(self, condition: str, p: Params) -> str:
        """The event is in an issue (``issues i``) for which ``condition`` holds (its
        values already in ``p``)."""

    @abstractmethod
    def text(
        self,
        words: Sequence[str],
        phrase: bool,
        p: Params,
        *,
        drives: bool = True,
        match: str | None = None,
    ) -> str:
        """Full text: each word a prefix of a word of title or description; a phrase's
        words adjacent and in order within one of them."""

    @abstractmethod
    def json_in(self, field: Field, values: Sequence[Value], p: Params) -> str:
        """The value at a data path equals one of ``values``, each within its JSON type."""

    @abstractmethod
    def json_compare(self, field: Field, op: str, value: int | float, p: Params) -> str:
        """The value at a data path is a number (not a boolean) and compares so."""

    @abstractmethod
    def json_range(self, field: Field, low: str, high: str | None, p: Params) -> str:
        """The value at a data path is a string in [low, high)."""

    @abstractmethod
    def json_exists(self, field: Field, p: Params) -> str:
        """The key at a data path exists (its value may be null)."""

    @abstractmethod
    def index_literal(self, root: str, keys: Sequence[str]) -> str:
        """The expression text of an indexed path (``IndexedField.literal``)."""


def compile_where(
    query: Query,
    dialect: Dialect,
    p: Params,
    *,
    search_drives: bool = True,
    match: str | None = None,
) -> str:
    """The WHERE clause of ``query`` (with leading keyword, or empty); values go to ``p``.

    ``search_drives`` and ``match`` concern ``query.search`` (SQLite: see ``_select``).
    """
    d = dialect
    clauses: list[str] = []
    for column, values in (
        ("e.system", query.systems),
        ("e.severity", query.severities),
        ("e.event_type", query.event_types),
    ):
        if values:
            clauses.append(d.any_of(column, values, p))
    if query.since is not None:
        clauses.append(f"e.timestamp >= {p.add(d.timestamp(query.since))}")
    if query.until is not None:
        clauses.append(f"e.timestamp < {p.add(d.timestamp(query.until))}")
    if query.correlation_id is not None:
        clauses.append(f"e.correlation_id = {p.add(query.correlation_id)}")
    if query.source_components:
        clauses.append(d.any_of("e.source_component", query.source_components, p))
    if query.min_duration_ms is not None:
        clauses.append(f"e.duration_ms >= {d.number(query.min_duration_ms, p)}")
    if query.ids:
        clauses.append(d.any_of("e.id", query.ids, p))
    if query.tags_all:
        clauses.append(d.tags_all(query.tags_all, p))
    if query.tags_any:
        clauses.append(d.tags_any(query.tags_any, p))
    if query.search is not None:
        words = search_terms(query.search)
        if not words:
            raise ValueError("search: no words to search for")
        clauses.append(d.text(words, False, p, drives=search_drives, match=match))
    if query.where is not None:
        clauses.append(_node(query.where, d, p))
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def _node(node: Filter, d: Dialect, p: Params) -> str:
    return _COMPILERS[type(node)](node, d, p)  # one lookup, not a chain of isinstance


def _and(node: And, d: Dialect, p: Params) -> str:
    return "(" + " AND ".join([_node(n, d, p) for n in node.operands]) + ")"


def _or(node: Or, d: Dialect, p: Params) -> str:
    return "(" + " OR ".join([_node(n, d, p) for n in node.operands]) + ")"


def _not(node: Not, d: Dialect, p: Params) -> str:
    return f"({_node(node.operand, d, p)}) IS NOT TRUE"


def _text(node: Text, d: Dialect, p: Params) -> str:
    return d.text(node.words, node.phrase and len(node.words) > 1, p) if node.words else d.true


def _compare(node: Compare, d: Dialect, p: Params) -> str:
    if node.field.name in DATA_ROOTS:
        if node.op == "=":
            return d.json_in(node.field, (node.value,), p)
        return d.json_compare(node.field, node.op, node.value, p)  # type: ignore[arg-type]
    return _fixed_compare(node, d, p)


def _any_of(node: AnyOf, d: Dialect, p: Params) -> str:
    if node.field.name in DATA_ROOTS:
        return d.json_in(node.field, node.values, p)
    return _fixed_any_of(node, d, p)


def _prefix(node: Prefix, d: Dialect, p: Params) -> str:
    field = node.field
    if field.name in DATA_ROOTS:
        return d.json_range(field, *prefix_bounds(node.prefix), p)
    low, high = prefix_bounds(node.prefix)
    if field.name == "tag":
        return d.tag_range(low, high, p)
    if field.name == "fingerprint":
        return d.issue_events(_range("i.fingerprint", low, high, p) if low else d.true, p)
    column = COLUMNS[field.name]
    if not low:
        return f"{column} IS NOT NULL"
    return f"({_range(column, low, high, p)})"


def _range(column: str, low: str, high: str | None, p: Params) -> str:
    condition = f"{column} >= {p.add(low)}"  # placeholders in text order
    if high is not None:
        condition += f" AND {column} < {p.add(high)}"
    return condition


def _exists(node: Exists, d: Dialect, p: Params) -> str:
    field = node.field
    if field.name in DATA_ROOTS:
        return d.json_exists(field, p)
    if field.name == "tag":
        return d.has_tag()
    if field.name == "fingerprint":
        return d.issue_events(d.true, p)
    column = COLUMNS[field.name]
    return f"{column} IS NOT NULL" if field.name in _NOT_TEXT else f"{column} <> ''"


_COMPILERS: dict[type, Callable[[Any, Dialect, Params], str]] = {
    And: _and,
    Or: _or,
    Not: _not,
    Text: _text,
    Compare: _compare,
    AnyOf: _any_of,
    Prefix: _prefix,
    Exists: _exists,
}


def _severity_names(op: str, rank: int) -> list[str]:
    return list(SEVERITY_NAMES[op, rank])


#: (operator, rank) -> the severities that compare so: built once, not per filter.
SEVERITY_NAMES = {
    (op, rank): tuple(s.value for s in Severity if test(s.rank, rank))
    for op, test in _OPS.items()
    for rank in range(len(Severity))
}


def _fixed_compare(node: Compare, d: Dialect, p: Params) -> str:
    name, value = node.field.name, node.value
    if name == "tag":
        return d.tags_any((value,), p)  # type: ignore[arg-type]
    if name == "fingerprint":
        return d.issue_events(f"i.fingerprint = {p.add(value)}", p)
    if name == "severity" and node.op != "=":
        names = _severity_names(node.op, value)  # type: ignore[arg-type]
        return d.any_of("e.severity", names, p) if names else d.false
    op = _SQL_OPS[node.op]
    if name == "timestamp":
        return f"e.timestamp {op} {p.add(d.timestamp(value))}"  # type: ignore[arg-type]
    if name == "duration_ms":
        return f"e.duration_ms {op} {d.number(value, p)}"  # type: ignore[arg-type]
    return f"{COLUMNS[name]} {op} {p.add(value)}"


def _fixed_any_of(node: AnyOf, d: Dialect, p: Params) -> str:
    name = node.field.name
    if name == "tag":
        return d.tags_any(node.values, p)  # type: ignore[arg-type]
    if name == "fingerprint":
        return d.issue_events(d.any_of("i.fingerprint", node.values, p), p)  # type: ignore[arg-type]
    if name in _NOT_TEXT:
        terms = [_fixed_compare(Compare(node.field, "=", v), d, p) for v in node.values]
        return "(" + " OR ".join(terms) + ")"
    return d.any_of(COLUMNS[name], node.values, p)  # type: ignore[arg-type]


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """[low, high): exactly the strings that start with ``prefix``, in code-point order
    (SQLite's BINARY and PostgreSQL's "C" collation order UTF-8 text so), case-sensitive
    as the reference is; high None when no string past them exists."""
    if prefix and prefix[-1] < "\ud7ff":  # the common case: the last character's successor
        return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
    chars = list(prefix)
    while chars:
        following = ord(chars.pop()) + 1
        if following == 0xD800:  # surrogates are not characters
            following = 0xE000
        if following <= 0x10FFFF:
            return prefix, "".join(chars) + chr(following)
    return prefix, None
