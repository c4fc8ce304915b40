"""``eventcollector index``: expression indexes on often-filtered data paths."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from eventcollector.cli._common import DbOpt, run
from eventcollector.cli._output import note
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector

index_app = typer.Typer(
    help="Expression indexes on data/metadata paths (see docs/filters.md).",
    no_args_is_help=True,
)
app.add_typer(index_app, name="index")

PathArg = Annotated[
    str, typer.Argument(help="A data path: data.KEY or metadata.KEY (letters, digits, '_').")
]


@index_app.command("add")
def index_add(ctx: typer.Context, path: PathArg, db: DbOpt = None) -> None:
    """Index a data path, so filters on it (data.repo:acme) read the index.

    \\b
    Example:
      eventcollector index add data.repo
    """

    async def work(c: EventCollector) -> bool:
        return await (await c.indexes()).add_index(path)

    # A new store may be indexed before its first event.
    created = run(ctx, work, must_exist=False)
    note(f"indexed {path}" if created else f"{path} is indexed already")


@index_app.command("remove")
def index_remove(ctx: typer.Context, path: PathArg, db: DbOpt = None) -> None:
    """Drop the index on a data path."""

    async def work(c: EventCollector) -> bool:
        return await (await c.indexes()).remove_index(path)

    note(f"removed the index on {path}" if run(ctx, work) else f"{path} has no index")


@index_app.command("list")
def index_list(
    ctx: typer.Context,
    db: DbOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per index.")] = False,
) -> None:
    """List the indexed paths."""

    async def work(c: EventCollector) -> list[dict[str, str]]:
        return await (await c.indexes()).list_indexes()

    for row in run(ctx, work):
        if json_output:
            typer.echo(orjson.dumps(row).decode())
        else:
            typer.echo(f"{row['path']}  {row['index']}  created {row['created_at']}")
