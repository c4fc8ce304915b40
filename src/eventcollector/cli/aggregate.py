"""``aggregate`` and ``facets``: groupings, time series and top values of fields."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from eventcollector.aggregation import (
    DEFAULT_AUTO_BUCKETS,
    DEFAULT_TOP,
    OTHER,
    AggregateResult,
    AggregateSpec,
    Facet,
    Key,
)
from eventcollector.cli._common import Format, build_query, output_format, run
from eventcollector.cli._options import CONNECTION, FORMAT, SELECTION, with_options
from eventcollector.cli._output import console, csv_writer, is_terminal, note, safe
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector
from eventcollector.model import format_timestamp

TopOpt = Annotated[
    int, typer.Option("--top", help="Values kept per key; the rest form one '(other)' group.")
]


def _names(values: Sequence[str] | None) -> list[str]:
    return [v.strip() for raw in values or () for v in raw.split(",") if v.strip()]


def _cell(value: Key) -> str:
    if value is OTHER:
        return "(other)"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _write(header: list[str], rows: list[list[Key]], fmt: Format, doc: Any) -> None:
    out = sys.stdout
    if fmt is Format.json:
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt is Format.jsonl:
        keyed = (
            {h: None if v is OTHER else v for h, v in zip(header, r, strict=True)} for r in rows
        )
        out.write("".join(orjson.dumps(r).decode() + "\n" for r in keyed))
    elif fmt is Format.csv:
        writer = csv_writer(out)
        writer.writerow(header)
        terminal = is_terminal(out)
        for row in rows:
            writer.writerow([safe(_cell(v)) if terminal else _cell(v) for v in row])
    else:
        table = Table(box=None)
        for name in header:
            table.add_column(name.upper(), justify="left")
        for row in rows:
            table.add_row(*(Text(safe(_cell(v) or "(none)")) for v in row))
        console(out).print(table)
    out.flush()


def _result_rows(result: AggregateResult) -> tuple[list[str], list[list[Key]]]:
    header = [*(["bucket"] if result.interval else []), *result.by, *result.metrics]
    rows = []
    for row in result.rows:
        bucket: list[Key] = []
        if result.interval:
            bucket = [None if row.bucket is None else format_timestamp(row.bucket)]
        rows.append([*bucket, *row.keys, *row.values])
    return header, rows


@app.command()
@with_options(SELECTION, FORMAT, CONNECTION)
def aggregate(
    ctx: typer.Context,
    by: Annotated[
        list[str] | None,
        typer.Option("--by", "-b", help="Group key: a field or data./metadata. path (up to 3)."),
    ] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", "-i", help="Time bucket: 1m, 5m, 15m, 1h, 1d, auto.")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="count, count_distinct:FIELD, min|max|avg|sum|p50|p95|p99:FIELD."
        ),
    ] = None,
    top: TopOpt = DEFAULT_TOP,
    buckets: Annotated[
        int, typer.Option("--buckets", help="With --interval auto: about this many buckets.")
    ] = DEFAULT_AUTO_BUCKETS,
) -> None:
    """Count and measure events by keys and time buckets.

    \b
    Examples:
      eventcollector aggregate 'severity:>=warning' --by system --interval 1h --hours 24
      eventcollector aggregate --by data.repo --metric count --metric p95:duration_ms
    """
    q = build_query(ctx.params)
    spec = AggregateSpec.parse(
        _names(by), interval=interval, metrics=_names(metric) or ["count"], top=top, buckets=buckets
    )
    out = output_format(ctx)

    async def work(c: EventCollector) -> AggregateResult:
        return await c.aggregate(q, spec)

    result = run(ctx, work)
    header, rows = _result_rows(result)
    _write(header, rows, out, result.to_dict())
    if out is Format.table:
        note(f"{len(rows)} group{'s' * (len(rows) != 1)}" if rows else "no events match")


@app.command()
@with_options(SELECTION, FORMAT, CONNECTION)
def facets(
    ctx: typer.Context,
    field: Annotated[
        list[str] | None,
        # No -f: that is --format on every command.
        typer.Option(
            "--field", metavar="FIELD", help="A field (tag too), or a data./metadata. path."
        ),
    ] = None,
    top: TopOpt = DEFAULT_TOP,
) -> None:
    """The top values of several fields with their counts.

    \b
    Example:
      eventcollector facets 'severity:>=error' --field system --field data.repo --hours 24
    """
    q = build_query(ctx.params)
    names = _names(field) or ["system", "event_type", "severity"]
    out = output_format(ctx)

    async def work(c: EventCollector) -> list[Facet]:
        return await c.facets(q, names, top)

    found = run(ctx, work)
    rows: list[list[Key]] = []
    for f in found:
        rows += [[f.field, value, n] for value, n in f.values]
        if f.other:
            rows.append([f.field, OTHER, f.other])
    _write(["field", "value", "count"], rows, out, {"facets": [f.to_dict() for f in found]})
