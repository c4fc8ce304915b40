"""Foreign names (OTLP service names, syslog app names and MSGIDs) in our name syntax."""

from __future__ import annotations

import re

from eventcollector.model import LIMITS

__all__ = ["UNKNOWN_SERVICE", "first_line", "name_token"]

#: The system of a record that names none (OpenTelemetry's own default service name).
UNKNOWN_SERVICE = "unknown_service"
_NOT_NAME = re.compile(r"[^a-z0-9_.\-]+")


def name_token(text: str) -> str:
    """``text`` in our name syntax (lower case, ``[a-z0-9_.-]``), or "" if nothing is left."""
    name = _NOT_NAME.sub("_", text.strip().lower()).lstrip("_.-")
    return name[: LIMITS.name_length]


def first_line(text: str) -> str:
    """A title from a message: its first non-blank line, cut to the title limit."""
    return text.strip().split("\n", 1)[0][: LIMITS.title_length].rstrip()
