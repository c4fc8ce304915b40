"""Helpers for the PostgreSQL tests: the server URL (or a skip), schemas, admin statements."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

PG_ENV = "EVENTCOLLECTOR_TEST_POSTGRES"


def postgres_url() -> str:
    """The test server's URL, or skip naming the variable that enables these tests."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need the 'postgres' extra (asyncpg)")
    return url


def fresh_schema() -> str:
    return f"ect_{uuid.uuid4().hex[:16]}"


async def drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def admin(url: str, statement: str, *args: Any) -> Any:
    """Run one statement on a separate superuser connection; its rows."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(statement, *args)
    finally:
        await conn.close()
