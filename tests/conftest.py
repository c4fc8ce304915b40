"""Shared fixtures for the core-library tests: real SQLite files under tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from _common import Receiver
from _common import make_event as _make_event
from eventcollector import Event, EventCollector, set_event_collector

EventFactory = Callable[..., Event]


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


@pytest.fixture
async def process_collector(collector: EventCollector) -> AsyncIterator[EventCollector]:
    """``collector`` installed as the process-wide one: what ``get_event_collector()``
    returns and the decorator uses by default."""
    set_event_collector(collector)
    try:
        yield collector
    finally:
        set_event_collector(None)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """A real HTTP receiver of alert notices in a subprocess (``_common.Receiver``)."""
    server = Receiver(tmp_path, secret="s3cret")  # noqa: S106 (a test secret)
    try:
        yield server
    finally:
        server.stop()
