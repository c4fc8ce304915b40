"""``HTTPStorage``: a ``QueuedStore`` over a collector server's HTTP API.

``EventCollector(url="http://collector:8765", api_key=...)`` uses it, so a component
switches between an embedded store and the central server by configuration alone.

Writes never wait for the network: ``submit`` hands events to a background sender
(``_sender``) and returns at once; delivery is batched, retried, spooled to disk
while the server is unreachable and replayed in order (at-least-once, exactly-once in
the store thanks to client-generated ids). Reads are plain HTTP calls that raise
``StorageUnavailable`` (network, 5xx, 429), ``StorageError`` (auth, other failures) or
``ValueError`` (the server refused the input; its message is kept). See docs/client.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from eventcollector.aggregation import (
    AggregateResult,
    AggregateSpec,
    Facet,
    field_text,
)
from eventcollector.client._inside import INSIDE_CLIENT
from eventcollector.client._sender import Sender, SenderConfig
from eventcollector.filters import Field, Filter, to_text
from eventcollector.issue_activity import ActivityQuery, IssueActivity
from eventcollector.issues import Issue, IssueQuery
from eventcollector.model import Event, format_timestamp, parse_timestamp
from eventcollector.query import DurationStats, GroupField, Query
from eventcollector.query_params import query_to_params, spec_to_params
from eventcollector.storage.base import QueuedStore, StorageError, StorageUnavailable

__all__ = ["ENV_SPOOL_DIR", "HTTPStorage", "default_spool_root"]

ENV_SPOOL_DIR = "EVENTCOLLECTOR_SPOOL_DIR"
_ENV_API_KEY = "EVENTCOLLECTOR_API_KEY"
_PAGE = 1_000  # the server's maximum page size
_EVENT_FIELDS = frozenset(Event.__dataclass_fields__)
_OFF = {"", "0", "off", "none", "false", "no"}


def default_spool_root() -> Path:
    """``$EVENTCOLLECTOR_SPOOL_DIR``, else ``$XDG_STATE_HOME/eventcollector/spool``."""
    configured = os.environ.get(ENV_SPOOL_DIR)
    if configured and configured.strip().lower() not in _OFF:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "eventcollector" / "spool"


class HTTPStorage:
    """Events stored by a remote collector server; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        spool: bool | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 256 << 20,
        gzip: bool = True,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        exit_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url: expected http(s)://host[:port], got {url!r}")
        if batch_size < 1 or max_buffer < 1:
            raise ValueError("batch_size, max_buffer: must be at least 1")
        self.url = url.rstrip("/")
        self.timeout = timeout
        key = api_key if api_key is not None else os.environ.get(_ENV_API_KEY)
        self._headers = {"User-Agent": "eventcollector-client"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._sender = Sender(
            SenderConfig(
                url=self.url,
                headers=self._headers,
                batch_size=min(batch_size, 10_000),  # the server's default --max-batch
                flush_interval=flush_interval,
                max_buffer=max_buffer,
                timeout=timeout,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                gzip=gzip,
                spool_dir=self._spool_dir(spool, spool_dir),
                spool_max_bytes=spool_max_bytes,
                exit_timeout=exit_timeout,
                transport=transport,
            )
        )

    def _spool_dir(
        self, enabled: bool | None, configured: str | os.PathLike[str] | None
    ) -> Path | None:
        if enabled is None:  # the environment decides: EVENTCOLLECTOR_SPOOL_DIR=off disables
            env = os.environ.get(ENV_SPOOL_DIR)
            enabled = env is None or env.strip().lower() not in _OFF
        if not enabled:
            return None
        # One directory per server, so two collectors never replay into the wrong one.
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        root = Path(configured) if configured is not None else default_spool_root()
        return root / digest

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Nothing to connect: the server may be down when a component starts."""
        self._sender.reopen()

    async def close(self) -> None:
        """Deliver what is buffered (spool it if the server is down), stop, close clients."""
        await asyncio.to_thread(self._sender.close, self.timeout)
        await self._close_clients()

    def close_sync(self, timeout: float | None = None) -> None:
        """``close`` for the write path, for callers without an event loop."""
        self._sender.close(self.timeout if timeout is None else timeout)

    async def flush(self, timeout: float | None = None) -> bool:
        """Send what is buffered now; True when all is delivered, False if parked or late."""
        return await asyncio.to_thread(self._sender.flush, timeout)

    def flush_sync(self, timeout: float | None = None, *, patient: bool | None = None) -> bool:
        """``flush`` for threads without an event loop (a logging handler's flush).

        ``patient=False`` returns after one failed attempt instead of retrying until
        ``timeout`` (see docs/client.md).
        """
        return self._sender.flush(timeout, patient=patient)

    # -- writes --------------------------------------------------------------

    def submit(self, events: Sequence[Event]) -> None:
        """Queue events for delivery (thread-safe, never blocks, never raises for the network)."""
        self._sender.submit(events)

    def client_stats(self) -> dict[str, Any]:
        """The delivery counters: emitted, delivered, spooled, dropped, rejected, ..."""
        return self._sender.stats()

    # -- reads ---------------------------------------------------------------

    async def query(self, query: Query) -> list[Event]:
        """Pages through ``GET /v1/events`` with the server's cursor until ``query.limit``."""
        want = query.limit
        base = [(k, v) for k, v in query_to_params(query) if k not in ("limit", "offset")]
        events: list[Event] = []
        cursor: str | None = None
        while want is None or len(events) < want:
            page = _PAGE if want is None else min(_PAGE, want - len(events))
            params = [*base, ("limit", str(page))]
            if cursor is not None:
                params.append(("cursor", cursor))
            elif query.offset:
                params.append(("offset", str(query.offset)))
            body = await self._get("/v1/events", params)
            batch = body.get("events") or []
            events.extend(_event(d) for d in batch)
            cursor = body.get("next_cursor")
            if not cursor or not batch:
                break
        return events if want is None else events[:want]

    async def count(self, query: Query) -> int:
        body = await self._get("/v1/events/count", query_to_params(query.unbounded))
        return int(body["count"])

    async def group_count(self, query: Query, field: GroupField) -> dict[str, int]:
        params = [("field", field), *query_to_params(query.unbounded)]
        body = await self._get("/v1/events/group", params)
        return {str(k): int(v) for k, v in body["counts"].items()}

    async def duration_stats(self, query: Query, *, percentiles: bool = True) -> DurationStats:
        """The server always computes percentiles; ``percentiles=False`` costs nothing less."""
        body = await self._get("/v1/events/duration-stats", query_to_params(query.unbounded))
        return DurationStats(
            count=int(body["count"]),
            min=body.get("min"),
            max=body.get("max"),
            avg=body.get("avg"),
            p50=body.get("p50"),
            p95=body.get("p95"),
            p99=body.get("p99"),
        )

    async def aggregate(self, query: Query, spec: AggregateSpec) -> AggregateResult:
        params = [*spec_to_params(spec), *query_to_params(query.unbounded)]
        return AggregateResult.from_dict(await self._get("/v1/aggregate", params))

    async def facets(self, query: Query, fields: Sequence[Field], top: int = 10) -> list[Facet]:
        params = [*(("field", field_text(f)) for f in fields), ("top", str(top))]
        body = await self._get("/v1/facets", [*params, *query_to_params(query.unbounded)])
        return [Facet.from_dict(f) for f in body["facets"]]

    async def cleanup_old_events(
        self, retention_days: float, *, now: datetime | None = None, where: Filter | None = None
    ) -> int:
        """``POST /v1/admin/cleanup`` (admin key); ``now`` shifts the cutoff by our clock,
        ``where`` goes as its canonical text (``q``)."""
        if retention_days < 0:
            raise ValueError("retention_days: must not be negative")
        if now is not None:  # the server cuts at its own now; move the window to match
            retention_days += (datetime.now(UTC) - now).total_seconds() / 86_400
        payload: dict[str, Any] = {"retention_days": max(retention_days, 0.0)}
        if where is not None:
            payload["q"] = to_text(where)
        body = await self._request("POST", "/v1/admin/cleanup", json=payload)
        return int(body["deleted"])

    # -- issues (an IssueStore over HTTP) --------------------------------------

    async def issues(self, query: IssueQuery) -> list[Issue]:
        """``GET /v1/issues``."""
        params = [("order_by", query.order_by), ("limit", str(query.limit))]
        params += [("offset", str(query.offset))] if query.offset else []
        params += [("status", query.status)] if query.status else []
        params += [("system", query.system)] if query.system else []
        if query.seen_since is not None:
            params.append(("seen_since", format_timestamp(query.seen_since)))
        body = await self._get("/v1/issues", params)
        return [Issue.from_dict(d) for d in body["issues"]]

    async def get_issue(self, issue_id: int) -> Issue | None:
        """``GET /v1/issues/{id}``; None when the server has no such issue."""
        return await self._issue_or_none("GET", issue_id)

    async def set_issue_status(
        self, issue_id: int, status: str, *, until: datetime | None = None
    ) -> Issue | None:
        """``POST /v1/issues/{id}`` (a key with the triage scope)."""
        body: dict[str, Any] = {"status": status}
        if until is not None:
            body["until"] = format_timestamp(until)
        return await self._issue_or_none("POST", issue_id, body)

    async def _issue_or_none(
        self, method: str, issue_id: int, body: dict[str, Any] | None = None
    ) -> Issue | None:
        response = await self._send(method, f"/v1/issues/{int(issue_id)}", json=body)
        if response.status_code == 404:
            return None
        return Issue.from_dict(_decode(response, self.url))

    async def issue_events(self, issue_id: int, limit: int = 100) -> list[Event]:
        """``GET /v1/issues/{id}/events``."""
        body = await self._get(f"/v1/issues/{int(issue_id)}/events", [("limit", str(limit))])
        return [_event(d) for d in body["events"]]

    async def issue_activity(self, query: ActivityQuery) -> IssueActivity:
        """``GET /v1/issue-activity``."""
        params = [("id", ",".join(str(i) for i in query.issue_ids))]
        params += [
            ("since", format_timestamp(query.since)),
            ("until", format_timestamp(query.until)),
        ]
        body = await self._get("/v1/issue-activity", [*params, ("interval", query.interval)])
        return IssueActivity.from_dict(body)

    async def health(self) -> dict[str, Any]:
        """The client's counters and the server's ``/health``; raises if the server is not ok."""
        report: dict[str, Any] = {
            "backend": "http",
            "url": self.url,
            "client": self._sender.stats(),
        }
        try:
            report["server"] = await self._request("GET", "/health", health=True)
        except StorageError as exc:
            exc.args = (f"{exc} (client: {_summary(report['client'])})",)
            raise
        return report

    # -- HTTP ----------------------------------------------------------------

    async def _get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        return await self._request("GET", path, params=params)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, Any]] | None = None,
        json: Any = None,
        health: bool = False,
    ) -> dict[str, Any]:
        response = await self._send(method, path, params=params, json=json)
        return _decode(response, self.url, health=health)

    async def _send(
        self, method: str, path: str, *, params: list[tuple[str, Any]] | None = None, json: Any
    ) -> httpx.Response:
        token = INSIDE_CLIENT.set(True)
        try:
            return await self._client().request(method, path, params=params, json=json)
        except httpx.HTTPError as exc:
            raise StorageUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        finally:
            INSIDE_CLIENT.reset(token)

    def _client(self) -> httpx.AsyncClient:
        """One pooled client per event loop: an httpx.AsyncClient belongs to one loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for other in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[other]  # its loop is gone; nothing can close it now
            client = httpx.AsyncClient(
                base_url=self.url, headers=self._headers, timeout=self.timeout
            )
            self._clients[loop] = client
        return client

    async def _close_clients(self) -> None:
        current = asyncio.get_running_loop()
        clients, self._clients = self._clients, {}
        for loop, client in clients.items():
            if loop is current:
                await client.aclose()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
                await asyncio.wrap_future(future)


#: mypy proves here that the class implements the protocol the collector relies on.
_IMPLEMENTS: type[QueuedStore] = HTTPStorage


def _decode(response: httpx.Response, url: str, *, health: bool = False) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status < 300 and isinstance(body, dict):
        return body
    message = body.get("error") if isinstance(body, dict) else None
    message = str(message or response.text[:300] or response.reason_phrase)
    where = f"{url}{response.request.url.path}"
    if status < 300:
        raise StorageError(f"{where}: unexpected response {response.text[:200]!r}")
    if health and status == 503:
        raise StorageUnavailable(f"{url}: server unhealthy: {body if body else message}")
    if status in (401, 403):
        raise StorageError(f"{where}: not authorised ({status}): {message}")
    if status in (408, 429) or status >= 500:
        raise StorageUnavailable(f"{where}: {status}: {message}")
    if status in (400, 404, 409, 413, 415, 422):
        raise ValueError(message)
    raise StorageError(f"{where}: {status}: {message}")


def _event(payload: dict[str, Any]) -> Event:
    """An event as the server returned it; unknown extra members are ignored.

    It was validated on ingest; checking its timestamp against our clock again would
    refuse events from a server whose clock is ahead of ours.
    """
    fields = {k: v for k, v in payload.items() if k in _EVENT_FIELDS}
    stamp = fields.get("timestamp")
    now = parse_timestamp(stamp) if isinstance(stamp, str) else None
    return Event.from_dict(fields, now=now)


def _summary(stats: dict[str, Any]) -> str:
    keys = ("emitted", "delivered", "spooled", "dropped", "rejected")
    return ", ".join(f"{k}={stats[k]}" for k in keys)
