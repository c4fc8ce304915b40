"""eventcollector: one place where every service records what happened.

The spec's API, importable as ``eventcollector`` (the spec's
``mahavishnu.core.event_collector``)::

    from eventcollector import EventCollector, EventQueryBuilder, System, EventType, Severity
"""

from eventcollector.analyzer import EventAnalyzer
from eventcollector.builder import EventQueryBuilder
from eventcollector.collector import EventCollector, QueueFull
from eventcollector.config import default_db_path, get_event_collector, set_event_collector
from eventcollector.decorator import collect_event
from eventcollector.filters import Filter, FilterError, parse_filter
from eventcollector.model import LIMITS, Event, EventType, Severity, System
from eventcollector.query import Query
from eventcollector.storage import Storage, StorageError, StorageUnavailable

__version__ = "0.1.0"

__all__ = [
    "LIMITS",
    "Event",
    "EventAnalyzer",
    "EventCollector",
    "EventQueryBuilder",
    "EventType",
    "Filter",
    "FilterError",
    "Query",
    "QueueFull",
    "Severity",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "System",
    "__version__",
    "collect_event",
    "default_db_path",
    "get_event_collector",
    "parse_filter",
    "set_event_collector",
]
