"""Options that several commands share, declared once: ``@with_options(...)`` adds them.

Typer reads a command's options from its signature, and has no option groups of its
own, so a group here is a tuple of ``inspect.Parameter``s that ``with_options`` puts into
the command's signature. The command does not receive them as arguments: it reads them
from ``ctx.params`` through ``build_query``, ``output_format`` and ``collector_for``, so
its own parameters stay the ones it uses itself.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from eventcollector.cli._common import ApiKeyOpt, DbOpt, FormatOpt, QueryTimeoutOpt, UrlOpt
from eventcollector.filters import ALIASES, DATA_ROOTS, FIXED_FIELDS

__all__ = [
    "CONNECTION",
    "FIELDS",
    "FILTER",
    "FORMAT",
    "OWN",
    "SELECTION",
    "WINDOW",
    "FilterArg",
    "with_options",
]

F = TypeVar("F", bound=Callable[..., Any])
Group = tuple[inspect.Parameter, ...]

_FILTERS = "Filters"

FilterArg = Annotated[
    str | None,
    typer.Argument(
        metavar="FILTER",
        help="A filter (docs/filters.md), ANDed with the options: "
        "'system:mahavishnu -tag:noise \"timeout\"'.",
        show_default=False,
    ),
]


def _option(*names: str, metavar: str, help_text: str) -> Any:
    return typer.Option(*names, metavar=metavar, help=help_text, rich_help_panel=_FILTERS)


def _group(**annotations: Any) -> Group:
    return tuple(
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
        for name, a in annotations.items()
    )


#: The positional filter of query, count, tail, export, aggregate and facets.
FILTER = _group(filter_text=FilterArg)

#: The time window (not for tail, which follows from now on).
WINDOW = _group(
    minutes=Annotated[
        float | None, _option("--minutes", metavar="N", help_text="The last N minutes.")
    ],
    hours=Annotated[float | None, _option("--hours", metavar="N", help_text="The last N hours.")],
    days=Annotated[float | None, _option("--days", metavar="N", help_text="The last N days.")],
    since=Annotated[
        str | None,
        _option("--since", metavar="ISO", help_text="From this ISO 8601 time (naive = UTC)."),
    ],
    until=Annotated[
        str | None,
        _option("--until", metavar="ISO", help_text="Before this ISO 8601 time (exclusive)."),
    ],
)

#: The field options, each a shorthand of a filter term (docs/filters.md).
FIELDS = _group(
    system=Annotated[
        list[str] | None,
        _option("--system", metavar="NAME", help_text="System(s); repeat or comma-separate."),
    ],
    event_type=Annotated[
        list[str] | None,
        _option(
            "--event-type", "--type", metavar="TYPE", help_text="Event type(s), e.g. test.failed."
        ),
    ],
    severity=Annotated[
        list[str] | None,
        _option(
            "--severity",
            metavar="LEVEL",
            help_text="Severity(ies): debug, info, warning, error, critical.",
        ),
    ],
    min_severity=Annotated[
        str | None, _option("--min-severity", metavar="LEVEL", help_text="This severity or worse.")
    ],
    tags=Annotated[
        list[str] | None,
        _option("--tags", metavar="TAG,...", help_text="Events with all of these tags."),
    ],
    any_tags=Annotated[
        list[str] | None,
        _option("--any-tags", metavar="TAG,...", help_text="Events with any of these tags."),
    ],
    correlation_id=Annotated[
        str | None, _option("--correlation-id", metavar="ID", help_text="One correlation id.")
    ],
    component=Annotated[
        list[str] | None, _option("--component", metavar="NAME", help_text="Source component(s).")
    ],
    search=Annotated[
        str | None,
        _option(
            "--search", metavar="WORDS", help_text="Words that start words of title or description."
        ),
    ],
    min_duration=Annotated[
        int | None, _option("--min-duration", metavar="MS", help_text="Took at least MS.")
    ],
)

#: What query, count, export, aggregate and facets select by: filter, window, fields.
SELECTION = FILTER + WINDOW + FIELDS

FORMAT = _group(fmt=FormatOpt)
CONNECTION = _group(db=DbOpt, url=UrlOpt, api_key=ApiKeyOpt, query_timeout=QueryTimeoutOpt)


class _Own:
    """The place of a command's own parameters among the groups."""


#: Where a command's own parameters go among the groups (first if not given).
OWN = _Own()


def with_options(*groups: Group | _Own) -> Callable[[F], F]:
    """Add the ``groups``' parameters to a command, in the order given (``OWN`` marks the
    place of the command's own); their values are in ``ctx.params``, not arguments."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        first, *own = signature.parameters.values()  # the typer.Context comes first
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        ordered = [first]
        if OWN not in groups:
            ordered += own
        added: set[str] = set()
        for group in groups:
            if isinstance(group, _Own):
                ordered += own
            else:
                ordered += group
                added.update(p.name for p in group)

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for name in added:
                kwargs.pop(name, None)
            return command(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=ordered)  # type: ignore[attr-defined]
        # Resolved annotations: typer's get_type_hints must not look the added ones up
        # in the command's module.
        wrapper.__annotations__ = {p.name: p.annotation for p in ordered}
        wrapper.__annotations__["return"] = signature.return_annotation
        return wrapper  # type: ignore[return-value]

    return decorate


# "-" and a filter field's name (or alias, or data./metadata.) and ":" or ".": a term.
_NEGATED_FIELD = re.compile(
    "-(?:"
    + "|".join(re.escape(n) for n in sorted([*FIXED_FIELDS, *ALIASES, *DATA_ROOTS], key=len)[::-1])
    + ")[.:]"
)


def negated_filter_as_argument(command: Any, args: list[str]) -> list[str]:
    """``args`` with a filter that starts with ``-`` (``-tag:noise "timeout"``) moved
    behind ``--``, so that click takes it for the FILTER it is, not an unknown option.

    Only for commands with a FILTER, only before a ``--`` of the user's, and only a
    token that no option could be: one ``-``, then a term with ``:``, a quote, a space
    or a parenthesis, not starting with one of the command's short options unless it
    names a filter field (``-fingerprint:*`` is not ``-f ingerprint:*``).
    """
    names = {p.name for p in getattr(command, "params", ())}
    if "filter_text" not in names:
        return args
    shorts = {
        opt
        for p in command.params
        for opt in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))
        if len(opt) == 2
    }
    for i, arg in enumerate(args):
        if arg == "--":
            return args
        if (
            arg.startswith("-")
            and not arg.startswith("--")
            and (arg[:2] not in shorts or _NEGATED_FIELD.match(arg) is not None)
            and any(c in arg for c in ':"() ')
        ):
            return [*args[:i], *args[i + 1 :], "--", arg]
    return args
