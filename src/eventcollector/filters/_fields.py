"""Field names, aliases and literal typing: a field token becomes a typed node.

Each fixed field has a kind that decides which values and shapes it takes; paths
into ``data``/``metadata`` type an unquoted literal as JSON would (number,
``true``/``false``/``null``, else string) and a quoted one always as a string.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from eventcollector.filters._lexer import FilterError, RawValue, Token
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

__all__ = ["ALIASES", "FIXED_FIELDS", "field_node", "parse_duration"]

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


def _resolve(token: Token) -> tuple[Field, Kind]:
    name = token.path[0]
    if len(token.path) > 1:
        keys = token.path[1:]
        if name not in DATA_ROOTS:
            raise FilterError(f"unknown field {token.text[:-1]!r} (one of {_KNOWN})", token.column)
        if "" in keys:
            raise FilterError(f"empty key in {token.text[:-1]!r}", token.column)
        return Field(name, keys), "data"
    fixed = _FIXED.get(name)
    if fixed is None:
        if name in DATA_ROOTS:
            raise FilterError(f"{name}: give a key ({name}.KEY)", token.column)
        raise FilterError(f"unknown field {name!r} (one of {_KNOWN})", token.column)
    return fixed


def _finite(value: int | float, raw: RawValue) -> int | float:
    if type(value) is float and value in (_INFINITY, -_INFINITY):
        raise FilterError(f"number out of range: {raw.text!r}", raw.column)
    return value


def _data_literal(raw: RawValue) -> Value:
    if raw.quoted:
        return raw.text
    if raw.text in _JSON_WORDS:
        return _JSON_WORDS[raw.text]
    value = number(raw.text)
    return raw.text if value is None else _finite(value, raw)


_JSON_WORDS: dict[str, Value] = {"true": True, "false": False, "null": None}


def _timestamp(raw: RawValue, now: datetime) -> datetime:
    relative = _RELATIVE.fullmatch(raw.text)
    try:
        if relative is not None:
            amount, unit = relative.groups()
            return now - timedelta(seconds=float(amount) * _SECONDS[unit])
        return parse_timestamp(raw.text)
    except (ValueError, OverflowError):
        raise FilterError(
            f"timestamp: expected ISO 8601 or a relative time (-30m, -2h, -7d), got {raw.text!r}",
            raw.column,
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


def _severity(raw: RawValue) -> str:
    name = _SEVERITY_NAMES.get(raw.text)  # Enum's own lookup costs a microsecond
    if name is not None:
        return name
    try:
        return Severity(raw.text).value
    except ValueError:
        raise FilterError(
            f"unknown severity {raw.text!r} (one of {_SEVERITIES})", raw.column
        ) from None


_SEVERITY_NAMES = {s.value: s.value for s in Severity}
_SEVERITY_RANKS = {s.value: s.rank for s in Severity}


def _value(kind: Kind, raw: RawValue, now: datetime, token: Token) -> Value:
    if kind == "string":
        return raw.text
    if kind == "data":
        return _data_literal(raw)
    if kind == "timestamp":
        return _timestamp(raw, now)
    if kind == "severity":
        return _severity(raw)
    if raw.quoted:
        raise FilterError(f"{token.text!r} takes a number, not a quoted string", raw.column)
    value = number(raw.text)
    if value is None:
        raise FilterError(f"{token.text!r} takes a number, got {raw.text!r}", raw.column)
    return _finite(value, raw)


def field_node(token: Token, now: datetime) -> Filter:
    """The node of one field term, its values typed for the field."""
    field, kind = _resolve(token)
    shape = token.shape
    if shape == "exists":
        if token.op != "=":
            raise FilterError(f"'*' cannot be compared (after {token.text!r})", token.column)
        return Exists(field)
    if shape == "list":
        return AnyOf(field, tuple(_value(kind, raw, now, token) for raw in token.values))
    raw = token.values[0]
    if shape == "prefix":
        if kind not in ("string", "data") or token.op != "=":
            raise FilterError(f"{token.text!r} takes no prefix ('*')", raw.column)
        return Prefix(field, raw.text)
    value = _value(kind, raw, now, token)
    op: Operator = token.op  # type: ignore[assignment]
    if op == "=":
        return Compare(field, op, value)
    if kind == "string":
        raise FilterError(f"{token.text!r} takes no comparison ({op!r})", raw.column)
    if kind == "severity":
        return Compare(field, op, _SEVERITY_RANKS[value])  # type: ignore[index]
    if kind == "data" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise FilterError(
            f"{token.text + op!r} compares numbers only, got {raw.text!r}", raw.column
        )
    return Compare(field, op, value)


def utc_now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else parse_timestamp(now, "now")
