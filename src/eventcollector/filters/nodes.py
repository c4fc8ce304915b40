"""The filter AST: small frozen structs a compiler can walk without the parser.

Every value is already typed and resolved when the parser builds a node: strings,
numbers (``int``/``float``), booleans and ``None`` as themselves, timestamps as aware
UTC datetimes (relative times resolved against the ``now`` the parser was given),
severities as their names for ``=`` and lists and as ranks (0 debug .. 4 critical)
for comparisons. ``str(node)`` is the canonical text, which parses back to an equal node.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Literal, TypeAlias, TypeGuard

import msgspec

from eventcollector.filters._literals import DATA_ROOTS, number
from eventcollector.model import Severity, format_timestamp

__all__ = [
    "And",
    "AnyOf",
    "Compare",
    "Exists",
    "Field",
    "Filter",
    "Not",
    "Operator",
    "Or",
    "Prefix",
    "Term",
    "Text",
    "Value",
    "is_filter",
    "terms",
    "to_text",
]

#: A typed literal: what a field is compared with.
Value: TypeAlias = str | int | float | bool | datetime | None
Operator: TypeAlias = Literal["=", ">", ">=", "<", "<="]


# msgspec Structs rather than frozen dataclasses: as immutable, and built five times
# faster (a dataclass sets each frozen field through object.__setattr__), a good part of
# a parse. Nodes hold no cycles, so the garbage collector need not track them.
class _Node(msgspec.Struct, frozen=True, gc=False):
    """``str(node)`` is the canonical text of every node."""

    def __str__(self) -> str:
        return to_text(self)  # type: ignore[arg-type]


class Field(msgspec.Struct, frozen=True, gc=False):
    """A fixed field by its canonical name, or ``data``/``metadata`` with a key path."""

    name: str
    path: tuple[str, ...] = ()


class Compare(_Node, frozen=True):
    """``field:value`` (``=``) or ``field:>value`` and the other comparisons."""

    field: Field
    op: Operator
    value: Value


class AnyOf(_Node, frozen=True):
    """``field:[a, b, c]``: equals any of the values."""

    field: Field
    values: tuple[Value, ...]


class Prefix(_Node, frozen=True):
    """``field:val*``: a string value that starts with ``prefix`` (case-sensitive)."""

    field: Field
    prefix: str


class Exists(_Node, frozen=True):
    """``field:*``: a fixed field not null and not empty; a data path's key exists."""

    field: Field


class Text(_Node, frozen=True):
    """Full text over title and description: each word a case-insensitive prefix of a
    word there; for a phrase the words also adjacent and in order, within one field."""

    words: tuple[str, ...]
    phrase: bool = False


class Not(_Node, frozen=True):
    operand: Filter


class And(_Node, frozen=True):
    operands: tuple[Filter, ...]

    def __post_init__(self) -> None:
        _check_operands(self.operands, "AND")


class Or(_Node, frozen=True):
    operands: tuple[Filter, ...]

    def __post_init__(self) -> None:
        _check_operands(self.operands, "OR")


def is_filter(value: object) -> TypeGuard[Filter]:
    """Whether ``value`` is a filter node (one check, not one per node type)."""
    return isinstance(value, _Node)


def _check_operands(operands: tuple[Filter, ...], name: str) -> None:
    # One operand has no text of its own: it would not survive the canonical round trip.
    if len(operands) < 2:
        raise ValueError(f"q: {name} needs at least two operands")


Filter: TypeAlias = Compare | AnyOf | Prefix | Exists | Text | Not | And | Or


# -- the canonical text: it parses back to an equal AST ---------------------------------
# Operands keep their structure (a nested AND or OR is parenthesised), values their type
# (a string that would read as a number, a keyword or a prefix is quoted), and timestamps
# are absolute ISO 8601 UTC, so the text means the same on any server at any time.

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_BARE_STRING = re.compile(r"[A-Za-z0-9_./@-][A-Za-z0-9_./@:+-]*")
_RESERVED = frozenset({"true", "false", "null"})
_SEVERITY_NAMES = tuple(s.value for s in Severity)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field(field: Field) -> str:
    if field.name not in DATA_ROOTS:
        return field.name
    keys = (k if _BARE_KEY.fullmatch(k) else _quote(k) for k in field.path)
    return ".".join((field.name, *keys))


def _string(text: str) -> str:
    bare = _BARE_STRING.fullmatch(text) and text not in _RESERVED and number(text) is None
    return text if bare else _quote(text)


def _value(value: Value) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return format_timestamp(value)
    return repr(value)


Term: TypeAlias = Compare | AnyOf | Prefix | Exists | Text


def terms(node: Filter) -> Iterator[Term]:
    """The terms of ``node`` under its AND, OR and NOT, in text order."""
    if isinstance(node, Not):
        yield from terms(node.operand)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from terms(operand)
    else:
        yield node


def _group(node: Filter, *kinds: type) -> str:
    text = to_text(node)
    return f"({text})" if isinstance(node, kinds) else text


def to_text(node: Filter) -> str:
    """The canonical text of ``node``."""
    if isinstance(node, Compare):
        if node.field.name == "severity" and node.op != "=":
            return f"severity:{node.op}{_SEVERITY_NAMES[node.value]}"  # type: ignore[index]
        op = "" if node.op == "=" else node.op
        return f"{_field(node.field)}:{op}{_value(node.value)}"
    if isinstance(node, AnyOf):
        return f"{_field(node.field)}:[{', '.join(_value(v) for v in node.values)}]"
    if isinstance(node, Prefix):
        text = node.prefix
        # "*" alone means exists; a prefix that cannot be bare is quoted before its "*".
        bare = text and _BARE_STRING.fullmatch(text)
        return f"{_field(node.field)}:{text if bare else _quote(text)}*"
    if isinstance(node, Exists):
        return f"{_field(node.field)}:*"
    if isinstance(node, Text):
        return _quote(" ".join(node.words)) if node.phrase else "-".join(node.words)
    if isinstance(node, Not):
        return "-" + _group(node.operand, And, Or)
    if isinstance(node, And):
        return " ".join(_group(operand, And, Or) for operand in node.operands)
    return " OR ".join(_group(operand, Or) for operand in node.operands)
