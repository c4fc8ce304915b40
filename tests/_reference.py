"""The plain-Python reference of query results, which every backend must equal."""

from __future__ import annotations

from eventcollector import Event, Query
from eventcollector.query import sort_value


def reference(events: list[Event], query: Query) -> list[Event]:
    """Filter with ``Query.matches``, order by ``sort_value`` (None last, ties in
    insertion order, both reversed for descending), then apply offset and limit.

    ``events`` must be in insertion order.
    """
    matched = [(i, e) for i, e in enumerate(events) if query.matches(e)]
    present = [(i, e) for i, e in matched if sort_value(e, query.order_by) is not None]
    missing = [(i, e) for i, e in matched if sort_value(e, query.order_by) is None]
    present.sort(key=lambda p: (sort_value(p[1], query.order_by), p[0]))
    if not query.ascending:
        present.reverse()
        missing.reverse()
    ordered = [e for _, e in present + missing]
    end = None if query.limit is None else query.offset + query.limit
    return ordered[query.offset : end]
