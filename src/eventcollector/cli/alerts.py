"""``alerts list | add FILE | remove NAME | test NAME | history NAME``, and
``alerts silence RULE | silences | unsilence ID`` (docs/alerts.md).

With ``--db`` (or nothing) the commands work on the local store through
``eventcollector.alerts``; with ``--url`` they call the server's ``/v1/alerts`` and
``/v1/silences`` (adding and removing need a key with the admin scope). Rules run only
in ``serve``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import orjson
import typer

from eventcollector import alerts as library
from eventcollector.alert_rules import load_rules
from eventcollector.cli._common import CliError, Format, output_format, resolve_target, run
from eventcollector.cli._options import CONNECTION, FORMAT, with_options
from eventcollector.cli._output import write_document
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector

alerts_app = typer.Typer(
    help="Alert rules: list, add, remove, test, history; silences (docs/alerts.md).",
    no_args_is_help=True,
)
app.add_typer(alerts_app, name="alerts")

NameArg = Annotated[str, typer.Argument(help="The rule's name.")]
_TIMEOUT = 30.0


def _call(
    ctx: typer.Context,
    local: Callable[[EventCollector], Awaitable[Any]],
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    """``local`` on the embedded store, or the HTTP request on ``--url``."""
    url, _ = resolve_target(ctx)
    if url is None:
        try:
            return run(ctx, local)
        except LookupError as exc:
            raise CliError(str(exc)) from None
    return _remote(ctx, url, method, path, body, params)


def _remote(
    ctx: typer.Context,
    url: str,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ImportError(
            "--url needs the 'client' extra: pip install 'eventcollector[client]'"
        ) from exc
    key = ctx.params.get("api_key")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, json=body, params=params, headers=headers,
            timeout=_TIMEOUT,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise CliError(f"url: cannot reach {url} ({exc})") from None
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    if response.status_code >= 400:
        message = doc.get("error") if isinstance(doc, dict) else None
        raise CliError(
            str(message or f"server answered HTTP {response.status_code}"),
            2 if response.status_code in (400, 422) else 1,
        )
    return doc


def _path(name: str, tail: str = "") -> str:
    return f"/v1/alerts/{quote(name, safe='')}{tail}"


@alerts_app.command("list")
@with_options(FORMAT, CONNECTION)
def alerts_list(
    ctx: typer.Context,
) -> None:
    """Every rule with its state (per group with group_by)."""
    out = output_format(ctx)

    async def local(c: EventCollector) -> dict[str, Any]:
        return {"alerts": await library.list_alerts(c)}

    doc = _call(ctx, local, "GET", "/v1/alerts")
    _write_rows(doc, "alerts", out, "Alert rules", _row)


def _write_rows(
    doc: dict[str, Any], key: str, out: Format, title: str, row: Callable[[Any], Any]
) -> None:
    """``doc[key]``'s rows one a line (jsonl), as a table of ``row(r)``, or the document."""
    if out is Format.jsonl:
        for found in doc[key]:
            sys.stdout.write(orjson.dumps(found).decode() + "\n")
        return
    if out is Format.table:
        doc = {**doc, key: [row(r) for r in doc[key]]}
    write_document(doc, out, title=title)


def _row(rule: dict[str, Any]) -> dict[str, Any]:
    states = rule["states"]
    firing = [s["group"] or "-" for s in states if s["state"] == "firing"]
    state = "firing" if firing else (states[0]["state"] if len(states) == 1 else "ok")
    if firing and rule.get("group_by"):
        state += f" ({', '.join(firing[:5])})"
    what = rule.get("condition") or f"trigger {rule.get('trigger')}"
    return {
        "name": rule["name"],
        "state": state,
        "rule": what + (f" over {rule['window']}" if rule.get("window") else ""),
        "filter": rule.get("filter") or "",
        "notify": len(rule["notify"]),
        "source": rule["source"],
    }


@alerts_app.command("add")
@with_options(FORMAT, CONNECTION)
def alerts_add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A TOML file of [[alert]] tables.")],
) -> None:
    """Add (or replace) the rules of a TOML file; nothing is added if one is bad."""
    out = output_format(ctx)
    try:
        rules = load_rules(file)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    tables = [r.to_dict() for r in rules]
    server, _ = resolve_target(ctx)
    if server is not None:
        added = [_remote(ctx, server, "POST", "/v1/alerts", t) for t in tables]
    else:

        async def local(c: EventCollector) -> list[dict[str, Any]]:
            return [(await library.add_alert(c, t))[0] for t in tables]

        added = _call(ctx, local, "POST", "/v1/alerts")
    write_document({"added": [a["name"] for a in added]}, out, title="Added")


@alerts_app.command("remove")
@with_options(CONNECTION)
def alerts_remove(
    ctx: typer.Context,
    name: NameArg,
) -> None:
    """Remove a rule, its states and its history."""

    async def local(c: EventCollector) -> None:
        await library.remove_alert(c, name)

    _call(ctx, local, "DELETE", _path(name))
    typer.echo(f"removed {name}", err=True)


@alerts_app.command("test")
@with_options(FORMAT, CONNECTION)
def alerts_test(
    ctx: typer.Context,
    name: NameArg,
) -> None:
    """Evaluate a rule now and print its value per group; notifies nobody."""
    out = output_format(ctx)

    async def local(c: EventCollector) -> dict[str, Any]:
        return await library.test_alert(c, name)

    doc = _call(ctx, local, "POST", _path(name, "/test"))
    if out is Format.table:
        doc = {**doc, "groups": [{**g, "group": g["group"] or "-"} for g in doc["groups"]]}
    write_document(doc, out, title=f"Alert {name}: now")


@alerts_app.command("history")
@with_options(FORMAT, CONNECTION)
def alerts_history(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[
        int, typer.Option(help="At most this many, newest first.", min=1, max=1000)
    ] = 50,
) -> None:
    """A rule's transitions and notifications (failures included), newest first."""
    out = output_format(ctx)

    async def local(c: EventCollector) -> dict[str, Any]:
        return {"rule": name, "history": await library.alert_history(c, name, limit)}

    doc = _call(ctx, local, "GET", _path(name, "/history"), params={"limit": str(limit)})
    _write_rows(doc, "history", out, f"Alert {name}: history", _record_row)


def _record_row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": record["at"][:23],
        "group": record["group"] or "-",
        "kind": record["kind"],
        "state": record["state"],
        "value": record["value"],
        "target": record["target"] or "",
        "error": record["error"] or "",
    }


@alerts_app.command("silence")
@with_options(FORMAT, CONNECTION)
def alerts_silence(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="The rule's name, or '*' for every rule.")],
    for_: Annotated[
        str | None, typer.Option("--for", help="How long: 30m, 2h, 7d (at most 366d; 1h).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Until this time (ISO 8601).")] = None,
    group: Annotated[
        str | None, typer.Option(help="Only this group (as `alerts list` shows it).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, for the others.")] = "",
) -> None:
    """Hold back a rule's notices for a while; it is still evaluated and recorded."""
    out = output_format(ctx)
    doc: dict[str, Any] = {"rule": rule, "reason": reason}
    for key, value in (("for", for_), ("until", until), ("group", group)):
        if value is not None:
            doc[key] = value
    if for_ is None and until is None:
        doc["for"] = "1h"

    async def local(c: EventCollector) -> dict[str, Any]:
        return await library.add_silence(c, doc)

    write_document(_call(ctx, local, "POST", "/v1/silences", doc), out, title="Silenced")


@alerts_app.command("silences")
@with_options(FORMAT, CONNECTION)
def alerts_silences(
    ctx: typer.Context,
) -> None:
    """The silences in force."""
    out = output_format(ctx)

    async def local(c: EventCollector) -> dict[str, Any]:
        return {"silences": await library.list_silences(c)}

    doc = _call(ctx, local, "GET", "/v1/silences")
    _write_rows(doc, "silences", out, "Silences", _silence_row)


def _silence_row(silence: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": silence["id"],
        "rule": silence["rule"],
        "group": "(every)" if silence["group"] is None else silence["group"] or "-",
        "until": silence["until"][:19],
        "reason": silence["reason"],
    }


@alerts_app.command("unsilence")
@with_options(CONNECTION)
def alerts_unsilence(
    ctx: typer.Context,
    silence_id: Annotated[int, typer.Argument(help="The silence's id (`alerts silences`).")],
) -> None:
    """End a silence now."""

    async def local(c: EventCollector) -> None:
        await library.end_silence(c, silence_id)

    _call(ctx, local, "DELETE", f"/v1/silences/{silence_id}")
    typer.echo(f"ended silence {silence_id}", err=True)
