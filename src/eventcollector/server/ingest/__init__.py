"""The ingest doors over one store path (``_admit``): our JSON format and OTLP/HTTP.

Like a log distributor, the HTTP side is thin: each door parses its wire format
into validated ``Event``s and hands them to ``admit``, so limits, rate limits and
backpressure are the same at every door.
"""

from __future__ import annotations

from starlette.routing import Route

from eventcollector.server.ingest._json import json_route
from eventcollector.server.ingest._otlp_common import OtlpDoor
from eventcollector.server.ingest.otlp_logs import LOGS
from eventcollector.server.ingest.otlp_traces import TRACES
from eventcollector.server.state import ServerState

__all__ = ["OTLP_PATHS", "otlp_routes", "routes"]

_SIGNALS = (LOGS, TRACES)
OTLP_PATHS = frozenset(signal.path for signal in _SIGNALS)


def otlp_routes(state: ServerState) -> list[Route]:
    """``POST /v1/logs`` and ``POST /v1/traces``: what ``--otlp-port`` serves."""
    return [OtlpDoor(state, signal).route() for signal in _SIGNALS]


def routes(state: ServerState) -> list[Route]:
    return [json_route(state), *otlp_routes(state)]
