"""``stats``, ``report``, ``analyze-errors``, ``patterns`` and ``health``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from eventcollector.analyzer import EventAnalyzer
from eventcollector.cli._common import CliError, output_format, run
from eventcollector.cli._options import CONNECTION, FORMAT, with_options
from eventcollector.cli._output import note, write_document
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector


def _positive(value: float, option: str) -> float:
    if not value > 0:
        raise CliError(f"{option}: must be a positive number, got {value}", code=2)
    return value


@app.command()
@with_options(FORMAT, CONNECTION)
def stats(ctx: typer.Context) -> None:
    """Totals: all events, by system, severity and type, and the last hour.

    \b
    Example:
      eventcollector stats --format json
    """
    out = output_format(ctx)

    async def work(c: EventCollector) -> dict[str, Any]:
        return await c.get_statistics()

    write_document(run(ctx, work), out, title="Event statistics")


@app.command()
@with_options(FORMAT, CONNECTION)
def report(
    ctx: typer.Context,
    hours: Annotated[float, typer.Option("--hours", help="The period to cover.")] = 24,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the report as JSON to this file.", dir_okay=False
        ),
    ] = None,
) -> None:
    """Distributions, duration statistics and the latest events of the last N hours.

    \b
    Example:
      eventcollector report --hours 24 --output report.json
    """
    _positive(hours, "--hours")
    out = output_format(ctx)

    async def work(c: EventCollector) -> dict[str, Any]:
        return await EventAnalyzer(c).generate_report(hours)

    doc = run(ctx, work)
    if output is not None:
        output.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        note(f"report of {doc['total_events']} events written to {output}")
        return
    write_document(doc, out, title=f"Report: last {hours:g} hours")


@app.command("analyze-errors")
@with_options(FORMAT, CONNECTION)
def analyze_errors(
    ctx: typer.Context,
    hours: Annotated[float, typer.Option("--hours", help="The period to analyse.")] = 24,
) -> None:
    """Errors and critical events: counts by type, system and component, grouped.

    Errors whose titles differ only in numbers or ids form one group.

    \b
    Example:
      eventcollector analyze-errors --hours 24
    """
    _positive(hours, "--hours")
    out = output_format(ctx)

    async def work(c: EventCollector) -> dict[str, Any]:
        return await EventAnalyzer(c).analyze_errors(hours)

    write_document(run(ctx, work), out, title=f"Errors: last {hours:g} hours")


@app.command()
@with_options(FORMAT, CONNECTION)
def patterns(
    ctx: typer.Context,
    days: Annotated[float, typer.Option("--days", help="The period to look at.")] = 7,
) -> None:
    """Hourly volume, type and system counts, and hours that spike or drop.

    \b
    Example:
      eventcollector patterns --days 7 --format json
    """
    _positive(days, "--days")
    out = output_format(ctx)

    async def work(c: EventCollector) -> dict[str, Any]:
        return await EventAnalyzer(c).detect_patterns(days)

    write_document(run(ctx, work), out, title=f"Patterns: last {days:g} days")


@app.command()
@with_options(FORMAT, CONNECTION)
def health(
    ctx: typer.Context,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing; only the exit status.")
    ] = False,
) -> None:
    """Check the store (or server): exit 0 when healthy, 1 otherwise.

    \b
    Example (a probe):
      eventcollector health --quiet || alert "event store down"
    """
    out = output_format(ctx)

    async def work(c: EventCollector) -> dict[str, Any]:
        return await c.health_check()

    doc = run(ctx, work)
    healthy = doc.get("status") == "healthy"
    if not quiet:
        write_document(doc, out, title="Health")
    if not healthy:
        # The report above (on stdout) has the details; stderr gets the one line.
        raise CliError(f"health: {doc.get('error') or doc.get('status', 'unhealthy')}")
