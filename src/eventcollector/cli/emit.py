"""``emit``: record one event from a shell script or a CI job."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer

from eventcollector.cli._common import CliError, Format, run
from eventcollector.cli._options import CONNECTION, FORMAT, with_options
from eventcollector.cli._output import EventWriter
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector
from eventcollector.model import Event


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{option}: not valid JSON ({exc})", code=2) from None
    if not isinstance(value, dict):
        raise CliError(f"{option}: expected a JSON object like '{{\"key\": 1}}'", code=2)
    return value


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for raw in values for v in raw.split(",") if v.strip()]


@app.command()
@with_options(FORMAT, CONNECTION)
def emit(
    ctx: typer.Context,
    system: Annotated[str, typer.Option("--system", "-s", help="Where it happened.")],
    event_type: Annotated[
        str, typer.Option("--event-type", "--type", "-t", help="What happened, e.g. deploy.done.")
    ],
    title: Annotated[str, typer.Option("--title", help="One line for people.")],
    severity: Annotated[
        str, typer.Option("--severity", help="debug, info, warning, error or critical.")
    ] = "info",
    description: Annotated[str, typer.Option("--description", help="More detail.")] = "",
    data: Annotated[
        str | None, typer.Option("--data", metavar="JSON", help="Payload: a JSON object.")
    ] = None,
    metadata: Annotated[
        str | None, typer.Option("--metadata", metavar="JSON", help="A JSON object.")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tags", help="Tags; repeat or comma-separate.")
    ] = None,
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="Ties related events together.")
    ] = None,
    component: Annotated[
        str | None, typer.Option("--component", help="The source component.")
    ] = None,
    duration_ms: Annotated[
        int | None, typer.Option("--duration-ms", help="How long it took.")
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option("--timestamp", metavar="ISO", help="When (default: now).")
    ] = None,
    event_id: Annotated[
        str | None,
        typer.Option("--id", help="A chosen id: emitting the same id again stores nothing."),
    ] = None,
) -> None:
    """Record one event and print its id (or the event, with --format).

    \b
    Example:
      eventcollector emit --system crackerjack --type test.failed --severity error \\
          --title "3 tests failed" --tags ci,nightly --data '{"failed": 3}' \\
          --correlation-id "$CI_PIPELINE_ID"
    """
    fields: dict[str, Any] = {
        "system": system,
        "event_type": event_type,
        "title": title,
        "severity": severity,
        "description": description,
        "data": _json_object(data, "--data"),
        "metadata": _json_object(metadata, "--metadata"),
        "tags": _split(tags),
        "correlation_id": correlation_id,
        "source_component": component,
        "duration_ms": duration_ms,
        "timestamp": timestamp,
        "id": event_id,
    }
    # Validate before opening (and perhaps creating) the store.
    event = Event.create(**fields)

    async def work(c: EventCollector) -> bool:
        (stored,) = await c.ingest([event])
        return stored

    run(ctx, work, must_exist=False)
    fmt: Format | None = ctx.params.get("fmt")
    if fmt is None or fmt is Format.table:
        sys.stdout.write(event.id + "\n")
    else:
        EventWriter(fmt).write([event])
