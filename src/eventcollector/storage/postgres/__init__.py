"""PostgreSQL storage: one shared store for many collector servers (extra "postgres").

Modules, by role (the SQLite package has the same names for the same roles):

- ``_storage``: ``PostgresStorage``: lifecycle, the pool, the protocol methods.
- ``_connection``: ``Runner`` (``fn(conn)`` on a pooled connection), the pool's reset,
  the URL's ``schema=`` parameter and its redaction.
- ``_errors``: database errors to ``StorageError`` / ``StorageUnavailable``; which
  errors mean a lost connection (safe to retry).
- ``_schema``: DDL, versioned migrations and the daily partitions (create, list).
- ``_sql``: ``Query`` -> SQL (WHERE / ORDER BY / LIMIT), row <-> ``Event``, column lists.
- ``_writer``: grouped ingest: queued appends taken by a few writer tasks in parallel
  transactions, their parts kept in order.
- ``_ingest``: one ingest transaction: id claims, COPY, rollups, NOTIFY.
- ``_rollups``: the rollup CTEs, and which rollup answers which part of a read.
- ``_retention``: whole days dropped with their partition, the rest deleted by chunks.
- ``_reads``: counts, groupings, durations, ``read_after``.

Only here:

- ``_listen``: LISTEN/NOTIFY, so live streams see events other servers store. An
  SQLite file has one server at a time, and its collector publishes what it stores.
"""

from eventcollector.storage.postgres._schema import SCHEMA_VERSION, NotOurSchema
from eventcollector.storage.postgres._storage import PostgresStorage

__all__ = ["SCHEMA_VERSION", "NotOurSchema", "PostgresStorage"]
