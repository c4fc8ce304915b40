"""Recursive descent over the tokens: OR looser than AND, AND implicit between terms.

    filter  := or_expr END
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= unary (["AND"] unary)*
    unary   := ("NOT" | "-") unary | "(" or_expr ")" | field | word | phrase

Limits are enforced while parsing, so a hostile filter costs no more than a
refused one: 4 KiB of text, 64 terms, nesting (parentheses and negations) 8 deep,
1,000 values in one list (the lexer).

The ASTs of the last ``CACHE_SIZE`` texts that name no timestamp (whose meaning does
not depend on ``now``) are kept: a UI or a dashboard sends the same filter again and
again, and the nodes are immutable, so every caller may share one.
"""

from __future__ import annotations

import threading
from datetime import datetime

from eventcollector.filters._fields import field_node, utc_now
from eventcollector.filters._lexer import FilterError, Lexer, Token
from eventcollector.filters._search import search_terms
from eventcollector.filters.nodes import And, Filter, Not, Or, Text

__all__ = ["CACHE_SIZE", "MAX_DEPTH", "MAX_TERMS", "MAX_TEXT_BYTES", "clear_cache", "parse_filter"]

MAX_TEXT_BYTES = 4_096
MAX_TERMS = 64
MAX_DEPTH = 8
CACHE_SIZE = 1_024

_parsed: dict[str, Filter] = {}  # oldest first
_parsed_lock = threading.Lock()

_ENDS_AND = frozenset({"OR", ")", "end"})


def parse_filter(text: str, *, now: datetime | None = None) -> Filter:
    """The AST of ``text``; relative times are resolved against ``now`` (default: now).

    Raises ``FilterError`` (a ``ValueError``) naming the column of the first problem.
    """
    if not isinstance(text, str):
        raise FilterError(f"expected a string, got {type(text).__name__}")
    cached = _parsed.get(text)
    if cached is not None:
        if now is not None:
            utc_now(now)  # still checked
        return cached
    # Only a text of more than a quarter of the limit in characters can exceed it in bytes.
    too_long = len(text) > MAX_TEXT_BYTES // 4
    if too_long and len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise FilterError(f"longer than {MAX_TEXT_BYTES} bytes")
    if not text.strip():
        raise FilterError("empty filter")
    parser = _Parser(text, utc_now(now))
    node = parser.parse()
    if not parser.timed:
        with _parsed_lock:
            _parsed[text] = node
            if len(_parsed) > CACHE_SIZE:
                del _parsed[next(iter(_parsed))]
    return node


def clear_cache() -> None:
    """Forget the kept ASTs (the benchmark measures a first parse with it)."""
    with _parsed_lock:
        _parsed.clear()


class _Parser:
    __slots__ = ("depth", "lexer", "now", "terms", "timed", "token")

    def __init__(self, text: str, now: datetime) -> None:
        self.lexer = Lexer(text)
        self.now = now
        self.terms = 0
        self.depth = 0
        #: A timestamp term was read: the AST may depend on ``now`` (relative times).
        self.timed = False
        self.token = self.lexer.next()

    def _advance(self) -> Token:
        token = self.token
        self.token = self.lexer.next()
        return token

    def parse(self) -> Filter:
        node = self._or(None)
        if self.token.kind != "end":  # only ")" stops both loops before the end
            raise FilterError("unexpected ')'", self.token.column)
        return node

    def _or(self, after: Token | None) -> Filter:
        operands = [self._and(after)]
        while self.token.kind == "OR":
            operands.append(self._and(self._advance()))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self, after: Token | None) -> Filter:
        operands = [self._unary(after)]
        while self.token.kind not in _ENDS_AND:
            joiner = self._advance() if self.token.kind == "AND" else None
            operands.append(self._unary(joiner))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _nest(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"nested deeper than {MAX_DEPTH}", token.column)

    def _unary(self, after: Token | None) -> Filter:
        token = self.token
        self.token = self.lexer.next()
        kind = token.kind
        if kind in ("word", "phrase", "field"):
            self.terms += 1
            if self.terms > MAX_TERMS:
                raise FilterError(f"more than {MAX_TERMS} terms", token.column)
            if kind == "field":
                if token.path[0] == "timestamp":
                    self.timed = True
                return field_node(token, self.now)
            words = tuple(search_terms(token.text))
            if not words:
                raise FilterError(f"no words to search for in {token.text!r}", token.column)
            return Text(words, kind == "phrase")
        if kind in ("NOT", "-"):
            self._nest(token)
            node: Filter = Not(self._unary(token))
            self.depth -= 1
            return node
        if kind == "(":
            self._nest(token)
            node = self._or(token)
            if self.token.kind != ")":
                raise FilterError(
                    f"expected ')' to close the '(' from column {token.column}", self.token.column
                )
            self._advance()
            self.depth -= 1
            return node
        expected = "expected a term" if after is None else f"expected a term after {after.text!r}"
        found = "" if kind == "end" else f", found {token.text!r}"
        raise FilterError(expected + found, token.column)
