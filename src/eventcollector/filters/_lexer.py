"""Tokens of the filter language: one pattern match per token, with its 1-based column.

A field term (``severity:>=warning``, ``data."a.b":[1, 2]``, ``tag:*``) is one match
carrying its name, key path, operator and value, because what follows ``field:`` has
its own rules (colons belong to the value, ``[`` opens a list, read by ``read_list``).
The parser reads the groups of the match itself: a token object per term would cost
more than the match (the figure is parse + compile of 10 terms in 50 us).
"""

from __future__ import annotations

import re

__all__ = [
    "BARE",
    "KEYS",
    "KEYWORDS",
    "MAX_LIST_VALUES",
    "NAME",
    "OPERATOR",
    "QUOTED",
    "STAR",
    "TOKEN",
    "FilterError",
    "field_text",
    "key_path",
    "read_list",
    "scan_error",
    "unescape",
]

MAX_LIST_VALUES = 1_000

_SPACE = re.compile(r"\s*")
_LIST_BARE = re.compile(r'[^\s()"\[\],]+')
# A list of bare values, well formed: the common case, split without a match per value.
_PLAIN_LIST = re.compile(r'\[\s*+[^\s()"\[\],]++\s*+(?:,\s*+[^\s()"\[\],]++\s*+)*+\]')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
# One pattern finds the next token; its alternatives are named, so ``lastgroup`` is the
# token's kind. A bare word or value ends at whitespace, a parenthesis, a quote or a
# bracket; a field term runs to the end of its value unless that is a list. Possessive
# quantifiers: a word is never re-tried as a shorter one. A key may be empty here
# (``data..a:``), so that the field says so rather than the term reading as words.
TOKEN = re.compile(
    r"""\s*+(?:
      (?P<neg>-)(?=\S)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<phrase>"(?:[^"\\]|\\.)*+")
    | (?P<field>
        (?P<name>[^\s.:"()\[\]]++)
        (?P<keys>(?:\.(?:"(?:[^"\\]|\\.)*+"|[^\s.:"()\[\]]*+))*+)
        :(?P<op>[<>]=?)?
        (?:"(?P<quoted>(?:[^"\\]|\\.)*+)"(?P<star>\*)?|(?P<bare>[^\s()"\[\]]*+))
      )
    | (?P<word>[^\s()"\[\]]++)
    | (?P<end>\Z)
    )""",
    re.VERBOSE | re.DOTALL,
)
# Group numbers: access by number is faster than by name.
NAME, KEYS, OPERATOR, QUOTED, STAR, BARE = (
    TOKEN.groupindex[g] for g in ("name", "keys", "op", "quoted", "star", "bare")
)
_KEY = re.compile(r'\.(?:"((?:[^"\\]|\\.)*)"|([^\s.:"()\[\]]+))', re.DOTALL).finditer
KEYWORDS = frozenset({"AND", "OR", "NOT"})


class FilterError(ValueError):
    """A filter that does not parse; ``column`` (1-based) is where, when there is a where."""

    def __init__(self, message: str, column: int | None = None) -> None:
        where = "" if column is None else f" at column {column}"
        super().__init__(f"q: {message}{where}")
        self.reason = message
        self.column = column


def unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def scan_error(text: str, pos: int) -> FilterError:
    """Why no token starts at ``pos``: a quote that never closes, or a stray bracket."""
    pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
    char = text[pos]
    return FilterError("unclosed quote" if char == '"' else f"unexpected {char!r}", pos + 1)


def key_path(keys: str) -> tuple[str, ...]:
    """The keys of a field match's ``keys`` group (``.a."b.c"``): the pattern has checked
    the shape, so each match is one key, in order."""
    if '"' not in keys:
        return tuple(keys[1:].split("."))
    return tuple(unescape(k[1]) if k[2] is None else k[2] for k in _KEY(keys))


def field_text(field: re.Match[str]) -> str:
    """The field as written, with its colon (``data."a.b":``), for messages."""
    return field.string[field.start(NAME) : field.end(KEYS) + 1]


def read_list(text: str, start: int) -> tuple[list[tuple[str, bool, int]], int]:
    """The values of the list whose ``[`` is at ``start`` (text, quoted, column), and
    the position after its ``]``."""
    values: list[tuple[str, bool, int]] = []
    plain = _PLAIN_LIST.match(text, start)
    if plain is not None and plain.group().count(",") < MAX_LIST_VALUES:
        column = start + 2  # of the first part, after the "["
        for part in text[start + 1 : plain.end() - 1].split(","):
            value = part.strip()
            values.append((value, False, column + part.index(value)))
            column += len(part) + 1
        return values, plain.end()
    pos = start + 1
    while True:
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text):
            raise FilterError(f"expected ']' to close the '[' from column {start + 1}", pos + 1)
        if len(values) == MAX_LIST_VALUES:
            raise FilterError(f"more than {MAX_LIST_VALUES} values in a list", pos + 1)
        if text[pos] == '"':
            quoted = _QUOTED.match(text, pos)
            if quoted is None:
                raise FilterError("unclosed quote", pos + 1)
            values.append((unescape(quoted.group(1)), True, pos + 1))
            pos = quoted.end()
        else:
            bare = _LIST_BARE.match(text, pos)
            if bare is None:
                raise FilterError("expected a value in the list", pos + 1)
            values.append((bare.group(), False, pos + 1))
            pos = bare.end()
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == "]":
            return values, pos + 1
        if pos >= len(text) or text[pos] != ",":
            raise FilterError("expected ',' or ']' in the list", pos + 1)
        pos += 1
