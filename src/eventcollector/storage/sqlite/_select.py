"""Selecting events for SQLite: plain queries, time-ordered pages of search results
walked in rowid order, and time-ordered pages over several values merged per value.
Run on reader threads inside one read transaction (see ``_reads``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from eventcollector.filters import Text, terms
from eventcollector.model import Event, format_timestamp
from eventcollector.query import Query, search_terms
from eventcollector.storage._plan import NOTHING, fold_false
from eventcollector.storage.sqlite import _sql as sql
from eventcollector.storage.sqlite._schema import ROWID_BLOCK_BITS

#: A search matching at most this many events drives the query from the full-text
#: index; a broader one is checked while walking the ordering index, which stops
#: as soon as the page is full instead of sorting every match.
SEARCH_DRIVES_BELOW = 5_000
#: A search word starting more indexed words than this is searched as a prefix.
EXPAND_PREFIX_UP_TO = 16
#: A time-ordered page filtered by up to this many values of one field walks each value.
_SPLIT_UP_TO = 8
_FETCH_CHUNK = 10_000
_WALK_CHUNK = 1_000


def select_events(conn: sqlite3.Connection, query: Query) -> list[Event]:
    """The events of ``query``, with the search plan chosen by how many events match."""
    search_drives = True
    match = None
    if query.search is not None:
        match = expanded_match(conn, query.search)
        if match is None:
            return []
        if query.order_by == "timestamp" and query.limit is not None:
            return _search_in_time_order(conn, query, match)
        matches = conn.execute(
            "SELECT count(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ? LIMIT ?)",
            (match, SEARCH_DRIVES_BELOW + 1),
        ).fetchone()[0]
        search_drives = matches <= SEARCH_DRIVES_BELOW
    statement, params = sql.select(query, search_drives=search_drives, match=match)
    if match is None and (split := _split_dimension(query)) is not None:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
        if any("TEMP B-TREE FOR ORDER BY" in row[3] for row in plan):
            return _merge_in_time_order(conn, query, *split)
    return [sql.from_row(r) for r in conn.execute(statement, params)]


def _split_dimension(query: Query) -> tuple[str, tuple[str, ...]] | None:
    """The one filter with several values of a time-ordered page, if any.

    ``severity IN (a, b) ... ORDER BY timestamp`` cannot walk ``(severity, timestamp)``
    in order, so SQLite sorts every match (when its plan says so, see above); one walk
    per value, merged, reads a page from each instead.
    """
    if query.order_by != "timestamp" or query.limit is None or query.ids:
        return None
    several = [
        (name, values)
        for name in ("systems", "event_types", "severities", "source_components")
        if len(values := getattr(query, name)) > 1
    ]
    if len(several) != 1 or len(several[0][1]) > _SPLIT_UP_TO:
        return None
    return several[0]


def _merge_in_time_order(
    conn: sqlite3.Connection, query: Query, name: str, values: tuple[str, ...]
) -> list[Event]:
    need = query.offset + (query.limit or 0)
    if need == 0:
        return []
    found: list[tuple[str, int]] = []
    for value in values:
        statement, params = sql.select(
            query.with_(**{name: (value,)}, offset=0, limit=need), columns="e.timestamp, e.rowid"
        )
        found += conn.execute(statement, params).fetchall()
    found.sort(reverse=not query.ascending)
    return _fetch_in_order(conn, [rowid for _, rowid in found[query.offset : need]])


def expanded_match(conn: sqlite3.Connection, text: str) -> str | None:
    """The FTS5 query for ``text`` with each prefix replaced by the words it starts.

    FTS5 answers a prefix query by merging the posting lists of every word with
    that prefix into one list before returning the first match, so a walk that
    stops early still pays for all of them; an OR of exact words is read lazily.
    A prefix starting more than EXPAND_PREFIX_UP_TO words stays a prefix, as does
    a non-ASCII one (the tokenizer's case folding is not Python's there). None:
    some word starts no indexed word, so nothing matches.
    """
    terms = search_terms(text)
    if not terms:
        raise ValueError("search: no words to search for")
    expansions: list[list[str] | str] = []
    for term in terms:
        if not (term.isascii() and term.isalnum()):
            expansions.append(term)
            continue
        words = _indexed_words(conn, term)
        if words is None:
            expansions.append(term)
        elif not words:
            return None
        else:
            expansions.append(words)
    return sql.fts_match_expanded(expansions)


def without_unmatchable_text(conn: sqlite3.Connection, query: Query) -> Query:
    """``query`` with every full-text term that cannot match folded away (``fold_false``):
    one of its words starts no indexed word. A typo under OR or NOT then no longer keeps
    the rest of the filter from its plan (``zzz OR system:a`` walks the system's index for
    a page, where SQLite would gather and sort every event of the system in the range).
    A search or filter left with nothing to match becomes ``NOTHING``."""
    texts = [] if query.where is None else [t for t in terms(query.where) if isinstance(t, Text)]
    if query.search is None and not texts:
        return query
    starts_nothing: dict[str, bool] = {}

    def unmatchable(words: Sequence[str]) -> bool:
        for word in words:
            if word.isascii() and word.isalnum():  # else the tokenizer's folding decides
                if word not in starts_nothing:  # one seek, not the word's expansion
                    starts_nothing[word] = _next_word(conn, word, word) is None
                if starts_nothing[word]:
                    return True
        return False

    if query.search is not None and unmatchable(search_terms(query.search)):
        return query.with_(search=None, where=NOTHING)
    if query.where is None or not any(unmatchable(t.words) for t in texts):
        return query
    folded = fold_false(query.where, lambda t: isinstance(t, Text) and unmatchable(t.words))
    if isinstance(folded, bool):
        return query.with_(where=None if folded else NOTHING)
    return query.with_(where=folded)


def _indexed_words(conn: sqlite3.Connection, prefix: str) -> list[str] | None:
    """The indexed words starting with ``prefix``, or None past EXPAND_PREFIX_UP_TO."""
    words: list[str] = []
    after = prefix
    while len(words) <= EXPAND_PREFIX_UP_TO:
        word = _next_word(conn, after, prefix)
        if word is None:
            return words
        words.append(word)
        after = word + "\0"  # a word plus NUL sorts right after the word itself
    return None


def _next_word(conn: sqlite3.Connection, after: str, prefix: str) -> str | None:
    """The first indexed word from ``after`` on that starts with ``prefix``: one seek in
    the vocabulary, whose "instance" form yields one row per occurrence lazily (LIMIT 1
    reads one, where the "row" form would count every occurrence first)."""
    end = prefix + "\U0010ffff"  # after every word with the prefix (all chars sort lower)
    row = conn.execute(
        "SELECT term FROM events_fts_vocab WHERE term >= ? AND term < ? LIMIT 1", (after, end)
    ).fetchone()
    return None if row is None else str(row[0])


def _search_in_time_order(conn: sqlite3.Connection, query: Query, match: str) -> list[Event]:
    """A page of search results in time order, without gathering every match.

    One full-text cursor yields the matches in rowid order, newest first (oldest for
    ascending order). ``rowid_blocks`` bounds the timestamps each block of rowids may
    hold, so once a page's worth of matches beats everything the rest of the walk
    could hold, it stops: usually after a few thousand matches, not all of them.
    """
    need = query.offset + (query.limit or 0)
    newest_first = not query.ascending
    best_from, first_rowid, last_rowid = _walk_bounds(conn, query, newest_first)
    if need == 0 or first_rowid > last_rowid:
        return []
    matches = conn.execute(
        "SELECT rowid FROM events_fts WHERE events_fts MATCH ? AND rowid BETWEEN ? AND ?"
        f" ORDER BY rowid {'DESC' if newest_first else 'ASC'}",
        (match, first_rowid, last_rowid),
    )
    where_sql, params = sql.where(query.with_(search=None))
    where_sql += " AND" if where_sql else " WHERE"
    found: list[tuple[str, int]] = []
    while chunk := [r[0] for r in matches.fetchmany(_WALK_CHUNK)]:
        if len(found) >= need:
            kth = found[need - 1][0]
            bound = best_from(chunk[0] >> ROWID_BLOCK_BITS)
            # Unread rows come later in the walk, so they rank below an equal
            # timestamp: ">=" ("<=") is enough to stop. No bound: nothing left in range.
            if bound is None or ((kth >= bound) if newest_first else (kth <= bound)):
                break
        marks = ", ".join("?" * len(chunk))
        # NOT INDEXED: look the chunk up by rowid; a filter's own index (e.g. on system)
        # would otherwise be scanned whole for every chunk.
        found += conn.execute(
            f"SELECT e.timestamp, e.rowid FROM events e NOT INDEXED{where_sql}"
            f" e.rowid IN ({marks})",
            [*params, *chunk],
        ).fetchall()
        found.sort(reverse=newest_first)
        del found[need:]
    return _fetch_in_order(conn, [rowid for _, rowid in found[query.offset :]])


def rowid_span(conn: sqlite3.Connection, query: Query) -> tuple[int, int]:
    """The first and last rowid an event in the time range of ``query`` may have (from
    ``rowid_blocks``; first > last when none may)."""
    _, first, last = _walk_bounds(conn, query, True)
    return first, last


def _walk_bounds(
    conn: sqlite3.Connection, query: Query, newest_first: bool
) -> tuple[Callable[[int], str | None], int, int]:
    """The best timestamp a match in a rowid block or later in the walk may have
    (None: no block from there on overlaps the time range), and the rowid range to walk.

    The bound is asked of SQLite when the walk needs it (once a page is full), so a
    walk that stops early does not read every block's bounds into Python.
    """
    overlap = ""
    params: list[Any] = []
    if query.since is not None:
        overlap += " AND max_ts >= ?"
        params.append(format_timestamp(query.since))
    if query.until is not None:
        overlap += " AND min_ts < ?"
        params.append(format_timestamp(query.until))
    first, last = conn.execute(
        f"SELECT min(block), max(block) FROM rowid_blocks WHERE 1{overlap}", params
    ).fetchone()
    if first is None:
        return lambda block: None, 1, 0
    # Later in the walk: older blocks when walking newest first, newer ones otherwise.
    later = (
        f"SELECT max(max_ts) FROM rowid_blocks WHERE block <= ?{overlap}"
        if newest_first
        else f"SELECT min(min_ts) FROM rowid_blocks WHERE block >= ?{overlap}"
    )

    def best_from(block: int) -> str | None:
        value: str | None = conn.execute(later, [block, *params]).fetchone()[0]
        return value

    return best_from, first << ROWID_BLOCK_BITS, ((last + 1) << ROWID_BLOCK_BITS) - 1


def _fetch_in_order(conn: sqlite3.Connection, rowids: list[int]) -> list[Event]:
    by_rowid: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(rowids), _FETCH_CHUNK):  # bound parameters are limited
        part = rowids[start : start + _FETCH_CHUNK]
        marks = ", ".join("?" * len(part))
        statement = f"SELECT {sql.COLUMNS} FROM events e WHERE e.rowid IN ({marks})"
        by_rowid.update((row[0], row) for row in conn.execute(statement, part))
    return [sql.from_row(by_rowid[rowid]) for rowid in rowids]
