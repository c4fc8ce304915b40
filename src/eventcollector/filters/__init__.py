"""The filter language: one text form for what to select, on every surface.

``parse_filter("severity:>=warning system:[a, b] -tag:noise \\"timed out\\"")`` gives
an AST of small frozen dataclasses (``nodes``); ``matches(node, event)`` is its
meaning in plain Python (the reference the SQL compilers are tested against), and
``str(node)`` its canonical text, which parses back to an equal AST. See docs/filters.md.

This package imports only ``eventcollector.model``: ``eventcollector.query`` builds on it.
"""

from eventcollector.filters._fields import ALIASES, FIXED_FIELDS, parse_duration
from eventcollector.filters._lexer import MAX_LIST_VALUES, FilterError
from eventcollector.filters._literals import DATA_ROOTS
from eventcollector.filters._parser import MAX_DEPTH, MAX_TERMS, MAX_TEXT_BYTES, parse_filter
from eventcollector.filters._search import search_terms
from eventcollector.filters.evaluate import matches
from eventcollector.filters.nodes import (
    And,
    AnyOf,
    Compare,
    Exists,
    Field,
    Filter,
    Not,
    Operator,
    Or,
    Prefix,
    Term,
    Text,
    Value,
    is_filter,
    terms,
    to_text,
)

__all__ = [
    "ALIASES",
    "DATA_ROOTS",
    "FIXED_FIELDS",
    "MAX_DEPTH",
    "MAX_LIST_VALUES",
    "MAX_TERMS",
    "MAX_TEXT_BYTES",
    "And",
    "AnyOf",
    "Compare",
    "Exists",
    "Field",
    "Filter",
    "FilterError",
    "Not",
    "Operator",
    "Or",
    "Prefix",
    "Term",
    "Text",
    "Value",
    "all_of",
    "is_filter",
    "matches",
    "parse_duration",
    "parse_filter",
    "search_terms",
    "terms",
    "to_text",
]


def all_of(*filters: Filter) -> Filter:
    """The AND of ``filters`` (at least one), flattening operands that are ANDs."""
    operands: list[Filter] = []
    for node in filters:
        operands.extend(node.operands if isinstance(node, And) else (node,))
    return operands[0] if len(operands) == 1 else And(tuple(operands))
