"""Tokens of the filter language, one at a time, each with its 1-based column.

A field term (``severity:>=warning``, ``data."a.b":[1, 2]``, ``tag:*``) is lexed as
one token carrying its path, operator, shape and raw values, because what follows
``field:`` has its own rules (colons belong to the value, ``[`` opens a list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["FilterError", "Lexer", "RawValue", "Token"]

MAX_LIST_VALUES = 1_000

_SPACE = re.compile(r"\s*")
# A bare word or value ends at whitespace, a parenthesis, a quote or a bracket.
_BARE = re.compile(r'[^\s()"\[\]]+')
_LIST_BARE = re.compile(r'[^\s()"\[\],]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_KEY = r'(?:"(?:[^"\\]|\\.)*"|[^\s.:"()\[\]]+)'
_FIELD = re.compile(rf'([^\s.:"()\[\]]+)((?:\.{_KEY})*):', re.DOTALL)
_PATH_KEY = re.compile(r'\.(?:"((?:[^"\\]|\\.)*)"|([^\s.:"()\[\]]+))', re.DOTALL)
_OP = re.compile(r"[<>]=?")
_KEYWORDS = frozenset({"AND", "OR", "NOT"})

Kind = Literal["(", ")", "AND", "OR", "NOT", "-", "word", "phrase", "field", "end"]
Shape = Literal["one", "prefix", "list", "exists"]


class FilterError(ValueError):
    """A filter that does not parse; ``column`` (1-based) is where, when there is a where."""

    def __init__(self, message: str, column: int | None = None) -> None:
        where = "" if column is None else f" at column {column}"
        super().__init__(f"q: {message}{where}")
        self.reason = message
        self.column = column


@dataclass(frozen=True, slots=True)
class RawValue:
    """One value as written after ``field:``; the parser types it for its field."""

    text: str
    quoted: bool
    column: int


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    column: int
    text: str
    # For a field term only:
    path: tuple[str, ...] = ()
    op: str = "="
    shape: Shape = "one"
    values: tuple[RawValue, ...] = ()


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


class Lexer:
    """``next()`` returns the following token; at the end, an ``end`` token forever."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def next(self) -> Token:
        text = self.text
        pos = _SPACE.match(text, self.pos).end()  # type: ignore[union-attr]
        column = pos + 1
        if pos >= len(text):
            self.pos = pos
            return Token("end", column, "")
        char = text[pos]
        if char in "()":
            self.pos = pos + 1
            return Token(char, column, char)  # type: ignore[arg-type]
        if char == "-" and pos + 1 < len(text) and not text[pos + 1].isspace():
            self.pos = pos + 1
            return Token("-", column, "-")
        if char == '"':
            body = self._quoted(pos)
            return Token("phrase", column, body)
        if char in "[]":
            raise FilterError(f"unexpected {char!r}", column)
        field = _FIELD.match(text, pos)
        if field is not None:
            return self._field(field, column)
        match = _BARE.match(text, pos)
        assert match is not None  # pos is at a character no branch above takes
        self.pos = match.end()
        word = match.group()
        return Token(word if word in _KEYWORDS else "word", column, word)  # type: ignore[arg-type]

    def _quoted(self, pos: int) -> str:
        match = _QUOTED.match(self.text, pos)
        if match is None:
            raise FilterError("unclosed quote", pos + 1)
        self.pos = match.end()
        return _unescape(match.group(1))

    def _field(self, field: re.Match[str], column: int) -> Token:
        written = field.group()
        # The field pattern has checked the shape; each match is one key, in order.
        keys = (
            _unescape(key.group(1)) if key.group(2) is None else key.group(2)
            for key in _PATH_KEY.finditer(field.group(2))
        )
        path = (field.group(1), *keys)
        text = self.text
        pos = field.end()
        op_match = _OP.match(text, pos)
        op = "="
        if op_match is not None:
            op = op_match.group()
            pos = op_match.end()
        after = f"{written}{'' if op == '=' else op}"
        if pos >= len(text) or text[pos].isspace() or text[pos] == ")":
            raise FilterError(f"expected a value after {after!r}", pos + 1)
        char = text[pos]
        if char == "[":
            if op != "=":
                raise FilterError(f"a list cannot be compared (after {after!r})", pos + 1)
            values = self._list(pos)
            return Token("field", column, written, path, op, "list", values)
        if char == '"':
            body = self._quoted(pos)
            value = RawValue(body, True, pos + 1)
            if self.pos < len(text) and text[self.pos] == "*":
                self.pos += 1
                return Token("field", column, written, path, op, "prefix", (value,))
            return Token("field", column, written, path, op, "one", (value,))
        if char == "]":
            raise FilterError(f"expected a value after {after!r}", pos + 1)
        match = _BARE.match(text, pos)
        assert match is not None
        self.pos = match.end()
        raw = match.group()
        if raw == "*":
            return Token("field", column, written, path, op, "exists")
        if raw.endswith("*"):
            value = RawValue(raw[:-1], False, pos + 1)
            return Token("field", column, written, path, op, "prefix", (value,))
        return Token("field", column, written, path, op, "one", (RawValue(raw, False, pos + 1),))

    def _list(self, start: int) -> tuple[RawValue, ...]:
        text = self.text
        pos = start + 1
        values: list[RawValue] = []
        while True:
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if pos >= len(text):
                raise FilterError(f"expected ']' to close the '[' from column {start + 1}", pos + 1)
            if len(values) == MAX_LIST_VALUES:
                raise FilterError(f"more than {MAX_LIST_VALUES} values in a list", pos + 1)
            if text[pos] == '"':
                values.append(RawValue(self._quoted(pos), True, pos + 1))
                pos = self.pos
            else:
                match = _LIST_BARE.match(text, pos)
                if match is None:
                    raise FilterError("expected a value in the list", pos + 1)
                values.append(RawValue(match.group(), False, pos + 1))
                pos = match.end()
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if pos < len(text) and text[pos] == "]":
                self.pos = pos + 1
                return tuple(values)
            if pos >= len(text) or text[pos] != ",":
                raise FilterError("expected ',' or ']' in the list", pos + 1)
            pos += 1
