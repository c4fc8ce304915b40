"""Fixtures of the reliability suite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from _common import drop_schema, fresh_schema, postgres_url


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """``(base URL, fresh schema name)`` on the EVENTCOLLECTOR_TEST_POSTGRES server (or a
    skip naming the variable); the schema is dropped afterwards. For synchronous tests."""
    base = postgres_url()
    schema = fresh_schema("ecr_")
    try:
        yield base, schema
    finally:
        asyncio.run(drop_schema(base, schema))
