"""Facets in SQLite: the top values of several fields over one filter, in one read.

Top values of the system, event type and severity come from the rollups, the component
from its index over a time range alone; every other field is counted in Python from one
pass over the matching rows (``_tally``), or, for an indexed data path over a time
range alone, in its index (``_walk_path``). Whole hours are kept between calls where the
range splits into them (``_hour_cache``). A tag facet over a time range (and systems and
severities) reads the whole hours from the ``tag_counts`` rollup and counts the tags of
the partial hours at either end. Under other filters it counts the matching events' tags
with ``json_each`` over their own ``tags`` column, or, when they are a large share of the
store, from ``event_tags``: keyed (tag, event), it has no way from an event to its tags
but a scan of every pair (``_tag_facet``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from eventcollector.aggregation import TAG, Facet, Key, facet, field_text, identity, tag_facet
from eventcollector.filters import Field
from eventcollector.query import GROUP_FIELDS, Query
from eventcollector.storage._hour_split import hour_start, hour_text, split_by_hours
from eventcollector.storage.sqlite import _reads as reads
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._aggregate import expanded, rolled_up_part, top_values
from eventcollector.storage.sqlite._hour_cache import Counters, HourCache, facet_counts
from eventcollector.storage.sqlite._rollups import (
    TAG_KEY,
    TAGGED_EVENTS,
    hour_counts,
    quarter_serves,
    tag_counts,
)
from eventcollector.storage.sqlite._tally import CHUNK_ROWS, Counts, integral, tally

__all__ = ["facets"]

# The top tags of the matching events (an untagged one under ''; the LEFT JOIN keeps it)
# and, on each row, the number of (event, tag) pairs. ``j.type`` skips what a database
# made by the spec's implementation may hold besides strings.
_TAG_COUNTS = (
    f"SELECT k, n, total FROM (SELECT {TAG_KEY} AS k, count(*) AS n,"
    " rank() OVER (ORDER BY count(*) DESC) AS r, sum(count(*)) OVER () AS total"
    f" FROM {TAGGED_EVENTS}{{where}} GROUP BY 1) WHERE r <= ?"
)
# Every tag of the edge of a range that ``tag_counts`` answers (rows of an hour at most).
_EDGE_TAG_COUNTS = f"SELECT {TAG_KEY}, count(*) FROM {TAGGED_EVENTS}{{where}} GROUP BY 1"
# The same from ``event_tags`` (untagged events apart): every pair of the store read in
# tag order (no sort), each probing the set of matching rowids.
_SIDE_TAG_COUNTS = (
    "SELECT k, n, total FROM (SELECT 's' || t.tag AS k, count(*) AS n,"
    " rank() OVER (ORDER BY count(*) DESC) AS r, sum(count(*)) OVER () AS total"
    " FROM event_tags t WHERE t.event_rowid IN (SELECT e.rowid FROM events e{where})"
    " GROUP BY t.tag) WHERE r <= ?"
)
_UNTAGGED = "SELECT count(*) FROM (SELECT e.tags FROM events e{where}) WHERE tags = '[]'"
_HOUR = timedelta(hours=1)
#: Above this share of the store's events, reading every ``event_tags`` pair costs less
#: than ``json_each`` over the matching rows (measured: even at about a third).
_SIDE_TABLE_SHARE = 0.4


def _tag_facet(conn: sqlite3.Connection, query: Query, top: int, matching: int) -> Facet:
    rolled_up = _rolled_up_tags(conn, query)
    if rolled_up is not None:
        pairs = sum(rolled_up.values())
        return tag_facet([(k, n, pairs) for k, n in rolled_up.items() if n], top)
    where_sql, params = sql.where(query)
    if matching <= _SIDE_TABLE_SHARE * reads.count(conn, Query()):
        rows = conn.execute(_TAG_COUNTS.format(where=where_sql), [*params, top]).fetchall()
        return tag_facet(rows, top)
    rows = conn.execute(_SIDE_TAG_COUNTS.format(where=where_sql), [*params, top]).fetchall()
    untagged = int(conn.execute(_UNTAGGED.format(where=where_sql), params).fetchone()[0])
    if untagged:  # a value of its own: the top N of tags and null hold the top N of all
        pairs = rows[0][2] if rows else 0
        rows = [(k, n, pairs + untagged) for k, n, _ in [*rows, ("", untagged, 0)]]
    return tag_facet(rows, top)


def _rolled_up_tags(conn: sqlite3.Connection, query: Query) -> Counter[str] | None:
    """Per tag (as a facet key) the events of ``query``: whole hours from ``tag_counts``,
    the partial hours at either end from their rows; None when the rollup cannot say."""
    if not quarter_serves(query, None):  # tag_counts has the same keys as quarter_counts
        return None
    split = split_by_hours(query)
    if split is None:
        return None
    counts = Counter(dict(tag_counts(conn, query, split.first_hour, split.end_hour)))
    for edge in split.edges:
        if (rest := reads.rest_of_hour(edge)) is None:
            counts.update(_edge_tags(conn, edge))
            continue
        # More than half its hour: the hour's counts less the rest of the hour's tags.
        hour, rest_query = rest
        counts.update(dict(tag_counts(conn, query, hour, hour_text(hour_start(hour) + _HOUR))))
        counts.subtract(_edge_tags(conn, rest_query))
    return counts


def _edge_tags(conn: sqlite3.Connection, edge: Query) -> dict[str, int]:
    where_sql, params = sql.where(edge)
    return dict(conn.execute(_EDGE_TAG_COUNTS.format(where=where_sql), params))


def facets(
    conn: sqlite3.Connection,
    query: Query,
    fields: Sequence[Field],
    top: int,
    literals: Mapping[Field, str] | None = None,
    cache: HourCache | None = None,
) -> list[Facet]:
    """``literals``: the indexed data paths' expression text (see ``_indexes``);
    ``cache``: the counts of whole hours kept between calls (``_hour_cache``)."""
    split = split_by_hours(query)
    if split is None:
        # A filter no rollup answers: every field from one pass over the matching rows,
        # which evaluates the filter once, not once per field (and once more to count);
        # hour by hour where whole hours can be kept.
        rolled_up = rolled_up_part(query)
        hours = split_by_hours(rolled_up)
        expansions = expanded(conn, query)
        tallied = None
        if cache is not None and hours is not None:
            tallied = facet_counts(cache, conn, query, fields, hours, expansions)
        if tallied is None:
            candidates = _candidates(conn, query, rolled_up)
            tallied = tally(conn, query, fields, candidates, expansions)
        total, counted = tallied
        return [
            facet(field_text(f), c, sum(n for _, n in c) if f == TAG else total, top)
            for f, c in zip(fields, counted, strict=True)
        ]
    total = reads.count(conn, query)
    found: dict[Field, list[tuple[Key, int]]] = {}
    walkable = reads.walkable(query)
    if literals and walkable:
        for f in fields:
            if f in literals and (walked := _walk_path(conn, query, literals[f], total)):
                found[f] = walked
    # Kept per hour: the rollup dimensions (summed from the rollups once an hour, not on
    # every call), the component (over a time range alone, walked in its index hour by
    # hour, which reads no rows) and the fields counted from the rows.
    hourly = [f for f in fields if f not in found and f != TAG]
    kept = None
    if cache is not None and hourly:
        counters = Counters(
            _ROLLED_UP_FIELDS,
            _rolled_up_counts,
            frozenset({_COMPONENT}) if walkable else frozenset(),
            _walked_components,
        )
        kept = facet_counts(cache, conn, query, hourly, split, counters=counters)
    if kept is not None:
        found.update(zip(hourly, kept[1], strict=True))
    scanned = [
        f for f in fields if f not in found and f != TAG and (f.path or f.name not in GROUP_FIELDS)
    ]
    if scanned:
        _, counted = tally(conn, query, scanned, total)
        found.update(zip(scanned, counted, strict=True))
    out = []
    for f in fields:
        if f == TAG:
            out.append(_tag_facet(conn, query, top, total))
            continue
        counts = found[f] if f in found else [(v, n) for v, _, n in top_values(conn, query, f, top)]
        out.append(facet(field_text(f), counts, total, top))
    return out


_COMPONENT = Field("source_component")
#: The fields the hourly rollups count by.
_ROLLED_UP_FIELDS = frozenset(Field(name) for name in ("system", "event_type", "severity"))


def _rolled_up_counts(
    conn: sqlite3.Connection, query: Query, first: str, end: str, field: Field
) -> dict[str, Counts]:
    """One rollup dimension's counts in each whole hour from ``first`` to ``end``."""
    by_hour: dict[str, Counts] = {}
    for hour, value, n in hour_counts(conn, query, first, end, field.name):
        by_hour.setdefault(hour, []).append((value, n))
    return by_hour


def _walked_components(conn: sqlite3.Connection, query: Query, field: Field) -> Counts:
    """The components of a time range alone (in ``idx_events_component``), None counted."""
    return [(k or None, n) for k, n in reads.group_count(conn, query, "source_component").items()]


def _candidates(conn: sqlite3.Connection, query: Query, rolled_up: Query) -> int:
    """At most the events ``query`` matches: the rollups' count of ``rolled_up`` when it
    is small enough for one pass, else the exact count: a filter that matches few of many
    stays one statement (ranged passes for ``database timeout`` over a day of 10M events
    measured 5.2 s against 1.6 s)."""
    upper = reads.count(conn, rolled_up)
    return upper if upper <= CHUNK_ROWS else reads.count(conn, query)


_JSON_KEYS: dict[str, Key] = {"true": True, "false": False, "object": None, "array": None}


def _walk_path(
    conn: sqlite3.Connection, query: Query, literal: str, total: int
) -> list[tuple[Key, int]] | None:
    """An indexed data path's values counted in its index (``reads.walk_index``), as the
    reference keys them. The index holds ``json_extract``'s value, where true is 1 and
    an object is its JSON text: such values are split by their JSON type over their own
    index range. Null, missing and objects are the rest of ``total``."""
    expression = f"json_extract(data, {literal})"  # the index's own text
    walked = reads.walk_index(conn, query, expression)
    if walked is None:
        return None
    counts: Counter[tuple[int, Any]] = Counter()
    where_sql, params = sql.where(query)
    split = (
        f"SELECT json_type(e.data, {literal}), count(*) FROM events e"
        f"{where_sql or ' WHERE 1'} AND {expression} = ? GROUP BY 1"
    )
    for value, n in walked:
        ambiguous = value in (0, 1) if type(value) is not str else value[:1] in ("{", "[")
        if not ambiguous:
            counts[identity(integral(value))] += n
            continue
        for kind, m in conn.execute(split, [*params, value]):
            key = _JSON_KEYS.get(kind, value)
            counts[identity(integral(key))] += m
    counts[identity(None)] = total - sum(n for (kind, _), n in counts.items() if kind)
    return [(key, n) for (_, key), n in counts.items() if n]
