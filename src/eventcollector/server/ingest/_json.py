"""``POST /v1/events``: one event, a JSON array or NDJSON, answered after the commit.

Arrays are first split into raw elements (``msgspec.Raw``) so that each event's
size is known and one malformed event is reported by index instead of failing
the batch; ``Event.from_dict`` is the one validator, so its messages (which
start with the field name) are what the client sees.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector.model import Event, System
from eventcollector.server.errors import ApiError, json_response, limit_error
from eventcollector.server.ingest._admit import admit
from eventcollector.server.limits import depth_exceeds, request_body
from eventcollector.server.state import ServerState

__all__ = ["json_route"]

_JSON_TYPES = frozenset({"application/json", "text/json"})
_NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
_split_array = msgspec.json.Decoder(list[msgspec.Raw])
_decode = msgspec.json.Decoder()


def _media_type(request: Request) -> str:
    value = request.headers.get("content-type")
    if value is None:
        return "application/json"  # curl --data-binary and friends: assume JSON
    return value.partition(";")[0].strip().lower()


def _split(body: bytes, media_type: str, max_batch: int) -> list[bytes | msgspec.Raw]:
    """The raw events of a body, before any is decoded."""
    if media_type in _NDJSON_TYPES:
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) > max_batch:
            raise _too_many(max_batch)
        return list(lines)
    stripped = body.lstrip()
    if stripped[:1] == b"{":
        return [body]
    if stripped[:1] != b"[":
        raise ApiError(400, "body: expected a JSON object, a JSON array or NDJSON")
    try:
        items: list[bytes | msgspec.Raw] = list(_split_array.decode(body))
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"body: invalid JSON ({exc})") from None
    except RecursionError:
        raise ApiError(400, "max_depth: JSON nested too deeply", limit="max_depth") from None
    if len(items) > max_batch:
        raise _too_many(max_batch)
    return items


def _too_many(max_batch: int) -> ApiError:
    return limit_error(413, "max_batch", max_batch, "more events in one request than")


def _openers(raw: bytes | msgspec.Raw) -> int:
    """``{`` and ``[`` in an event's JSON text: a bound on its nesting depth (brackets
    inside strings only raise it), counted in C instead of walking the decoded value."""
    text = raw if isinstance(raw, bytes) else bytes(raw)
    return text.count(b"{") + text.count(b"[")


def _system_label(payload: Any) -> str:
    raw = payload.get("system") if isinstance(payload, dict) else None
    try:
        return System(raw).value if isinstance(raw, str) else ""
    except ValueError:
        return ""


class _Ingest:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        s = state.settings
        self._event_too_big = f"max_event_bytes: event larger than {s.max_event_bytes} bytes"
        self._too_deep = f"max_depth: event nested deeper than {s.max_depth} levels"

    def _parse(
        self, items: list[bytes | msgspec.Raw], now: datetime
    ) -> tuple[list[tuple[int, Event]], list[dict[str, Any]], Counter[str]]:
        s = self.state.settings
        valid: list[tuple[int, Event]] = []
        rejected: list[dict[str, Any]] = []
        rejected_systems: Counter[str] = Counter()
        for index, raw in enumerate(items):
            payload: Any = None
            try:
                if len(raw) > s.max_event_bytes:
                    raise ValueError(self._event_too_big)
                try:
                    payload = _decode.decode(raw)
                except msgspec.DecodeError as exc:
                    raise ValueError(f"event: invalid JSON ({exc})") from None
                except RecursionError:
                    raise ValueError(self._too_deep) from None
                if not isinstance(payload, dict):
                    raise ValueError("event: expected a JSON object")
                # Only data and metadata may nest (every other field is a scalar
                # or a list of strings, which the model checks), so only they are walked,
                # and only when the event's text holds more brackets than levels allowed.
                if _openers(raw) > s.max_depth:
                    for nested in (payload.get("data"), payload.get("metadata")):
                        if isinstance(nested, dict | list) and depth_exceeds(
                            nested, s.max_depth, 2
                        ):
                            raise ValueError(self._too_deep)
                valid.append((index, Event.from_dict(payload, now=now)))
            except ValueError as exc:
                rejected.append({"index": index, "error": str(exc)})
                rejected_systems[_system_label(payload)] += 1
        return valid, rejected, rejected_systems

    async def handle(self, request: Request) -> Response:
        state = self.state
        s = state.settings
        principal = state.authorize(request.headers, "ingest")
        media_type = _media_type(request)
        if media_type not in _JSON_TYPES and media_type not in _NDJSON_TYPES:
            state.metrics.http_rejections.labels("content_type").inc()
            raise ApiError(
                415,
                f"content-type: unsupported {media_type!r} "
                "(application/json or application/x-ndjson)",
            )
        started = time.perf_counter()
        try:
            body = await request_body(request, s.max_body_bytes)
            items = _split(body, media_type, s.max_batch)
        except ApiError as exc:
            state.metrics.http_rejections.labels(str(exc.status)).inc()
            raise
        valid, rejected, rejected_systems = self._parse(items, datetime.now(UTC))
        events = [event for _, event in valid]
        stored = await admit(state, principal, events)
        ids: list[str | None] = [None] * len(items)
        for index, event in valid:
            ids[index] = event.id
        metrics = state.metrics
        metrics.count(metrics.rejected, rejected_systems)
        metrics.latency.observe(time.perf_counter() - started)
        fresh = sum(stored)
        result = {
            "accepted": fresh,
            "duplicates": len(stored) - fresh,
            "rejected": rejected,
            "ids": ids,
        }
        if items and not valid:
            # Same body as a 200, plus the "error" member every 4xx carries.
            result["error"] = f"events: every event was rejected; first: {rejected[0]['error']}"
            return json_response(result, 400)
        return json_response(result)


def json_route(state: ServerState) -> Route:
    return Route("/v1/events", _Ingest(state).handle, methods=["POST"])
