"""OTLP/HTTP, shared by logs and traces: the request door and the value mapping.

The door (``OtlpDoor``) reads the body through ``read_body`` (size limit, gzip),
decodes protobuf or OTLP JSON into the ``opentelemetry-proto`` request message,
bounds the records per export, lets the signal's mapper turn records into events
and stores them through ``admit`` like our JSON endpoint. It answers as the
OTLP/HTTP specification asks: an ``Export*ServiceResponse`` in the request's
encoding (``partialSuccess`` counting rejected records), and for failures a
``google.rpc.Status`` (protobuf or JSON) with 400/401/403/413/415, or 429/503 with
Retry-After.

OTLP JSON differs from protobuf's own JSON mapping only in its ids (hex, not
base64); they are rewritten before ``ParseDict``, so both encodings end in the
same message, the same events and the same derived ids.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector._ids import derived_event_id
from eventcollector.model import Event
from eventcollector.server.errors import ApiError, limit_error
from eventcollector.server.ingest._admit import admit
from eventcollector.server.ingest._names import UNKNOWN_SERVICE, name_token
from eventcollector.server.limits import depth_exceeds, request_body
from eventcollector.server.state import ServerState

__all__ = [
    "Mapped",
    "OtlpDoor",
    "Signal",
    "any_value",
    "attributes",
    "children",
    "hex_ids_to_base64",
    "json_records",
    "map_export",
    "nested",
    "record_count",
    "scoped_records",
    "timestamp",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_decode_json = msgspec.json.Decoder()

# google.rpc.Code for each status we answer with (what gRPC-minded exporters log).
_RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}


@dataclass(slots=True)
class Mapped:
    """What a signal's mapper made of one export."""

    events: list[Event]
    rejected: int = 0
    first_error: str = ""
    rejected_systems: Counter[str] | None = None

    def reject(self, system: str, error: str) -> None:
        self.rejected += 1
        self.first_error = self.first_error or error
        if self.rejected_systems is None:
            self.rejected_systems = Counter()
        self.rejected_systems[system] += 1


@dataclass(frozen=True, slots=True)
class Signal:
    """One OTLP signal: its path, messages, and how its records become events."""

    path: str
    request_type: type[Message]
    response_type: type[Message]
    #: The response's PartialSuccess field that counts rejected records.
    rejected_field: str
    #: The request's fields: resource list, scope list, records (``resource_logs``, ...).
    names: tuple[str, str, str]
    #: Rewrites the hex ids of a decoded OTLP JSON body in place (before ParseDict).
    fix_json_ids: Callable[[dict[str, Any]], None]
    #: The events of one record: (record, context, max_event_bytes, max_depth, now).
    events_of: Callable[[Any, ScopeContext, int, int, datetime], list[Event]]


# -- values --------------------------------------------------------------------------


def any_value(value: Any, max_depth: int, depth: int = 1) -> Any:
    """An ``AnyValue`` as JSON: maps and arrays nested at most ``max_depth`` levels."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "kvlist_value" or kind == "array_value":
        if depth >= max_depth:
            raise ValueError(f"max_depth: attribute value nested deeper than {max_depth} levels")
        if kind == "kvlist_value":
            return attributes(value.kvlist_value.values, max_depth, depth + 1)
        return [any_value(item, max_depth, depth + 1) for item in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind is None:
        return None
    return getattr(value, kind)  # bool_value, int_value, double_value


def attributes(pairs: Any, max_depth: int, depth: int = 1) -> dict[str, Any]:
    """Repeated ``KeyValue`` as a dict (keys kept as sent, dots and all)."""
    return {kv.key: any_value(kv.value, max_depth, depth) for kv in pairs}


_MISSING: Any = object()


def nested(
    attrs: Mapping[str, Any],
    max_depth: int,
    under: Mapping[str, Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Attributes with their names split at the dots into objects, as the semantic
    conventions mean them (``http.request.method`` is ``method`` in ``request`` in
    ``http``), so that the filter path ``data.http.request.method`` finds them.

    ``under``: keys the attributes go over (a log body's map); ``fixed``: our own
    fields, which win and take nothing in. A name stays one key, as sent, where it
    cannot be nested: an empty part (``a..b``), a part that holds a value other than an
    object (``http`` = "x" besides ``http.method``: names with fewer parts are placed
    first, so the outcome does not depend on their order), or past ``max_depth``.
    """
    out = dict(under or {})
    dotted = []
    for key, value in attrs.items():
        if "." in key:
            dotted.append(key)
        else:
            out[key] = value
    if fixed:
        out.update(fixed)
    dotted.sort(key=lambda k: (k.count("."), k))
    own: set[int] = set()  # ids of the objects made here, which may take keys in
    for key in dotted:
        value = attrs[key]
        parts = key.split(".")
        if not ("" in parts or (fixed and parts[0] in fixed)) and not depth_exceeds(
            value, max_depth - 1, len(parts)
        ):
            node = out
            for part in parts[:-1]:
                child = node.get(part, _MISSING)
                if child is _MISSING or (type(child) is dict and id(child) not in own):
                    # A new object, or a copy of a map value (the caller's stays as it is).
                    child = node[part] = {} if child is _MISSING else dict(child)
                    own.add(id(child))
                elif type(child) is not dict:
                    break
                node = child
            else:
                if parts[-1] not in node:
                    node[parts[-1]] = value
                    continue
        out[key] = value
    return out


def timestamp(unix_nano: int) -> datetime:
    return _EPOCH + timedelta(microseconds=unix_nano // 1000)


@dataclass(frozen=True, slots=True)
class ScopeContext:
    """What every record of one resource and scope shares."""

    system: str
    metadata: dict[str, Any]
    #: A hash of resource and scope, continued per record for its derived id.
    digest: Any

    def event_id(self, unix_nano: int, record: bytes) -> str:
        digest = self.digest.copy()
        digest.update(record)
        return derived_event_id(unix_nano, digest.digest())


def scope_context(resource: Any, scope: Any, max_depth: int) -> ScopeContext:
    resource_attrs = attributes(resource.attributes, max_depth)
    service = resource_attrs.get("service.name")
    system = name_token(service) if isinstance(service, str) else ""
    metadata: dict[str, Any] = {"resource": nested(resource_attrs, max_depth)}
    if scope.name or scope.version:
        metadata["scope"] = {"name": scope.name, "version": scope.version}
    digest = hashlib.blake2b(resource.SerializeToString(), digest_size=16)
    digest.update(scope.SerializeToString())
    return ScopeContext(system or UNKNOWN_SERVICE, metadata, digest)


def scoped_records(
    request: Any, names: tuple[str, str, str], max_depth: int, mapped: Mapped
) -> Iterator[tuple[ScopeContext, Any]]:
    """Each record of an export with its scope's context; ``names`` are the fields of
    the resource list, the scope list and the records (``resource_logs``, ...).

    A resource whose attributes cannot be mapped rejects the records of its scopes.
    """
    resources, scopes, records = names
    for resource in getattr(request, resources):
        for scoped in getattr(resource, scopes):
            try:
                context = scope_context(resource.resource, scoped.scope, max_depth)
            except ValueError as exc:
                for _ in getattr(scoped, records):
                    mapped.reject("", f"resource: {exc}")
                continue
            for record in getattr(scoped, records):
                yield context, record


def map_export(
    request: Any,
    names: tuple[str, str, str],
    max_depth: int,
    events_of: Callable[[Any, ScopeContext], list[Event]],
) -> Mapped:
    """The events ``events_of(record, context)`` makes of each record; a record whose
    events cannot all be made is rejected whole, with the reason."""
    mapped = Mapped([])
    for context, record in scoped_records(request, names, max_depth, mapped):
        try:
            mapped.events.extend(events_of(record, context))
        except ValueError as exc:
            mapped.reject(context.system, str(exc))
    return mapped


def record_count(request: Any, names: tuple[str, str, str]) -> int:
    resources, scopes, records = names
    return sum(
        len(getattr(scoped, records))
        for resource in getattr(request, resources)
        for scoped in getattr(resource, scopes)
    )


# -- OTLP JSON ids -------------------------------------------------------------------


def children(parent: Any, name: str) -> Iterator[dict[str, Any]]:
    """The objects in ``parent[name]``, by its JSON (lowerCamelCase) or its protobuf name,
    skipping what is not an object."""
    if not isinstance(parent, dict):
        return
    items = parent.get(_camel_case(name), parent.get(name))
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, dict))


def json_records(payload: dict[str, Any], names: tuple[str, str, str]) -> Iterator[dict[str, Any]]:
    """The record objects of an OTLP JSON export (``names`` as for ``scoped_records``)."""
    resources, scopes, records = names
    for resource in children(payload, resources):
        for scoped in children(resource, scopes):
            yield from children(scoped, records)


@functools.cache
def _camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


@functools.cache
def _snake_case(name: str) -> str:
    return re.sub("([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def hex_ids_to_base64(record: dict[str, Any], *names: str) -> None:
    """OTLP JSON's hex ids (``traceId`` or ``trace_id``, ...) as the base64 that protobuf's
    JSON mapping expects; ``names`` are the lowerCamelCase ones."""
    for name in (*names, *map(_snake_case, names)):
        value = record.get(name)
        if isinstance(value, str) and value:
            try:
                record[name] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise ApiError(400, f"{name}: not a hex string: {value[:64]!r}") from None


# -- the door ------------------------------------------------------------------------


def _rpc_status(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` message (code = 1, message = 2), encoded by hand."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


class OtlpDoor:
    """``POST`` of one signal's export requests."""

    def __init__(self, state: ServerState, signal: Signal) -> None:
        self.state = state
        self.signal = signal

    def route(self) -> Route:
        return Route(self.signal.path, self.handle, methods=["POST"])

    async def handle(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        media_type = content_type.partition(";")[0].strip().lower()
        protobuf = media_type != JSON
        try:
            return await self._export(request, media_type, protobuf)
        except ApiError as exc:
            return self._failure(exc, protobuf)

    async def _export(self, request: Request, media_type: str, protobuf: bool) -> Response:
        state = self.state
        s = state.settings
        principal = state.authorize(request.headers, "ingest")
        if protobuf and media_type not in _PROTOBUF_TYPES:
            state.metrics.http_rejections.labels("content_type").inc()
            raise ApiError(415, f"content-type: unsupported {media_type!r} ({PROTOBUF} or {JSON})")
        started = time.perf_counter()
        try:
            body = await request_body(request, s.max_body_bytes)
            message = self._decode(body) if protobuf else self._decode_json(body)
            records = record_count(message, self.signal.names)
            if records > s.max_batch:
                raise limit_error(413, "max_batch", s.max_batch, "more records in one export than")
        except ApiError as exc:
            state.metrics.http_rejections.labels(str(exc.status)).inc()
            raise
        now = datetime.now(UTC)

        def events_of(record: Any, context: ScopeContext) -> list[Event]:
            return self.signal.events_of(record, context, s.max_event_bytes, s.max_depth, now)

        mapped = map_export(message, self.signal.names, s.max_depth, events_of)
        await admit(state, principal, mapped.events)
        if mapped.rejected_systems:
            state.metrics.count(state.metrics.rejected, mapped.rejected_systems)
        state.metrics.latency.observe(time.perf_counter() - started)
        return self._success(mapped, protobuf)

    def _decode(self, body: bytes) -> Any:
        name = self.signal.request_type.DESCRIPTOR.name
        try:
            return self.signal.request_type.FromString(body)
        except (DecodeError, RecursionError) as exc:
            raise ApiError(400, f"body: not a valid protobuf {name} ({exc})") from None

    def _decode_json(self, body: bytes) -> Any:
        name = self.signal.request_type.DESCRIPTOR.name
        try:
            payload = _decode_json.decode(body)
        except msgspec.DecodeError as exc:
            raise ApiError(400, f"body: invalid JSON ({exc})") from None
        except RecursionError:
            raise ApiError(400, "max_depth: JSON nested too deeply", limit="max_depth") from None
        if not isinstance(payload, dict):
            raise ApiError(400, f"body: expected an OTLP JSON {name} object")
        self.signal.fix_json_ids(payload)
        try:
            return json_format.ParseDict(
                payload, self.signal.request_type(), ignore_unknown_fields=True
            )
        except (json_format.ParseError, RecursionError) as exc:
            # ParseError nests a clause per level: the innermost says what failed.
            reason = str(exc).rsplit("field: ", 1)[-1][:300]
            raise ApiError(400, f"body: not a valid OTLP JSON {name} ({reason})") from None

    def _success(self, mapped: Mapped, protobuf: bool) -> Response:
        signal = self.signal
        error = (
            f"{mapped.rejected} rejected; first: {mapped.first_error}" if mapped.rejected else ""
        )
        if protobuf:
            response: Any = signal.response_type()
            if mapped.rejected:
                partial = response.partial_success
                setattr(partial, signal.rejected_field, mapped.rejected)
                partial.error_message = error
            return Response(response.SerializeToString(), 200, media_type=PROTOBUF)
        body: dict[str, Any] = {}
        if mapped.rejected:
            # 64-bit integers are strings in OTLP JSON.
            rejected = {_camel_case(signal.rejected_field): str(mapped.rejected)}
            body["partialSuccess"] = {**rejected, "errorMessage": error}
        return Response(orjson.dumps(body), 200, media_type=JSON)

    def _failure(self, exc: ApiError, protobuf: bool) -> Response:
        code = _RPC_CODES.get(exc.status, 2)  # 2: UNKNOWN
        if protobuf:
            content = _rpc_status(code, exc.message)
            return Response(content, exc.status, exc.headers, media_type=PROTOBUF)
        # A JSON Status, plus the "error" member every 4xx of this server carries.
        body = {"code": code, "message": exc.message, "error": exc.message, **exc.extra}
        return Response(orjson.dumps(body), exc.status, exc.headers, media_type=JSON)
