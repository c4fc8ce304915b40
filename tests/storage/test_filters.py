"""Filters in SQL: every backend selects exactly what the reference (``Query.matches``)
selects, for generated filters and events and for each decided rule."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _common import BASE, ev
from _reference import reference
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
    matches,
    parse_filter,
)
from eventcollector.fingerprint import fingerprint
from eventcollector.model import Event, Severity
from eventcollector.query import Query
from eventcollector.storage import Storage
from eventcollector.storage._plan import fold_false
from eventcollector.storage._where import prefix_bounds
from eventcollector.storage.postgres import _sql as postgres_sql
from eventcollector.storage.sqlite import SQLiteStorage
from eventcollector.storage.sqlite import _sql as sqlite_sql

# ASCII words: the backends' tokenizers and Python agree on them (see docs/filters.md).
WORDS = ["Database", "data", "error", "Err", "timeout", "connection", "refused", "ok", "x1"]
STRINGS = ["acme", "acme/web", "Acme", "5", "{x", "", "beta"]
SCALARS: list[Any] = [*STRINGS, 0, 5, -2, 5.0, 2.5, True, False, None]
PATHS = [("repo",), ("n",), ("b",), ("o", "k"), ("list", "0"), ("missing",)]


# -- generated events and filters ------------------------------------------------------

_values = st.sampled_from(SCALARS)
_json = st.one_of(
    _values,
    st.fixed_dictionaries({"k": _values}),
    st.lists(st.sampled_from([0, 1, "0"]), max_size=2),
)
# data.fingerprint: an error event's issue is then one of FINGERPRINTS (an override).
_data = st.dictionaries(
    st.sampled_from(["repo", "n", "b", "o", "list", "fingerprint"]), _json, max_size=4
)
_text = st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join)


def _event(
    system: str,
    severity: Severity,
    title: str,
    description: str,
    tags: list[str],
    component: str | None,
    duration: int | None,
    minute: int,
    data: dict[str, Any],
    meta: dict[str, Any],
    uid: str,
) -> Event:
    return ev(
        0,
        system=system,
        severity=severity,
        title=title or "x",
        description=description,
        tags=tags,
        source_component=component,
        duration_ms=duration,
        timestamp=BASE + timedelta(minutes=minute),
        data=data,
        metadata=meta,
        id=uid,
    )


_events = st.builds(
    _event,
    st.sampled_from(["alpha", "beta", "gamma"]),
    st.sampled_from(list(Severity)),
    _text,
    _text,
    st.lists(st.sampled_from(["a", "ab", "noise"]), max_size=2, unique=True),
    st.sampled_from([None, "api", "db"]),
    st.one_of(st.none(), st.integers(0, 1000)),
    st.integers(0, 3 * 24 * 60),
    _data,
    st.dictionaries(st.sampled_from(["repo", "n"]), _values, max_size=2),
    st.uuids().map(str),
)

_ops = st.sampled_from([">", ">=", "<", "<=", "="])
_data_field = st.builds(
    Field, st.sampled_from(["data", "data", "metadata"]), st.sampled_from(PATHS)
)
_word = st.sampled_from(WORDS).flatmap(
    lambda w: st.integers(1, len(w)).map(lambda n: w[:n].lower())
)
FINGERPRINTS = [fingerprint(ev(0, data={"fingerprint": s})) for s in STRINGS if s]
_fingerprints = st.sampled_from([*FINGERPRINTS, "v1:nope"])
_leaves: st.SearchStrategy[Filter] = st.one_of(
    st.builds(Compare, st.just(Field("fingerprint")), st.just("="), _fingerprints),
    st.builds(AnyOf, st.just(Field("fingerprint")), st.lists(_fingerprints, min_size=1).map(tuple)),
    st.builds(Prefix, st.just(Field("fingerprint")), st.sampled_from(["v1:", "", "x", "v1:0"])),
    st.builds(Exists, st.just(Field("fingerprint"))),
    st.builds(Compare, st.just(Field("system")), st.just("="), st.sampled_from(["alpha", "beta"])),
    st.builds(
        AnyOf,
        st.just(Field("system")),
        st.lists(st.sampled_from(["alpha", "beta"]), min_size=1).map(tuple),
    ),
    st.builds(
        Compare,
        st.just(Field("severity")),
        st.just("="),
        st.sampled_from([s.value for s in Severity]),
    ),
    st.builds(
        Compare,
        st.just(Field("severity")),
        st.sampled_from([">", ">=", "<", "<="]),
        st.integers(0, 4),
    ),
    st.builds(Compare, st.just(Field("duration_ms")), _ops, st.integers(0, 1000)),
    st.builds(
        Compare,
        st.just(Field("timestamp")),
        _ops,
        st.integers(0, 3 * 24 * 60).map(lambda m: BASE + timedelta(minutes=m)),
    ),
    st.builds(
        Prefix,
        st.sampled_from([Field("title"), Field("description"), Field("source_component")]),
        st.sampled_from(["Da", "da", "E", "", "api"]),
    ),
    st.builds(
        Exists,
        st.sampled_from(
            [Field(n) for n in ("description", "source_component", "duration_ms", "tag", "title")]
        ),
    ),
    st.builds(Compare, st.just(Field("tag")), st.just("="), st.sampled_from(["a", "noise"])),
    st.builds(
        AnyOf,
        st.just(Field("tag")),
        st.lists(st.sampled_from(["a", "ab", "zz"]), min_size=1).map(tuple),
    ),
    st.builds(Prefix, st.just(Field("tag")), st.sampled_from(["a", "no", "x"])),
    st.builds(Compare, _data_field, st.just("="), _values),
    st.builds(
        Compare, _data_field, st.sampled_from([">", ">=", "<", "<="]), st.sampled_from([0, 2.5, 5])
    ),
    st.builds(AnyOf, _data_field, st.lists(_values, min_size=1, max_size=3).map(tuple)),
    st.builds(Prefix, _data_field, st.sampled_from(["acme", "ac", "{", "", "A"])),
    st.builds(Exists, _data_field),
    st.builds(Text, st.lists(_word, min_size=1, max_size=2).map(tuple), st.booleans()),
)


def _combine(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    many = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(st.builds(Not, children), st.builds(And, many), st.builds(Or, many))


_filters = st.recursive(_leaves, _combine, max_leaves=6)


@pytest.fixture
def ledger() -> list[Event]:
    """Events stored so far in this test, in insertion order (shared by its examples)."""
    return []


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(_events, max_size=10),
    filters=st.lists(_filters, min_size=1, max_size=3),
    limit=st.sampled_from([None, 3]),
)
async def test_generated_filters_match_the_reference(
    storage: Storage,
    ledger: list[Event],
    batch: list[Event],
    filters: list[Filter],
    limit: int | None,
) -> None:
    known = {e.id for e in ledger}
    stored = await storage.append(batch)
    assert stored == [not (e.id in known or known.add(e.id)) for e in batch]  # type: ignore[func-returns-value]
    ledger.extend(e for e, new in zip(batch, stored, strict=True) if new)
    for node in filters:
        query = Query(where=node, limit=limit)
        assert [e.id for e in await storage.query(query)] == [
            e.id for e in reference(ledger, query)
        ], str(node)
        assert await storage.count(query) == len(reference(ledger, query.unbounded)), str(node)
        counts = await storage.group_count(query, "severity")
        expected: dict[str, int] = {}
        for e in reference(ledger, query.unbounded):
            expected[e.severity.value] = expected.get(e.severity.value, 0) + 1
        assert counts == expected, str(node)


# -- each decided rule, on every backend ---------------------------------------------

RULE_EVENTS = [
    ev(0, title="Connection refused", description="retry later", data={"n": 5, "s": "5"}),
    ev(
        1,
        title="Database down",
        description="conn",
        data={"n": "5", "b": True, "z": None},
        tags=["noise"],
        duration_ms=300,
    ),
    ev(
        2,
        title="deploy started",
        description="refused connection",
        data={"n": 5.0, "b": 1},
        source_component="api",
        duration_ms=900,
    ),
    ev(
        3,
        title="Deploy done",
        description="",
        data={"o": {"k": "acme/web"}, "l": [1, 2]},
        severity="warning",
        tags=["a"],
    ),
    ev(
        4,
        title="x",
        description="Connection",
        data={"o": [1], "k.dots": "v"},
        severity="error",
    ),
]
RULES = [
    ("data.n:5", [0, 2]),  # numbers: 5 and 5.0, not the string "5"
    ('data.n:"5"', [1]),  # a quoted literal is a string
    ("data.b:1", [2]),  # booleans are not numbers
    ("data.b:true", [1]),
    ("data.n:>3", [0, 2]),  # comparisons within one type
    ("data.z:null", [1]),  # null, not missing
    ("data.z:*", [1]),  # the key exists
    ("-data.z:*", [0, 2, 3, 4]),
    ("data.o.k:acme*", [3]),
    ("data.o.k:*", [3]),  # [1] is not an object
    ("data.l.0:1", []),  # arrays are not searched
    ('data."k.dots":v', [4]),
    ("description:*", [0, 1, 2, 4]),  # not empty
    ("source_component:*", [2]),  # not null and not empty
    ("tag:*", [1, 3]),
    ("-tag:noise", [0, 2, 3, 4]),
    ("title:Deploy*", [3]),  # prefix case-sensitive
    ("title:deploy*", [2]),
    ("deploy", [2, 3]),  # full text case-insensitive
    ('"conn ref"', [0]),  # a phrase: adjacent, in order, within one field
    ('"refused conn"', [2]),
    ('"refused retry"', []),  # not across title and description
    ('"connection"', [0, 2, 4]),
    ("-duration:<500", [0, 2, 3, 4]),  # a term on a missing value is false, its NOT true
    ("severity:>=warning", [3, 4]),
    ("-(tag:a OR tag:noise)", [0, 2, 4]),
    ("NOT (data.n:5 data.b:*)", [0, 1, 3, 4]),
]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(node=_filters, events=st.lists(_events, min_size=1, max_size=6))
def test_folding_terms_that_match_no_event_keeps_the_meaning(
    node: Filter, events: list[Event]
) -> None:
    """``fold_false`` (SQLite folds full-text terms that start no indexed word): with the
    terms that match none of the events folded away, every event is chosen as before."""

    def matches_none(term: Filter) -> bool:
        return isinstance(term, Text) and not any(matches(term, e) for e in events)

    folded = fold_false(node, matches_none)
    for event in events:
        chosen = folded if isinstance(folded, bool) else matches(folded, event)
        assert chosen == matches(node, event), (node, folded)


def test_prefix_bounds_hold_exactly_the_strings_with_the_prefix() -> None:
    assert prefix_bounds("acme/") == ("acme/", "acme0")
    assert prefix_bounds("a\ud7ff") == ("a\ud7ff", "a\ue000")  # past the surrogates
    assert prefix_bounds("x\U0010ffff") == ("x\U0010ffff", "y")  # the last character
    assert prefix_bounds("\U0010ffff") == ("\U0010ffff", None)
    assert prefix_bounds("") == ("", None)


async def test_decided_rules(storage: Storage) -> None:
    await storage.append(RULE_EVENTS)
    for text, expected in RULES:
        query = Query(where=parse_filter(text), ascending=True)
        chosen = [RULE_EVENTS[i] for i in expected]
        assert reference(RULE_EVENTS, query) == chosen, text  # the rule itself
        assert await storage.query(query) == chosen, text
        assert await storage.count(query) == len(expected), text


async def test_every_read_honours_where(storage: Storage) -> None:
    events = [
        ev(i, severity=("info", "error")[i % 2], duration_ms=10 * i, data={"repo": f"r{i % 3}"})
        for i in range(30)
    ]
    await storage.append(events)
    query = Query(where=parse_filter("data.repo:r1 severity:error"))
    chosen = [e for e in events if query.matches(e)]
    assert await storage.count(query) == len(chosen) > 0
    assert await storage.group_count(query, "hour") == {"2024-03-10T00:00:00+00:00": len(chosen)}
    stats = await storage.duration_stats(query, percentiles=False)
    assert stats.count == len(chosen)
    assert stats.avg == pytest.approx(sum(e.duration_ms or 0 for e in chosen) / len(chosen))
    exact = await storage.duration_stats(query)
    durations = [e.duration_ms for e in chosen if e.duration_ms is not None]
    assert len(durations) == len(chosen)  # the filter chose events with a duration
    assert (exact.min, exact.max) == (min(durations), max(durations))
    # Lifted into the fields, a filter the rollups can answer gives the same counts.
    rollup = Query(where=parse_filter("severity:error timestamp:>=2024-03-10T00:10:00Z"))
    assert await storage.count(rollup) == len([e for e in events if rollup.matches(e)])
    read_after = getattr(storage, "read_after", None)
    if read_after is not None:
        found, _ = await read_after(0, query)
        assert [e.id for e in found] == [e.id for e in chosen]


async def test_cleanup_with_a_filter(storage: Storage) -> None:
    events = [
        ev(i, severity=("debug", "info")[i % 2], timestamp=BASE + timedelta(days=i % 3))
        for i in range(12)
    ]
    await storage.append(events)
    now = BASE + timedelta(days=3)
    deleted = await storage.cleanup_old_events(1.5, now=now, where=parse_filter("severity:debug"))
    gone = {
        e.id
        for e in events
        if e.severity.value == "debug" and e.timestamp < BASE + timedelta(days=1.5)
    }
    assert deleted == len(gone) > 0
    kept = await storage.query(Query(ascending=True))
    assert kept == reference([e for e in events if e.id not in gone], Query(ascending=True))
    # The rollups lost exactly those events.
    assert await storage.count(Query()) == len(kept)
    assert await storage.group_count(Query(), "severity") == {
        "info": 6,
        "debug": 6 - len(gone),
    }


# -- expression indexes ------------------------------------------------------------------


async def test_index_add_list_remove(storage: Storage) -> None:
    events = [ev(i, data={"repo": ("acme", "beta", 5)[i % 3]}) for i in range(9)]
    await storage.append(events)
    query = Query(where=parse_filter("data.repo:acme"), limit=100)
    before = await storage.query(query)
    assert await storage.add_index("data.repo") is True  # type: ignore[attr-defined]
    assert await storage.add_index("data.repo") is False  # type: ignore[attr-defined]
    listed = await storage.list_indexes()  # type: ignore[attr-defined]
    assert [row["path"] for row in listed] == ["data.repo"]
    assert [row["path"] for row in (await storage.health())["indexes"]] == ["data.repo"]
    assert await storage.query(query) == before == [e for e in reversed(events) if query.matches(e)]
    assert await storage.remove_index("data.repo") is True  # type: ignore[attr-defined]
    assert await storage.remove_index("data.repo") is False  # type: ignore[attr-defined]
    assert await storage.list_indexes() == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path", ["repo", "data", "data.", "data.a-b", "data.'x'", "tags.x", "data.a;drop"]
)
async def test_index_refuses_paths_that_are_not_plain_keys(storage: Storage, path: str) -> None:
    with pytest.raises(ValueError, match=r"^index: "):
        await storage.add_index(path)  # type: ignore[attr-defined]


async def test_an_indexed_path_uses_its_index(storage: Storage) -> None:
    """The compiler writes an indexed path as its index does, so the plan uses it."""
    await storage.append([ev(i, data={"repo": f"r{i % 50}"}) for i in range(500)])
    await storage.add_index("data.repo")  # type: ignore[attr-defined]
    query = Query(where=parse_filter("data.repo:r7"), since=BASE, limit=100)
    plan = storage._plan(query)  # type: ignore[attr-defined]
    name = (await storage.list_indexes())[0]["index"]  # type: ignore[attr-defined]
    if isinstance(storage, SQLiteStorage):
        statement, params = sqlite_sql.select(plan)
        with sqlite3.connect(storage.path) as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
        assert any(name in row[3] for row in rows), rows
    else:
        statement, params = postgres_sql.select(plan)
        lines = await storage._read(  # type: ignore[attr-defined]
            lambda conn: conn.fetch(f"EXPLAIN {statement}", *params)
        )
        text = "\n".join(r[0] for r in lines)
        # Each partition has its own copy of the index (named by PostgreSQL).
        assert "events_20240310_expr_timestamp_idx" in text, text
    assert len(await storage.query(query)) == 10
