"""The statement time budget: a read statement past ``query_timeout`` is cancelled with
``QueryTimeout`` (SQLite: a progress handler on the readers; PostgreSQL:
``statement_timeout`` in the read's transaction), and the writer and other readers
carry on. A real slow statement on each backend: a 64-term filter over 20,000 events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from _common import drop_schema, fresh_schema, make_event, postgres_url
from eventcollector import Event
from eventcollector.filters import parse_filter
from eventcollector.query import Query
from eventcollector.storage import DEFAULT_QUERY_TIMEOUT, QueryTimeout, open_storage
from eventcollector.storage.sqlite import SQLiteStorage

if TYPE_CHECKING:
    from eventcollector.storage.postgres import PostgresStorage

    Budgeted = SQLiteStorage | PostgresStorage

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

BUDGET = 0.05
EVENTS = 20_000
#: No event matches, so every row is checked against every term (about 1 s unbudgeted).
HEAVY = parse_filter(" OR ".join(f"data.k{i % 8}.x:>{10**9 + i}" for i in range(64)))


def _events(n: int, start: datetime) -> list[Event]:
    return [
        make_event(
            title=f"job {i}",
            timestamp=start + timedelta(milliseconds=i),
            data={f"k{j}": {"x": i + j, "pad": "y" * 40} for j in range(8)},
        )
        for i in range(n)
    ]


@pytest.fixture(params=BACKENDS)
async def budgeted(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Budgeted]:
    """A store of each backend holding ``EVENTS`` events, reads limited to ``BUDGET``."""
    store: Budgeted
    schema = None
    if request.param == "sqlite":
        store = SQLiteStorage(tmp_path / "events.db", query_timeout=BUDGET)
    else:
        from eventcollector.storage.postgres import PostgresStorage

        schema = fresh_schema()
        store = PostgresStorage(
            postgres_url(), schema=schema, partitions_ahead=1, query_timeout=BUDGET
        )
    try:
        await store.open()
        events = _events(EVENTS, datetime.now(UTC) - timedelta(hours=1))
        for i in range(0, EVENTS, 5_000):
            await store.append(events[i : i + 5_000])
        yield store
    finally:
        await store.close()
        if schema is not None:
            await drop_schema(postgres_url(), schema)


async def test_a_statement_past_the_budget_is_cancelled_and_the_rest_go_on(
    budgeted: Budgeted,
) -> None:
    heavy = asyncio.create_task(budgeted.count(Query(where=HEAVY)))
    # While it runs: the writer commits and another reader answers.
    late = make_event(title="written meanwhile")
    assert await budgeted.append([late]) == [True]
    assert [e.id for e in await budgeted.query(Query(ids=(late.id,)))] == [late.id]
    with pytest.raises(QueryTimeout) as cancelled:
        await heavy
    assert cancelled.value.budget == BUDGET
    assert str(cancelled.value) == (
        "query_timeout: the query ran past its 0.05 s budget and was cancelled"
    )
    # Afterwards: the same connections read and the writer writes.
    assert await budgeted.count(Query()) == EVENTS + 1
    assert await budgeted.append([make_event(title="after")]) == [True]
    assert await budgeted.count(Query(search="after")) == 1


async def test_no_budget_lets_the_statement_finish(budgeted: Budgeted) -> None:
    budgeted.query_timeout = None
    assert await budgeted.count(Query(where=HEAVY)) == 0


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_a_bad_budget_is_refused_naming_it(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match=r"^query_timeout: must be a positive number"):
        SQLiteStorage(tmp_path / "events.db", query_timeout=bad)  # type: ignore[arg-type]


def test_open_storage_passes_the_budget_on(tmp_path: Path) -> None:
    default = open_storage(tmp_path / "a.db")
    chosen = open_storage(tmp_path / "b.db", query_timeout=2.5)
    assert isinstance(default, SQLiteStorage)
    assert isinstance(chosen, SQLiteStorage)
    assert (default.query_timeout, chosen.query_timeout) == (DEFAULT_QUERY_TIMEOUT, 2.5)
