"""The AlertStore contract, on every backend: rules, states, history, silences, the
trigger queue and the lease."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from _common import BASE, postgres_url
from eventcollector.alert_rules import AlertRecord, AlertState, parse_rule
from eventcollector.alert_silences import AlertSilence
from eventcollector.issues import IssueChange
from eventcollector.storage import AlertStore, Storage
from eventcollector.storage._alert_rows import HISTORY_KEPT
from eventcollector.storage.sqlite import SQLiteStorage

RULE = {
    "name": "mahavishnu errors",
    "filter": "system:mahavishnu severity:>=error",
    "window": "5m",
    "condition": "count > 10",
    "group_by": "data.repo",
    "every": "30s",
    "repeat": "1h",
    "notify": ["webhook:https://hooks.example/ops"],
    "secret": "s3cret",
}


def _alerts(storage: Storage) -> AlertStore:
    assert isinstance(storage, AlertStore)
    return storage


async def test_rules_round_trip_replace_and_delete(storage: Storage) -> None:
    store = _alerts(storage)
    rule = parse_rule(RULE)
    trigger = parse_rule({"name": "new", "trigger": "new_issue", "notify": []})
    assert await store.put_alert_rule(rule, "file") is True
    assert await store.put_alert_rule(trigger, "api") is True
    assert await store.alert_rules() == [(rule, "file"), (trigger, "api")]
    changed = replace(rule, repeat=60.0)
    assert await store.put_alert_rule(changed, "api") is False
    assert (await store.alert_rules())[0] == (changed, "api")
    assert await store.delete_alert_rule("new") is True
    assert await store.delete_alert_rule("new") is False
    assert [r.name for r, _ in await store.alert_rules()] == ["mahavishnu errors"]


async def test_states_and_history_are_saved_together(storage: Storage) -> None:
    store = _alerts(storage)
    await store.put_alert_rule(parse_rule(RULE), "api")
    name = "mahavishnu errors"
    firing = AlertState(name, "acme/api", "firing", BASE, 12.0, BASE, BASE)
    quiet = AlertState(name, "acme/web", "ok", BASE, 0.0, BASE)
    records = [
        AlertRecord(name, "acme/api", BASE, "transition", "firing", 12.0, sample_ids=("a", "b")),
        AlertRecord(
            name, "acme/api", BASE, "notify_failed", "firing", 12.0, "webhook:x", "HTTP 500"
        ),
    ]
    await store.save_alert([firing, quiet], records)
    assert await store.alert_states(name) == [firing, quiet]
    later = replace(firing, state="resolved", since=BASE + timedelta(minutes=5), value=1.0)
    await store.save_alert([later], [])
    assert await store.alert_states() == [later, quiet]
    assert await store.alert_history(name) == records[::-1]
    assert await store.alert_history(name, limit=1) == [records[1]]
    # Deleting the rule takes its states and history with it.
    await store.delete_alert_rule(name)
    assert await store.alert_states() == []
    assert await store.alert_history(name) == []


@pytest.mark.slow
async def test_history_keeps_the_newest_records(storage: Storage) -> None:
    store = _alerts(storage)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    batch = [
        AlertRecord("r", "", at + timedelta(seconds=i), "transition", "ok")
        for i in range(HISTORY_KEPT + 5)
    ]
    await store.save_alert([], batch)
    kept = await store.alert_history("r", limit=HISTORY_KEPT + 5)
    assert len(kept) == HISTORY_KEPT
    assert kept[0] == batch[-1]


async def test_silences_in_force_are_kept_until_they_end(storage: Storage) -> None:
    store = _alerts(storage)
    now = datetime.now(UTC)
    kept = AlertSilence("mahavishnu errors", now + timedelta(hours=2), "acme/api", "deploy")
    first = await store.add_alert_silence(kept)
    assert first.id is not None
    assert first.created is not None
    assert abs(first.created - now) < timedelta(minutes=1)
    every = await store.add_alert_silence(AlertSilence("*", now + timedelta(days=3)))
    ending = await store.add_alert_silence(AlertSilence("x", now + timedelta(seconds=2)))
    assert ending.id is not None
    assert len({first.id, every.id, ending.id}) == 3
    listed = await store.alert_silences()
    assert listed == [first, every, ending]
    assert listed[0].until == kept.until  # to the microsecond, on both backends
    # The last one ends: no longer listed, nor deletable.
    await asyncio.sleep((ending.until - datetime.now(UTC)).total_seconds() + 0.05)
    assert await store.alert_silences() == [first, every]
    assert await store.delete_alert_silence(ending.id) is False
    assert await store.delete_alert_silence(first.id) is True
    assert await store.delete_alert_silence(first.id) is False
    assert await store.alert_silences() == [every]


async def test_trigger_queue_is_taken_once_in_order(storage: Storage) -> None:
    store = _alerts(storage)
    changes = [IssueChange("new", 3, "v1:a"), IssueChange("regressed", 1, "v1:b")]
    await store.push_alert_triggers(changes[:1])
    await store.push_alert_triggers(changes[1:])
    assert await store.take_alert_triggers() == changes
    assert await store.take_alert_triggers() == []


async def _twin(storage: Storage) -> Storage:
    """A second store on the same database (another server)."""
    if isinstance(storage, SQLiteStorage):
        twin: Storage = SQLiteStorage(storage.path)
    else:
        from eventcollector.storage.postgres import PostgresStorage

        assert isinstance(storage, PostgresStorage)
        twin = PostgresStorage(postgres_url(), schema=storage.schema, partitions_ahead=1)
    await twin.open()
    return twin


async def test_the_lease_is_held_by_one_store_until_it_closes(storage: Storage) -> None:
    store = _alerts(storage)
    other = await _twin(storage)
    try:
        assert await store.alert_lease() is True
        assert await store.alert_lease() is True  # kept
        assert await _alerts(other).alert_lease() is False
        await storage.close()
        assert await _alerts(other).alert_lease() is True
    finally:
        await other.close()
        await storage.open()
