"""The filter AST: small frozen dataclasses a compiler can walk without the parser.

Every value is already typed and resolved when the parser builds a node: strings,
numbers (``int``/``float``), booleans and ``None`` as themselves, timestamps as aware
UTC datetimes (relative times resolved against the ``now`` the parser was given),
severities as their names for ``=`` and lists and as ranks (0 debug .. 4 critical)
for comparisons. ``str(node)`` is the canonical text, which parses back to an equal node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

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
    "Text",
    "Value",
]

#: A typed literal: what a field is compared with.
Value: TypeAlias = str | int | float | bool | datetime | None
Operator: TypeAlias = Literal["=", ">", ">=", "<", "<="]


class _Node:
    """``str(node)`` is the canonical text of every node."""

    __slots__ = ()

    def __str__(self) -> str:
        from eventcollector.filters._text import to_text  # the writer needs every node class

        return to_text(self)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Field:
    """A fixed field by its canonical name, or ``data``/``metadata`` with a key path."""

    name: str
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Compare(_Node):
    """``field:value`` (``=``) or ``field:>value`` and the other comparisons."""

    field: Field
    op: Operator
    value: Value


@dataclass(frozen=True, slots=True)
class AnyOf(_Node):
    """``field:[a, b, c]``: equals any of the values."""

    field: Field
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Prefix(_Node):
    """``field:val*``: a string value that starts with ``prefix`` (case-sensitive)."""

    field: Field
    prefix: str


@dataclass(frozen=True, slots=True)
class Exists(_Node):
    """``field:*``: a fixed field not null and not empty; a data path's key exists."""

    field: Field


@dataclass(frozen=True, slots=True)
class Text(_Node):
    """Full text over title and description: each word a case-insensitive prefix of a
    word there; for a phrase the words also adjacent and in order, within one field."""

    words: tuple[str, ...]
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class Not(_Node):
    operand: Filter


@dataclass(frozen=True, slots=True)
class And(_Node):
    operands: tuple[Filter, ...]

    def __post_init__(self) -> None:
        _check_operands(self.operands, "AND")


@dataclass(frozen=True, slots=True)
class Or(_Node):
    operands: tuple[Filter, ...]

    def __post_init__(self) -> None:
        _check_operands(self.operands, "OR")


def _check_operands(operands: tuple[Filter, ...], name: str) -> None:
    # One operand has no text of its own: it would not survive the canonical round trip.
    if len(operands) < 2:
        raise ValueError(f"q: {name} needs at least two operands")


Filter: TypeAlias = Compare | AnyOf | Prefix | Exists | Text | Not | And | Or
