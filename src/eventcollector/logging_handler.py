"""``EventCollectorHandler``: forward ``logging`` records to the event collector.

    logging.getLogger().addHandler(EventCollectorHandler(system="deployer"))

Each record becomes one event (severity from the level, ``log.record`` by default,
the logger name as ``source_component``). ``emit`` never blocks on the network and
never raises into the application.

It must not feed on itself: records made while the collector's own code runs (its
sender threads, its HTTP calls: httpx logs every request at INFO), records of the
``eventcollector`` loggers, and records made while this handler is already emitting
on the same thread are ignored.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from eventcollector.client import INSIDE_CLIENT
from eventcollector.collector import EventCollector
from eventcollector.model import LIMITS, Event, Severity
from eventcollector.storage.base import QueuedStore

__all__ = ["EventCollectorHandler", "LogForwarder"]

_OWN_LOGGERS = ("eventcollector",)
_NOT_TOKEN = re.compile(r"[\s\x00-\x1f\x7f,]+")


def _severity(levelno: int) -> Severity:
    if levelno >= logging.CRITICAL:
        return Severity.CRITICAL
    if levelno >= logging.ERROR:
        return Severity.ERROR
    if levelno >= logging.WARNING:
        return Severity.WARNING
    if levelno >= logging.INFO:
        return Severity.INFO
    return Severity.DEBUG


class LogForwarder:
    """What the logging integrations share: the collector (the configured one unless
    given, made on first use), the system and event type, and the guard against
    recording the collector's own logging or recursing on one thread."""

    def __init__(self, collector: EventCollector | None, system: str, event_type: str) -> None:
        Event.create(system=system, event_type=event_type, title="check")  # fail fast
        self._collector: EventCollector | None = None
        self._queued: QueuedStore | None = None  # the collector's storage, if it queues
        if collector is not None:
            self._use(collector)
        self.system = system
        self.event_type = event_type
        self._busy = threading.local()

    @property
    def collector(self) -> EventCollector:
        if self._collector is None:
            from eventcollector.config import get_event_collector

            self._use(get_event_collector())
        assert self._collector is not None
        return self._collector

    def _use(self, collector: EventCollector) -> None:
        storage = collector.storage
        # Checked once (a collector keeps its storage): isinstance against a
        # runtime-checkable protocol costs about 25 µs, more than the rest of an emit (18 µs).
        self._queued = storage if isinstance(storage, QueuedStore) else None
        self._collector = collector

    def ignored(self, logger_name: str | None) -> bool:
        """Whether a record must not become an event (see the module docstring)."""
        if INSIDE_CLIENT.get() or getattr(self._busy, "active", False):
            return True
        return logger_name is not None and any(
            logger_name == own or logger_name.startswith(own + ".") for own in _OWN_LOGGERS
        )

    def forward(self, make_event: Callable[[], Event]) -> None:
        """Hand ``make_event()`` to the collector without blocking on the network or the
        disk, with this thread marked busy meanwhile; errors propagate."""
        self._busy.active = True
        try:
            event = make_event()
            collector = self.collector
            if self._queued is not None:  # the remote client: straight into its buffer
                self._queued.submit([event])
            else:
                collector.emit(**event.to_dict())
        finally:
            self._busy.active = False


class EventCollectorHandler(logging.Handler, LogForwarder):
    """A ``logging.Handler`` that records each log record as an event."""

    def __init__(
        self,
        collector: EventCollector | None = None,
        *,
        system: str,
        event_type: str = "log.record",
        level: int = logging.NOTSET,
    ) -> None:
        logging.Handler.__init__(self, level)
        LogForwarder.__init__(self, collector, system, event_type)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.ignored(record.name):
            return False
        return bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.forward(lambda: self._event(record))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        if self._collector is None:  # nothing was ever emitted: do not create a collector
            return
        if self._queued is not None and not getattr(self._busy, "active", False):
            # logging.shutdown() calls this at exit: never wait out a down server here.
            self._queued.flush_sync(5.0, patient=False)

    def _event(self, record: logging.LogRecord) -> Event:
        message = record.getMessage()
        description = message
        if record.exc_info:
            formatter = self.formatter or logging.Formatter()
            description += "\n" + formatter.formatException(record.exc_info)
        title = (message.strip().splitlines() or [record.levelname])[0]
        component = _NOT_TOKEN.sub("_", record.name)[: LIMITS.source_component_length] or None
        return Event.create(
            system=self.system,
            event_type=self.event_type,
            severity=_severity(record.levelno),
            title=title[: LIMITS.title_length],
            description=description[: LIMITS.description_length],
            source_component=component,
            data={
                "logger": record.name,
                "level": record.levelname,
                "module": record.module,
                "function": record.funcName,
                "line": record.lineno,
                "process": record.process,
                "thread": record.threadName,
            },
        )
