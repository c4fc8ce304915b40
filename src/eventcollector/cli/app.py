"""The typer application and its one error handler.

Each command module registers its commands on ``app`` when imported; the list
of modules is ``COMMAND_MODULES`` in ``cli/__init__.py``. Every failure, from
click's usage errors to an unreachable server, leaves through ``_Group.main``
as one line on stderr: ``error: <what>: <why>``, exit 2 for usage errors and 1
for runtime failures. Set EVENTCOLLECTOR_DEBUG=1 to get tracebacks instead.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from eventcollector.cli._common import CliError
from eventcollector.cli._options import negated_filter_as_argument
from eventcollector.cli._output import safe
from eventcollector.storage import StorageError
from eventcollector.storage.sqlite import NotOurDatabase

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_errors  # type: ignore[no-redef]

_DEBUG_ENV = "EVENTCOLLECTOR_DEBUG"
_SIGPIPE_EXIT = 141  # what a shell reports for a process killed by SIGPIPE


def _fail(message: str, code: int) -> NoReturn:
    # One line, whatever the message carries (it may quote user input).
    sys.stderr.write(f"error: {safe(message.strip())}\n")
    sys.stderr.flush()
    sys.exit(code)


def _describe(exc: BaseException) -> tuple[str, int]:
    """The line and exit status for an exception that escaped a command."""
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, NotOurDatabase):
        return f"database: {exc}", 1
    if isinstance(exc, ValueError):
        return str(exc), 2
    if isinstance(exc, StorageError | sqlite3.Error):
        return f"storage: {exc}", 1
    if isinstance(exc, ImportError):
        return str(exc), 1
    if isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError):
        target = exc.filename or ""
        return f"{target}: {exc.strerror or exc}", 1
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}", 1
    # httpx (the remote client) is optional; name its errors without importing it.
    if type(exc).__module__.startswith("httpx"):
        return f"server: {type(exc).__name__}: {exc}", 1
    return f"unexpected {type(exc).__name__}: {exc} (set {_DEBUG_ENV}=1 for a traceback)", 1


def _negated_word(exc: Exception, ctx: Any) -> bool:
    """Whether an unknown short option may be a filter's negated word (``-timeout``)."""
    option = getattr(exc, "option_name", "") or ""
    filtered = any(p.name == "filter_text" for p in getattr(ctx.command, "params", ()))
    return isinstance(exc, _click_errors.NoSuchOption) and filtered and option[:2] != "--"


class _Group(TyperGroup):
    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return name, command, negated_filter_as_argument(command, rest)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except _click_errors.NoArgsIsHelpError as exc:
            # "eventcollector" alone prints the help, as click does, and exits 2.
            typer.echo(exc.ctx.get_help(), err=True)
            sys.exit(2)
        except _click_errors.ClickException as exc:
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if isinstance(exc, _click_errors.UsageError) and ctx is not None:
                hint = f" (see '{ctx.command_path} --help')"
                if _negated_word(exc, ctx):
                    example = f"{ctx.command_path} -- '-word'"
                    hint = f" (a filter that starts with '-' goes after '--': {example})"
            _fail(exc.format_message() + hint, exc.exit_code)
        except typer.Abort:
            _fail("aborted", 130)
        except KeyboardInterrupt:
            # Ctrl-C is how a person ends tail; the shell already shows ^C.
            sys.exit(130)
        except BrokenPipeError:
            # The reader (head, less) went away: stop quietly, as a shell tool does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(_SIGPIPE_EXIT)
        except Exception as exc:
            if os.environ.get(_DEBUG_ENV):
                raise
            _fail(*_describe(exc))
        if not standalone_mode:
            return result
        # Without standalone mode click returns the code of typer.Exit instead of exiting.
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="eventcollector",
    cls=_Group,
    help="Central event logging: collect, query, trace, analyse and stream events.\n\n"
    "Every command reads --db / $EVENTCOLLECTOR_DB (the embedded store) or "
    "--url / $EVENTCOLLECTOR_URL (a collector server). Run 'eventcollector COMMAND --help'.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def main() -> None:
    """Console-script entry point."""
    app()
