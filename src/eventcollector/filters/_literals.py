"""Literal rules shared by the parser and the canonical text: what reads as a number,
which roots hold key paths."""

from __future__ import annotations

import re

__all__ = ["DATA_ROOTS", "number"]

#: Fields whose value is a JSON object addressed by a key path.
DATA_ROOTS = ("data", "metadata")

# JSON's number syntax: "007" and "1." stay strings, as they would in JSON.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INT64 = 2**63


def number(text: str) -> int | float | None:
    """``text`` as a JSON number, or None; integers past 64 bits become floats
    (no backend binds them as integers)."""
    if text.isdigit() and len(text) < 19 and (text[0] != "0" or text == "0"):
        return int(text)  # the common case, without the pattern
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    if match.group(1) is None and match.group(2) is None:
        value = int(text)
        return value if -_INT64 <= value < _INT64 else float(value)
    return float(text)
