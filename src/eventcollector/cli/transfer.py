"""``export``, ``import`` and ``cleanup``: events in and out as JSON Lines.

An export is ``Event.to_dict()`` per line, oldest first; ``import`` feeds lines
through ``Event.from_dict`` and ``collector.ingest``, which is idempotent by id,
so importing an export reproduces it exactly and importing it twice stores
nothing twice. Files ending in ``.gz`` are gzip; ``-`` is stdout or stdin.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from eventcollector._files import durable_file
from eventcollector._paging import pages
from eventcollector.cli._common import CliError, build_query, output_format, run
from eventcollector.cli._options import CONNECTION, FORMAT, OWN, SELECTION, with_options
from eventcollector.cli._output import is_terminal, note, show_time, write_document
from eventcollector.cli.app import app
from eventcollector.collector import EventCollector
from eventcollector.filters import Filter, FilterError, parse_filter
from eventcollector.model import Event
from eventcollector.query import Query

_BATCH = 1_000
#: Runs shorter than this finish before a progress bar would be worth drawing.
_PROGRESS_FROM = 20_000
_PROGRESS_FROM_BYTES = 8 << 20
_MAX_REJECTS_SHOWN = 20
_GZIP_MAGIC = b"\x1f\x8b"
_FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".gz")


def _progress() -> Progress | None:
    """A progress bar on stderr, only when a person is watching it."""
    if not is_terminal(sys.stderr):
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=None,
        redirect_stdout=False,
        redirect_stderr=False,
    )


@contextlib.contextmanager
def _open_output(target: str, *, replace: bool = True) -> Iterator[IO[bytes] | gzip.GzipFile]:
    """A binary sink: stdout for "-", else a file that appears only once complete and
    on disk, so a failed export never leaves half a file (or, for an archive, half an
    archive followed by a delete)."""
    if target == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if not replace and Path(target).exists():
        raise CliError(f"{target}: already exists; choose a new file name", code=2)
    with durable_file(Path(target), replace=replace) as sink:
        yield sink


async def _export(c: EventCollector, q: Query, target: str, *, replace: bool = True) -> int:
    written = 0
    progress = _progress()
    with _open_output(target, replace=replace) as sink:
        total = await c.count(q) if progress is not None else 0
        task = None
        if progress is not None and total >= _PROGRESS_FROM:
            progress.start()
            task = progress.add_task("exporting", total=total)
        try:
            async for page in pages(c, q):
                sink.write(b"".join(e.to_json() + b"\n" for e in page))
                written += len(page)
                if task is not None and progress is not None:
                    progress.update(task, completed=written)
        finally:
            if task is not None and progress is not None:
                progress.stop()
    return written


@app.command()
@with_options(SELECTION, OWN, CONNECTION)
def export(
    ctx: typer.Context,
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", metavar="FILE", help="File to write (.gz compresses); - for stdout."
        ),
    ] = "-",
) -> None:
    """Write events as JSON Lines, oldest first (all of them unless filtered).

    The file is written whole or not at all. 'import' reads it back exactly.

    \b
    Examples:
      eventcollector export -o events.jsonl.gz
      eventcollector export 'system:crackerjack severity:>=error' --days 7 | jq .title
    """
    _refuse_file_as_filter(ctx.params.get("filter_text"))
    q = build_query(ctx.params)

    async def work(c: EventCollector) -> int:
        return await _export(c, q, output)

    written = run(ctx, work)
    if output != "-":
        note(f"exported {written} events to {output}")


def _refuse_file_as_filter(text: str | None) -> None:
    """``export FILE`` wrote to FILE before the argument became a filter; a lone word
    that looks like a file name would now quietly export its full-text matches."""
    if text is None or any(c in text for c in ' :"()'):
        return
    if text == "-" or text.endswith(_FILE_SUFFIXES):
        raise CliError(
            f"filter: {text!r} looks like a file name; write to a file with -o {text}", code=2
        )


# -- import ----------------------------------------------------------------------


@dataclass
class _ImportResult:
    lines: int = 0
    new: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def _open_input(source: str) -> Iterator[tuple[IO[bytes] | gzip.GzipFile, IO[bytes]]]:
    """(lines to read, raw file for progress) for a path or "-"; gzip by name or magic."""
    if source == "-":
        raw: IO[bytes] = sys.stdin.buffer
        close = False
    else:
        raw = open(source, "rb")  # noqa: SIM115 - closed below, after the with body
        close = True
    try:
        peek = getattr(raw, "peek", None)
        head = peek(2)[:2] if peek is not None else b""
        if source.endswith(".gz") or head == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz, raw
        else:
            yield raw, raw
    finally:
        if close:
            raw.close()


async def _import(c: EventCollector, source: str, size: int) -> _ImportResult:
    """Read ``source`` (``size`` bytes, 0 if unknown) in batches; blocking reads are
    fine here: the CLI runs nothing else on its loop."""
    result = _ImportResult()
    batch: list[Event] = []

    async def flush() -> None:
        stored = await c.ingest(batch)
        fresh = sum(stored)
        result.new += fresh
        result.duplicates += len(stored) - fresh
        batch.clear()

    progress = _progress() if size else None
    task = None
    if progress is not None and size >= _PROGRESS_FROM_BYTES:
        progress.start()
        task = progress.add_task("importing", total=size)
    try:
        with _open_input(source) as (lines, raw):
            for number, line in enumerate(lines, start=1):
                result.lines = number
                if not line.strip():
                    continue
                try:
                    batch.append(Event.from_dict(orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    result.rejected.append({"line": number, "error": f"not JSON ({exc})"})
                except ValueError as exc:
                    result.rejected.append({"line": number, "error": str(exc)})
                if len(batch) >= _BATCH:
                    await flush()
                    if task is not None and progress is not None:
                        progress.update(task, completed=raw.tell())
            if batch:
                await flush()
    except (EOFError, gzip.BadGzipFile) as exc:
        raise CliError(f"{source}: damaged gzip data after line {result.lines} ({exc})") from None
    finally:
        if task is not None and progress is not None:
            progress.stop()
    return result


@app.command("import")
@with_options(FORMAT, CONNECTION)
def import_(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(metavar="FILE", help="JSON Lines file (.gz too); - for stdin.")
    ],
) -> None:
    """Store events from JSON Lines (an export); ids already stored are skipped.

    Prints counts of new, duplicate and rejected lines; each rejected line is
    named by number on stderr. Exits 1 if any line was rejected (the valid ones
    are stored all the same).

    \b
    Example:
      eventcollector import events.jsonl.gz
      eventcollector export --db old.db | eventcollector import --db new.db -
    """
    out = output_format(ctx)
    if source != "-" and not Path(source).is_file():
        raise CliError(f"{source}: no such file", code=2)

    size = 0 if source == "-" else os.path.getsize(source)

    async def work(c: EventCollector) -> _ImportResult:
        return await _import(c, source, size)

    result = run(ctx, work, must_exist=False)
    for reject in result.rejected[:_MAX_REJECTS_SHOWN]:
        note(f"line {reject['line']}: {reject['error']}")
    if len(result.rejected) > _MAX_REJECTS_SHOWN:
        note(f"... and {len(result.rejected) - _MAX_REJECTS_SHOWN} more rejected lines")
    write_document(
        {
            "new": result.new,
            "duplicates": result.duplicates,
            "rejected": len(result.rejected),
            "rejected_lines": [r["line"] for r in result.rejected],
        },
        out,
        title="Import",
    )
    if result.rejected:
        raise CliError(f"import: {len(result.rejected)} lines rejected")


# -- cleanup ---------------------------------------------------------------------


@app.command()
@with_options(CONNECTION)
def cleanup(
    ctx: typer.Context,
    retention_days: Annotated[
        float,
        typer.Option("--retention-days", metavar="N", help="Keep events of the last N days."),
    ],
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            metavar="FILE",
            help="First export the events to delete to this new file (.gz compresses).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    where: Annotated[
        str | None,
        typer.Option("--where", metavar="FILTER", help="Only the old events this filter selects."),
    ] = None,
) -> None:
    """Delete events older than the retention period, optionally archiving them first.

    The archive is complete and on disk before anything is deleted, and the
    delete uses the archive's exact cutoff. An existing archive file is never
    overwritten.

    \b
    Examples:
      eventcollector cleanup --retention-days 30 --archive "archive-$(date +%F).jsonl.gz"
      eventcollector cleanup --where 'severity:debug' --retention-days 2
    """
    if not retention_days >= 0:
        raise CliError("--retention-days: must not be negative", code=2)
    if archive == "-":
        raise CliError("--archive: give a file name, not -", code=2)
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    node = None if where is None else _where(where, now)
    old = Query(until=cutoff, where=node)

    async def work(c: EventCollector) -> tuple[int, int]:
        if dry_run:
            return await c.count(old), 0
        archived = await _export(c, old, archive, replace=False) if archive else 0
        return archived, await c.cleanup_old_events(retention_days, now=now, where=node)

    archived, deleted = run(ctx, work)
    when = show_time(cutoff)
    if dry_run:
        note(f"would delete {archived} events older than {when}")
        return
    if archive:
        note(f"archived {archived} events to {archive}")
    note(f"deleted {deleted} events older than {when}")
    if archive and deleted > archived:
        # Events stored with old timestamps while the archive was being written.
        note(f"warning: {deleted - archived} deleted events arrived after the archive began")


def _where(text: str, now: datetime) -> Filter:
    try:
        return parse_filter(text, now=now)
    except FilterError as exc:  # "q: ... at column N", named as the user typed it
        raise CliError(f"--where: {str(exc).removeprefix('q: ')}", code=2) from None
