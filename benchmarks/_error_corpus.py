"""A labelled synthetic corpus of error events, and how well a grouping recovers it.

``python -m benchmarks._error_corpus [--events N]`` prints one JSON object: pairwise
precision and recall of fingerprint v1 (``eventcollector.fingerprint``) beside the
title masking of ``analyzer.group_errors``, on ``N`` error events from ``GROUPS``
true groups. Inside each message vary what varies between occurrences of one error
in the wild: ids, UUIDs, numbers, durations, addresses, e-mails, URLs, quoted
values, timestamps, paths with line numbers. Groups come in near pairs (the same
words in another system, with another exception type, or with another fixed word),
so a grouping that merges too much loses precision.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eventcollector import Event

SYSTEMS = ["mahavishnu", "crackerjack", "session_buddy", "akosha", "oneiric", "deployer"]
# Message templates: {u} UUID, {n} number, {d} duration, {ip} IPv4, {ip6} IPv6, {e} e-mail,
# {url} URL, {q} quoted value, {ts} timestamp, {day} date, {hex} hex id, {line} line number.
_TEMPLATES = [
    ("TimeoutError", "database query timed out after {d} on {ip}:{n}"),
    ("ConnectionError", "connection refused by {ip}:{n} after {n} retries"),
    ("KeyError", "session {u} not found in cache {q}"),
    ("ValueError", "invalid config value {q} for key {q} at {ts}"),
    ("PermissionError", "user {e} may not access {url}"),
    ("HTTPError", "upstream {url} answered {n} in {d}"),
    ("FileNotFoundError", "no such file /data/uploads/{u}/report-{n}.csv"),
    ("RuntimeError", "worker {hex} crashed in /srv/app/worker.py:{line}"),
    ("AssertionError", "test suite {q} failed: {n} of {n} tests at {day}"),
    ("OSError", "disk full writing chunk {n} of job {hex}"),
    ("TimeoutError", "lock on row {n} held for {d} by transaction {hex}"),
    ("ConnectionResetError", "peer {ip6} reset the stream after {n} bytes"),
    ("MemoryError", "allocation of {n} MB failed in pipeline stage {n}"),
    ("IntegrityError", "duplicate key {q} violates constraint {q}"),
    ("ValidationError", "event {u} rejected: field {q} is {n} characters long"),
    ("SSLError", "certificate for {url} expired on {day}"),
    ("DeployError", "rollout {hex} of release {n}.{n}.{n} stalled at {n} percent"),
    ("QuotaExceeded", "tenant {e} exceeded {n} requests per {d}"),
    ("ParseError", "unexpected token {q} at line {line} of /etc/app/pipeline.yaml"),
    ("CacheMiss", "index shard {n} missing on {ip} since {ts}"),
    ("TimeoutError", "rag query {u} took {d}, limit {d}"),
    ("AuthError", "token {hex} for {e} rejected at {ts}"),
    ("SchedulerError", "job {q} missed its {d} window at {ts}"),
    ("ImportError", "module {q} failed to load from /opt/plugins/{hex}/plugin.py:{line}"),
    ("StorageError", "write of {n} events to {url} failed after {d}"),
]
# Near pairs of some templates: another fixed word, or the same words with another type.
_NEAR = [
    ("TimeoutError", "database query timed out after {d} on replica {ip}:{n}"),
    ("ConnectionError", "connection closed by {ip}:{n} after {n} retries"),
    ("LookupError", "session {u} not found in cache {q}"),
    ("ValueError", "missing config value {q} for key {q} at {ts}"),
    ("HTTPError", "downstream {url} answered {n} in {d}"),
    ("FileNotFoundError", "no such file /data/exports/{u}/report-{n}.csv"),
    ("AssertionError", "lint suite {q} failed: {n} of {n} checks at {day}"),
    ("IntegrityError", "foreign key {q} violates constraint {q}"),
]
GROUPS = len(_TEMPLATES) + len(_NEAR) + 12  # 12 more: a template again in another system
_FRAMES = [
    [("app.handlers", "handle"), ("app.db", "query"), ("asyncpg.pool", "acquire")],
    [("app.worker", "run"), ("app.pipeline", "stage"), ("app.cache", "get")],
]


def _fill(template: str, rng: random.Random, now: datetime) -> str:
    values: dict[str, Callable[[], str]] = {
        "u": lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "n": lambda: str(rng.randint(0, 99_999)),
        "d": lambda: rng.choice([f"{rng.randint(1, 9_999)}ms", f"{rng.uniform(0.1, 90):.1f}s"]),
        "ip": lambda: ".".join(str(rng.randint(1, 254)) for _ in range(4)),
        "ip6": lambda: "fe80::" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(3)),
        "e": lambda: f"user{rng.randint(1, 9_999)}@{rng.choice(['example.com', 'corp.io'])}",
        "url": lambda: (
            f"https://api{rng.randint(1, 9)}.example.com/v{rng.randint(1, 3)}/items/"
            f"{rng.randint(1, 10**6)}?page={rng.randint(1, 50)}"
        ),
        "q": lambda: repr(rng.choice(["alpha", "beta-7", "x_92", "nightly", "eu-west-1"])),
        "ts": lambda: (now - timedelta(seconds=rng.randint(0, 10**6))).isoformat(),
        "day": lambda: (now - timedelta(days=rng.randint(0, 900))).date().isoformat(),
        "hex": lambda: f"{rng.getrandbits(48):012x}",
        "line": lambda: str(rng.randint(1, 2_000)),
    }
    out = template
    for name, make in values.items():
        while "{" + name + "}" in out:
            out = out.replace("{" + name + "}", make(), 1)
    return out


def _groups(rng: random.Random) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for i, (etype, template) in enumerate(_TEMPLATES + _NEAR):
        groups.append({"system": SYSTEMS[i % len(SYSTEMS)], "type": etype, "template": template})
    for i, (etype, template) in enumerate(_TEMPLATES[:12]):  # the same error, another system
        groups.append(
            {"system": SYSTEMS[(i + 3) % len(SYSTEMS)], "type": etype, "template": template}
        )
    for i, group in enumerate(groups):
        group["frames"] = _FRAMES[i % 2] if i % 3 == 0 else None
        group["shape"] = ("error", "exception", "title")[i % 3]
    assert len(groups) == GROUPS
    return groups


def corpus(n: int = 2_400, seed: int = 5) -> Iterator[tuple[int, Event]]:
    """``n`` error events with their true group, deterministic for a seed."""
    rng = random.Random(seed)
    groups = _groups(rng)
    now = datetime.now(UTC)
    for i in range(n):
        label = i % GROUPS if i < GROUPS else rng.randrange(GROUPS)
        g = groups[label]
        text = _fill(g["template"], rng, now)
        data: dict[str, Any] = {"attempt": rng.randint(1, 5)}
        if g["shape"] == "error":
            data.update(error=text, error_type=g["type"])
        elif g["shape"] == "exception":
            data["exception"] = {"type": g["type"], "message": text}
        else:
            data["exception_type"] = g["type"]
        if g["frames"] is not None:
            data["stacktrace"] = [
                {"module": m, "function": f, "lineno": rng.randint(1, 900)} for m, f in g["frames"]
            ]
        event = Event.create(
            system=g["system"],
            event_type="error.occurred",
            severity=rng.choice(["error", "error", "critical"]),
            title=text[:200],
            data=data,
            timestamp=now - timedelta(seconds=rng.randint(0, 3_600)),
        )
        yield label, event


def pair_scores(labels: Sequence[int], keys: Sequence[str]) -> dict[str, float]:
    """Pairwise precision and recall of the grouping ``keys`` against ``labels``."""

    def pairs(counts: Counter[Any]) -> int:
        return sum(c * (c - 1) // 2 for c in counts.values())

    together = pairs(Counter(zip(labels, keys, strict=True)))
    predicted, true = pairs(Counter(keys)), pairs(Counter(labels))
    return {
        "precision": round(together / predicted, 4) if predicted else 1.0,
        "recall": round(together / true, 4) if true else 1.0,
        "groups_found": len(set(keys)),
    }


def quality(n: int = 2_400, seed: int = 5) -> dict[str, Any]:
    # Here, not at the top: the ingest A/B runs the corpus against a tree without them.
    from eventcollector.analyzer import fingerprint as masked_title
    from eventcollector.fingerprint import fingerprint

    pairs = list(corpus(n, seed))
    labels = [label for label, _ in pairs]
    events = [e for _, e in pairs]
    return {
        "events": n,
        "true_groups": GROUPS,
        "fingerprint_v1": pair_scores(labels, [fingerprint(e) for e in events]),
        "error_groups_masking": pair_scores(labels, [masked_title(e) for e in events]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_400)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(quality(args.events, args.seed)))


if __name__ == "__main__":
    main()
