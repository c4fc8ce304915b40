"""The event model: round trips, open enums, and validation that names the field."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventcollector import (
    LIMITS,
    Event,
    EventCollector,
    EventType,
    Query,
    Severity,
    StorageError,
    System,
)
from eventcollector.model import format_timestamp, parse_timestamp

EventFactory = Callable[..., Event]

names = st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,20}", fullmatch=True)
tokens = st.from_regex(r"[A-Za-z0-9_:/.\-]{1,20}", fullmatch=True)
texts = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(texts, json_values, max_size=5)
past_timestamps = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).filter(lambda ts: ts <= datetime.now(UTC))

event_fields = st.fixed_dictionaries(
    {
        "system": names | st.sampled_from(System),
        "event_type": names | st.sampled_from(EventType),
        "title": texts.filter(lambda t: t.strip() != "").map(lambda t: t[: LIMITS.title_length]),
    },
    optional={
        "severity": st.sampled_from(Severity),
        "description": texts,
        "data": json_objects,
        "metadata": json_objects,
        "tags": st.lists(tokens, max_size=5),
        "correlation_id": tokens,
        "source_component": tokens,
        "duration_ms": st.integers(0, LIMITS.max_duration_ms),
        "timestamp": past_timestamps,
    },
)


@settings(max_examples=100, deadline=None)
@given(event_fields)
def test_to_dict_from_dict_round_trip(fields: dict[str, Any]) -> None:
    event = Event.create(**fields)
    payload = event.to_dict()
    assert orjson.loads(orjson.dumps(payload)) == payload  # JSON-safe
    assert Event.from_dict(payload) == event
    assert Event.from_dict(orjson.loads(event.to_json())) == event


def test_to_dict_has_the_spec_fields_and_iso_utc_timestamp(make_event: EventFactory) -> None:
    ts = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    payload = make_event(timestamp=ts, tags=["a"]).to_dict()
    assert set(payload) == {
        "id", "timestamp", "system", "event_type", "severity", "title", "description",
        "data", "tags", "correlation_id", "source_component", "duration_ms", "metadata",
    }  # fmt: skip
    assert payload["timestamp"] == "2025-01-02T03:04:05.000006+00:00"
    assert payload["severity"] == "info"


def test_timestamps_are_fixed_width_and_utc() -> None:
    assert format_timestamp(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000+00:00"
    plus_two = datetime(2025, 1, 1, 12, tzinfo=UTC).astimezone(datetime.now().astimezone().tzinfo)
    assert format_timestamp(plus_two) == "2025-01-01T12:00:00.000000+00:00"
    assert parse_timestamp("2025-01-01T12:00:00") == datetime(2025, 1, 1, 12, tzinfo=UTC)


def test_defaults(make_event: EventFactory) -> None:
    before = datetime.now(UTC)
    event = make_event()
    assert event.severity is Severity.INFO
    assert event.description == ""
    assert event.data == {}
    assert event.tags == []
    assert event.metadata == {}
    assert event.correlation_id is None
    assert event.duration_ms is None
    assert before <= event.timestamp <= datetime.now(UTC)
    assert event.timestamp.tzinfo is not None


def test_ids_are_unique_and_time_ordered(make_event: EventFactory) -> None:
    ids = [make_event().id for _ in range(200)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


# -- open enums ----------------------------------------------------------------


def test_open_system_behaves_like_a_member() -> None:
    deployer = System("deployer")
    assert deployer.value == "deployer"
    assert deployer == "deployer"
    assert isinstance(deployer, System)
    assert System("deployer") is deployer
    assert System("mahavishnu") is System.MAHAVISHNU
    # mypy thinks an enum member never equals a str; System is a str enum and does.
    assert System.MAHAVISHNU == "mahavishnu"  # type: ignore[comparison-overlap]


def test_open_event_type_behaves_like_a_member(make_event: EventFactory) -> None:
    started = EventType("deploy.started")
    assert started.value == "deploy.started"
    assert started == "deploy.started"
    event = make_event(system="deployer", event_type="deploy.started")
    assert event.system == "deployer"
    assert event.system.value == "deployer"
    assert event.event_type == EventType("deploy.started")


def test_spec_example_members_exist() -> None:
    assert EventType.SESSION_RESTORED.value == "session.restored"
    assert EventType.CONFIG_VALIDATED.value == "config.validated"
    assert [s.value for s in Severity] == ["debug", "info", "warning", "error", "critical"]
    assert {s.value for s in System} >= {
        "mahavishnu", "crackerjack", "session_buddy", "akosha", "oneiric",
    }  # fmt: skip


def test_severity_accepts_case_and_warn_but_is_closed() -> None:
    assert Severity("ERROR") is Severity.ERROR
    assert Severity("warn") is Severity.WARNING
    assert Severity.DEBUG.rank < Severity.INFO.rank < Severity.CRITICAL.rank
    with pytest.raises(ValueError, match="fatal"):
        Severity("fatal")


# -- validation ------------------------------------------------------------------

BAD_FIELDS = [
    pytest.param({"severity": "fatal"}, "severity", id="unknown-severity"),
    pytest.param({"severity": 3}, "severity", id="non-string-severity"),
    pytest.param({"title": ""}, "title", id="empty-title"),
    pytest.param({"title": "   "}, "title", id="blank-title"),
    pytest.param({"title": None}, "title", id="none-title"),
    pytest.param({"title": "x" * (LIMITS.title_length + 1)}, "title", id="long-title"),
    pytest.param({"title": "a\x00b"}, "title", id="nul-title"),
    pytest.param({"description": "x" * (LIMITS.description_length + 1)}, "description"),
    pytest.param({"system": "Mahavishnu"}, "system", id="upper-case-system"),
    pytest.param({"system": "has space"}, "system", id="space-system"),
    pytest.param({"system": ""}, "system", id="empty-system"),
    pytest.param({"system": "a" * (LIMITS.name_length + 1)}, "system", id="long-system"),
    pytest.param({"event_type": "Workflow Started"}, "event_type", id="malformed-type"),
    pytest.param({"event_type": ".started"}, "event_type", id="leading-dot-type"),
    pytest.param({"data": {"x": object()}}, "data", id="data-not-json"),
    pytest.param({"data": {1: "int key"}}, "data", id="data-int-key"),
    pytest.param({"data": {"big": 2**70}}, "data", id="data-huge-int"),
    pytest.param({"data": [1, 2]}, "data", id="data-list"),
    pytest.param({"data": "text"}, "data", id="data-str"),
    pytest.param({"data": {"x": "y" * LIMITS.data_bytes}}, "data", id="data-too-large"),
    pytest.param({"metadata": {"x": {1, 2}}}, "metadata", id="metadata-not-json"),
    pytest.param({"tags": "workflow"}, "tags", id="tags-str"),
    pytest.param({"tags": ["a b"]}, "tags", id="tag-space"),
    pytest.param({"tags": ["a,b"]}, "tags", id="tag-comma"),
    pytest.param({"tags": [""]}, "tags", id="tag-empty"),
    pytest.param({"tags": [1]}, "tags", id="tag-int"),
    pytest.param({"tags": ["a", ["b"]]}, "tags", id="tag-list"),
    pytest.param({"tags": [{"a": 1}, "b"]}, "tags", id="tag-object"),
    pytest.param({"tags": ["x" * (LIMITS.tag_length + 1)]}, "tags", id="tag-long"),
    pytest.param({"tags": [f"t{i}" for i in range(LIMITS.tag_count + 1)]}, "tags", id="tags-many"),
    pytest.param({"correlation_id": "has space"}, "correlation_id"),
    pytest.param({"correlation_id": "c" * (LIMITS.correlation_id_length + 1)}, "correlation_id"),
    pytest.param({"source_component": ""}, "source_component"),
    pytest.param({"duration_ms": -1}, "duration_ms", id="negative-duration"),
    pytest.param({"duration_ms": "12"}, "duration_ms", id="str-duration"),
    pytest.param({"duration_ms": True}, "duration_ms", id="bool-duration"),
    pytest.param({"duration_ms": float("nan")}, "duration_ms", id="nan-duration"),
    pytest.param({"duration_ms": LIMITS.max_duration_ms + 1}, "duration_ms", id="over-a-year"),
    pytest.param({"timestamp": "yesterday"}, "timestamp", id="timestamp-not-iso"),
    pytest.param({"timestamp": 12345}, "timestamp", id="timestamp-int"),
    pytest.param(
        {"timestamp": datetime.now(UTC) + timedelta(days=1)}, "timestamp", id="future-timestamp"
    ),
    pytest.param({"id": "has space"}, "id", id="id-space"),
    pytest.param({"id": "i" * (LIMITS.id_length + 1)}, "id", id="id-long"),
]


@pytest.mark.parametrize(("fields", "name"), BAD_FIELDS)
def test_invalid_field_is_a_value_error_naming_it(
    make_event: EventFactory, fields: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        make_event(**fields)


def test_small_future_skew_is_accepted(make_event: EventFactory) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=1)
    assert make_event(timestamp=soon).timestamp == soon


def test_naive_timestamp_is_utc(make_event: EventFactory) -> None:
    event = make_event(timestamp=datetime(2025, 1, 1, 12))
    assert event.timestamp == datetime(2025, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        ({"system": "a", "event_type": "b", "title": "t", "colour": "red"}, "colour"),
        ({"event_type": "b", "title": "t"}, "system"),
        ({"system": "a", "title": "t"}, "event_type"),
        ({"system": "a", "event_type": "b"}, "title"),
        ({"system": "a", "event_type": "b", "title": "t", "severity": "nope"}, "severity"),
    ],
)
def test_from_dict_names_the_bad_field(payload: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        Event.from_dict(payload)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(ValueError, match=r"^event: "):
        # A wrong type on purpose: the check under test.
        Event.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


def test_data_is_stored_as_json_gives_it_back(make_event: EventFactory) -> None:
    event = make_event(data={"tuple": (1, 2), "nested": {"ok": True}})
    assert event.data == {"tuple": [1, 2], "nested": {"ok": True}}


# -- nothing half-stored -------------------------------------------------------------


def _row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("events", "event_tags", "events_fts", "event_counts")
        }
    finally:
        conn.close()


async def test_failed_collect_stores_nothing(collector: EventCollector, db_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^data: "):
        await collector.collect(
            system="mahavishnu",
            event_type="workflow.started",
            title="bad payload",
            tags=["a", "b"],
            data={"x": object()},
        )
    with pytest.raises(ValueError, match=r"^severity: "):
        await collector.collect(system="a", event_type="b", title="t", severity="loud")
    assert await collector.count(Query()) == 0
    assert _row_counts(db_path) == dict.fromkeys(
        ("events", "event_tags", "events_fts", "event_counts"), 0
    )


async def test_failed_batch_write_stores_no_part_of_it(
    collector: EventCollector, db_path: Path, make_event: EventFactory
) -> None:
    good = make_event(tags=["good"])
    # Bypass validation: the write itself fails half-way through the batch.
    broken = Event(
        id="broken",
        timestamp=datetime.now(UTC),
        system=System.MAHAVISHNU,
        event_type=EventType.WORKFLOW_FAILED,
        severity=Severity.ERROR,
        title="broken",
        data={"x": object()},
        tags=["bad"],
    )
    with pytest.raises(StorageError):
        await collector.ingest([good, broken])
    assert _row_counts(db_path) == dict.fromkeys(
        ("events", "event_tags", "events_fts", "event_counts"), 0
    )
    # The writer is still healthy afterwards.
    assert await collector.ingest([good]) == [True]
    await collector.flush()  # out of event_journal, where a small commit waits
    assert _row_counts(db_path)["events"] == 1


@pytest.mark.parametrize("field", ["data", "metadata"])
def test_nul_characters_in_json_fields_are_refused(field: str) -> None:
    # PostgreSQL's jsonb cannot store U+0000, so no backend accepts it.
    nul: dict[str, Any] = {field: {"k": "a\x00b"}}
    with pytest.raises(ValueError, match=rf"^{field}: contains a NUL character"):
        Event.create(system="s", event_type="t", title="x", **nul)
    # The six characters backslash-u-0-0-0-0 are ordinary text.
    escaped: dict[str, Any] = {field: {"k": "\\u0000"}}
    event = Event.create(system="s", event_type="t", title="x", **escaped)
    assert getattr(event, field) == {"k": "\\u0000"}


@given(st.text(max_size=20) | st.text(st.characters(max_codepoint=127), max_size=20))
def test_token_fast_path_agrees_with_the_expression(text: str) -> None:
    from eventcollector.model import _TOKEN_RE, _is_token

    assert _is_token(text) == (_TOKEN_RE.fullmatch(text) is not None)


def test_enum_fast_path_keeps_members_and_spellings() -> None:
    assert (
        Event.create(system=System.MAHAVISHNU, event_type="a.b", title="t").system
        is System.MAHAVISHNU
    )
    assert (
        Event.create(system="x", event_type="a.b", title="t", severity="WARN").severity
        is Severity.WARNING
    )
    assert Event.create(system="x", event_type="a.b", title="t", tags=("b", "a", "b")).tags == [
        "b",
        "a",
    ]
