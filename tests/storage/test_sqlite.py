"""SQLite specifics: WAL, the file's identity, adopting a spec-built database, refusals."""

from __future__ import annotations

import builtins
import io
import random
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from _reference import reference
from eventcollector.aggregation import AggregateSpec, facet_fields, identity
from eventcollector.aggregation_reference import aggregate_events, facet_events
from eventcollector.filters import parse_filter
from eventcollector.model import Event, format_timestamp
from eventcollector.query import Query
from eventcollector.storage import open_storage
from eventcollector.storage._plan import NOTHING
from eventcollector.storage.base import StorageError
from eventcollector.storage.sqlite import SCHEMA_VERSION, SQLiteStorage
from eventcollector.storage.sqlite._connection import MIN_SQLITE, require_sqlite
from eventcollector.storage.sqlite._schema import APPLICATION_ID
from eventcollector.storage.sqlite._select import EXPAND_PREFIX_UP_TO, without_unmatchable_text

# The spec's reference implementation's table and indexes, as its users have them.
SPEC_SCHEMA = """
CREATE TABLE events (
    id TEXT PRIMARY KEY, timestamp TEXT NOT NULL, system TEXT NOT NULL,
    event_type TEXT NOT NULL, severity TEXT NOT NULL, title TEXT NOT NULL,
    description TEXT NOT NULL, data TEXT NOT NULL, tags TEXT NOT NULL,
    correlation_id TEXT, source_component TEXT, duration_ms INTEGER, metadata TEXT NOT NULL
);
CREATE INDEX idx_events_timestamp ON events(timestamp);
CREATE INDEX idx_events_system ON events(system);
CREATE INDEX idx_events_type ON events(event_type);
CREATE INDEX idx_events_severity ON events(severity);
CREATE INDEX idx_events_correlation ON events(correlation_id);
"""


async def test_wal_mode_and_file_identity(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SQLiteStorage(path)
    await store.open()
    try:
        health = await store.health()
        assert health["journal_mode"] == "wal"
        assert health["schema_version"] == SCHEMA_VERSION
        assert health["db_path"] == str(path)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_open_storage_picks_sqlite(tmp_path: Path) -> None:
    for target in (tmp_path / "a.db", f"sqlite:///{tmp_path / 'b.db'}"):
        store = open_storage(target)
        assert isinstance(store, SQLiteStorage)
        assert store.url.startswith("sqlite:///")
    with pytest.raises(ValueError, match="url="):
        open_storage("http://collector:8765")


async def test_spec_built_database_is_adopted_and_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "spec.db"
    conn = sqlite3.connect(path)
    conn.executescript(SPEC_SCHEMA)
    ts = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    for i, (tags, title) in enumerate([(["a", "b"], "Database ready"), (["b"], "Disk error")]):
        conn.execute(
            "INSERT INTO events VALUES (?, ?, 'mahavishnu', 'workflow.started', 'info', ?, '',"
            " ?, ?, 'trace-1', NULL, ?, '{}')",
            (f"spec-{i}", format_timestamp(ts), title, orjson.dumps({"i": i}).decode(),
             orjson.dumps(tags).decode(), 10 * i),
        )  # fmt: skip
    conn.commit()
    conn.close()
    store = SQLiteStorage(path)
    await store.open()
    try:
        assert await store.count(Query()) == 2
        assert [e.id for e in await store.query(Query(tags_all=("a", "b")))] == ["spec-0"]
        assert [e.id for e in await store.query(Query(search="data"))] == ["spec-0"]
        assert await store.group_count(Query(), "hour") == {"2024-05-01T12:00:00+00:00": 2}
        assert await store.count(Query(since=ts.replace(minute=0), systems=("mahavishnu",))) == 2
        event = (await store.query(Query(ids=("spec-1",))))[0]
        assert (event.tags, event.data, event.correlation_id) == (["b"], {"i": 1}, "trace-1")
        assert await store.append([event]) == [False]
    finally:
        await store.close()


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just text\n" * 200)
    store = SQLiteStorage(path)
    with pytest.raises(ValueError, match="not an SQLite database"):
        await store.open()
    assert path.read_bytes().startswith(b"this is not a database")


async def test_a_foreign_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="not an eventcollector database"):
        await SQLiteStorage(path).open()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    with pytest.raises(ValueError, match="application_id"):
        await SQLiteStorage(path).open()


async def test_an_events_table_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shape.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (what TEXT, at TEXT)")
    conn.close()
    with pytest.raises(ValueError, match="lacks columns"):
        await SQLiteStorage(path).open()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    store = SQLiteStorage(path)
    await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ValueError, match="newer"):
        await SQLiteStorage(path).open()


async def test_open_twice_and_reopen(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "events.db")
    await store.open()
    await store.open()
    await store.close()
    await store.open()
    assert await store.count(Query()) == 0
    await store.close()


def test_synchronous_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStorage(tmp_path / "x.db", synchronous="OFF")


async def test_network_filesystem_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path on an NFS mount is refused (the mount table is the only thing faked)."""
    real_open = builtins.open
    mounts = f"server:/export {tmp_path} nfs4 rw,relatime 0 0\n"

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == "/proc/mounts":
            return io.StringIO(mounts)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(ValueError, match="network filesystem"):
        await SQLiteStorage(tmp_path / "events.db").open()
    assert not (tmp_path / "events.db").exists()


def test_an_sqlite_older_than_our_sql_is_refused_with_the_reason() -> None:
    """Ubuntu 22.04's SQLite has no -> operator: the check names both versions."""
    require_sqlite()  # this machine's
    require_sqlite(MIN_SQLITE)
    with pytest.raises(StorageError, match=r"SQLite 3\.38\.0 or newer .* uses SQLite 3\.37\.2"):
        require_sqlite((3, 37, 2))


async def test_a_word_that_starts_no_indexed_word_is_folded_before_planning(
    tmp_path: Path,
) -> None:
    """So the rest of the filter keeps its plan: ``zzq OR system:b`` is ``system:b``,
    which walks the system's index for a page instead of sorting the range's events."""
    storage = SQLiteStorage(tmp_path / "fold.db")
    await storage.open()
    try:
        await storage.append([Event.create(system="b", event_type="t", title="build ok")])

        async def folded(text: str, search: str | None = None) -> Query:
            query = Query(where=parse_filter(text), search=search)
            return await storage._read(lambda conn: without_unmatchable_text(conn, query))

        assert (await folded("zzq OR system:b")).where == parse_filter("system:b")
        assert (await folded("system:b -zzq")).where == parse_filter("system:b")
        assert (await folded("-zzq")).where is None
        assert (await folded("bui zzq")).where == NOTHING
        assert (await folded('"build zzq" OR bu')).where == parse_filter("bu")
        assert (await folded("system:b", search="zzq")) == Query(where=NOTHING)
        kept = parse_filter("build OR ünïcode")  # not ASCII: the tokenizer's folding decides
        assert (await folded("build OR ünïcode")).where == kept
        assert await storage.count(Query(where=parse_filter("zzq OR system:b"))) == 1
    finally:
        await storage.close()


@pytest.mark.parametrize("ascending", [False, True])
async def test_search_walks_rowid_blocks_and_matches_the_reference(
    tmp_path: Path, ascending: bool
) -> None:
    """A page of search results in time order walks the matches block by block."""
    rng = random.Random(5)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    # Three and a half rowid blocks; timestamps mostly rising with insertion, with
    # stragglers stored late under old timestamps (imports), so that block bounds overlap.
    minutes = [i if rng.random() < 0.9 else rng.randrange(15_000) for i in range(15_000)]
    events = [
        Event.create(
            system=rng.choice(["a", "b"]),
            event_type="t",
            title=f"{rng.choice(['database', 'cache'])} event {i}",
            timestamp=base + timedelta(minutes=m),
            now=base + timedelta(days=400),
        )
        for i, m in enumerate(minutes)
    ]
    storage = SQLiteStorage(tmp_path / "search.db")
    await storage.open()
    try:
        for start in range(0, len(events), 5_000):
            await storage.append(events[start : start + 5_000])
        for query in (
            Query(search="data", limit=100, ascending=ascending),
            Query(search="data", limit=50, offset=120, ascending=ascending),
            Query(search="data", systems=("a",), limit=30, ascending=ascending),
            Query(
                search="database",
                since=base + timedelta(minutes=4_000),
                until=base + timedelta(minutes=9_000),
                limit=200,
                ascending=ascending,
            ),
        ):
            assert await storage.query(query) == reference(events, query)
    finally:
        await storage.close()


@asynccontextmanager
async def stored(path: Path, events: Sequence[Event] = ()) -> AsyncIterator[SQLiteStorage]:
    """An open store at ``path`` holding ``events``, closed afterwards."""
    store = SQLiteStorage(path)
    await store.open()
    try:
        await store.append(events)
        yield store
    finally:
        await store.close()


async def _reopened_after(path: Path, events: list[Event], *downgrade: str) -> SQLiteStorage:
    """Store ``events``, take the file back to an older schema by SQL, and open it again."""
    store = SQLiteStorage(path)
    await store.open()
    await store.append(events)
    await store.close()
    conn = sqlite3.connect(path)
    for statement in downgrade:
        conn.execute(statement)
    conn.commit()
    conn.close()
    store = SQLiteStorage(path)
    await store.open()
    return store


async def test_a_version_1_database_is_upgraded_and_searches_the_same(tmp_path: Path) -> None:
    """Version 2 adds only the full-text vocabulary view; a version 1 file keeps its data."""
    path = tmp_path / "v1.db"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event.create(system="a", event_type="t", title=f"database {i}", timestamp=base, now=base)
        for i in range(5)
    ]
    store = await _reopened_after(
        path, events, "DROP TABLE events_fts_vocab", "PRAGMA user_version = 1"
    )
    try:
        assert (await store.health())["schema_version"] == SCHEMA_VERSION
        query = Query(search="data", limit=3)
        assert await store.query(query) == reference(events, query)
    finally:
        await store.close()


async def test_search_prefixes_expand_to_words_or_stay_prefixes(tmp_path: Path) -> None:
    """A prefix is searched as the exact words it starts, up to a limit; past it, and
    for non-ASCII words, as a prefix. Either way the results are the reference's."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    many = [f"pre{i:02d}" for i in range(EXPAND_PREFIX_UP_TO + 5)]
    titles = [*many, "prefix", "préfixe", "other", "pre", "Pré", "zeta pre07"]
    events = [
        Event.create(
            system="a",
            event_type="t",
            title=title,
            description=f"n{i}",
            timestamp=base + timedelta(minutes=i),
            now=base + timedelta(days=1),
        )
        for i, title in enumerate(titles)
    ]
    async with stored(tmp_path / "expand.db", events) as store:
        for text in ("pre", "pre0", "pre07", "pref", "pré", "zeta pre0", "nothing", "pre n1"):
            for query in (
                Query(search=text, limit=100),
                Query(search=text, limit=2, ascending=True),
                Query(search=text, order_by="title"),
            ):
                assert await store.query(query) == reference(events, query), query
            assert await store.count(Query(search=text)) == len(
                reference(events, Query(search=text))
            )


@pytest.mark.parametrize("ascending", [False, True])
async def test_a_page_over_several_values_merges_one_walk_per_value(
    tmp_path: Path, ascending: bool
) -> None:
    """``severity IN (a, b)`` in time order: one walk per value, merged, equals the
    reference, ties (equal timestamps across values) in insertion order."""
    rng = random.Random(11)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event.create(
            system=rng.choice(["a", "b"]),
            event_type="t",
            severity=rng.choice(["info", "error", "critical"]),
            title=f"e{i}",
            timestamp=base + timedelta(minutes=rng.randrange(200)),
            now=base + timedelta(days=1),
        )
        for i in range(1_500)
    ]
    async with stored(tmp_path / "merge.db", events) as store:
        for query in (
            Query(severities=("error", "critical"), limit=50, ascending=ascending),
            Query(severities=("error", "critical"), limit=20, offset=30, ascending=ascending),
            Query(
                severities=("error", "critical", "info"),
                since=base + timedelta(minutes=50),
                until=base + timedelta(minutes=120),
                limit=100,
                ascending=ascending,
            ),
            Query(systems=("a", "b"), severities=("error",), limit=40, ascending=ascending),
            Query(severities=("error", "critical"), limit=0, ascending=ascending),
        ):
            assert await store.query(query) == reference(events, query), query


async def test_a_version_3_database_gets_components_in_the_severity_index(
    tmp_path: Path,
) -> None:
    """Version 4 widens idx_events_severity: errors group by component from the index."""
    path = tmp_path / "v3.db"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event.create(
            system="a",
            event_type="t",
            severity=("error", "critical", "info")[i % 3],
            title=f"e{i}",
            source_component=(None, "api", "db")[i % 3 if i % 5 else 0],
            timestamp=base + timedelta(minutes=i),
            now=base + timedelta(days=1),
        )
        for i in range(300)
    ]
    store = await _reopened_after(
        path,
        events,
        "DROP INDEX idx_events_severity",
        "CREATE INDEX idx_events_severity ON events(severity, timestamp)",
        "PRAGMA user_version = 3",
    )
    try:
        query = Query(severities=("error", "critical"), since=base + timedelta(minutes=30))
        got = await store.group_count(query, "source_component")
        expected = Counter(e.source_component or "" for e in events if query.matches(e))
        assert got == dict(expected)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        columns = [row[2] for row in conn.execute("PRAGMA index_info(idx_events_severity)")]
        assert columns == ["severity", "timestamp", "source_component"]
    finally:
        conn.close()


async def test_a_version_8_database_gets_quarter_counts_of_its_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Version 9 adds quarter_counts, backfilled from the stored events, and says so."""
    path = tmp_path / "v8.db"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event.create(
            system=("a", "b")[i % 2],
            event_type="t",
            severity=("error", "info", "debug")[i % 3],
            title=f"e{i}",
            timestamp=base + timedelta(seconds=i * 97),
            now=base + timedelta(days=1),
        )
        for i in range(400)
    ]
    with caplog.at_level("WARNING", logger="eventcollector.storage.sqlite"):
        store = await _reopened_after(
            path, events, "DROP TABLE quarter_counts", "PRAGMA user_version = 8"
        )
    try:
        assert f"upgrading the schema from version 8 to {SCHEMA_VERSION}" in caplog.text
        spec = AggregateSpec.parse(["severity"], interval="15m", metrics=["count"])
        query = Query(since=base + timedelta(minutes=7), until=base + timedelta(hours=9))
        got = await store.aggregate(query, spec)
        want = aggregate_events(events, query, spec, base + timedelta(days=1))
        assert [(r.bucket, r.keys, r.values) for r in got.rows] == [
            (r.bucket, r.keys, r.values) for r in want.rows
        ]
    finally:
        await store.close()


async def test_a_version_9_database_gets_tag_counts_of_its_events(tmp_path: Path) -> None:
    """Version 10 adds tag_counts, backfilled from the stored events (untagged too)."""
    path = tmp_path / "v9.db"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event.create(
            system=("a", "b")[i % 2],
            event_type="t",
            severity=("error", "info")[i % 2],
            title=f"e{i}",
            tags=[["x"], ["x", "y"], [], ["z"]][i % 4],
            timestamp=base + timedelta(seconds=i * 97),
            now=base + timedelta(days=1),
        )
        for i in range(400)
    ]
    store = await _reopened_after(path, events, "DROP TABLE tag_counts", "PRAGMA user_version = 9")
    try:
        fields = facet_fields(["tag"], 10)
        for query in (
            Query(since=base + timedelta(minutes=7), until=base + timedelta(hours=9)),
            Query(systems=("a",), since=base + timedelta(hours=2)),
            Query(),
        ):
            (got,) = await store.facets(query, fields, 10)
            (want,) = facet_events(events, query, fields, 10)
            assert (got.values, got.other) == (want.values, want.other)
            assert got.values  # the range holds tagged events
    finally:
        await store.close()


async def test_partial_hours_read_as_the_hour_less_the_rest_match_the_reference(
    tmp_path: Path,
) -> None:
    """An edge of more than half an hour is counted as its hour's rollup less the rest."""
    rng = random.Random(3)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event.create(
            system=rng.choice(["a", "b", "c"]),
            event_type=rng.choice(["t1", "t2"]),
            severity=rng.choice(["info", "error"]),
            title=f"e{i}",
            duration_ms=rng.choice([None, rng.randrange(1, 500)]),
            timestamp=base + timedelta(seconds=rng.randrange(4 * 3600)),
            now=base + timedelta(days=1),
        )
        for i in range(2_000)
    ]
    async with stored(tmp_path / "edges.db", events) as store:
        for since_m, until_m in ((10, 230), (50, 190), (0, 200), (70, None), (None, 125)):
            for dims in ({}, {"severities": ("error",)}, {"systems": ("a", "c")}):
                query = Query(
                    since=None if since_m is None else base + timedelta(minutes=since_m),
                    until=None if until_m is None else base + timedelta(minutes=until_m),
                    **dims,
                )
                chosen = reference(events, query)
                assert await store.count(query) == len(chosen)
                for field in ("system", "event_type", "severity", "hour"):
                    expected = Counter(
                        e.timestamp.strftime("%Y-%m-%dT%H:00:00+00:00")
                        if field == "hour"
                        else getattr(e, field).value
                        for e in chosen
                    )
                    assert await store.group_count(query, field) == dict(expected), (query, field)
                stats = await store.duration_stats(query, percentiles=False)
                values = [e.duration_ms for e in chosen if e.duration_ms is not None]
                assert stats.count == len(values)
                assert stats.avg == pytest.approx(sum(values) / len(values))


async def test_a_key_sqlite_cannot_address_is_refused_naming_it(tmp_path: Path) -> None:
    """SQLite matches a path's quoted label against the key as JSON text writes it, so a
    key with a quote is refused (every time: the path cache keeps no refusal)."""
    async with stored(tmp_path / "e.db") as store:
        for _ in range(2):
            with pytest.raises(ValueError, match=r"""cannot address the key 'a"b' in data"""):
                await store.query(Query(where=parse_filter('data."a\\"b":1')))
        assert await store.query(Query(where=parse_filter('data."a.b".c:1'))) == []


_FACET_BASE = datetime(2026, 1, 1, tzinfo=UTC)
_FACET_EVENTS = [
    Event.create(
        system=("a", "b", "c")[i % 3],
        event_type="t",
        severity=("error", "info", "debug")[i % 3],
        title=f"e{i}",
        tags=[["x"], ["x", "y"], []][i % 3 if i % 4 else 1],
        source_component=(None, "api")[i % 2],
        data={"stage": ("build", "test", 1, True)[i % 4]},
        timestamp=_FACET_BASE + timedelta(minutes=i * 7),
        now=_FACET_BASE + timedelta(days=1),
    )
    for i in range(120)
]
_FACET_FIELDS = facet_fields(["system", "severity", "source_component", "tag", "data.stage"], 2)


async def _facets_match_the_reference(store: SQLiteStorage, texts: Sequence[str | None]) -> None:
    for text in texts:
        where = None if text is None else parse_filter(text)
        query = Query(since=_FACET_BASE + timedelta(hours=1), where=where)
        got = await store.facets(query, _FACET_FIELDS, 2)
        want = facet_events(_FACET_EVENTS, query, _FACET_FIELDS, 2)
        assert [(f.field, [(identity(v), n) for v, n in f.values], f.other) for f in got] == [
            (f.field, [(identity(v), n) for v, n in f.values], f.other) for f in want
        ]


@pytest.mark.parametrize("chunk_rows", [7, 200_000])
async def test_facets_tallied_in_one_pass_or_in_rowid_ranges_match_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    """Past CHUNK_ROWS candidate events the one-pass tally runs once per range of rowids
    (bounded memory), under a filter and for a data path over a time range alone: both
    give the reference's facets."""
    from eventcollector.storage.sqlite import _tally

    monkeypatch.setattr(_tally, "CHUNK_ROWS", chunk_rows)
    async with stored(tmp_path / "e.db", _FACET_EVENTS) as store:
        await _facets_match_the_reference(
            store, ["-tag:y", "data.stage:build OR system:c", "e1", None]
        )


@pytest.mark.parametrize(
    "rewrite",
    [
        "UPDATE events SET tags = '[ ]' WHERE tags = '[]' AND rowid % 2 = 0",
        "UPDATE events SET tags = ' ' || replace(tags, ',', ' , ') || ' ' WHERE rowid % 5 = 0",
    ],
)
async def test_tag_facets_read_tags_arrays_written_by_other_code(
    tmp_path: Path, rewrite: str
) -> None:
    """The tally cuts the tags out of the arrays as ingest writes them; arrays written
    otherwise into the file (other spacing, an empty one with a space) are parsed."""
    store = await _reopened_after(tmp_path / "e.db", _FACET_EVENTS, rewrite)
    try:
        await _facets_match_the_reference(store, ["-tag:y", "e1 OR tag:x"])
    finally:
        await store.close()
