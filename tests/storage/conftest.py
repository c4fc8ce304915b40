"""Every storage backend behind one ``storage`` fixture, so one contract suite runs on all.

PostgreSQL runs against the real server named by ``EVENTCOLLECTOR_TEST_POSTGRES``
(CI: postgresql://postgres@127.0.0.1:5432/test); each test gets a fresh schema that
is dropped afterwards. Without the variable those tests are skipped, saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from _common import drop_schema, fresh_schema, postgres_url
from eventcollector.storage import Storage
from eventcollector.storage.sqlite import SQLiteStorage


@pytest.fixture
async def pg_schema() -> AsyncIterator[tuple[str, str]]:
    """(url, schema) for a schema that is dropped after the test."""
    url = postgres_url()
    schema = fresh_schema()
    yield url, schema
    await drop_schema(url, schema)


@pytest.fixture
async def pg_factory(
    pg_schema: tuple[str, str],
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await make(**options)``: an open PostgresStorage on the test schema, closed after."""
    from eventcollector.storage.postgres import PostgresStorage

    url, schema = pg_schema
    made: list[PostgresStorage] = []

    async def make(*, open: bool = True, **options: Any) -> PostgresStorage:
        options.setdefault("schema", schema)
        options.setdefault("partitions_ahead", 1)
        storage = PostgresStorage(url, **options)
        made.append(storage)
        if open:
            await storage.open()
        return storage

    yield make
    for storage in made:
        await storage.close()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """An open, empty store of each backend."""
    if request.param == "sqlite":
        store: Storage = SQLiteStorage(tmp_path / "events.db")
        await store.open()
        try:
            yield store
        finally:
            await store.close()
        return
    from eventcollector.storage.postgres import PostgresStorage

    url = postgres_url()
    schema = fresh_schema()
    store = PostgresStorage(url, schema=schema, partitions_ahead=1)
    try:
        await store.open()
        yield store
    finally:
        await store.close()
        await drop_schema(url, schema)
