"""The canonical text of a filter: it parses back to an equal AST.

Operands keep their structure (a nested AND or OR is parenthesised), values their
type (a string that would read as a number, a keyword or a prefix is quoted), and
timestamps are absolute ISO 8601 UTC, so the text means the same on any server at
any time.
"""

from __future__ import annotations

import re
from datetime import datetime

from eventcollector.filters._fields import DATA_ROOTS, number
from eventcollector.filters.nodes import (
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
)
from eventcollector.model import Severity, format_timestamp

__all__ = ["to_text"]

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
