"""Rendering: events and documents as table, json, jsonl or csv.

Event tables are formatted by hand, not with ``rich.table``: a 1,000-row query
must print in well under a second, and ``tail`` needs the same line layout one
event at a time. Reports (stats, analysis, health) are small and use rich.

Text from events is untrusted: control characters (CR/LF, ESC, bidi overrides)
are escaped before anything reaches a terminal, and rich never interprets it as
markup (consoles are created with ``markup=False``; cells are ``Text``).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.table import Table
from rich.text import Text

from eventcollector.cli._common import Format
from eventcollector.model import Event, Severity

# C0, DEL, C1, line/paragraph separators and bidi controls: each can forge lines,
# colours or the reading order of a terminal line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """``text`` with every control character shown as an escape, on one line."""
    return _CONTROL.sub(_escape_char, text)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_enabled(stream: TextIO) -> bool:
    """Colour only on a terminal, never with NO_COLOR (https://no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


def console(stream: TextIO | None = None) -> Console:
    """A rich console that never reads markup, emoji codes or "highlights" event text."""
    out = stream or sys.stdout
    colour = colour_enabled(out)
    return Console(
        file=out,
        markup=False,
        emoji=False,
        highlight=False,
        no_color=not colour,
        color_system="auto" if colour else None,
        soft_wrap=False,
    )


_SEVERITY_SGR = {
    Severity.DEBUG: "2",
    Severity.INFO: "36",
    Severity.WARNING: "33",
    Severity.ERROR: "31",
    Severity.CRITICAL: "1;97;41",
}
SEVERITY_STYLE = {
    Severity.DEBUG.value: "dim",
    Severity.INFO.value: "cyan",
    Severity.WARNING.value: "yellow",
    Severity.ERROR.value: "red",
    Severity.CRITICAL.value: "bold bright_white on red",
}

# -- events --------------------------------------------------------------------

CSV_COLUMNS = (
    "id",
    "timestamp",
    "system",
    "event_type",
    "severity",
    "title",
    "description",
    "tags",
    "correlation_id",
    "source_component",
    "duration_ms",
    "data",
    "metadata",
)


def show_time(ts: datetime) -> str:
    """UTC to the millisecond: sortable, and the same on every host."""
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _duration(ms: int | None) -> str:
    if ms is None:
        return ""
    if ms < 10_000:
        return f"{ms}ms"
    return f"{ms / 1000:.1f}s" if ms < 600_000 else f"{ms / 60_000:.1f}m"


_COLUMNS: tuple[tuple[str, int], ...] = (
    # header, widest it may grow (wider values are cut with an ellipsis)
    ("TIME", 24),
    ("SEVERITY", 8),
    ("SYSTEM", 20),
    ("TYPE", 28),
    ("COMPONENT", 20),
    ("CORRELATION", 24),
    ("DURATION", 8),
)
_OPTIONAL = frozenset({"COMPONENT", "CORRELATION", "DURATION"})


def _cells(event: Event) -> list[str]:
    return [
        show_time(event.timestamp),
        event.severity.value,
        event.system.value,
        event.event_type.value,
        safe(event.source_component or ""),
        safe(event.correlation_id or ""),
        _duration(event.duration_ms),
    ]


def _fit(text: str, width: int) -> str:
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    return set_cell_size(text, width - 1) + "…"


class EventTable:
    """Aligned event lines; the title comes last and is cut at the terminal's edge."""

    def __init__(self, out: TextIO, *, widths: Sequence[int] | None = None) -> None:
        self._out = out
        self._colour = colour_enabled(out)
        self._screen = shutil.get_terminal_size().columns if is_terminal(out) else None
        self._widths = list(widths) if widths is not None else None
        self._lead_width = 0

    def write(
        self,
        events: Sequence[Event],
        *,
        header: bool = True,
        lead: tuple[str, Sequence[str]] | None = None,
    ) -> None:
        """Lines for ``events``; ``lead`` is an extra first column (name, one value per event)."""
        rows = [_cells(e) for e in events]
        if self._widths is None:
            self._widths = [
                min(cap, max([len(name)] + [cell_len(r[i]) for r in rows]))
                if name not in _OPTIONAL or any(r[i] for r in rows)
                else 0
                for i, (name, cap) in enumerate(_COLUMNS)
            ]
        widths = self._widths
        lead_width = 0
        if lead is not None:
            lead_width = max(cell_len(v) for v in [lead[0], *lead[1]])
            self._lead_width = lead_width + 2
        lines = []
        if header:
            head = [_fit(name, w) for (name, _), w in zip(_COLUMNS, widths, strict=True) if w]
            if lead is not None:
                head.insert(0, _fit(lead[0], lead_width))
            lines.append(self._finish(head, "TITLE", bold=True))
        for i, (event, row) in enumerate(zip(events, rows, strict=True)):
            cells = [_fit(c, w) for c, w in zip(row, widths, strict=True) if w]
            if self._colour:
                cells[1] = f"\x1b[{_SEVERITY_SGR[event.severity]}m{cells[1]}\x1b[0m"
            if lead is not None:
                cells.insert(0, _fit(lead[1][i], lead_width))
            lines.append(self._finish(cells, safe(event.title)))
        self._out.write("".join(lines))

    def _finish(self, cells: list[str], title: str, *, bold: bool = False) -> str:
        prefix = "  ".join(cells) + "  "
        if self._screen is not None:
            used = self._lead_width + sum(w + 2 for w in self._widths or [] if w)
            room = self._screen - used
            if room > 8:
                title = _fit(title, room).rstrip() if cell_len(title) > room else title
        line = prefix + title
        if bold and self._colour:
            line = f"\x1b[1m{line}\x1b[0m"
        return line + "\n"


def csv_row(event: Event) -> list[str]:
    d = event.to_dict()
    d["tags"] = ",".join(event.tags)
    d["data"] = orjson.dumps(event.data).decode()
    d["metadata"] = orjson.dumps(event.metadata).decode()
    return ["" if d[c] is None else str(d[c]) for c in CSV_COLUMNS]


class EventWriter:
    """Writes events in one format, a batch at a time (``tail`` writes many batches)."""

    def __init__(self, fmt: Format, out: TextIO | None = None) -> None:
        self.fmt = fmt
        self._out = out or sys.stdout
        self._table: EventTable | None = None
        self._csv: Any = None
        self._started = False
        # CSV is raw data, except on a terminal where it is read, not parsed.
        self._csv_safe = is_terminal(self._out)

    def write(self, events: Sequence[Event], *, table_widths: Sequence[int] | None = None) -> None:
        out = self._out
        if self.fmt is Format.jsonl:
            out.write("".join(e.to_json().decode() + "\n" for e in events))
        elif self.fmt is Format.json:
            body = orjson.dumps([e.to_dict() for e in events], option=orjson.OPT_INDENT_2)
            out.write(body.decode() + "\n")
        elif self.fmt is Format.csv:
            if self._csv is None:
                self._csv = csv_writer(out)
                self._csv.writerow(CSV_COLUMNS)
            for e in events:
                row = csv_row(e)
                self._csv.writerow([safe(c) for c in row] if self._csv_safe else row)
        else:
            if self._table is None:
                self._table = EventTable(out, widths=table_widths)
            self._table.write(events, header=not self._started)
        self._started = True
        out.flush()


def csv_writer(out: TextIO) -> Any:
    """RFC 4180 CSV (CRLF rows): a CR or LF inside a field is then quoted, never a row break."""
    return csv.writer(out, lineterminator="\r\n")


def tail_widths() -> list[int]:
    """Fixed column widths for a stream, whose rows are not known in advance."""
    return [24, 8, 14, 22, 0, 0, 8]


# -- documents (stats, reports, analysis, health) -------------------------------


def write_document(doc: Mapping[str, Any], fmt: Format, *, title: str) -> None:
    out = sys.stdout
    if fmt is Format.json:
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt is Format.jsonl:
        out.write(orjson.dumps(doc).decode() + "\n")
    elif fmt is Format.csv:
        writer = csv_writer(out)
        writer.writerow(("key", "value"))
        terminal = is_terminal(out)
        for key, value in _flatten(doc):
            writer.writerow((key, safe(value) if terminal else value))
    else:
        con = console(out)
        for renderable in _render(doc, title):
            con.print(renderable)
    out.flush()


def _flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}.{i}")
    else:
        yield prefix, "" if value is None else _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


def _label(key: str) -> str:
    return key.replace("_", " ")


_EVENT_KEYS = ("timestamp", "severity", "system", "event_type", "title")


def _render(doc: Mapping[str, Any], title: str) -> list[Any]:
    """A key/value table of the scalars, then one table per mapping or list."""
    parts: list[Any] = []
    scalars = [(k, v) for k, v in doc.items() if not isinstance(v, Mapping | list)]
    if scalars:
        parts.append(Text(title, style="bold"))
        table = Table(show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        for key, value in scalars:
            text = Text(safe("" if value is None else _scalar(value)))
            if key == "status":
                text.stylize("green" if value == "healthy" else "bold red")
            table.add_row(Text(_label(key)), text)
        parts.append(table)
    for key, value in doc.items():
        if isinstance(value, Mapping):
            if all(not isinstance(v, Mapping | list) for v in value.values()):
                parts.extend((Text(""), Text(_label(key), style="bold"), _pairs(value)))
            else:
                parts.append(Text(""))
                parts.extend(_render(value, _label(key)))
        elif isinstance(value, list):
            parts.extend((Text(""), Text(_label(key), style="bold"), _rows(value)))
    return parts


def _pairs(value: Mapping[str, Any]) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column()
    table.add_column(justify="right")
    if not value:
        table.add_row(Text("(none)", style="dim"), Text(""))
    for k, v in value.items():
        style = SEVERITY_STYLE.get(k, "")
        table.add_row(Text(safe(k or "(none)"), style=style), Text(_scalar(v)))
    return table


def _rows(items: list[Any]) -> Table:
    table = Table(box=None)
    if not items:
        table.add_column()
        table.add_row(Text("(none)", style="dim"))
        return table
    if not all(isinstance(i, Mapping) for i in items):
        table.add_column("value")
        for item in items:
            table.add_row(Text(safe(_scalar(item))))
        return table
    first = items[0]
    keys = [k for k in _EVENT_KEYS if k in first] if "title" in first else list(first)
    keys = [k for k in keys if k != "fingerprint"]
    for key in keys:
        table.add_column(_label(key), overflow="fold")
    for item in items:
        cells = []
        for key in keys:
            value = item.get(key)
            text = Text(safe("" if value is None else _scalar(value)))
            if key == "severity":
                text.stylize(SEVERITY_STYLE.get(str(value), ""))
            cells.append(text)
        table.add_row(*cells)
    return table


def note(message: str) -> None:
    """A progress or summary line on stderr (stdout stays clean for data)."""
    err = sys.stderr
    err.write(safe(message) + "\n")
    err.flush()
