"""Fingerprint v1: what makes two errors the same issue (docs/issues.md).

A fingerprint is ``"v1:"`` and a hash of the system, the exception type, the
normalised message and, when ``data`` carries a stack trace, each frame's module and
function. ``data.fingerprint`` (a string or a list of strings) overrides all of it.
Pure functions of an ``Event``: the backends call them on ingest, anyone may call
them on a stored event.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from eventcollector.model import Event

__all__ = ["FINGERPRINT_VERSION", "error_type", "fingerprint", "message", "normalise"]

FINGERPRINT_VERSION = "v1"
#: Normalising looks at this many characters of a message; the rest rarely tells apart.
_MESSAGE_CHARS = 1_000
#: At most this many frames of a stack trace count (the innermost ones).
_FRAMES = 50

_HEX = "[0-9a-fA-F]"
# In this order: a later rule must not see what an earlier one replaced, and the longer
# shapes (URL, e-mail, UUID, timestamp, address) go before the numbers inside them.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+"), "<url>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>"),
    (re.compile(rf"\b{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\b"), "<uuid>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?(?![\w-])"
        ),
        "<timestamp>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\b"), "<time>"),
    # Two or more colons between hex groups (with "::" shortening); before numbers and
    # durations, after timestamps (whose times it would otherwise take).
    (
        re.compile(rf"(?<![\w:])(?:{_HEX}{{0,4}}:){{2,7}}{_HEX}{{0,4}}(?![\w:])"),
        "<ip>",
    ),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(rf"\b(?={_HEX}*\d){_HEX}{{8,}}\b"), "<hex>"),
    (
        re.compile(
            r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds?|m|mins?|minutes?|h|hours?)\b"
        ),
        "<duration>",
    ),
    # A path's line number (``app.py:42``, ``app.py:42:7``, ``line 42``).
    (re.compile(r"(\.\w{1,8}):\d+(?::\d+)?\b"), r"\1:<line>"),
    (re.compile(r"\bline \d+\b"), "line <line>"),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`"), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)
# A Python traceback's frame line: File "path", line N, in function.
_TRACEBACK_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')
_TRACE_KEYS = ("stacktrace", "stack_trace", "stack", "traceback", "frames")


def normalise(text: str) -> str:
    """``text`` with its variable parts (ids, numbers, times, addresses...) replaced."""
    text = text[:_MESSAGE_CHARS]
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text.strip()


def _exception(data: Mapping[str, Any]) -> Mapping[str, Any]:
    exc = data.get("exception")
    return exc if isinstance(exc, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    return str(value)


def error_type(event: Event) -> str:
    """``data.error_type``, ``data.exception.type``, ``data.exception_type``, else the
    event type."""
    data = event.data
    for value in (data.get("error_type"), _exception(data).get("type"), data.get("exception_type")):
        text = _text(value)
        if text:
            return text
    return event.event_type.value


def message(event: Event) -> str:
    """``data.error``, ``data.exception.message``, else the title (not normalised)."""
    data = event.data
    for value in (data.get("error"), _exception(data).get("message")):
        text = _text(value)
        if text:
            return text
    return event.title


def _frames(data: Mapping[str, Any]) -> list[str]:
    """Module and function of each frame of a stack trace in ``data``, without lines."""
    trace: Any = None
    for source in (data, _exception(data)):
        for key in _TRACE_KEYS:
            if source.get(key):
                trace = source[key]
                break
        if trace is not None:
            break
    if isinstance(trace, str):
        return [f"{m}:{f}" for m, f in _TRACEBACK_FRAME.findall(trace)][-_FRAMES:]
    if not isinstance(trace, list):
        return []
    frames = []
    for frame in trace[-_FRAMES:]:
        if isinstance(frame, Mapping):
            module = frame.get("module") or frame.get("filename") or frame.get("file") or ""
            function = frame.get("function") or frame.get("name") or ""
            frames.append(f"{module}:{function}")
        elif isinstance(frame, str):
            frames.append(normalise(frame))
    return frames


def fingerprint(event: Event) -> str:
    """The event's fingerprint, ``"v1:"`` and 32 hex digits."""
    override = event.data.get("fingerprint")
    if isinstance(override, list) and override and all(isinstance(p, str) for p in override):
        parts = ["custom", *override]
    elif isinstance(override, str) and override:
        parts = ["custom", override]
    else:
        parts = [
            event.system.value,
            error_type(event),
            normalise(message(event)),
            *_frames(event.data),
        ]
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"{FINGERPRINT_VERSION}:{digest}"
