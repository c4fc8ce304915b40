"""One batch over HTTP for the remote client's sender thread, and what the server answered.

``deliver`` POSTs a batch of NDJSON lines (gzip'd from ``_GZIP_MIN_BYTES``) to
``/v1/events`` with the sender's client, splits it in halves on a 413, counts the
events the server refused, and returns (``Result``) what was delivered and whether the
rest must be retried (network error or a retryable status, with the server's
Retry-After). ``event_line`` is the wire form of an event, the same bytes the spool
keeps.
"""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson

from eventcollector.client._retry import RETRYABLE_STATUS, parse_retry_after
from eventcollector.client._state import DeliveryState, Result
from eventcollector.model import Event

__all__ = ["deliver", "event_line"]

_GZIP_MIN_BYTES = 1_024


def event_line(event: Event) -> bytes:
    """One event as a line of NDJSON (without the newline), as a copy of its own size:
    orjson's bytes keep its whole output buffer (4 KiB for a 300-byte event), and lines
    wait in memory while the server is away."""
    return bytes(memoryview(orjson.dumps(event.to_dict())))


def deliver(client: httpx.Client, state: DeliveryState, lines: list[bytes]) -> Result:
    """POST ``lines``; a 413 splits the batch in halves until single events remain."""
    result = Result()
    queue = [lines]
    while queue:
        chunk = queue.pop(0)
        status, body, retry_after, error = _post(client, state, chunk)
        if status is None or status in RETRYABLE_STATUS:
            result.retry, result.retry_after, result.error = True, retry_after, error
            result.remaining = [line for part in (chunk, *queue) for line in part]
            return result
        if status == 413 and len(chunk) > 1:
            half = len(chunk) // 2
            queue[:0] = [chunk[:half], chunk[half:]]
            continue
        if status < 300:
            rejected = body.get("rejected") if isinstance(body, dict) else None
            refused = len(rejected) if isinstance(rejected, list) else 0
            result.delivered += len(chunk) - refused
            if refused:
                assert isinstance(rejected, list)
                state.count_rejected(refused, "invalid", str(rejected[0].get("error", "")))
            result.rejected += refused
            continue
        # Anything else would fail again (bad input, auth, 500): count it and move on.
        reason = "invalid" if status == 400 else f"http_{status}"
        state.count_rejected(len(chunk), reason, f"HTTP {status}: {error}")
        result.rejected += len(chunk)
    return result


def _post(
    client: httpx.Client, state: DeliveryState, lines: list[bytes]
) -> tuple[int | None, Any, float | None, str]:
    """(status or None for a network error, JSON body, Retry-After, error text)."""
    config = state.config
    body = b"\n".join(lines) + b"\n"
    headers = {"Content-Type": "application/x-ndjson"}
    if config.gzip and len(body) >= _GZIP_MIN_BYTES:
        body = gzip.compress(body, compresslevel=1, mtime=0)
        headers["Content-Encoding"] = "gzip"
    state.count_request()
    try:
        response = client.post("/v1/events", content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, None, None, f"{type(exc).__name__}: {exc}".rstrip(": ")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    retry_after = parse_retry_after(
        response.headers.get("Retry-After"), limit=config.retry_after_max
    )
    error = payload.get("error", "") if isinstance(payload, dict) else response.text[:200]
    if isinstance(payload, dict) and not error and payload.get("rejected"):
        error = str(payload["rejected"][0].get("error", ""))
    return response.status_code, payload, retry_after, f"{response.status_code} {error}"
