"""Live streams across instances: LISTEN/NOTIFY for ``PostgresStorage``.

Every ingest transaction NOTIFYs the schema's channel (``notify_payloads``: which
instance stored which ids, within which timestamps, so the partitions to look in are
known). A ``Listener`` keeps one connection of its own listening, reconnecting by
itself, and a fetch task that reads the events other instances stored and hands them
to the callbacks. Events stored while the listening connection is down are not
replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from eventcollector.model import Event
from eventcollector.storage.postgres import _sql as sql
from eventcollector.storage.postgres._connection import Fetch, Runner

__all__ = ["EventsCallback", "Listener", "notify_payloads"]

log = logging.getLogger("eventcollector.storage.postgres")

EventsCallback = Callable[[list[Event]], Any]

_NOTIFY_BYTES = 7_800  # below PostgreSQL's 8,000-byte payload limit


class Listener:
    """The LISTEN side of one ``PostgresStorage``; see the module docstring."""

    def __init__(
        self,
        dsn: str,
        pool_args: dict[str, Any],
        read: Runner,
        *,
        channel: str,
        instance: str,
    ) -> None:
        self.channel = channel
        self._dsn = dsn
        self._pool_args = pool_args
        self._read = read
        self._instance = instance
        self._callbacks: list[EventsCallback] = []
        self._listener: asyncio.Task[None] | None = None
        self._fetcher: asyncio.Task[None] | None = None
        self._notifications: asyncio.Queue[str] = asyncio.Queue()

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.done()

    async def listen(self, callback: EventsCallback) -> None:
        """Add ``callback``; start listening with the first. Returns once listening."""
        self._callbacks.append(callback)
        if self._listener is not None:
            return
        ready = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._listen_loop(ready))
        self._fetcher = asyncio.get_running_loop().create_task(self._fetch_loop())
        # Do not hold up a start while the database is away: the loop keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), self._pool_args["timeout"])

    async def close(self) -> None:
        """Stop listening and forget the callbacks."""
        for task in (self._listener, self._fetcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._fetcher = None
        self._callbacks.clear()

    async def _listen_loop(self, ready: asyncio.Event) -> None:
        delay = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, **_connect_args(self._pool_args))
            except Exception as exc:
                log.warning("cannot connect to listen for events: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set_event, lost))
                await conn.add_listener(self.channel, self._on_notify)
                ready.set()
                delay = 0.1
                while not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 1.0)
                log.warning("listening connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening failed: %s", exc)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if not payload.startswith(self._instance + "|"):
            self._notifications.put_nowait(payload)

    async def _fetch_loop(self) -> None:
        while True:
            payloads = [await self._notifications.get()]
            while not self._notifications.empty():
                payloads.append(self._notifications.get_nowait())
            try:
                events = await self._fetch(payloads)
            except Exception as exc:
                log.warning("could not fetch events other instances stored: %s", exc)
                continue
            for callback in tuple(self._callbacks):
                try:
                    result = callback(events)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("listen callback failed")

    async def _fetch(self, payloads: list[str]) -> list[Event]:
        events: list[Event] = []
        for payload in payloads:
            parts = payload.split("|", 3)
            if len(parts) != 4:
                continue
            lo, hi = _from_micros(int(parts[1])), _from_micros(int(parts[2]))
            ids = parts[3].split(",")
            statement = (
                f"SELECT {sql.COLUMNS} FROM events e WHERE e.id = ANY($1::text[])"
                " AND e.timestamp BETWEEN $2 AND $3 ORDER BY e.seq"
            )
            rows = await self._read(Fetch(statement, (ids, lo, hi)))
            events.extend(sql.from_row(r) for r in rows)
        return events


def notify_payloads(instance: str, events: list[Event]) -> list[str]:
    """NOTIFY payloads "instance|min_us|max_us|id,id,..." each under 8,000 bytes."""
    payloads: list[str] = []
    chunk: list[Event] = []
    size = 0
    for event in events:
        n = (len(event.id) if event.id.isascii() else len(event.id.encode())) + 1
        if chunk and size + n > _NOTIFY_BYTES:
            payloads.append(_payload(instance, chunk))
            chunk, size = [], 0
        chunk.append(event)
        size += n
    if chunk:
        payloads.append(_payload(instance, chunk))
    return payloads


def _payload(instance: str, events: list[Event]) -> str:
    stamps = [e.timestamp for e in events]
    ids = ",".join(e.id for e in events)
    return f"{instance}|{_micros(min(stamps))}|{_micros(max(stamps))}|{ids}"


def _set_event(event: asyncio.Event, _conn: Any) -> None:
    event.set()


def _connect_args(pool_args: dict[str, Any]) -> dict[str, Any]:
    return {
        "timeout": pool_args["timeout"],
        "server_settings": pool_args["server_settings"],
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
