"""API keys: a hashed key file, bearer authentication with scopes, the bind rule.

A key is ``eck_<id>_<secret>`` with a 256-bit random secret. Only the SHA-256 of
the whole key is stored: the secret has full entropy, so a slow password hash
would add nothing but latency to every request. The key file is JSON (mode 0600),
rewritten atomically under a lock so concurrent ``keys`` commands cannot lose an
update; a running server notices changes by polling its ``stat`` at most once a
second, which is how revocation reaches it without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from eventcollector.model import System, format_timestamp

__all__ = [
    "SCOPES",
    "ApiKey",
    "KeyStore",
    "Principal",
    "bind_refusal",
    "default_keys_file",
    "is_loopback",
]

SCOPES = ("ingest", "read", "triage", "admin")
_PREFIX = "eck"
_REFRESH_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One stored key: never the key itself, only its hash."""

    id: str
    hash: str
    scopes: tuple[str, ...]
    system: str | None = None
    name: str = ""
    created: str = ""
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def public(self) -> dict[str, Any]:
        """What ``keys list`` shows (everything but the hash)."""
        out = asdict(self)
        del out["hash"]
        out["scopes"] = list(self.scopes)
        return out


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key, or nobody when the server runs without keys."""

    key_id: str | None
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    system: str | None = None

    def allows(self, scope: str) -> bool:
        # admin implies the other scopes: one key can run the whole service; triage
        # implies read, since triaging means looking at the issues first.
        implied = "triage" in self.scopes and scope == "read"
        return scope in self.scopes or "admin" in self.scopes or implied


ANONYMOUS = Principal(key_id=None)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    """The key file: create, list and revoke keys, and verify presented ones."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self.reload()

    # -- reading -------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def reload(self) -> None:
        """Read the file (missing means no keys); a corrupt file is an error."""
        stamp = self._stat()
        keys: dict[str, ApiKey] = {}
        if stamp is not None:
            try:
                payload = orjson.loads(self.path.read_bytes())
                for raw in payload.get("keys", []):
                    key = ApiKey(**{**raw, "scopes": tuple(raw["scopes"])})
                    keys[key.id] = key
            except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
                raise ValueError(f"keys file {self.path}: unreadable ({exc})") from None
        self._keys = keys
        self._stamp = stamp
        self._checked = time.monotonic()

    def refresh(self) -> None:
        """Reload if the file changed; cheap enough to call on every request."""
        now = time.monotonic()
        if now - self._checked < _REFRESH_INTERVAL:
            return
        self._checked = now
        if self._stat() != self._stamp:
            with contextlib.suppress(ValueError):  # keep the last good keys
                self.reload()

    def all(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda k: k.created)

    @property
    def has_active(self) -> bool:
        return any(k.active for k in self._keys.values())

    def is_active(self, key_id: str) -> bool:
        key = self._keys.get(key_id)
        return key is not None and key.active

    def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` is, or None; the hash compare is constant-time."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        key = self._keys.get(parts[1])
        if key is None or not hmac.compare_digest(key.hash, _hash(token)):
            return None
        return key if key.active else None

    # -- writing -------------------------------------------------------------

    def create(
        self, scopes: Iterable[str], *, system: str | None = None, name: str = ""
    ) -> tuple[ApiKey, str]:
        """A new key; returns its record and the key text (shown once, never stored)."""
        scope_set = tuple(dict.fromkeys(scopes))
        if not scope_set:
            raise ValueError("scope: give at least one of " + ", ".join(SCOPES))
        for scope in scope_set:
            if scope not in SCOPES:
                raise ValueError(f"scope: unknown scope {scope!r} (one of {', '.join(SCOPES)})")
        if system is not None:
            try:
                system = System(system).value
            except ValueError:
                raise ValueError(f"system: {system!r} is not a valid system name") from None
        key_id = secrets.token_hex(6)
        token = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=key_id,
            hash=_hash(token),
            scopes=scope_set,
            system=system,
            name=name,
            created=format_timestamp(datetime.now(UTC)),
        )
        with self._locked():
            self._keys[key.id] = key
            self._write()
        return key, token

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False if there is no such active key."""
        with self._locked():
            key = self._keys.get(key_id)
            if key is None or not key.active:
                return False
            self._keys[key_id] = replace(key, revoked=format_timestamp(datetime.now(UTC)))
            self._write()
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.reload()  # another process may have written meanwhile
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self) -> None:
        payload = {"version": 1, "keys": [asdict(k) for k in self.all()]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self.reload()


def default_keys_file(db: str | os.PathLike[str]) -> Path:
    """Where the keys live unless ``--keys-file`` says otherwise (see docs/http-api.md)."""
    configured = os.environ.get("EVENTCOLLECTOR_KEYS_FILE")
    if configured:
        return Path(configured)
    text = os.fspath(db)
    if text.startswith(("postgresql://", "postgres://")):
        data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
        return Path(data_home) / "eventcollector" / "keys.json"
    path = Path(text.removeprefix("sqlite:///"))
    return path.with_name(f"{path.stem}.keys.json")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_refusal(host: str, store: KeyStore) -> str | None:
    """Why the server must not bind ``host`` (None when it may)."""
    if is_loopback(host) or store.has_active:
        return None
    return (
        f"refusing to bind {host}: no API key is configured in {store.path}, so the API "
        "would be open to the network. Create one with "
        "'eventcollector keys create --scope ingest' (and --scope read for readers), "
        "or bind 127.0.0.1."
    )


def bearer_token(headers: Mapping[str, str], query_token: str | None = None) -> str | None:
    """The presented key: ``Authorization: Bearer`` first, then ``access_token``."""
    value = headers.get("authorization")
    if value:
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return ""  # present but malformed: treat as a wrong key, not as no key
    return query_token
