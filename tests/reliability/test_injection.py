"""Property 11: hostile order_by, field names and search syntax cannot inject SQL.

Each hostile value goes through ``EventQueryBuilder`` on the embedded store and
through the HTTP query parameters of the real server: either it is refused
(ValueError naming the field / 400) or the result is exactly what the plain-Python
reference ``Query.matches`` selects. ``sqlite_master`` is unchanged afterwards.
(Every regular filter against the reference: tests/server/test_queries.py and the
storage contract suite.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from eventcollector import EventCollector
from eventcollector.builder import EventQueryBuilder
from eventcollector.model import Event

from ._support import Server

TITLES = [
    "Database ready", "data'base; DROP TABLE events; --", 'quote " inside', "100% done",
    "under_score", "NEAR(a b)", "a OR b", "title:x", "x* star", "^caret", "-minus",
    "ΣΩ unicode", "back\\slash", "semi;colon",
]  # fmt: skip
HOSTILE = [
    "'", '"', "''", "%", "_", "*", "\\", "%' OR '1'='1", "x' OR 1=1 --", "); DROP TABLE events; --",
    "NEAR(a b)", "a OR b", "title:x", "data*", "^caret", "-minus", "\x00", "ΣΩ", "a AND NOT b",
    '"data', "{title}: x", "column:data",
]  # fmt: skip
BAD_FIELDS = [
    "timestamp; DROP TABLE events", "title desc", "(select 1)", "rowid", "e.id", "system--",
    "1", "", "TIMESTAMP", "events.title",
]  # fmt: skip


def _schema(db: Path | str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def _clean(value: str) -> str:
    """A hostile value as a stored field may hold it (no NUL, whitespace or commas)."""
    return "".join(c for c in value if c not in "\x00 ,") or "t"


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[tuple[EventCollector, list[Event]]]:
    collector = EventCollector(tmp_path / "inj.db")
    events = []
    for i, title in enumerate(TITLES):
        events.append(
            await collector.collect(
                system="deployer" if i % 2 else "builder",
                event_type="test.run",
                title=title,
                description=_clean(HOSTILE[i % len(HOSTILE)]),
                tags=[_clean(HOSTILE[i % len(HOSTILE)]), "plain"],
                correlation_id=_clean(HOSTILE[(i + 3) % len(HOSTILE)]),
                source_component=_clean(HOSTILE[(i + 5) % len(HOSTILE)]),
                duration_ms=i,
            )
        )
    try:
        yield collector, events
    finally:
        await collector.stop()


Build = Callable[[EventQueryBuilder, str], EventQueryBuilder]
FILTERS: dict[str, Build] = {
    "search": lambda b, v: b.search(v),
    "tags": lambda b, v: b.tags([v]),
    "any_tags": lambda b, v: b.any_tags([v]),
    "correlation_id": lambda b, v: b.correlation_id(v),
    "source_component": lambda b, v: b.source_component(v),
    "ids": lambda b, v: b.ids([v]),
    "system": lambda b, v: b.system(v),
}


async def test_builder_hostile_values_match_the_reference_or_are_refused(
    seeded: tuple[EventCollector, list[Event]],
) -> None:
    collector, events = seeded
    before = _schema(collector.db_path)
    outcomes = {"matched": 0, "refused": 0}
    for name, build in FILTERS.items():
        for value in HOSTILE:
            try:
                builder = build(EventQueryBuilder(collector), value).limit(1000)
                got = [e.id for e in await builder.execute()]
            except ValueError as exc:
                refusal = str(exc)
                outcomes["refused"] += 1
                assert refusal.split(":")[0] in (name, "ids", "tags", "any_tags", "search"), refusal
                continue
            query = builder.build()
            expected = [e.id for e in reversed(events) if query.matches(e)]
            assert sorted(got) == sorted(expected), (name, value)
            outcomes["matched"] += 1
    for field in BAD_FIELDS:
        with pytest.raises(ValueError, match="order_by"):
            EventQueryBuilder(collector).order_by(field)
        with pytest.raises(ValueError, match=r"^field:"):
            # Not a group field on purpose: the check under test.
            await collector.group_count(EventQueryBuilder(collector).build(), field)  # type: ignore[arg-type]
    assert outcomes["matched"] > outcomes["refused"]
    assert await collector.count(EventQueryBuilder(collector).build()) == len(events)
    assert _schema(collector.db_path) == before


HTTP_PARAMS = ["search", "tags", "any_tags", "correlation_id", "source_component", "id", "system"]


def test_http_hostile_parameters_match_the_reference_or_are_400(
    tmp_path: Path, seeded: tuple[EventCollector, list[Event]]
) -> None:
    collector, events = seeded
    db = collector.db_path
    server = Server(tmp_path, "--rate-limit", "0", db=db)
    before = _schema(db)
    try:
        with server.client() as c:
            for name in HTTP_PARAMS:
                for value in HOSTILE:
                    r = c.get("/v1/events", params={name: value, "limit": "1000"})
                    if r.status_code == 400:
                        assert r.json()["error"].startswith(name), (name, value, r.text)
                        continue
                    assert r.status_code == 200, (name, value, r.text)
                    got = {e["id"] for e in r.json()["events"]}
                    builder = FILTERS.get(name, FILTERS["ids"])
                    query = builder(EventQueryBuilder(collector), value).build()
                    assert got == {e.id for e in events if query.matches(e)}, (name, value)
            for field in BAD_FIELDS:
                r = c.get("/v1/events", params={"order_by": field})
                assert r.status_code == 400
                assert r.json()["error"].startswith("order_by")
                r = c.get("/v1/events/group", params={"field": field})
                assert r.status_code == 400
                assert r.json()["error"].startswith("field")
                r = c.get("/v1/events", params={field or "x": "1"})  # unknown parameter names
                assert r.status_code == 400
            assert c.get("/v1/events/count").json()["count"] == len(events)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
    assert _schema(db) == before
