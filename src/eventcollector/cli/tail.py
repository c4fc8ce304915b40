"""``tail``: follow new events as they are stored, like ``tail -f``.

Subscribers are in-process only, so on a store (SQLite or PostgreSQL) another
process's events are found by polling: ``read_after`` (``SQLiteStorage``,
``PostgresStorage``) walks insertion order from a position, which costs only the
new rows and also finds events stored late with an old timestamp. Backends
without it are polled by timestamp. With --url the server pushes events over
Server-Sent Events (``GET /v1/stream``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, runtime_checkable

import orjson
import typer

from eventcollector.cli._common import (
    AnyTagsOpt,
    ApiKeyOpt,
    CliError,
    ComponentOpt,
    CorrelationOpt,
    DbOpt,
    EventTypeOpt,
    FormatOpt,
    MinDurationOpt,
    MinSeverityOpt,
    SearchOpt,
    SeverityOpt,
    SystemOpt,
    TagsOpt,
    UrlOpt,
    build_query,
    resolve_format,
    resolve_target,
    run,
)
from eventcollector.cli._output import EventWriter, note, tail_widths
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector
from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.query_params import query_to_params

_READ_BATCH = 1_000
# Events from the server were validated there; its clock may run ahead of ours,
# so the future-skew check must not reject them here.
_NO_SKEW_CHECK = datetime.max.replace(tzinfo=UTC)


@runtime_checkable
class _Follower(Protocol):
    async def read_after(
        self, position: int, query: Query, limit: int = ...
    ) -> tuple[list[Event], int]: ...


Sink = Callable[[Sequence[Event]], None]


async def _follow_store(
    c: EventCollector, q: Query, backlog: int, interval: float, sink: Sink, stop: asyncio.Event
) -> None:
    await c.start()
    storage = c.storage
    seen: set[str] = set()
    if isinstance(storage, _Follower):
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
    """Read the server's SSE stream: ``event: event`` frames carry one event as JSON,
    ``event: missed`` frames ``{"count": n}`` when the server dropped events for us."""
    import httpx

    headers = {"Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    timeout = httpx.Timeout(10.0, read=None)  # a quiet stream is not a dead one
    async with httpx.AsyncClient(timeout=timeout) as client:
        stream_url = url.rstrip("/") + "/v1/stream"
        params: list[tuple[str, str | int | float | bool | None]] = []
        params.extend(query_to_params(q))
        async with client.stream("GET", stream_url, params=params, headers=headers) as resp:
            if resp.status_code != 200:
                body = (await resp.aread()).decode(errors="replace")[:200]
                raise CliError(f"server: {resp.status_code} from {stream_url}: {body}")
            # Subscribed now, so the backlog cannot leave a gap before the stream.
            sink([])
            seen = await _backlog(c, q, backlog, sink)
            reader = asyncio.ensure_future(_read_sse(resp.aiter_lines(), seen, sink))
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in (reader, stopper):
                task.cancel()
            if reader in done and not reader.cancelled():
                reader.result()  # raises what went wrong
                raise CliError(f"server: {stream_url} closed the stream")


async def _read_sse(lines: Any, seen: set[str], sink: Sink) -> None:
    name, data = "message", list[str]()
    async for line in lines:
        if line == "":
            if data:
                _dispatch(name, "\n".join(data), seen, sink)
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


def _dispatch(name: str, data: str, seen: set[str], sink: Sink) -> None:
    if name == "event":
        event = Event.from_dict(orjson.loads(data), now=_NO_SKEW_CHECK)
        if event.id not in seen:
            sink([event])
    elif name == "missed":
        count = orjson.loads(data).get("count", "?")
        note(f"warning: the server dropped {count} events because this reader fell behind")


@app.command()
def tail(
    ctx: typer.Context,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="Show the last N matching events first.")
    ] = 10,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between polls of the embedded store.")
    ] = 0.5,
    system: SystemOpt = None,
    event_type: EventTypeOpt = None,
    severity: SeverityOpt = None,
    min_severity: MinSeverityOpt = None,
    tags: TagsOpt = None,
    any_tags: AnyTagsOpt = None,
    correlation_id: CorrelationOpt = None,
    component: ComponentOpt = None,
    search: SearchOpt = None,
    min_duration: MinDurationOpt = None,
    fmt: FormatOpt = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Follow new events as they arrive, like tail -f, until interrupted.

    Takes the filters of 'query'. Output is flushed after every batch, so it
    can feed a pipe; json is not available (use jsonl).

    \b
    Examples:
      eventcollector tail --min-severity error
      eventcollector tail --system crackerjack -n 0 --format jsonl | jq .title
    """
    if lines < 0:
        raise CliError("--lines: must not be negative", code=2)
    if not interval > 0:
        raise CliError("--interval: must be a positive number of seconds", code=2)
    q = build_query(ctx.params)
    writer = EventWriter(resolve_format(fmt, stream=True))
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
