"""Field names, aliases and literal typing: a field token becomes a typed node.

Each fixed field has a kind that decides which values and shapes it takes; paths
into ``data``/``metadata`` type an unquoted literal as JSON would (number,
``true``/``false``/``null``, else string) and a quoted one always as a string.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from eventcollector.filters._lexer import (
    BARE,
    KEYS,
    NAME,
    OPERATOR,
    QUOTED,
    STAR,
    FilterError,
    field_text,
    key_path,
    read_list,
    unescape,
)
from eventcollector.filters._literals import DATA_ROOTS, number
from eventcollector.filters.nodes import (
    AnyOf,
    Compare,
    Exists,
    Field,
    Filter,
    Operator,
    Prefix,
    Value,
)
from eventcollector.model import Severity, parse_timestamp

__all__ = ["ALIASES", "FIXED_FIELDS", "TIMESTAMP", "field_node", "parse_duration"]

Kind = Literal["string", "timestamp", "severity", "number", "data"]

FIXED_FIELDS: dict[str, Kind] = {
    "id": "string",
    "timestamp": "timestamp",
    "system": "string",
    "event_type": "string",
    "severity": "severity",
    "title": "string",
    "description": "string",
    "tag": "string",
    "correlation_id": "string",
    "source_component": "string",
    "duration_ms": "number",
    "fingerprint": "string",
}
ALIASES = {
    "type": "event_type",
    "level": "severity",
    "tags": "tag",
    "component": "source_component",
    "duration": "duration_ms",
}
_DURATION = r"([0-9]+(?:\.[0-9]+)?)([smhdw])"
_RELATIVE = re.compile("-" + _DURATION)
_AGE = re.compile(_DURATION)
_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_INFINITY = float("inf")
_SEVERITIES = ", ".join(s.value for s in Severity)
_KNOWN = ", ".join([*FIXED_FIELDS, *ALIASES, "data.KEY", "metadata.KEY"])
# Every name and alias with its (shared, immutable) Field: a parse builds none of them.
_FIXED: dict[str, tuple[Field, Kind]] = {
    name: (Field(ALIASES.get(name, name)), FIXED_FIELDS[ALIASES.get(name, name)])
    for name in [*FIXED_FIELDS, *ALIASES]
}
#: The one Field of ``timestamp``: a term on it makes the AST depend on ``now``.
TIMESTAMP = _FIXED["timestamp"][0]


def _resolve(name: str, keys: str, field: re.Match[str]) -> tuple[Field, Kind]:
    if keys:
        if name not in DATA_ROOTS:
            written = field_text(field)[:-1]
            raise FilterError(f"unknown field {written!r} (one of {_KNOWN})", field.start(NAME) + 1)
        path = key_path(keys)
        if "" in path:
            raise FilterError(f"empty key in {field_text(field)[:-1]!r}", field.start(NAME) + 1)
        return Field(name, path), "data"
    fixed = _FIXED.get(name)
    if fixed is None:
        column = field.start(NAME) + 1
        if name in DATA_ROOTS:
            raise FilterError(f"{name}: give a key ({name}.KEY)", column)
        raise FilterError(f"unknown field {name!r} (one of {_KNOWN})", column)
    return fixed


def _finite(value: int | float, text: str, column: int) -> int | float:
    if type(value) is float and value in (_INFINITY, -_INFINITY):
        raise FilterError(f"number out of range: {text!r}", column)
    return value


def _data_literal(text: str, quoted: bool, column: int) -> Value:
    if quoted:
        return text
    if text in _JSON_WORDS:
        return _JSON_WORDS[text]
    value = number(text)
    return text if value is None else _finite(value, text, column)


_JSON_WORDS: dict[str, Value] = {"true": True, "false": False, "null": None}


def _timestamp(text: str, column: int, now: datetime) -> datetime:
    relative = _RELATIVE.fullmatch(text)
    try:
        if relative is not None:
            amount, unit = relative.groups()
            return now - timedelta(seconds=float(amount) * _SECONDS[unit])
        return parse_timestamp(text)
    except (ValueError, OverflowError):
        raise FilterError(
            f"timestamp: expected ISO 8601 or a relative time (-30m, -2h, -7d), got {text!r}",
            column,
        ) from None


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1w`` (decimals allowed): a relative time of
    ``timestamp:`` without its minus sign. ValueError for anything else."""
    found = _AGE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"expected a duration such as 90s, 30m, 2h, 7d or 1w, got {text!r}")
    amount, unit = found.groups()
    try:
        return timedelta(seconds=float(amount) * _SECONDS[unit])
    except OverflowError:
        raise ValueError(f"duration out of range: {text!r}") from None


def _severity(text: str, column: int) -> str:
    name = _SEVERITY_NAMES.get(text)  # Enum's own lookup costs a microsecond
    if name is not None:
        return name
    try:
        return Severity(text).value
    except ValueError:
        raise FilterError(f"unknown severity {text!r} (one of {_SEVERITIES})", column) from None


_SEVERITY_NAMES = {s.value: s.value for s in Severity}
_SEVERITY_RANKS = {s.value: s.rank for s in Severity}


def _value(
    kind: Kind, text: str, quoted: bool, column: int, now: datetime, field: re.Match[str]
) -> Value:
    if kind == "string":
        return text
    if kind == "data":
        return _data_literal(text, quoted, column)
    if kind == "timestamp":
        return _timestamp(text, column, now)
    if kind == "severity":
        return _severity(text, column)
    if quoted:
        raise FilterError(f"{field_text(field)!r} takes a number, not a quoted string", column)
    value = number(text)
    if value is None:
        raise FilterError(f"{field_text(field)!r} takes a number, got {text!r}", column)
    return _finite(value, text, column)


def field_node(field: re.Match[str], now: datetime) -> tuple[Filter, int]:
    """The node of one field term (a ``TOKEN`` match of kind ``field``), its values typed
    for the field, and where the term ends (past the match when its value is a list)."""
    name, keys, op, quoted, star, text = field.group(NAME, KEYS, OPERATOR, QUOTED, STAR, BARE)
    target, kind = _resolve(name, keys, field)
    end = field.end()
    if quoted is not None:
        column = field.start(QUOTED)
        text = unescape(quoted)
        if star:
            return _prefix(target, kind, op, text, field, column), end
    elif text:
        column = field.start(BARE) + 1
        if text[-1] == "*":
            if text == "*":
                if op:
                    written = field_text(field)
                    column = field.start(NAME) + 1
                    raise FilterError(f"'*' cannot be compared (after {written!r})", column)
                return Exists(target), end
            return _prefix(target, kind, op, text[:-1], field, column), end
    else:
        return _list_or_nothing(target, kind, op, field, now)
    value = _value(kind, text, quoted is not None, column, now, field)
    if op is None:
        return Compare(target, "=", value), end
    return _compare(target, kind, op, value, text, column, field), end  # type: ignore[arg-type]


def _prefix(
    target: Field, kind: Kind, op: str | None, text: str, field: re.Match[str], column: int
) -> Filter:
    if kind not in ("string", "data") or op:
        raise FilterError(f"{field_text(field)!r} takes no prefix ('*')", column)
    return Prefix(target, text)


def _compare(
    target: Field,
    kind: Kind,
    op: Operator,
    value: Value,
    text: str,
    column: int,
    field: re.Match[str],
) -> Filter:
    if kind == "string":
        raise FilterError(f"{field_text(field)!r} takes no comparison ({op!r})", column)
    if kind == "severity":
        return Compare(target, op, _SEVERITY_RANKS[value])  # type: ignore[index]
    if kind == "data" and (isinstance(value, bool) or not isinstance(value, int | float)):
        written = field_text(field) + op
        raise FilterError(f"{written!r} compares numbers only, got {text!r}", column)
    return Compare(target, op, value)


def _list_or_nothing(
    target: Field, kind: Kind, op: str | None, field: re.Match[str], now: datetime
) -> tuple[Filter, int]:
    text = field.string
    pos = field.end()
    written = field_text(field)
    after = written if op is None else written + op
    char = text[pos : pos + 1]
    if char == '"':
        raise FilterError("unclosed quote", pos + 1)
    if char != "[":
        raise FilterError(f"expected a value after {after!r}", pos + 1)
    if op:
        raise FilterError(f"a list cannot be compared (after {after!r})", pos + 1)
    raws, end = read_list(text, pos)
    if kind == "string":
        return AnyOf(target, tuple([raw[0] for raw in raws])), end
    values = tuple([_value(kind, t, quoted, column, now, field) for t, quoted, column in raws])
    return AnyOf(target, values), end


def utc_now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else parse_timestamp(now, "now")
