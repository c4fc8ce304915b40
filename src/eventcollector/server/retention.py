"""``serve --retention``: retention rules run periodically on the server's event loop.

Each run is ``retention.apply_rules``: the store does its reads and deletes on its own
threads (SQLite's readers and writer, PostgreSQL's pool) and the archive is written on
a worker thread, so the loop keeps serving meanwhile. A run that fails (a full disk
under the archive, the store down) is logged and reported in ``/health`` and the next
one comes after the interval; a run cut short by the archive limit is followed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from eventcollector.retention import RetentionRule, RetentionRun, apply_rules
from eventcollector.server.state import ServerState

__all__ = ["RetentionSchedule"]

log = logging.getLogger("eventcollector.server.retention")


class RetentionSchedule:
    """A ``Service``: applies ``rules`` every ``interval`` seconds, the first time at start."""

    def __init__(
        self, rules: Sequence[RetentionRule], *, interval: float, archive_dir: Path | None
    ) -> None:
        self.rules = tuple(rules)
        self.interval = interval
        self.archive_dir = archive_dir
        self._task: asyncio.Task[None] | None = None
        self._runs = 0
        self._deleted = {rule.text: 0 for rule in self.rules}
        self._archived = 0
        self._last: RetentionRun | None = None
        self._last_error: str | None = None

    async def start(self, state: ServerState) -> None:
        r = state.metrics.registry
        self._deleted_metric = Counter(
            "eventcollector_retention_deleted", "Events deleted by retention rules.", registry=r
        )
        self._archived_metric = Counter(
            "eventcollector_retention_archived", "Events archived before deleting.", registry=r
        )
        self._collector = state.collector
        state.reports["retention"] = self.report
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            delay = self.interval
            try:
                run = await apply_rules(self._collector, self.rules, archive_dir=self.archive_dir)
            except Exception as exc:  # logged and reported; the schedule goes on
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.warning("retention: the run failed (%s); next in %g s", exc, delay)
            else:
                self._record(run)
                if not run.complete:
                    delay = 0  # the archive limit left events behind: go on now
            await asyncio.sleep(delay)

    def _record(self, run: RetentionRun) -> None:
        self._runs += 1
        self._last, self._last_error = run, None
        self._archived += run.archived
        self._deleted_metric.inc(run.deleted)
        self._archived_metric.inc(run.archived)
        for text, n in run.by_rule.items():
            self._deleted[text] += n
        if run.deleted or run.archived:
            where = f", archived to {run.archive}" if run.archive else ""
            log.info("retention: deleted %d events%s", run.deleted, where)

    def report(self) -> dict[str, Any]:
        """The rules and what they did since the server started (``/health``)."""
        return {
            "rules": [
                {
                    "rule": r.text,
                    "age_seconds": r.age.total_seconds(),
                    "deleted": self._deleted[r.text],
                }
                for r in self.rules
            ],
            "interval_seconds": self.interval,
            "archive_dir": None if self.archive_dir is None else str(self.archive_dir),
            "runs": self._runs,
            "archived": self._archived,
            "last_run": None if self._last is None else self._last.to_dict(),
            "last_error": self._last_error,
        }
