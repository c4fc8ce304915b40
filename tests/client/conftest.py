"""Fixtures for the remote-client tests; the peers themselves are in ``_support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._support import Peer, Server, server_available


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every client in a test spools under tmp_path (never the user's state directory)."""
    directory = tmp_path / "spool"
    monkeypatch.setenv("EVENTCOLLECTOR_SPOOL_DIR", str(directory))
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not server_available():
        pytest.skip("the server package is not available")
    s = Server(tmp_path_factory.mktemp("server"), "--rate-limit", "0")
    try:
        yield s
    finally:
        s.stop()
