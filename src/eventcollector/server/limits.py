"""Request limits: bounded body reading (chunked and gzip too), nesting depth, rate.

Bodies are read chunk by chunk and refused as soon as they pass the cap, so a
1 GB chunked upload or a gzip bomb costs at most ``max_body_bytes`` of memory:
gzip is decompressed incrementally with ``max_length``, never in one call.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from eventcollector.server.errors import ApiError, limit_error

__all__ = [
    "RateLimiter",
    "depth_exceeds",
    "read_body",
    "request_body",
    "request_json",
    "single_params",
]


async def request_body(request: Request, max_bytes: int) -> bytes:
    """``read_body`` of a request, with its Content-Length and Content-Encoding."""
    return await read_body(
        request.stream(),
        content_length=request.headers.get("content-length"),
        encoding=request.headers.get("content-encoding"),
        max_bytes=max_bytes,
    )


def single_params(request: Request, allowed: frozenset[str] = frozenset()) -> dict[str, str]:
    """The query parameters, each named in ``allowed`` and given at most once; else 400."""
    picked: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise ApiError(400, f"{name}: unknown query parameter")
        if name in picked:
            raise ApiError(400, f"{name}: give at most one value")
        picked[name] = value
    return picked


async def request_json(request: Request, max_bytes: int) -> Any:
    """A request's body parsed as JSON; 400 ``body: invalid JSON`` when it is not."""
    try:
        return orjson.loads(await request_body(request, max_bytes))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body: invalid JSON ({exc})") from None


async def read_body(
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    encoding: str | None,
    max_bytes: int,
) -> bytes:
    """The (decompressed) body, or ``ApiError`` 413/415/400 naming the limit."""
    try:
        return await _read_body(
            chunks, content_length=content_length, encoding=encoding, max_bytes=max_bytes
        )
    except ClientDisconnect:
        raise ApiError(400, "body: the client closed the connection mid-body") from None
    except ApiError as exc:
        # The rest of the body is unread: close the connection after the answer, or
        # uvicorn keeps it alive and reads (and drops) a 1 GB upload to its end.
        exc.headers["Connection"] = "close"
        raise


async def _read_body(
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    encoding: str | None,
    max_bytes: int,
) -> bytes:
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise ApiError(400, "content-length: not a number") from None
        if declared > max_bytes:
            raise _too_big(max_bytes)
    coding = (encoding or "identity").strip().lower()
    if coding not in ("identity", "gzip", "x-gzip"):
        raise ApiError(415, f"content-encoding: unsupported {coding!r} (identity or gzip)")
    parts: list[bytes] = []
    size = 0
    if coding == "identity":
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise _too_big(max_bytes)
            parts.append(chunk)
        return b"".join(parts)
    # wbits 16+MAX: a gzip header and trailer are required.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    raw = 0
    try:
        async for chunk in chunks:
            raw += len(chunk)
            if raw > max_bytes:
                raise _too_big(max_bytes)
            data = chunk
            while data:
                out = inflater.decompress(data, max_bytes - size + 1)
                size += len(out)
                if size > max_bytes:
                    raise limit_error(
                        413, "max_body_bytes", max_bytes, "decompressed request body larger than"
                    )
                parts.append(out)
                data = inflater.unconsumed_tail
        tail = inflater.flush()
    except zlib.error as exc:
        raise ApiError(400, f"content-encoding: invalid gzip data ({exc})") from None
    if size + len(tail) > max_bytes:
        raise limit_error(413, "max_body_bytes", max_bytes, "decompressed request body larger than")
    if not inflater.eof:
        raise ApiError(400, "content-encoding: truncated gzip data")
    parts.append(tail)
    return b"".join(parts)


def _too_big(max_bytes: int) -> ApiError:
    # Made when raised: building it for every request cost more than reading small bodies.
    return limit_error(413, "max_body_bytes", max_bytes, "request body larger than")


def depth_exceeds(value: Any, max_depth: int, depth: int = 1) -> bool:
    """Whether containers nest deeper than ``max_depth`` (``value`` is at ``depth``).

    Iterative, so a hostile document cannot exhaust the Python stack here.
    """
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if level > max_depth:
            return True
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item if isinstance(v, dict | list))
    return False


class RateLimiter:
    """Token buckets per (key, system) that may go into debt.

    A request is let through while its bucket has any tokens and then pays for all
    its events, so a batch larger than the bucket still passes once and the next
    requests wait until the debt is repaid: large batches cannot starve, and the
    long-run rate still holds.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 1.0)
        # bucket -> (tokens, time of last update)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _level(self, bucket: tuple[str, str], now: float) -> float:
        tokens, at = self._buckets.get(bucket, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def acquire(self, key: str, counts: dict[str, int]) -> float:
        """Take ``counts[system]`` tokens from each system's bucket for this key.

        Returns 0 when allowed (tokens taken), else the seconds until it would be.
        """
        if not self.enabled or not counts:
            return 0.0
        now = time.monotonic()
        levels = {system: self._level((key, system), now) for system in counts}
        empty = [level for level in levels.values() if level <= 0]
        if empty:
            return max(math.ceil((1 - min(empty)) / self.rate * 1000) / 1000, 0.001)
        for system, n in counts.items():
            self._buckets[(key, system)] = (levels[system] - n, now)
        if len(self._buckets) > 100_000:
            self._forget_full(now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        # A refilled bucket is the same as no bucket: drop those to bound memory.
        for bucket in [b for b in self._buckets if self._level(b, now) >= self.burst]:
            del self._buckets[bucket]
