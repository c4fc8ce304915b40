"""``EventCollectorProcessor``: a structlog processor that records each log event.

    import structlog
    from eventcollector.integrations.structlog import EventCollectorProcessor

    structlog.configure(processors=[
        structlog.processors.add_log_level,
        EventCollectorProcessor(system="deployer"),   # before the renderer
        structlog.processors.JSONRenderer(),
    ])

The ``event`` key becomes the title, the level the severity, ``correlation_id`` (or
``trace_id``) the correlation id, an exception (``exc_info`` or a formatted
``exception``) ``data.exception``, and every other key ``data``. The event dict
passes on unchanged. Like ``EventCollectorHandler`` it never blocks (the embedded
collector stores in the background, the remote client buffers), never raises into
the application (a failure is counted in ``errors``), and ignores what is logged
while the collector's own code runs, by its own loggers, or from inside itself.
"""

from __future__ import annotations

import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

try:
    from structlog.typing import EventDict, WrappedLogger
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "eventcollector.integrations.structlog needs the 'structlog' extra: "
        f"pip install 'eventcollector[structlog]' ({exc})"
    ) from exc

import orjson

from eventcollector.collector import EventCollector
from eventcollector.logging_handler import LogForwarder
from eventcollector.model import LIMITS, Event

__all__ = ["EventCollectorProcessor"]

_SEVERITIES = {
    "debug": "debug", "notset": "debug", "info": "info", "msg": "info", "warn": "warning",
    "warning": "warning", "error": "error", "exception": "error", "critical": "critical",
    "fatal": "critical",
}  # fmt: skip
_NOT_TOKEN = re.compile(r"[\s\x00-\x1f\x7f,]+")
# Keys that become fields of the event rather than data.
_FIELDS = ("event", "level", "timestamp", "exc_info", "exception", "correlation_id", "trace_id")


class EventCollectorProcessor(LogForwarder):
    """A structlog processor sending each event to ``collector`` (default: the
    configured one, ``get_event_collector()``)."""

    def __init__(
        self,
        collector: EventCollector | None = None,
        *,
        system: str,
        event_type: str = "log.record",
    ) -> None:
        super().__init__(collector, system, event_type)
        #: Events that could not be recorded (never raised into the application).
        self.errors = 0

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        name = event_dict.get("logger")
        if self.ignored(name if isinstance(name, str) else None):
            return event_dict
        try:
            self.forward(lambda: self._event(method_name, event_dict))
        except Exception:
            self.errors += 1
        return event_dict

    def _event(self, method_name: str, event_dict: EventDict) -> Event:
        text = str(event_dict.get("event", ""))
        level = str(event_dict.get("level", method_name)).lower()
        data = _json_safe({k: v for k, v in event_dict.items() if k not in _FIELDS})
        exception = _exception(event_dict)
        if exception:
            data["exception"] = exception[: LIMITS.description_length]
        correlation = event_dict.get("correlation_id", event_dict.get("trace_id"))
        title = (text.strip().splitlines() or [level])[0][: LIMITS.title_length]
        return Event.create(
            system=self.system,
            event_type=self.event_type,
            severity=_SEVERITIES.get(level, "info"),
            title=title,
            description=text[: LIMITS.description_length] if "\n" in text.strip() else "",
            data=data,
            correlation_id=_token(correlation),
            timestamp=_timestamp(event_dict.get("timestamp")),
        )


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as JSON gives it back; what JSON cannot hold becomes its ``str()``."""
    encoded = orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    result: dict[str, Any] = orjson.loads(encoded)
    return result


def _exception(event_dict: EventDict) -> str:
    formatted = event_dict.get("exception")
    if isinstance(formatted, str):  # format_exc_info ran before this processor
        return formatted
    info = event_dict.get("exc_info")
    if info is True:
        info = sys.exc_info()
    if isinstance(info, BaseException):
        return "".join(traceback.format_exception(info))
    if isinstance(info, tuple) and len(info) == 3 and info[0] is not None:
        return "".join(traceback.format_exception(*info))
    return ""


def _token(value: Any) -> str | None:
    if value is None:
        return None
    token = _NOT_TOKEN.sub("_", str(value)).strip("_")
    return token[: LIMITS.correlation_id_length] or None


def _timestamp(value: Any) -> datetime | None:
    """TimeStamper's ISO text or UNIX seconds; None (now) for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
