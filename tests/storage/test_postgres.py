"""PostgreSQL specifics: partitions, retention by partition, migrations, streams, outages."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _common import admin, drop_schema, fresh_schema, postgres_url
from eventcollector import EventCollector
from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.storage import StorageError, StorageUnavailable, open_storage

pytestmark = pytest.mark.postgres

Factory = Callable[..., Awaitable[Any]]
BASE = datetime(2024, 3, 10, tzinfo=UTC)


def ev(i: int = 0, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "system": "alpha",
        "event_type": "job.run",
        "title": f"Event {i}",
        "timestamp": BASE + timedelta(minutes=i),
    }
    values.update(fields)
    return Event.create(**values)


async def partitions(url: str, schema: str) -> set[date]:
    rows = await admin(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace"
        " WHERE p.relname = 'events' AND n.nspname = $1",
        schema,
    )
    return {datetime.strptime(r[0], "events_%Y%m%d").date() for r in rows}


async def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll until ``predicate()``; a bound on waiting, not a timing assertion."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_partitions_are_created_ahead_and_on_demand(
    pg_factory: Factory, pg_schema: tuple[str, str]
) -> None:
    url, schema = pg_schema
    store = await pg_factory(partitions_ahead=3)
    today = datetime.now(UTC).date()
    assert {today + timedelta(days=i) for i in range(-1, 4)} <= await partitions(url, schema)
    old = ev(1, timestamp=datetime(2001, 2, 3, 4, 5, tzinfo=UTC))
    assert await store.append([old]) == [True]
    assert date(2001, 2, 3) in await partitions(url, schema)
    assert await store.query(Query(until=datetime(2002, 1, 1, tzinfo=UTC))) == [old]
    health = await store.health()
    assert health["oldest_partition"] == "2001-02-03"
    assert health["partitions"] >= 6


async def test_retention_drops_whole_partitions_and_trims_the_boundary(
    pg_factory: Factory, pg_schema: tuple[str, str]
) -> None:
    url, schema = pg_schema
    store = await pg_factory()
    events = [ev(i, timestamp=BASE + timedelta(hours=5 * i)) for i in range(20)]  # ~4 days
    await store.append(events)
    now = BASE + timedelta(days=2, hours=12) + timedelta(days=1)
    cutoff = now - timedelta(days=1)
    deleted = await store.cleanup_old_events(1, now=now)
    assert deleted == sum(e.timestamp < cutoff for e in events)
    days = await partitions(url, schema)
    assert date(2024, 3, 10) not in days
    assert date(2024, 3, 11) not in days
    assert date(2024, 3, 12) in days  # the boundary day keeps its newer half
    assert await store.query(Query(order_by="timestamp", ascending=True)) == [
        e for e in events if e.timestamp >= cutoff
    ]
    ids = await admin(url, f'SELECT count(*) FROM "{schema}".event_ids')
    assert ids[0][0] == len(events) - deleted
    await assert_rollups_match_events(url, schema)
    assert await rollup_totals(url, schema) == {t: len(events) - deleted for t in ROLLUP_TABLES}


ROLLUP_TABLES = ("event_counts", "day_counts", "event_totals", "hour_totals")


async def rollup_totals(url: str, schema: str) -> dict[str, int]:
    return {
        t: (await admin(url, f'SELECT coalesce(sum(n), 0) FROM "{schema}".{t}'))[0][0]
        for t in ROLLUP_TABLES
    }


async def assert_rollups_match_events(url: str, schema: str) -> None:
    """Every rollup table equals the same grouping of ``events`` (no zero rows left)."""
    s = f'"{schema}"'
    grains = {
        "event_counts": "date_trunc('hour', timestamp, 'UTC'), system, event_type, severity",
        "day_counts": "(timestamp AT TIME ZONE 'UTC')::date, system, event_type, severity",
        "event_totals": "system, event_type, severity",
        "hour_totals": "date_trunc('hour', timestamp, 'UTC')",
    }
    for table, keys in grains.items():
        arity = {"event_counts": 4, "day_counts": 4, "event_totals": 3, "hour_totals": 1}[table]
        key_columns = {
            "event_counts": "hour, system, event_type, severity",
            "day_counts": "day, system, event_type, severity",
            "event_totals": "system, event_type, severity",
            "hour_totals": "hour",
        }[table]
        positions = ", ".join(str(i + 1) for i in range(arity))
        expected = await admin(
            url,
            f"SELECT {keys}, count(*), count(duration_ms), coalesce(sum(duration_ms), 0)"
            f" FROM {s}.events GROUP BY {positions} ORDER BY {positions}",
        )
        got = await admin(
            url, f"SELECT {key_columns}, n, d_n, d_sum FROM {s}.{table} ORDER BY {positions}"
        )
        assert [tuple(r) for r in got] == [tuple(r) for r in expected], table


async def test_concurrent_opens_migrate_once(pg_schema: tuple[str, str]) -> None:
    from eventcollector.storage.postgres import SCHEMA_VERSION, PostgresStorage

    url, schema = pg_schema
    stores = [PostgresStorage(url, schema=schema, partitions_ahead=2) for _ in range(6)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        versions = await admin(url, f'SELECT version FROM "{schema}".schema_migrations')
        assert [r[0] for r in versions] == list(range(1, SCHEMA_VERSION + 1))  # each once
        results = await asyncio.gather(*(s.append([ev(1, id="same")]) for s in stores))
        assert sorted(r[0] for r in results) == [False] * 5 + [True]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_open_is_idempotent_and_reopens(pg_factory: Factory) -> None:
    store = await pg_factory()
    await store.open()
    await store.append([ev(1)])
    await store.close()
    await store.close()
    with pytest.raises(StorageError):
        await store.append([ev(2)])
    await store.open()
    assert await store.count(Query()) == 1


async def test_foreign_or_newer_schema_is_refused(pg_factory: Factory, pg_schema: Any) -> None:
    url, schema = pg_schema
    await admin(url, f'CREATE SCHEMA "{schema}"')
    await admin(url, f'CREATE TABLE "{schema}".events (x int)')
    with pytest.raises(ValueError, match="not made by eventcollector"):
        await pg_factory()
    await admin(url, f'DROP TABLE "{schema}".events')
    await admin(url, f'CREATE TABLE "{schema}".schema_migrations (version int, applied_at date)')
    await admin(url, f'INSERT INTO "{schema}".schema_migrations VALUES (99, now())')
    with pytest.raises(ValueError, match="newer"):
        await pg_factory()


@pytest.mark.parametrize("bad", ["Public", "a-b", 'x"; DROP TABLE y; --', "", "1abc", "a" * 49])
def test_schema_names_are_validated(bad: str) -> None:
    from eventcollector.storage.postgres import PostgresStorage

    with pytest.raises(ValueError, match="schema"):
        PostgresStorage("postgresql://localhost/x", schema=bad)


def test_url_schema_parameter_and_redaction() -> None:
    from eventcollector.storage.postgres import PostgresStorage

    store = PostgresStorage("postgres://u:secret@h:5433/db?schema=tenant_a&sslmode=disable")
    assert store.schema == "tenant_a"
    assert store.url == "postgresql://u:***@h:5433/db?sslmode=disable"
    assert isinstance(open_storage("postgresql://h/db"), PostgresStorage)


async def test_large_batches_use_copy_and_stay_idempotent(pg_factory: Factory) -> None:
    store = await pg_factory()
    events = [ev(i % 1440, id=f"id-{i:05d}-{'x' * 100}") for i in range(5000)]
    assert await store.append(events) == [True] * 5000
    assert await store.append([*events[::-1][:10], ev(1)]) == [False] * 10 + [True]
    assert await store.count(Query()) == 5001
    assert await store.count(Query(since=BASE, until=BASE + timedelta(days=1))) == 5001


async def test_a_large_append_split_over_parallel_writers_keeps_its_order(
    pg_factory: Factory,
) -> None:
    store = await pg_factory(max_writers=4)
    # One timestamp for all: only insertion order (seq) orders them. Parts of this
    # append are stored by parallel transactions; repeats in later parts of earlier
    # ids lose to the first occurrence.
    events = [ev(0, title=f"e{i:04d}") for i in range(2000)]
    events[1500] = ev(0, id=events[10].id, title="repeat")
    events[1999] = ev(0, id=events[600].id, title="repeat")
    results, other = await asyncio.gather(store.append(events), store.append([ev(1)]))
    assert other == [True]
    assert results == [i not in (1500, 1999) for i in range(2000)]
    stored = await store.query(Query(until=BASE + timedelta(seconds=1), ascending=True))
    assert [e.title for e in stored] == [e.title for e in events if e.title != "repeat"]
    assert await store.count(Query()) == 1999


async def test_read_after_follows_insertion_order(pg_factory: Factory) -> None:
    store = await pg_factory()
    other = await pg_factory()  # another instance writing to the same schema
    assert await store.read_after(5, Query()) == ([], 0)  # empty store
    _, start = await store.read_after(-1, Query())
    first = [ev(i) for i in range(5)]
    await store.append(first)
    late = ev(0, timestamp=datetime(2001, 2, 3, tzinfo=UTC), title="Late event")
    await other.append([late, ev(1, system="beta")])
    events, position = await store.read_after(start, Query())
    assert [e.id for e in events] == [*(e.id for e in first), late.id, events[-1].id]
    assert (await store.read_after(position, Query())) == ([], position)
    # Filters apply; a limit pages through, each page's position continuing it.
    alpha = Query(systems=("alpha",), search="event", limit=1, ascending=False)
    page, middle = await store.read_after(start, alpha, limit=3)
    assert [e.id for e in page] == [e.id for e in first[:3]]
    rest, end = await store.read_after(middle, alpha, limit=3)
    assert [e.id for e in rest] == [first[3].id, first[4].id, late.id]
    assert (await store.read_after(end, alpha, limit=3))[0] == []


async def test_read_after_waits_for_a_writer_holding_a_smaller_seq(
    pg_factory: Factory, pg_schema: tuple[str, str]
) -> None:
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

    url, schema = pg_schema
    store = await pg_factory()
    _, start = await store.read_after(-1, Query())
    slow = ev(1, title="slow")
    # A writer that has claimed its id and taken its seq, but not committed yet.
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        tx = conn.transaction()
        await tx.start()
        seq = await conn.fetchval(
            "WITH c AS (INSERT INTO event_ids VALUES ($1, $2) RETURNING id)"
            " SELECT nextval('events_seq') FROM c",
            slow.id,
            slow.timestamp,
        )
        await store.append([ev(2, title="fast")])  # a larger seq, committed first
        reading = asyncio.ensure_future(store.read_after(start, Query()))
        await asyncio.sleep(0.3)
        assert not reading.done()  # it waits rather than skip past the smaller seq
        await conn.execute(
            "INSERT INTO events (seq, id, timestamp, system, event_type, severity, title,"
            " description, data, tags, metadata)"
            " VALUES ($1, $2, $3, 'alpha', 'job.run', 'info', 'slow', '', '{}', '{}', '{}')",
            seq,
            slow.id,
            slow.timestamp,
        )
        await tx.commit()
        events, _ = await asyncio.wait_for(reading, 10)
    finally:
        await conn.close()
    assert [e.title for e in events] == ["slow", "fast"]


async def test_tail_on_postgres_follows_insertion_order(
    pg_factory: Factory, pg_schema: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = pg_schema
    store = await pg_factory()
    now = datetime.now(UTC)
    await store.append([ev(0, title="before", timestamp=now)])
    db = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    command = [sys.executable, "-m", "eventcollector", "tail", "--db", db]
    command += ["-f", "jsonl", "-n", "1", "--interval", "0.05", "--system", "alpha"]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stderr is not None

    async def line() -> str:
        assert proc.stdout is not None  # not narrowed from outside: a closure
        title: str = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))["title"]
        return title

    try:
        assert await line() == "before"  # the backlog: tail has its position
        await store.append([ev(1, title="live", timestamp=now), ev(2, system="beta")])
        assert await line() == "live"
        # Stored late with an old timestamp: a timestamp watermark would miss it.
        await store.append([ev(3, title="late", timestamp=now - timedelta(days=3))])
        assert await line() == "late"
    finally:
        proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 15)
        errors = await proc.stderr.read()
    assert code == 0, errors
    assert b"Traceback" not in errors


async def revert_to_version_2(url: str, schema: str) -> None:
    """Undo migrations 7 (silences), 6 (alerts), 5 (filters), 4 (issues) and 3 (the
    coarser rollups and the durations in ``event_counts``)."""
    s = f'"{schema}"'
    await admin(url, f"DROP TABLE {s}.alert_silences")
    await admin(
        url, f"DROP TABLE {s}.alert_rules, {s}.alert_states, {s}.alert_history, {s}.alert_triggers"
    )
    await admin(url, f"DROP TABLE {s}.event_indexes")
    await admin(url, f"DROP FUNCTION {s}.event_words(text)")
    await admin(url, f"DROP TABLE {s}.issues, {s}.event_issues")
    await admin(url, f"DELETE FROM {s}.schema_migrations WHERE version >= 4")
    await admin(url, f"DROP TABLE {s}.day_counts, {s}.event_totals, {s}.hour_totals")
    await admin(url, f"ALTER TABLE {s}.event_counts DROP COLUMN d_n, DROP COLUMN d_sum")
    await admin(url, f"DELETE FROM {s}.schema_migrations WHERE version >= 3")


async def test_migration_to_version_3_backfills_the_rollups(
    pg_factory: Factory, pg_schema: tuple[str, str]
) -> None:
    from eventcollector.storage.postgres import SCHEMA_VERSION

    url, schema = pg_schema
    first = await pg_factory()
    events = [
        ev(
            i,
            system=("alpha", "beta")[i % 2],
            severity=("info", "error", "debug")[i % 3],
            duration_ms=None if i % 4 == 0 else i * 11,
            timestamp=BASE + timedelta(minutes=97 * i),
        )
        for i in range(120)
    ]  # about 8 days
    await first.append(events)
    await first.close()
    await revert_to_version_2(url, schema)
    store = await pg_factory()
    assert (await store.health())["schema_version"] == SCHEMA_VERSION
    await assert_rollups_match_events(url, schema)
    assert await rollup_totals(url, schema) == {t: len(events) for t in ROLLUP_TABLES}
    since, until = BASE + timedelta(hours=5, minutes=7), BASE + timedelta(days=6, hours=3)
    query = Query(since=since, until=until, systems=("beta",))
    chosen = [e for e in events if query.matches(e)]
    assert await store.count(query) == len(chosen)
    durations = [e.duration_ms for e in chosen if e.duration_ms is not None]
    stats = await store.duration_stats(query, percentiles=False)
    assert (stats.count, stats.avg) == (
        len(durations),
        pytest.approx(sum(durations) / len(durations)),
    )
    # Ingest after the migration keeps every rollup in step.
    await store.append(
        [ev(1000 + i, timestamp=BASE + timedelta(days=3, minutes=i)) for i in range(5)]
    )
    await assert_rollups_match_events(url, schema)


async def test_migration_from_version_1(pg_factory: Factory, pg_schema: tuple[str, str]) -> None:
    from eventcollector.storage.postgres import SCHEMA_VERSION

    url, schema = pg_schema
    first = await pg_factory()
    await first.close()
    await revert_to_version_2(url, schema)
    await admin(url, f'DROP INDEX "{schema}".events_seq_idx')
    await admin(url, f'DELETE FROM "{schema}".schema_migrations WHERE version = 2')
    store = await pg_factory()
    assert (await store.health())["schema_version"] == SCHEMA_VERSION
    indexes = await admin(
        url,
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'events'",
        schema,
    )
    assert "events_seq_idx" in {r[0] for r in indexes}


async def test_cross_instance_listen(pg_factory: Factory) -> None:
    reader = await pg_factory()
    writer = await pg_factory()
    seen: list[Event] = []
    await reader.listen(seen.extend)
    own = ev(1, title="mine")
    await reader.append([own])
    # Ids long enough that one batch needs several NOTIFY payloads (8,000-byte limit).
    batch = [ev(i, id=f"{i:04d}-{uuid.uuid4().hex * 3}") for i in range(400)]
    await writer.append(batch)
    await wait_for(lambda: len(seen) >= len(batch))
    # Every event once, without the reader's own. Parallel writers may store one append in
    # parts (contiguous runs of it), each delivered in insertion order on its commit, and
    # the commits may come in either order.
    position = {e.id: i for i, e in enumerate(batch)}
    indices = [position[e.id] for e in seen]
    assert sorted(indices) == list(range(len(batch)))
    runs = [[indices[0]]]
    for i in indices[1:]:
        if i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    assert len(runs) <= 4, runs  # at most one run per writer (max_writers)
    assert seen == [batch[i] for i in indices]
    await writer.append([batch[0], ev(2, title="later")])  # the duplicate is not re-sent
    await wait_for(lambda: len(seen) > len(batch))
    assert [e.title for e in seen[len(batch) :]] == ["later"]


async def test_reconnects_after_backends_are_terminated(pg_factory: Factory) -> None:
    name = f"ect-{uuid.uuid4().hex[:12]}"
    reader = await pg_factory(application_name=name)
    writer = await pg_factory()
    seen: list[Event] = []
    await reader.listen(seen.extend)
    await reader.append([ev(1)])
    url = postgres_url()
    killed = await admin(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        name,
    )
    assert len(killed) >= 2  # the pool's connection and the listening one
    assert await reader.append([ev(2)]) == [True]
    assert await reader.count(Query()) == 2
    assert (await reader.health())["backend"] == "postgresql"

    async def delivered() -> None:
        await writer.append([ev(3, id=uuid.uuid4().hex)])
        await asyncio.sleep(0.3)

    # The listening connection comes back by itself; events stored after that arrive.
    for _ in range(50):
        await delivered()
        if seen:
            break
    assert seen


async def test_losing_the_database(pg_schema: tuple[str, str]) -> None:
    """While the server refuses us: health and append raise StorageUnavailable; then recover."""
    from eventcollector.storage.postgres import PostgresStorage

    url, schema = pg_schema
    role = f"ect_role_{uuid.uuid4().hex[:10]}"
    await admin(url, f'CREATE ROLE "{role}" LOGIN')
    await admin(url, f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"')
    role_url = url.replace("postgres@", f"{role}@", 1)
    assert role_url != url
    collector = EventCollector(
        storage=PostgresStorage(role_url, schema=schema, partitions_ahead=0, connect_timeout=5)
    )
    try:
        await collector.start()
        await collector.collect(system="alpha", event_type="job.run", title="before")
        await admin(url, f'ALTER ROLE "{role}" NOLOGIN')
        await admin(
            url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
        with pytest.raises(StorageUnavailable):
            await collector.storage.health()
        report = await collector.health_check()
        assert report["status"] == "unhealthy"
        with pytest.raises(StorageUnavailable):
            await collector.collect(system="alpha", event_type="job.run", title="lost")
        await admin(url, f'ALTER ROLE "{role}" LOGIN')
        await collector.collect(system="alpha", event_type="job.run", title="after")
        assert (await collector.health_check())["status"] == "healthy"
        titles = {e.title for e in await collector.query(Query())}
        assert titles == {"before", "after"}
    finally:
        await collector.stop()
        await drop_schema(url, schema)
        await admin(
            url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
        await admin(url, f'DROP ROLE IF EXISTS "{role}"')


async def test_unreachable_server_is_unavailable() -> None:
    from eventcollector.storage.postgres import PostgresStorage

    postgres_url()
    store = PostgresStorage("postgresql://postgres@127.0.0.1:1/test", connect_timeout=2)
    with pytest.raises(StorageUnavailable):
        await store.open()


async def test_collector_on_postgres_urls_and_cross_instance_streams(
    pg_schema: tuple[str, str],
) -> None:
    url, schema = pg_schema
    target = f"{url}?schema={schema}"
    first = EventCollector(db_path=target)
    second = EventCollector(db_url=target)
    await first.start()
    await second.start()
    try:
        assert first.db_path.startswith("postgresql://")
        stream = first.open_stream(Query(systems=("beta",)))
        await second.collect(system="alpha", event_type="job.run", title="filtered out")
        sent = await second.collect(system="beta", event_type="job.run", title="across")
        received = await asyncio.wait_for(anext(aiter(stream)), 10)
        assert received == sent
        first.close_stream(stream)
        assert await first.get_event(sent.id) == sent
        stats = await first.get_statistics()
        assert stats["total_events"] == 2
        assert (await first.health_check())["storage"]["schema"] == schema
    finally:
        await first.stop()
        await second.stop()


async def test_drop_schema_helper_is_safe_twice() -> None:
    url = postgres_url()
    schema = fresh_schema()
    await drop_schema(url, schema)
    await drop_schema(url, schema)
