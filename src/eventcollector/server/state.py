"""What every endpoint shares: the collector, settings, keys, limiter and metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eventcollector.analyzer import EventAnalyzer
from eventcollector.collector import EventCollector
from eventcollector.server.auth import ANONYMOUS, KeyStore, Principal, bearer_token
from eventcollector.server.errors import ApiError
from eventcollector.server.limits import RateLimiter
from eventcollector.server.metrics import Metrics
from eventcollector.server.settings import DEFAULT_KEYED_RATE, ServerSettings

__all__ = ["ServerState"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="eventcollector"'}


class ServerState:
    def __init__(
        self, collector: EventCollector, settings: ServerSettings, keys: KeyStore | None
    ) -> None:
        self.collector = collector
        self.settings = settings
        self.keys = keys
        self.analyzer = EventAnalyzer(collector)
        rate = DEFAULT_KEYED_RATE if settings.rate_limit is None else settings.rate_limit
        self.limiter = RateLimiter(rate, settings.rate_burst)
        self.metrics = Metrics(collector)
        #: Sections a service adds to ``/health`` (``retention``), read at each request.
        self.reports: dict[str, Callable[[], dict[str, Any]]] = {}
        # Sticky: once keys exist, revoking them all must lock the API, not open it.
        self._auth_required = keys is not None and keys.has_active

    @property
    def auth_required(self) -> bool:
        if self.keys is None:
            return False
        self.keys.refresh()
        if not self._auth_required and self.keys.has_active:
            self._auth_required = True
        return self._auth_required

    def authorize(
        self, headers: Mapping[str, str], scope: str, query_token: str | None = None
    ) -> Principal:
        """The caller if its key has ``scope``; ``ApiError`` 401/403 otherwise."""
        if not self.auth_required:
            return ANONYMOUS
        assert self.keys is not None
        token = bearer_token(headers, query_token)
        if token is None:
            raise ApiError(401, "authorization: an API key is required", headers=_CHALLENGE)
        key = self.keys.verify(token)
        if key is None:
            raise ApiError(401, "authorization: unknown or revoked API key", headers=_CHALLENGE)
        principal = Principal(key_id=key.id, scopes=frozenset(key.scopes), system=key.system)
        if not principal.allows(scope):
            self.metrics.http_rejections.labels("scope").inc()
            raise ApiError(403, f"scope: this key lacks the {scope!r} scope", scope=scope)
        return principal

    def rate_wait(self, principal: Principal, counts: dict[str, int]) -> float:
        """Seconds until ``counts`` (events per system) fit the caller's buckets; 0: now.

        Keyless requests are limited only when a rate was set: by default they all
        share the anonymous key, and there is no other tenant to protect.
        """
        if principal.key_id is None and self.settings.rate_limit is None:
            return 0.0
        return self.limiter.acquire(principal.key_id or "", counts)

    def key_active(self, principal: Principal) -> bool:
        """Whether the caller's key is still valid (streams poll this)."""
        if principal.key_id is None or self.keys is None:
            return True
        self.keys.refresh()
        return self.keys.is_active(principal.key_id)
