"""Planning a ``Query`` before it is compiled: what its filter says exactly moves into
the query's own fields (``lift``), so rollups and the indexes' walks serve filters as
they serve the fields; indexed data paths are marked with their expression
(``mark_indexed``); and terms known to match nothing fold away (``fold_false``). The
meaning never changes: the reference (``Query.matches``) selects the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from eventcollector.filters import (
    And,
    AnyOf,
    Compare,
    Exists,
    Field,
    Filter,
    Not,
    Or,
    Prefix,
    Text,
    Value,
)
from eventcollector.query import Query
from eventcollector.storage._where import SEVERITY_NAMES, IndexedField

__all__ = ["NOTHING", "fold_false", "lift", "mark_indexed"]

# -- planning: what a Query field says exactly moves into it ----------------------

_LIFT_TEXT = {
    "system": "systems",
    "event_type": "event_types",
    "severity": "severities",
    "source_component": "source_components",
}
_MICROSECOND = timedelta(microseconds=1)
_LIFTABLE = (Compare, AnyOf)  # a tuple: ``Compare | AnyOf`` would build a union per call


def lift(query: Query) -> Query:
    """``query`` with the filter's top-level terms that a Query field says exactly
    (system, type, severity, component, time bounds, full-text words) moved into that
    field when it is unset, so rollups, the per-value merge and the search walk serve
    filters as they serve the fields. The meaning is unchanged: both are ANDed."""
    if query.where is None:
        return query
    terms = query.where.operands if isinstance(query.where, And) else (query.where,)
    changes: dict[str, Any] = {}
    words: list[str] = []
    rest: list[Filter] = []
    for term in terms:
        if isinstance(term, Text) and (not term.phrase or len(term.words) == 1):
            words.extend(term.words)  # a one-word phrase is that word
        elif not _lift_term(term, query, changes):
            rest.append(term)
    if words:
        changes["search"] = " ".join([*([query.search] if query.search else []), *words])
    if not changes:
        return query
    where = None if not rest else rest[0] if len(rest) == 1 else And(tuple(rest))
    return query.with_(where=where, **changes)


def _lift_term(term: Filter, query: Query, changes: dict[str, Any]) -> bool:
    if not isinstance(term, _LIFTABLE) or term.field.path:
        return False
    name = term.field.name
    if name == "timestamp":
        return isinstance(term, Compare) and _lift_time(term.op, term.value, query, changes)  # type: ignore[arg-type]
    target = _LIFT_TEXT.get(name)
    if target is None or target in changes or getattr(query, target):
        return False
    values: tuple[Value, ...]
    if isinstance(term, AnyOf):
        values = tuple(dict.fromkeys(term.values))
    elif name == "severity" and term.op != "=":
        values = SEVERITY_NAMES[term.op, term.value]  # type: ignore[index]
    else:
        values = (term.value,)
    if not values:
        return False
    for value in values:
        if not isinstance(value, str):
            return False
    changes[target] = values
    return True


def _lift_time(op: str, value: datetime, query: Query, changes: dict[str, Any]) -> bool:
    # Timestamps have microsecond resolution: "> t" is ">= t + 1 us".
    try:
        after = value + _MICROSECOND
    except OverflowError:
        return False
    since = until = None
    if op == ">=" or op == "=":
        since = value
    elif op == ">":
        since = after
    if op == "<":
        until = value
    elif op == "<=" or op == "=":
        until = after
    if (since is not None and (query.since is not None or "since" in changes)) or (
        until is not None and (query.until is not None or "until" in changes)
    ):
        return False
    if since is not None:
        changes["since"] = since
    if until is not None:
        changes["until"] = until
    return True


def mark_indexed(query: Query, literals: Mapping[Field, str]) -> Query:
    """``query`` with each data path that has an expression index (``literals``: from
    the index registry) replaced by an ``IndexedField`` carrying its expression."""
    if query.where is None or not literals:
        return query
    return query.with_(where=_mark(query.where, literals))


def _mark(node: Filter, literals: Mapping[Field, str]) -> Filter:
    if isinstance(node, Not):
        return Not(_mark(node.operand, literals))
    if isinstance(node, And | Or):
        return type(node)(tuple(_mark(n, literals) for n in node.operands))
    if isinstance(node, Text):
        return node
    literal = literals.get(node.field)
    if literal is None:
        return node
    field = IndexedField(node.field.name, node.field.path, literal)
    if isinstance(node, Compare):
        return Compare(field, node.op, node.value)
    if isinstance(node, AnyOf):
        return AnyOf(field, node.values)
    if isinstance(node, Prefix):
        return Prefix(field, node.prefix)
    return Exists(field)


#: A filter no event passes: an empty list of ids (the reference: no id is in it; SQL:
#: ``e.id IN ()``, a constant SQLite's planner skips the table for).
NOTHING: Filter = AnyOf(Field("id"), ())


def fold_false(node: Filter, is_false: Callable[[Filter], bool]) -> Filter | bool:
    """``node`` with the terms ``is_false`` says no event passes folded away: an AND
    with one is False, an OR drops it, a NOT of one is True; True or False when the
    whole filter folds to a constant."""
    if isinstance(node, Not):
        operand = fold_false(node.operand, is_false)
        return (not operand) if isinstance(operand, bool) else Not(operand)
    if isinstance(node, And | Or):
        absorbing = isinstance(node, Or)  # True absorbs an OR, False an AND
        kept: list[Filter] = []
        for operand in node.operands:
            folded = fold_false(operand, is_false)
            if folded is absorbing:
                return absorbing
            if not isinstance(folded, bool):
                kept.append(folded)
        if not kept:
            return not absorbing
        if len(kept) == len(node.operands):
            return node
        return kept[0] if len(kept) == 1 else type(node)(tuple(kept))
    return False if is_false(node) else node
