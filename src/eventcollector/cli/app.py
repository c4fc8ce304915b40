"""The typer application; each command module registers its commands on ``app``."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="eventcollector",
    help="Central event logging: collect, query, trace, analyse and stream events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def main() -> None:
    """Console-script entry point."""
    app()
