"""The reference semantics: whether one event matches a filter, in plain Python.

Live streams filter with this, and the SQL compilers are tested against it. Every
predicate is two-valued: a missing field or key makes a term false (so ``NOT`` of it
true), never "unknown" as NULL is in SQL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from eventcollector.filters._search import search_terms
from eventcollector.filters.nodes import (
    And,
    AnyOf,
    Compare,
    Exists,
    Field,
    Filter,
    Not,
    Prefix,
    Text,
    Value,
)
from eventcollector.fingerprint import fingerprint
from eventcollector.issues import ISSUE_SEVERITIES
from eventcollector.model import Event

__all__ = ["matches"]

_MISSING = object()
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_FIXED: dict[str, Callable[[Event], Any]] = {
    "id": lambda e: e.id,
    "timestamp": lambda e: e.timestamp,
    "system": lambda e: e.system.value,
    "event_type": lambda e: e.event_type.value,
    "severity": lambda e: e.severity.value,
    "title": lambda e: e.title,
    "description": lambda e: e.description,
    "correlation_id": lambda e: e.correlation_id,
    "source_component": lambda e: e.source_component,
    "duration_ms": lambda e: e.duration_ms,
    # The issue an error event is grouped into (docs/issues.md); other events have none.
    "fingerprint": lambda e: fingerprint(e) if e.severity in ISSUE_SEVERITIES else None,
}


def _lookup(event: Event, field: Field) -> Any:
    """The value at a data/metadata path, or ``_MISSING`` when a key is absent."""
    value: Any = event.data if field.name == "data" else event.metadata
    for key in field.path:
        if type(value) is not dict or key not in value:
            return _MISSING
        value = value[key]
    return value


def _same_json(found: Any, literal: Value) -> bool:
    """JSON equality within one type: 5 is not "5", and true is not 1."""
    if literal is None or isinstance(literal, bool):
        return found is literal
    if isinstance(literal, str):
        return type(found) is str and found == literal
    return type(found) in (int, float) and found == literal


def _equals(field: Field, literal: Value, event: Event) -> bool:
    if field.path:
        return _same_json(_lookup(event, field), literal)
    if field.name == "tag":
        return literal in event.tags
    return bool(_FIXED[field.name](event) == literal)


def _compare(node: Compare, event: Event) -> bool:
    field = node.field
    if node.op == "=":
        return _equals(field, node.value, event)
    compare = _COMPARE[node.op]
    if field.path:
        found = _lookup(event, field)
        # Numbers only: booleans are not numbers, and a string never compares.
        return type(found) in (int, float) and compare(found, node.value)
    if field.name == "severity":
        return compare(event.severity.rank, node.value)
    found = _FIXED[field.name](event)
    return found is not None and compare(found, node.value)


def _prefix(node: Prefix, event: Event) -> bool:
    field = node.field
    if field.path:
        found = _lookup(event, field)
        return type(found) is str and found.startswith(node.prefix)
    if field.name == "tag":
        return any(tag.startswith(node.prefix) for tag in event.tags)
    found = _FIXED[field.name](event)
    return found is not None and str(found).startswith(node.prefix)


def _exists(field: Field, event: Event) -> bool:
    if field.path:
        return _lookup(event, field) is not _MISSING
    if field.name == "tag":
        return bool(event.tags)
    found = _FIXED[field.name](event)
    return found is not None and found != ""


def _text(node: Text, event: Event) -> bool:
    if not node.phrase:
        words = search_terms(f"{event.title} {event.description}")
        return all(any(w.startswith(t) for w in words) for t in node.words)
    return _phrase_in(node.words, event.title) or _phrase_in(node.words, event.description)


def _phrase_in(phrase: tuple[str, ...], text: str) -> bool:
    """The phrase's words start consecutive words of ``text``, in order."""
    words = search_terms(text)
    span = len(phrase)
    return any(
        all(words[i + j].startswith(t) for j, t in enumerate(phrase))
        for i in range(len(words) - span + 1)
    )


def matches(node: Filter, event: Event) -> bool:
    """Whether ``event`` matches ``node``."""
    if isinstance(node, Compare):
        return _compare(node, event)
    if isinstance(node, AnyOf):
        return any(_equals(node.field, v, event) for v in node.values)
    if isinstance(node, Prefix):
        return _prefix(node, event)
    if isinstance(node, Exists):
        return _exists(node.field, event)
    if isinstance(node, Text):
        return _text(node, event)
    if isinstance(node, Not):
        return not matches(node.operand, event)
    if isinstance(node, And):
        return all(matches(operand, event) for operand in node.operands)
    return any(matches(operand, event) for operand in node.operands)
