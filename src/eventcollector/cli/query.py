"""``query`` and ``trace``: read events back."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer

from eventcollector.analyzer import EventAnalyzer
from eventcollector.cli._common import (
    DEFAULT_LIMIT,
    CliError,
    Format,
    build_query,
    output_format,
    run,
)
from eventcollector.cli._options import CONNECTION, FORMAT, OWN, SELECTION, with_options
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
@with_options(SELECTION, OWN, FORMAT, CONNECTION)
def query(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", help="At most this many events.")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, typer.Option("--offset", metavar="N", help="Skip this many first.")] = 0,
    order_by: Annotated[
        str,
        typer.Option(
            "--order-by", metavar="FIELD", help=f"One of: {', '.join(sorted(ORDER_FIELDS))}."
        ),
    ] = "timestamp",
    asc: Annotated[bool, typer.Option("--asc", help="Oldest (smallest) first.")] = False,
) -> None:
    """Find events: newest first, the filter and every option combined with AND.

    \b
    Examples:
      eventcollector query 'system:mahavishnu -tag:noise "timeout"' --hours 24
      eventcollector query 'severity:>=error data.repo:acme/*' --days 7 --format json
      eventcollector query --system mahavishnu --tags workflow,rag -n 20
    """
    q = build_query(ctx.params)
    out = output_format(ctx)

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
@with_options(SELECTION, FORMAT, CONNECTION)
def count(ctx: typer.Context) -> None:
    """Count the events the filter and options select; prints the number.

    With --format json or jsonl: {"count": N}; csv: a header and the number. For
    counts by a key or over time, see 'aggregate --by'.

    \b
    Examples:
      eventcollector count 'severity:>=error -tag:noise' --hours 24
      eventcollector count --system mahavishnu --days 7 --format json
    """
    q = build_query(ctx.params)
    fmt: Format | None = ctx.params.get("fmt")

    async def work(c: EventCollector) -> int:
        return await c.count(q)

    n = run(ctx, work)
    if fmt in (Format.json, Format.jsonl):
        sys.stdout.write(orjson.dumps({"count": n}).decode() + "\n")
    elif fmt is Format.csv:
        csv_writer(sys.stdout).writerows([("count",), (n,)])
    else:  # a bare number by default, on a terminal or not: n=$(eventcollector count ...)
        sys.stdout.write(f"{n}\n")


@app.command()
@with_options(OWN, FORMAT, CONNECTION)
def trace(
    ctx: typer.Context,
    correlation_id: Annotated[
        str,
        typer.Option("--correlation-id", "-c", metavar="ID", help="The correlation id to follow."),
    ],
) -> None:
    """Every event of one correlation id as a timeline, oldest first, with the total span.

    Exits 1 when no event carries the id.

    \b
    Example:
      eventcollector trace --correlation-id workflow_abc123
    """
    if not correlation_id.strip():
        raise CliError("--correlation-id: must not be empty", code=2)
    out = output_format(ctx)

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
