"""get_event_collector(): configured from the environment, one per-user default store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventcollector import (
    EventCollector,
    Query,
    default_db_path,
    get_event_collector,
    set_event_collector,
)


@pytest.fixture(autouse=True)
def fresh_process_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("EVENTCOLLECTOR_DB", "EVENTCOLLECTOR_URL", "EVENTCOLLECTOR_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    set_event_collector(None)
    yield
    set_event_collector(None)


async def test_eventcollector_db_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "configured" / "events.db"
    monkeypatch.setenv("EVENTCOLLECTOR_DB", str(target))
    collector = get_event_collector()
    assert get_event_collector() is collector
    try:
        assert not collector.running  # started lazily, on first use
        event = await collector.collect(system="a", event_type="b", title="t")
        assert collector.running
        assert collector.db_path == str(target)
        assert (await collector.health_check())["db_path"] == str(target)
    finally:
        await collector.stop()
    async with EventCollector(target) as reopened:
        assert await reopened.get_event(event.id) == event


async def test_default_is_under_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    expected = tmp_path / "eventcollector" / "events.db"
    assert default_db_path() == expected
    collector = get_event_collector()
    try:
        await collector.collect(system="a", event_type="b", title="t")
        health = await collector.health_check()
        assert health["db_path"] == str(expected)
        assert health["storage"]["db_path"] == str(expected)
        assert await collector.count(Query()) == 1
    finally:
        await collector.stop()
    assert expected.stat().st_size > 0


def test_default_without_xdg_is_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_db_path() == tmp_path / ".local" / "share" / "eventcollector" / "events.db"


def test_plain_collector_uses_the_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert EventCollector().db_path == str(tmp_path / "eventcollector" / "events.db")


def test_set_event_collector_replaces_the_process_collector(tmp_path: Path) -> None:
    mine = EventCollector(tmp_path / "mine.db")
    set_event_collector(mine)
    assert get_event_collector() is mine


def test_db_path_and_url_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^db_path, db_url, url and storage: "):
        EventCollector(tmp_path / "a.db", url="http://localhost:1")
