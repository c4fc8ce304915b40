"""Shared fixtures for the core-library tests: real SQLite files under tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from eventcollector import Event, EventCollector

EventFactory = Callable[..., Event]


def _make_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "system": "mahavishnu",
        "event_type": "workflow.started",
        "title": "Workflow started",
    }
    fields.update(overrides)
    return Event.create(**fields)


@pytest.fixture
def make_event() -> EventFactory:
    """``make_event(**fields)``: a valid ``Event`` with defaults for the required fields."""
    return _make_event


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
async def collector(db_path: Path) -> AsyncIterator[EventCollector]:
    """A started collector on a fresh SQLite file, stopped after the test."""
    c = EventCollector(db_path)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()
