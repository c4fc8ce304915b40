"""Deterministic synthetic events shaped like an ecosystem's traffic.

Timestamps rise through the period (as live traffic does) with jitter; severities
are skewed towards info; events come in 50-event correlation traces; tags,
components and durations are spread so every filter of the spec selects a share.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

SYSTEMS = ["mahavishnu", "crackerjack", "session_buddy", "akosha", "oneiric", "deployer"]
EVENT_TYPES = [
    "workflow.started", "workflow.completed", "workflow.failed", "test.run", "test.passed",
    "test.failed", "quality_check.started", "quality_check.completed", "session.created",
    "session.updated", "session.restored", "code.indexed", "analytics.query",
    "insight.detected", "config.changed", "config.validated", "error.occurred",
    "lifecycle.start", "lifecycle.stop", "deploy.started",
]  # fmt: skip
SEVERITIES = ["debug", "info", "warning", "error", "critical"]
SEVERITY_WEIGHTS = [10, 70, 12, 7, 1]
TAGS = [
    "workflow", "rag", "orchestration", "test", "unit", "integration", "quality", "session",
    "analytics", "query", "config", "reload", "production", "staging", "ci", "nightly",
    "database", "cache", "network", "storage", "api", "auth", "deploy", "rollback",
]  # fmt: skip
COMPONENTS = [
    "orchestrator", "quality_checker", "session_manager", "analytics_engine", "config_manager",
    "scheduler", "indexer", "api_gateway",
]  # fmt: skip
WORDS = [
    "database", "connection", "timeout", "retry", "pipeline", "stage", "worker", "queue",
    "cache", "miss", "index", "build", "request", "latency", "session", "restore", "config",
    "validation", "test", "suite", "coverage", "deploy", "release",
]  # fmt: skip
TRACE_LENGTH = 50
#: ``data.repo``: 40 repositories, Zipf-distributed (a few busy ones, a long tail);
#: "acme" is the 5th busiest, about 4.5% of events.
REPOS = ["core", "web", "infra", "mobile", "acme", *(f"svc-{i:02d}" for i in range(35))]
_REPO_WEIGHTS = [1 / (rank + 1) for rank in range(len(REPOS))]


_TEMPLATES = 4_096


def _templates(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    # Their own generator: the other fields stay what they were before repos existed.
    repos = random.Random(11).choices(REPOS, _REPO_WEIGHTS, k=_TEMPLATES)
    for i in range(_TEMPLATES):
        words = rng.sample(WORDS, 4)
        out.append(
            {
                "system": SYSTEMS[rng.randrange(len(SYSTEMS))],
                "event_type": EVENT_TYPES[rng.randrange(len(EVENT_TYPES))],
                "severity": rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0],
                "title": f"{words[0].title()} {words[1]} {i % 997}",
                "description": " ".join(words),
                "data": {"n": i, "stage": words[2], "repo": repos[i]},
                "tags": rng.sample(TAGS, rng.randint(1, 3)),
                "source_component": COMPONENTS[rng.randrange(len(COMPONENTS))],
                "duration_ms": rng.randint(1, 30_000) if rng.random() < 0.6 else None,
            }
        )
    return out


def generate(
    n: int, *, days: float = 7.0, seed: int = 7, end: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``n`` events as ``collect()`` keyword arguments, oldest first, ending about now.

    Content cycles through a few thousand templates, so that making the data costs
    little next to what is measured.
    """
    rng = random.Random(seed)
    templates = _templates(rng)
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(days=days)
    step = (end - start) / max(n, 1)
    for i in range(n):
        event = dict(templates[(i * 7919) % _TEMPLATES])
        event["correlation_id"] = f"trace-{i // TRACE_LENGTH}"
        event["timestamp"] = start + step * i
        yield event
