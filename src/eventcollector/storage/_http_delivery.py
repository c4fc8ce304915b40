"""One batch over HTTP for the remote client's sender thread, and what the server answered.

``deliver`` POSTs a batch of NDJSON lines (gzip'd from ``_GZIP_MIN_BYTES``) to
``/v1/events`` with the sender's client, splits it in halves on a 413, counts the
events the server refused, and tells the sender (``Result``) what was delivered and
whether the rest must be retried (network error or a retryable status, with the
server's Retry-After). It runs on the sender thread and updates the sender's counters
under its lock (see ``_http_sender`` for the accounting they keep).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from eventcollector.storage._http_retry import RETRYABLE_STATUS, parse_retry_after

if TYPE_CHECKING:
    from eventcollector.storage._http_sender import Sender

__all__ = ["Result", "deliver"]

_GZIP_MIN_BYTES = 1_024


@dataclass(slots=True)
class Result:
    """What ``deliver`` did with a batch; ``remaining`` is what to retry."""

    delivered: int = 0
    rejected: int = 0
    retry: bool = False
    retry_after: float | None = None
    error: str = ""
    remaining: list[bytes] = field(default_factory=list)


def deliver(s: Sender, lines: list[bytes]) -> Result:
    """POST ``lines``; a 413 splits the batch in halves until single events remain."""
    result = Result()
    queue = [lines]
    while queue:
        chunk = queue.pop(0)
        status, body, retry_after, error = _post(s, chunk)
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
                _rejected(s, refused, "invalid", str(rejected[0].get("error", "")))
            result.rejected += refused
            continue
        # Anything else would fail again (bad input, auth, 500): count it and move on.
        reason = "invalid" if status == 400 else f"http_{status}"
        _rejected(s, len(chunk), reason, f"HTTP {status}: {error}")
        result.rejected += len(chunk)
    return result


def _rejected(s: Sender, n: int, reason: str, message: str) -> None:
    with s._lock:
        s.rejected_by_reason[reason] += n
        s.last_rejection = message
        s._warn(f"reject:{reason}", "collector server refused %d event(s): %s", n, message)


def _post(s: Sender, lines: list[bytes]) -> tuple[int | None, Any, float | None, str]:
    """(status or None for a network error, JSON body, Retry-After, error text)."""
    body = b"\n".join(lines) + b"\n"
    headers = {"Content-Type": "application/x-ndjson"}
    if s.config.gzip and len(body) >= _GZIP_MIN_BYTES:
        body = gzip.compress(body, compresslevel=1, mtime=0)
        headers["Content-Encoding"] = "gzip"
    assert s._client is not None
    with s._lock:
        s.counters["requests"] += 1
    try:
        response = s._client.post("/v1/events", content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, None, None, f"{type(exc).__name__}: {exc}".rstrip(": ")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    retry_after = parse_retry_after(
        response.headers.get("Retry-After"), limit=s.config.retry_after_max
    )
    error = payload.get("error", "") if isinstance(payload, dict) else response.text[:200]
    if isinstance(payload, dict) and not error and payload.get("rejected"):
        error = str(payload["rejected"][0].get("error", ""))
    return response.status_code, payload, retry_after, f"{response.status_code} {error}"
