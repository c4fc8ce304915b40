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

from eventcollector.filters._fields import TIMESTAMP, field_node, utc_now
from eventcollector.filters._lexer import KEYWORDS, TOKEN, FilterError, scan_error, unescape
from eventcollector.filters._search import search_terms
from eventcollector.filters.nodes import And, Filter, Not, Or, Text

__all__ = ["CACHE_SIZE", "MAX_DEPTH", "MAX_TERMS", "MAX_TEXT_BYTES", "clear_cache", "parse_filter"]

MAX_TEXT_BYTES = 4_096
MAX_TERMS = 64
MAX_DEPTH = 8
CACHE_SIZE = 1_024

_parsed: dict[str, Filter] = {}  # oldest first
_parsed_lock = threading.Lock()

_ENDS_AND = frozenset({"OR", "close", "end"})


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
    """The current token is ``kind`` (the name of the pattern's alternative, or the
    keyword a word spells) and ``match``."""

    __slots__ = ("depth", "kind", "match", "now", "pos", "terms", "text", "timed")

    def __init__(self, text: str, now: datetime) -> None:
        self.text = text
        self.pos = 0
        self.now = now
        self.terms = 0
        self.depth = 0
        #: A timestamp term was read: the AST may depend on ``now`` (relative times).
        self.timed = False
        self._step()

    def _step(self) -> None:
        match = _match(self.text, self.pos)
        if match is None:  # at a quote that never closes, or a bracket outside a list
            raise scan_error(self.text, self.pos)
        kind = match.lastgroup
        if kind == "word" and match.group(kind) in KEYWORDS:
            kind = match.group(kind)
        self.kind = kind
        self.match = match
        self.pos = match.end()

    def parse(self) -> Filter:
        node = self._or(None)
        if self.kind != "end":  # only ")" stops both loops before the end
            raise FilterError("unexpected ')'", self._column())
        return node

    def _column(self) -> int:
        return self.match.start(self.match.lastgroup) + 1  # type: ignore[arg-type]

    def _or(self, after: str | None) -> Filter:
        operands = [self._and(after)]
        while self.kind == "OR":
            self._step()
            operands.append(self._and("OR"))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self, after: str | None) -> Filter:
        operands = [self._unary(after)]
        while self.kind not in _ENDS_AND:
            if self.kind == "AND":
                self._step()
                operands.append(self._unary("AND"))
            else:
                operands.append(self._unary(None))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"nested deeper than {MAX_DEPTH}", self._column())

    def _unary(self, after: str | None) -> Filter:
        kind = self.kind
        match = self.match
        node: Filter
        if kind in _TERMS:
            self.terms += 1
            if self.terms > MAX_TERMS:
                raise FilterError(f"more than {MAX_TERMS} terms", self._column())
            if kind == "field":
                node, self.pos = field_node(match, self.now)
                if node.field is TIMESTAMP:  # type: ignore[union-attr]
                    self.timed = True
                self._step()
                return node
            self._step()
            text = match.group(kind)
            if kind == "phrase":
                text = unescape(text[1:-1])
            words = tuple(search_terms(text))
            if not words:
                column = match.start(kind) + 1
                raise FilterError(f"no words to search for in {text!r}", column)
            return Text(words, kind == "phrase")
        if kind in _NEGATIONS:
            self._nest()
            self._step()
            node = Not(self._unary(_NEGATIONS[kind]))
            self.depth -= 1
            return node
        if kind == "open":
            self._nest()
            column = self._column()
            self._step()
            node = self._or("(")
            if self.kind != "close":
                raise FilterError(
                    f"expected ')' to close the '(' from column {column}", self._column()
                )
            self._step()
            self.depth -= 1
            return node
        expected = "expected a term" if after is None else f"expected a term after {after!r}"
        found = "" if kind == "end" else f", found {match.group(match.lastgroup)!r}"  # type: ignore[arg-type]
        raise FilterError(expected + found, self._column())


_match = TOKEN.match
_TERMS = frozenset({"field", "word", "phrase"})
_NEGATIONS = {"NOT": "NOT", "neg": "-"}
