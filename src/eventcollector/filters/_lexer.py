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
_LIST_BARE = re.compile(r'[^\s()"\[\],]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
# One pattern finds the next token, so that a term costs one match. A bare word or value
# ends at whitespace, a parenthesis, a quote or a bracket; a field term runs to the end
# of its value unless that is a list (read by ``_list``).
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<neg>-)(?=\S)
    | (?P<paren>[()])
    | (?P<phrase>"(?:[^"\\]|\\.)*")
    | (?P<field>
        (?P<name>[^\s.:"()\[\]]+)
        (?P<keys>(?:\.(?:"(?:[^"\\]|\\.)*"|[^\s.:"()\[\]]+))*)
        :(?P<op>[<>]=?)?
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"(?P<star>\*)?|(?P<bare>[^\s()"\[\]]*))
      )
    | (?P<word>[^\s()"\[\]]+)
    | (?P<end>\Z)
    )""",
    re.VERBOSE | re.DOTALL,
)
# Group numbers: access by number is faster than by name.
_NAME, _PATH, _OPERATOR, _QUOTED_VALUE, _STAR, _BARE_VALUE = (
    _TOKEN.groupindex[g] for g in ("name", "keys", "op", "quoted", "star", "bare")
)
_KEYS = re.compile(r'\.(?:"((?:[^"\\]|\\.)*)"|([^\s.:"()\[\]]+))', re.DOTALL).finditer
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


@dataclass(slots=True)
class RawValue:
    """One value as written after ``field:``; the parser types it for its field."""

    text: str
    quoted: bool
    column: int


@dataclass(slots=True)
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
        match = _TOKEN.match(text, self.pos)
        if match is None:  # at a quote that never closes, or a bracket outside a list
            pos = _SPACE.match(text, self.pos).end()  # type: ignore[union-attr]
            char = text[pos]
            raise FilterError("unclosed quote" if char == '"' else f"unexpected {char!r}", pos + 1)
        kind = match.lastgroup or "end"  # every alternative is a named group
        self.pos = match.end()
        if kind == "field":
            return self._field(match)
        column = match.start(kind) + 1
        if kind == "word":
            word = match.group(kind)
            return Token(word if word in _KEYWORDS else "word", column, word)  # type: ignore[arg-type]
        if kind == "phrase":
            return Token("phrase", column, _unescape(match.group(kind)[1:-1]))
        if kind == "paren":
            return Token(match.group(kind), column, match.group(kind))  # type: ignore[arg-type]
        if kind == "neg":
            return Token("-", column, "-")
        return Token("end", column, "")

    def _quoted(self, pos: int) -> str:
        match = _QUOTED.match(self.text, pos)
        if match is None:
            raise FilterError("unclosed quote", pos + 1)
        self.pos = match.end()
        return _unescape(match.group(1))

    def _field(self, field: re.Match[str]) -> Token:
        name, keys, op, quoted, star, raw = field.group(
            _NAME, _PATH, _OPERATOR, _QUOTED_VALUE, _STAR, _BARE_VALUE
        )
        column = field.start(_NAME) + 1
        written = self.text[column - 1 : field.end(_PATH) + 1]
        path: tuple[str, ...] = (name,)
        if keys:  # the pattern has checked the shape: each match is one key, in order
            path = (name, *(_unescape(k[1]) if k[2] is None else k[2] for k in _KEYS(keys)))
        op = op or "="
        if quoted is not None:
            value = RawValue(_unescape(quoted), True, field.start(_QUOTED_VALUE))
            return Token("field", column, written, path, op, "prefix" if star else "one", (value,))
        if raw:
            if raw == "*":
                return Token("field", column, written, path, op, "exists")
            start = field.start(_BARE_VALUE) + 1
            if raw[-1] == "*":
                value = RawValue(raw[:-1], False, start)
                return Token("field", column, written, path, op, "prefix", (value,))
            return Token("field", column, written, path, op, "one", (RawValue(raw, False, start),))
        pos = field.end()
        after = written if op == "=" else written + op
        char = self.text[pos : pos + 1]
        if char == '"':
            raise FilterError("unclosed quote", pos + 1)
        if char == "[":
            if op != "=":
                raise FilterError(f"a list cannot be compared (after {after!r})", pos + 1)
            return Token("field", column, written, path, op, "list", self._list(pos))
        raise FilterError(f"expected a value after {after!r}", pos + 1)

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
