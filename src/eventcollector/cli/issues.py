"""``issues list | show ID | resolve ID | ignore ID | reopen ID | mute ID --until T``."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer

from eventcollector.cli._common import CliError, Format, output_format, run
from eventcollector.cli._options import CONNECTION, FORMAT, with_options
from eventcollector.cli._output import write_document
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector
from eventcollector.issues import ISSUE_ORDERS, ISSUE_STATUSES
from eventcollector.model import parse_timestamp

issues_app = typer.Typer(
    help="Error issues: errors grouped by fingerprint (docs/issues.md).", no_args_is_help=True
)
app.add_typer(issues_app, name="issues")

IdArg = Annotated[int, typer.Argument(help="The issue's id.", min=1)]


@issues_app.command("list")
@with_options(FORMAT, CONNECTION)
def issues_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(ISSUE_STATUSES)}.")
    ] = None,
    system: Annotated[str | None, typer.Option(help="Only issues seen in this system.")] = None,
    order_by: Annotated[
        str, typer.Option("--order-by", help=f"Newest first by {', '.join(ISSUE_ORDERS)}.")
    ] = "last_seen",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
) -> None:
    """Issues, the latest seen first.

    \b
    Example:
      eventcollector issues list --status unresolved --system mahavishnu
    """
    out = output_format(ctx)

    async def work(c: EventCollector) -> list[dict[str, Any]]:
        found = await c.issues(
            status=status, system=system, order_by=order_by, limit=limit, offset=offset
        )
        return [i.to_dict() for i in found]

    issues = run(ctx, work)
    if out is Format.jsonl:
        for issue in issues:
            sys.stdout.write(orjson.dumps(issue).decode() + "\n")
        return
    if out is Format.table:
        issues = [_row(i) for i in issues]
    write_document({"issues": issues}, out, title="Issues")


def _row(issue: dict[str, Any]) -> dict[str, Any]:
    flag = " (regressed)" if issue["regressed"] else ""
    return {
        "id": issue["id"],
        "status": issue["status"] + flag,
        "count": issue["count"],
        "last_seen": issue["last_seen"][:19],
        "systems": ",".join(issue["systems"]),
        "message": issue["title"],
    }


@issues_app.command("show")
@with_options(FORMAT, CONNECTION)
def issues_show(
    ctx: typer.Context,
    issue_id: IdArg,
    events: Annotated[int, typer.Option(help="Also list this many of its latest events.")] = 0,
) -> None:
    """One issue (and, with --events N, its latest events)."""
    out = output_format(ctx)

    async def work(c: EventCollector) -> dict[str, Any] | None:
        issue = await c.get_issue(issue_id)
        if issue is None:
            return None
        doc = issue.to_dict()
        if events:
            doc["events"] = [e.to_dict() for e in await c.issue_events(issue_id, events)]
        return doc

    doc = run(ctx, work)
    if doc is None:
        raise CliError(f"id: no issue {issue_id}")
    write_document(doc, out, title=f"Issue {issue_id}")


def _set_status(ctx: typer.Context, issue_id: int, status: str, until: datetime | None) -> None:
    out = output_format(ctx)

    async def work(c: EventCollector) -> dict[str, Any] | None:
        issue = await c.set_issue_status(issue_id, status, until=until)
        return None if issue is None else issue.to_dict()

    doc = run(ctx, work)
    if doc is None:
        raise CliError(f"id: no issue {issue_id}")
    write_document(doc, out, title=f"Issue {issue_id}: {status}")


def _status_command(name: str, status: str, summary: str) -> None:
    def command(ctx: typer.Context, issue_id: IdArg) -> None:
        _set_status(ctx, issue_id, status, None)

    command.__doc__ = summary
    issues_app.command(name)(with_options(FORMAT, CONNECTION)(command))


for _name, _status, _summary in (
    (
        "resolve",
        "resolved",
        "Mark an issue resolved; its next event makes it unresolved and regressed.",
    ),
    ("ignore", "ignored", "Ignore an issue: it keeps counting but stays ignored."),
    ("reopen", "unresolved", "Mark an issue unresolved again."),
):
    _status_command(_name, _status, _summary)


@issues_app.command("mute")
@with_options(FORMAT, CONNECTION)
def issues_mute(
    ctx: typer.Context,
    issue_id: IdArg,
    until: Annotated[str, typer.Option(help="Until when (ISO 8601 with a zone).")],
) -> None:
    """Mute an issue until a time; then it reads unresolved again."""
    _set_status(ctx, issue_id, "muted", parse_timestamp(until, "--until"))
