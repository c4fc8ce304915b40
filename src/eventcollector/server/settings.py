"""Server settings: every limit and policy of the HTTP front door, in one value."""

from __future__ import annotations

from dataclasses import dataclass

from eventcollector.alert_rules import RuleLimits

__all__ = ["DEFAULT_HOST", "DEFAULT_KEYED_RATE", "DEFAULT_PORT", "ServerSettings"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Events/s per (key, system) when keys are in use and no rate is set: above what one
#: server commits (about 25,000/s measured, 50,000/s the spec's target), so no key is
#: refused what the server could take; shares per tenant need a lower --rate-limit
#: (docs/http-api.md, Defaults).
DEFAULT_KEYED_RATE = 50_000.0
_RULE_LIMITS = RuleLimits()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Limits and policies; the defaults are the documented ones (docs/http-api.md)."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_event_bytes: int = 512 * 1024
    max_batch: int = 10_000
    max_depth: int = 32
    #: Events per second per (key, system); 0 disables rate limiting. None (the
    #: default): no limit without keys (every keyless client shares one anonymous key,
    #: so a limit would only throttle the one client), ``DEFAULT_KEYED_RATE`` per key.
    rate_limit: float | None = None
    #: Token bucket size in events; None means one second's worth.
    rate_burst: float | None = None
    allow_origins: tuple[str, ...] = ()
    #: Per stream: undelivered events, and their bytes as JSON (what bounds memory).
    stream_queue: int = 10_000
    stream_max_bytes: int = 8 * 1024 * 1024
    #: Live streams (SSE and WebSocket) open at once; more are refused with 503.
    max_streams: int = 256
    stream_send_timeout: float = 10.0
    stream_ping: float = 15.0
    #: How often a stream re-checks that its key is still valid.
    stream_key_check: float = 1.0
    default_limit: int = 100
    max_limit: int = 1_000
    #: Seconds suggested in Retry-After for 503 (queue full, storage unavailable).
    retry_after: int = 1
    #: The bounds of alert rules' durations (``serve --alerts-min-interval`` lowers them).
    alert_limits: RuleLimits = _RULE_LIMITS

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_event_bytes", "max_batch", "max_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        if self.rate_limit is not None and self.rate_limit < 0:
            raise ValueError("rate_limit: must not be negative")
        if self.rate_burst is not None and self.rate_burst < 1:
            raise ValueError("rate_burst: must be at least 1")
        for name in ("stream_queue", "stream_max_bytes", "max_streams"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        if not 1 <= self.default_limit <= self.max_limit:
            raise ValueError("default_limit: must be between 1 and max_limit")
