"""``query`` and ``trace``: read events back."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer

from eventcollector.analyzer import EventAnalyzer
from eventcollector.cli._common import (
    DEFAULT_LIMIT,
    AnyTagsOpt,
    ApiKeyOpt,
    CliError,
    ComponentOpt,
    CorrelationOpt,
    DaysOpt,
    DbOpt,
    EventTypeOpt,
    Format,
    FormatOpt,
    HoursOpt,
    MinDurationOpt,
    MinSeverityOpt,
    MinutesOpt,
    SearchOpt,
    SeverityOpt,
    SinceOpt,
    SystemOpt,
    TagsOpt,
    UntilOpt,
    UrlOpt,
    build_query,
    resolve_format,
    run,
)
from eventcollector.cli._output import (
    CSV_COLUMNS,
    EventTable,
    EventWriter,
    csv_row,
    csv_writer,
    is_terminal,
    note,
    safe,
)
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector
from eventcollector.model import Event
from eventcollector.query import ORDER_FIELDS


@app.command()
def query(
    ctx: typer.Context,
    minutes: MinutesOpt = None,
    hours: HoursOpt = None,
    days: DaysOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
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
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="At most this many events.")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many first.")] = 0,
    order_by: Annotated[
        str,
        typer.Option("--order-by", help=f"One of: {', '.join(sorted(ORDER_FIELDS))}."),
    ] = "timestamp",
    asc: Annotated[bool, typer.Option("--asc", help="Oldest (smallest) first.")] = False,
    fmt: FormatOpt = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Find events: newest first, every filter combined with AND.

    \b
    Examples:
      eventcollector query --hours 1 --system mahavishnu
      eventcollector query --severity error,critical --days 7 --format json
      eventcollector query --tags workflow,rag --search "timeout" -n 20
    """
    q = build_query(ctx.params)
    out = resolve_format(fmt)

    async def work(c: EventCollector) -> tuple[list[Event], int | None]:
        events = await c.query(q)
        # The total only matters to a reader of the table, and costs a second query.
        full_page = q.limit is not None and len(events) == q.limit
        total = await c.count(q) if out is Format.table and (full_page or q.offset) else None
        return events, total

    events, total = run(ctx, work)
    writer = EventWriter(out)
    if events or out is not Format.table:
        writer.write(events)
    if out is Format.table:
        shown = f"{len(events)} event{'s' * (len(events) != 1)}"
        if total is not None and total > len(events):
            shown += f" of {total} (see --limit and --offset)"
        note(shown if events else "no events match")


@app.command()
def trace(
    ctx: typer.Context,
    correlation_id: Annotated[
        str, typer.Option("--correlation-id", "-c", help="The correlation id to follow.")
    ],
    fmt: FormatOpt = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Every event of one correlation id as a timeline, oldest first, with the total span.

    Exits 1 when no event carries the id.

    \b
    Example:
      eventcollector trace --correlation-id workflow_abc123
    """
    if not correlation_id.strip():
        raise CliError("--correlation-id: must not be empty", code=2)
    out = resolve_format(fmt)

    async def work(c: EventCollector) -> list[Event]:
        return await EventAnalyzer(c).trace_correlation(correlation_id)

    events = run(ctx, work)
    if not events:
        raise CliError(f"trace: no events with correlation id {correlation_id!r}")
    start = events[0].timestamp
    offsets = [round((e.timestamp - start).total_seconds() * 1000, 3) for e in events]
    ends = [e.timestamp.timestamp() * 1000 + (e.duration_ms or 0) for e in events]
    # The span runs to the end of the last thing that finished, not only the last start.
    span_ms = round(max(ends) - start.timestamp() * 1000, 3)
    systems = sorted({e.system.value for e in events})
    if out is Format.table:
        lead = ("OFFSET", [f"+{ms / 1000:.3f}s" for ms in offsets])
        EventTable(sys.stdout).write(events, lead=lead)
        note(
            f"{len(events)} events across {', '.join(systems)}; "
            f"span {span_ms / 1000:.3f}s (first event to the end of the last)"
        )
        return
    rows = [{"offset_ms": ms, **e.to_dict()} for ms, e in zip(offsets, events, strict=True)]
    if out is Format.json:
        doc: dict[str, Any] = {
            "correlation_id": correlation_id,
            "count": len(events),
            "span_ms": span_ms,
            "systems": systems,
            "events": rows,
        }
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif out is Format.jsonl:
        sys.stdout.write("".join(orjson.dumps(r).decode() + "\n" for r in rows))
    else:
        writer = csv_writer(sys.stdout)
        writer.writerow(("offset_ms", *CSV_COLUMNS))
        terminal = is_terminal(sys.stdout)
        for ms, e in zip(offsets, events, strict=True):
            row = csv_row(e)
            writer.writerow((str(ms), *([safe(c) for c in row] if terminal else row)))
