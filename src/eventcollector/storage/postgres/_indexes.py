"""Expression indexes on data/metadata paths for PostgreSQL (see ``storage._indexes``):
one index on the partitioned ``events`` (each partition gets its own, new ones too),
with its registry row, in one transaction under the DDL advisory lock."""

from __future__ import annotations

from typing import Any

from eventcollector.storage._indexes import (
    MAX_INDEXES,
    REGISTRY,
    describe,
    index_name,
    parse_index_path,
    path_text,
)
from eventcollector.storage.postgres._dialect import DIALECT
from eventcollector.storage.postgres._schema import lock_key


async def add_index(conn: Any, schema: str, path: str) -> bool:
    """Create the index for ``path`` (``data.repo``); False if it exists already."""
    field = parse_index_path(path)
    text, name = path_text(field), index_name(field)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key(schema, "ddl"))
        if await conn.fetchval("SELECT 1 FROM event_indexes WHERE path = $1", text):
            return False
        if await conn.fetchval("SELECT count(*) FROM event_indexes") >= MAX_INDEXES:
            raise ValueError(f"index: at most {MAX_INDEXES} indexed paths")
        expression = DIALECT.index_expression(field.name, field.path)
        # Ends in timestamp: "path equals x, newest first, limit N" walks it and stops.
        await conn.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON events ({expression}, timestamp)'
        )
        await conn.execute(
            "INSERT INTO event_indexes(path, index_name) VALUES ($1, $2)", text, name
        )
        return True


async def remove_index(conn: Any, schema: str, path: str) -> bool:
    """Drop the index for ``path``; False if there was none."""
    field = parse_index_path(path)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key(schema, "ddl"))
        deleted = await conn.fetchval(
            "DELETE FROM event_indexes WHERE path = $1 RETURNING 1", path_text(field)
        )
        if not deleted:
            return False
        await conn.execute(f'DROP INDEX IF EXISTS "{index_name(field)}"')
        return True


async def list_indexes(conn: Any) -> list[dict[str, Any]]:
    return describe(await conn.fetch(REGISTRY))
