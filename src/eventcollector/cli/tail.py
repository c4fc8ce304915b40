"""``tail``: follow new events as they are stored, like ``tail -f``.

Subscribers are in-process only, so on a store (SQLite or PostgreSQL) another
process's events are found by polling: ``read_after`` (``SQLiteStorage``,
``PostgresStorage``) walks insertion order from a position, which costs only the
new rows and also finds events stored late with an old timestamp. Backends
without it are polled by timestamp. With --url the server pushes events over
Server-Sent Events (``GET /v1/stream``); a lost stream is reopened, and what was
stored meanwhile is fetched with ``GET /v1/events`` (``_ServerFollower``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer

from eventcollector.cli._common import (
    CliError,
    build_query,
    output_format,
    resolve_target,
    run,
)
from eventcollector.cli._options import CONNECTION, FIELDS, FILTER, FORMAT, OWN, with_options
from eventcollector.cli._output import EventWriter, note, tail_widths
from eventcollector.cli.app import app
from eventcollector.client import RETRYABLE_STATUS, backoff_delay, parse_retry_after
from eventcollector.collector import EventCollector
from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.query_params import query_to_params
from eventcollector.storage import Followable, StorageUnavailable

if TYPE_CHECKING:
    import httpx

_READ_BATCH = 1_000
#: Ids of the last events shown that a reconnect's catch-up may deliver again.
_RECENT_IDS = 10_000
#: Reconnect backoff: the first wait (seconds), the cap, and how long a stream must
#: have lived for the next loss to start the backoff over.
_RETRY_FIRST = 0.5
_RETRY_MAX = 30.0
_STABLE_AFTER = 10.0
# Events from the server were validated there; its clock may run ahead of ours,
# so the future-skew check must not reject them here.
_NO_SKEW_CHECK = datetime.max.replace(tzinfo=UTC)


Sink = Callable[[Sequence[Event]], None]


async def _follow_store(
    c: EventCollector, q: Query, backlog: int, interval: float, sink: Sink, stop: asyncio.Event
) -> None:
    await c.start()
    storage = c.storage
    seen: set[str] = set()
    if isinstance(storage, Followable):
        # Take the position first: an event stored while the backlog is read then
        # comes once (the seen ids filter it), never zero times.
        _, position = await storage.read_after(-1, q)
        sink([])  # following from here: a table's header shows that tail is running
        seen = await _backlog(c, q, backlog, sink)
        while not stop.is_set():
            events, position = await storage.read_after(position, q, _READ_BATCH)
            fresh = [e for e in events if e.id not in seen]
            if fresh:
                sink(fresh)
            if len(events) < _READ_BATCH:
                await _sleep(stop, interval)
        return
    await _follow_by_time(c, q, backlog, interval, sink, stop)


async def _follow_by_time(
    c: EventCollector, q: Query, backlog: int, interval: float, sink: Sink, stop: asyncio.Event
) -> None:
    """For backends without ``read_after``: a timestamp watermark (late events are missed)."""
    since = datetime.now(UTC)
    sink([])
    seen = await _backlog(c, q, backlog, sink)
    while not stop.is_set():
        events = await c.query(q.with_(since=since, ascending=True, limit=_READ_BATCH))
        fresh = [e for e in events if e.id not in seen]
        if fresh:
            sink(fresh)
            since = fresh[-1].timestamp
            # Ids at the watermark stay known, since the next poll starts there again.
            seen = {e.id for e in events if e.timestamp == since}
        if len(events) < _READ_BATCH:
            await _sleep(stop, interval)


async def _backlog(c: EventCollector, q: Query, n: int, sink: Sink) -> set[str]:
    if n <= 0:
        return set()
    events = list(reversed(await c.query(q.with_(limit=n))))
    if events:
        sink(events)
    return {e.id for e in events}


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _follow_server(
    c: EventCollector,
    url: str,
    api_key: str | None,
    q: Query,
    backlog: int,
    sink: Sink,
    stop: asyncio.Event,
) -> None:
    """Read the server's SSE stream, reconnecting when it is lost (see ``_ServerFollower``)."""
    import httpx

    headers = {"Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    timeout = httpx.Timeout(10.0, read=None)  # a quiet stream is not a dead one
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        await _ServerFollower(c, client, url, q, sink).run(backlog, stop)


class _Retry(Exception):
    """The stream could not be (re)opened for now; trying again later may succeed."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _RecentIds:
    """The last ``size`` ids printed, so a reconnect's catch-up repeats none of them;
    bounded, so a tail that runs for weeks does not grow."""

    def __init__(self, size: int = _RECENT_IDS) -> None:
        self._size = size
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        if event_id in self._ids:
            return
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())


class _ServerFollower:
    """Follows ``GET /v1/stream`` and, when the stream is lost (server restart, network),
    reconnects with capped exponential backoff and jitter.

    A reconnect subscribes first, then fetches what was stored since the newest event
    shown (``GET /v1/events?since=...&ascending=true``), then reads the stream: nothing
    stored during the outage is missed, and what both deliver (events committed between
    subscribing and the catch-up query) is shown once thanks to the recent ids. Best
    effort: events stored during the outage with a timestamp older than the newest one
    shown (late or clock-skewed senders) are not caught up, and an event older than the
    last ``_RECENT_IDS`` shown could repeat. Errors that would recur (401, 403, 400,
    404, ...) end tail at once, as does any failure before the first connection.
    """

    def __init__(
        self, c: EventCollector, client: httpx.AsyncClient, url: str, q: Query, sink: Sink
    ) -> None:
        self._c = c
        self._client = client
        self._stream_url = url.rstrip("/") + "/v1/stream"
        self._q = q
        self._sink = sink
        self._recent = _RecentIds()
        self._newest: datetime | None = None  # the newest timestamp shown
        self._connected = False  # a stream was opened once: from now on, reconnect
        self._live_since: float | None = None  # loop time the current stream opened

    async def run(self, backlog: int, stop: asyncio.Event) -> None:
        import httpx

        loop = asyncio.get_running_loop()
        failures = 0
        while not stop.is_set():
            self._live_since = None
            try:
                if not await _until_stopped(self._session(backlog), stop):
                    return
            except (_Retry, httpx.TransportError, StorageUnavailable) as exc:
                if not self._connected:  # a wrong URL or a server that is down: say so now
                    if isinstance(exc, _Retry):
                        raise CliError(f"server: {exc}") from None
                    raise
                live_since = self._live_since
                lost = live_since is not None
                if live_since is not None and loop.time() - live_since >= _STABLE_AFTER:
                    failures = 0  # a stream that lived a while: start the backoff over
                failures += 1
                retry_after = exc.retry_after if isinstance(exc, _Retry) else None
                delay = backoff_delay(
                    failures, base=_RETRY_FIRST, cap=_RETRY_MAX, retry_after=retry_after
                )
                what = "lost the stream from" if lost else "could not reconnect to"
                note(
                    f"warning: {what} {self._stream_url} ({_reason(exc)}); "
                    f"reconnecting in {delay:.1f} s"
                )
                await _sleep(stop, delay)

    async def _session(self, backlog: int) -> None:
        """One stream, from subscribing until it ends; returns never, raises on its end."""
        params: list[tuple[str, str | int | float | bool | None]] = []
        params.extend(query_to_params(self._q))
        async with self._client.stream("GET", self._stream_url, params=params) as resp:
            if resp.status_code != 200:
                await self._refused(resp)
            self._live_since = asyncio.get_running_loop().time()
            # Subscribed now, so neither the backlog nor the catch-up leaves a gap.
            if not self._connected:
                self._connected = True
                self._newest = datetime.now(UTC)  # the catch-up's start if nothing is shown
                self._sink([])
                await self._backlog(backlog)
            else:
                count = await self._catch_up()
                note(f"reconnected to {self._stream_url} (caught up {count} events)")
            await _read_sse(resp.aiter_lines(), self._show)
        raise _Retry("the server closed it")

    async def _refused(self, resp: httpx.Response) -> NoReturn:
        status = resp.status_code
        body = (await resp.aread()).decode(errors="replace")[:200]
        message = f"{status} from {self._stream_url}: {body}"
        if status in RETRYABLE_STATUS:
            after = parse_retry_after(resp.headers.get("Retry-After"), limit=_RETRY_MAX)
            raise _Retry(message, after)
        raise CliError(f"server: {message}", code=2 if status == 400 else 1)

    async def _backlog(self, n: int) -> None:
        if n > 0:
            self._show(list(reversed(await self._c.query(self._q.with_(limit=n)))))

    async def _catch_up(self) -> int:
        """Show what was stored since the newest event shown, oldest first, page by page;
        ``since`` is inclusive, so events at the last instant come again (and are skipped
        by id), and ``offset`` steps over a page full of one instant."""
        since, offset, shown = self._newest, 0, 0
        while True:
            page_query = self._q.with_(
                since=since, ascending=True, limit=_READ_BATCH, offset=offset
            )
            page = await self._c.query(page_query)
            shown += self._show(page)
            if len(page) < _READ_BATCH:
                return shown
            last = page[-1].timestamp
            ties = sum(1 for e in page if e.timestamp == last)
            offset = offset + ties if last == since else ties
            since = last

    def _show(self, events: Sequence[Event]) -> int:
        fresh = [e for e in events if e.id not in self._recent]
        for event in fresh:
            self._recent.add(event.id)
            if self._newest is None or event.timestamp > self._newest:
                self._newest = event.timestamp
        if fresh:
            self._sink(fresh)
        return len(fresh)


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` until it ends (its exception is raised) or ``stop`` is set (False)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, stopper):
            t.cancel()
    if task in done:
        task.result()
        return True
    with contextlib.suppress(asyncio.CancelledError):
        await task  # closes the response and its connection
    return False


def _reason(exc: BaseException) -> str:
    """Why the stream is gone, short: the status line, or the network error's name."""
    if isinstance(exc, _Retry | StorageUnavailable):
        text = str(exc).strip()
        return text.splitlines()[0][:160] if text else type(exc).__name__
    return type(exc).__name__  # httpx's ConnectError, ReadError, RemoteProtocolError, ...


async def _read_sse(lines: Any, show: Callable[[Sequence[Event]], object]) -> None:
    """``event: event`` frames carry one event as JSON, ``event: missed`` frames
    ``{"count": n}`` when the server dropped events for us."""
    name, data = "message", list[str]()
    async for line in lines:
        if line == "":
            if data:
                _dispatch(name, "\n".join(data), show)
            name, data = "message", []
        elif line.startswith(":"):
            continue  # keep-alive comment
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)


def _dispatch(name: str, data: str, show: Callable[[Sequence[Event]], object]) -> None:
    if name == "event":
        show([Event.from_dict(orjson.loads(data), now=_NO_SKEW_CHECK)])
    elif name == "missed":
        count = orjson.loads(data).get("count", "?")
        note(f"warning: the server dropped {count} events because this reader fell behind")


@app.command()
@with_options(FILTER, OWN, FIELDS, FORMAT, CONNECTION)
def tail(
    ctx: typer.Context,
    lines: Annotated[
        int,
        typer.Option("--lines", "-n", metavar="N", help="Show the last N matching events first."),
    ] = 10,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", metavar="SECONDS", help="Seconds between polls of the embedded store."
        ),
    ] = 0.5,
) -> None:
    """Follow new events as they arrive, like tail -f, until interrupted.

    Takes the filter and the field options of 'query'. Output is flushed after
    every batch, so it can feed a pipe; json is not available (use jsonl). With
    --url, a lost stream is reopened with backoff and what was stored meanwhile
    is caught up.

    \b
    Examples:
      eventcollector tail 'severity:>=error -tag:noise'
      eventcollector tail 'system:crackerjack' -n 0 --format jsonl | jq .title
    """
    if lines < 0:
        raise CliError("--lines: must not be negative", code=2)
    if not interval > 0:
        raise CliError("--interval: must be a positive number of seconds", code=2)
    q = build_query(ctx.params)
    writer = EventWriter(output_format(ctx, stream=True))
    widths = tail_widths()

    def sink(events: Sequence[Event]) -> None:
        writer.write(events, table_widths=widths)

    server, _ = resolve_target(ctx)

    async def work(c: EventCollector) -> None:
        stop = asyncio.Event()
        # SIGTERM (a supervisor, a test) ends tail as cleanly as Ctrl-C.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        follow: Awaitable[None]
        if server:
            follow = _follow_server(c, server, ctx.params.get("api_key"), q, lines, sink, stop)
        else:
            follow = _follow_store(c, q, lines, interval, sink, stop)
        await follow

    run(ctx, work, must_exist=False)
