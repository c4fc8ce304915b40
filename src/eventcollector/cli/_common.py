"""What every command shares: connection options, the collector, errors, filters.

Commands stay thin: they parse options into library calls through these helpers
and hand the results to ``_output``. Errors are raised, never printed here; the
one handler in ``app._Group.main`` turns them into a single stderr line.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from eventcollector.collector import EventCollector
from eventcollector.config import ENV_API_KEY, ENV_DB, ENV_URL, default_db_path
from eventcollector.model import Severity
from eventcollector.query import Query
from eventcollector.query_params import query_from_params
from eventcollector.storage import DEFAULT_QUERY_TIMEOUT

T = TypeVar("T")

#: Rows a query prints unless told otherwise: enough to read, cheap to render.
DEFAULT_LIMIT = 100


class CliError(Exception):
    """A failure to report as one line on stderr; ``code`` 2 for usage, 1 otherwise."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


_CONNECTION = "Connection"
ENV_QUERY_TIMEOUT = "EVENTCOLLECTOR_QUERY_TIMEOUT"
_OUTPUT = "Output"

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=ENV_DB,
        metavar="PATH",
        help="Embedded store (SQLite file or postgresql:// URL) "
        "[default: $XDG_DATA_HOME/eventcollector/events.db].",
        show_default=False,
        rich_help_panel=_CONNECTION,
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=ENV_URL,
        metavar="URL",
        help="A collector server to use instead of the embedded store.",
        show_default=False,
        rich_help_panel=_CONNECTION,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=ENV_API_KEY,
        metavar="KEY",
        help="API key for --url.",
        show_default=False,
        show_envvar=True,
        rich_help_panel=_CONNECTION,
    ),
]
QueryTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--query-timeout",
        envvar=ENV_QUERY_TIMEOUT,
        min=0,
        metavar="SECONDS",
        help="Seconds one read of --db may run before it is cancelled; 0: no limit "
        "[default: 10]. A server has its own (serve --query-timeout).",
        show_default=False,
        rich_help_panel=_CONNECTION,
    ),
]
FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format [default: table on a terminal, else jsonl].",
        show_default=False,
        case_sensitive=False,
        rich_help_panel=_OUTPUT,
    ),
]

# Parameter names of query_params, spelled as the options the user typed.
_OPTION_NAMES = {
    "q": "filter",
    "system": "--system",
    "event_type": "--event-type",
    "event_types": "--event-type",
    "severity": "--severity",
    "min_severity": "--min-severity",
    "tags": "--tags",
    "any_tags": "--any-tags",
    "correlation_id": "--correlation-id",
    "source_component": "--component",
    "search": "--search",
    "min_duration_ms": "--min-duration",
    "order_by": "--order-by",
    "limit": "--limit",
    "offset": "--offset",
    "since": "--since",
    "until": "--until",
    "minutes": "--minutes",
    "hours": "--hours",
    "days": "--days",
}


#: CLI option (as click names it) -> query parameter of ``query_params``.
_FILTER_OPTIONS = {
    "filter_text": "q",
    "system": "system",
    "event_type": "event_type",
    "severity": "severity",
    "min_severity": "min_severity",
    "tags": "tags",
    "any_tags": "any_tags",
    "correlation_id": "correlation_id",
    "component": "source_component",
    "search": "search",
    "min_duration": "min_duration_ms",
    "minutes": "minutes",
    "hours": "hours",
    "days": "days",
    "since": "since",
    "until": "until",
    "order_by": "order_by",
    "limit": "limit",
    "offset": "offset",
}


def build_query(options: Mapping[str, Any]) -> Query:
    """A ``Query`` from a command's option values (``ctx.params``), through
    ``query_from_params``, so the CLI parses filters exactly as the server does: the
    positional filter is ``q``, ANDed with the options."""
    params: dict[str, list[str]] = {}
    for option, name in _FILTER_OPTIONS.items():
        value = options.get(option)
        if isinstance(value, list | tuple):  # repeatable options
            if value:
                params[name] = [str(v) for v in value]
        elif value is not None:
            params[name] = [str(value)]
    if options.get("asc"):
        params["ascending"] = ["true"]
    try:
        return query_from_params(params)
    except ValueError as exc:
        raise CliError(_option_spelling(str(exc)), code=2) from None


def _option_spelling(message: str) -> str:
    name, sep, rest = message.partition(":")
    if not sep or name not in _OPTION_NAMES:
        return message
    if name in ("severity", "min_severity") and "(one of" not in rest:
        rest += f" (one of {', '.join(s.value for s in Severity)})"
    return f"{_OPTION_NAMES[name]}:{rest}"


# -- the collector ---------------------------------------------------------------


def _is_file_path(target: str) -> bool:
    return not target.startswith(("postgresql://", "postgres://"))


def resolve_target(ctx: typer.Context) -> tuple[str | None, str]:
    """(server URL or None, database) from --db/--url or the environment.

    An option given on the command line wins over the other one from the
    environment; both on the command line is a usage error.
    """
    db: str | None = ctx.params.get("db")
    url: str | None = ctx.params.get("url")
    if db and url:
        db_cli = _from_command_line(ctx, "db")
        url_cli = _from_command_line(ctx, "url")
        if db_cli == url_cli:
            raise CliError("--db and --url: give one of them, not both", code=2)
        db, url = (db, None) if db_cli else (None, url)
    return url or None, db or str(default_db_path())


def collector_for(ctx: typer.Context, *, must_exist: bool = True) -> EventCollector:
    """The collector the command's --db/--url/--api-key (or environment) name.

    With ``must_exist``, a missing database file is an error instead of a new
    empty store, so a mistyped --db does not look like "no events".
    """
    url, target = resolve_target(ctx)
    budget: float | None = ctx.params.get("query_timeout")
    if url:
        if budget is not None and _from_command_line(ctx, "query_timeout"):
            raise CliError(
                "--query-timeout: a server's budget is its own (serve --query-timeout)", code=2
            )
        return EventCollector(url=url, api_key=ctx.params.get("api_key"))
    if _is_file_path(target):
        path = Path(target.removeprefix("sqlite:///"))
        if must_exist and not path.exists():
            raise CliError(
                f"database: {path} does not exist (check --db or ${ENV_DB}; "
                "'emit' or 'import' create it)"
            )
        if path.is_dir():
            raise CliError(f"database: {path} is a directory, not a database file", code=2)
    if budget is None:
        budget = DEFAULT_QUERY_TIMEOUT
    return EventCollector(target, query_timeout=budget or None)


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def run(
    ctx: typer.Context,
    work: Callable[[EventCollector], Awaitable[T]],
    *,
    must_exist: bool = True,
) -> T:
    """Run ``work`` with a started collector on a fresh event loop; always stop it."""
    collector = collector_for(ctx, must_exist=must_exist)

    async def main() -> T:
        try:
            return await work(collector)
        finally:
            await collector.stop()

    return asyncio.run(main())


def output_format(ctx: typer.Context, *, stream: bool = False) -> Format:
    """The --format the command was given (``with_options(FORMAT)``), resolved."""
    fmt: Format | None = ctx.params.get("fmt")
    return resolve_format(fmt, stream=stream)


def resolve_format(fmt: Format | None, *, stream: bool = False) -> Format:
    """The format asked for, else table on a terminal and jsonl for pipes and files."""
    if fmt is None:
        return Format.table if _stdout_is_terminal() else Format.jsonl
    if stream and fmt is Format.json:
        raise CliError("--format: json cannot stream; use jsonl", code=2)
    return fmt


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something odd
        return False
