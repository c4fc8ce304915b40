"""The embedded default backend: one SQLite file in WAL mode.

Modules, by role (the PostgreSQL package has the same names for the same roles):

- ``_storage``: ``SQLiteStorage``: lifecycle, reader threads, the protocol methods.
- ``_connection``: the settings of every connection; network filesystems refused.
- ``_errors``: SQLite result codes to ``StorageError`` / ``StorageUnavailable``.
- ``_schema``: DDL and migrations (application_id, user_version).
- ``_sql``: ``Query`` -> SQL (WHERE / ORDER BY / LIMIT), row <-> ``Event``, column lists.
- ``_writer``: the single writer thread: group commit over a queue of write jobs.
- ``_ingest``: the insert jobs: events, their side tables, the journal of small commits.
- ``_rollups``: the rollup upserts, and which rollup answers which part of a read.
- ``_retention``: deleting old events in chunks, with their side tables.
- ``_reads``: counts, groupings, durations, ``read_after``.

Only here:

- ``_select``: selecting events (prefix expansion, a search walked in rowid order,
  several values merged per value), plans chosen in Python because SQLite's planner
  would sort every match of a search or an ``IN`` list before taking one page.
  PostgreSQL answers these with one statement (its ``_sql.select``).
- ``_checkpointer``: WAL checkpoints on their own thread. PostgreSQL checkpoints by
  itself, off the committing connection.
"""

from eventcollector.storage.sqlite._schema import SCHEMA_VERSION, NotOurDatabase
from eventcollector.storage.sqlite._storage import SQLiteStorage

__all__ = ["SCHEMA_VERSION", "NotOurDatabase", "SQLiteStorage"]
