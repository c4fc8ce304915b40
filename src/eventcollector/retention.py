"""Retention rules: which old events to delete, archived first when asked.

A rule is ``FILTER=AGE`` (``severity:debug=2d``, ``*=30d``): the events the filter
selects (a lone ``*``: every event) once they are older than AGE, written as the
relative times of filters without the minus (``90s``, ``30m``, ``12h``, ``2d``, ``1w``).
Rules are independent: an event goes as soon as one rule says so, so the shortest age
among the rules an event matches is the one it gets (to keep errors longer than the
rest, write ``-severity:error=30d`` and ``severity:error=90d``). See docs/guarantees.md.

Without an archive each rule is one ``cleanup_old_events`` (on PostgreSQL, ``*`` drops
whole days). With an archive directory, a run first selects what its rules would delete
(at most ``ARCHIVE_LIMIT`` events; the rest waits for the next run), writes those events
to one new gzipped JSON Lines file, synced, and only then deletes exactly those events,
by id: no event is deleted without being archived, and an archive that cannot be written
deletes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventcollector._files import durable_file
from eventcollector._paging import pages
from eventcollector.collector import EventCollector
from eventcollector.filters import (
    MAX_LIST_VALUES,
    AnyOf,
    Compare,
    Field,
    Filter,
    FilterError,
    all_of,
    parse_duration,
    parse_filter,
)
from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.storage.base import MAX_RETENTION_DAYS

__all__ = ["ARCHIVE_LIMIT", "RetentionRule", "RetentionRun", "apply_rules", "parse_rules"]

#: Events one archiving run takes at most (they are held in memory until the archive is
#: on disk); a run that reaches it says so (``complete`` False) and the next one goes on.
ARCHIVE_LIMIT = 100_000
_EVERY_EVENT = "*"
_ID = Field("id")
_TIMESTAMP = Field("timestamp")


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """One ``FILTER=AGE`` rule; ``filter_text`` None for ``*`` (every event)."""

    text: str
    filter_text: str | None
    age: timedelta

    @classmethod
    def parse(cls, text: str) -> RetentionRule:
        """The rule ``text`` says; ValueError naming the rule and what is wrong."""
        filter_text, sep, age_text = text.rpartition("=")  # filters may hold '=' (>=)
        if not sep or not filter_text.strip():
            raise ValueError(
                f"retention: rule {text!r}: expected FILTER=AGE, "
                "such as 'severity:debug=2d' or '*=30d'"
            )
        try:
            age = parse_duration(age_text)
        except ValueError as exc:
            raise ValueError(f"retention: rule {text!r}: age: {exc}") from None
        if not timedelta(0) < age <= timedelta(days=MAX_RETENTION_DAYS):
            raise ValueError(
                f"retention: rule {text!r}: age: must be more than 0 "
                f"and at most {MAX_RETENTION_DAYS} days"
            )
        if filter_text.strip() == _EVERY_EVENT:
            return cls(text, None, age)
        try:
            parse_filter(filter_text)
        except FilterError as exc:  # its column counts from the start of the rule, too
            where = "" if exc.column is None else f" at column {exc.column}"
            raise ValueError(f"retention: rule {text!r}: {exc.reason}{where}") from None
        return cls(text, filter_text, age)

    @property
    def days(self) -> float:
        return self.age / timedelta(days=1)

    def where(self, now: datetime) -> Filter | None:
        """The filter, parsed again for each run: its relative times count from ``now``."""
        return None if self.filter_text is None else parse_filter(self.filter_text, now=now)


def parse_rules(texts: Iterable[str]) -> list[RetentionRule]:
    """Every rule of ``texts``; ValueError naming the first bad one."""
    return [RetentionRule.parse(text) for text in texts]


@dataclass(slots=True)
class RetentionRun:
    """What one run did: events deleted, per rule (with an archive: the events each rule
    selected first), and the archive written, if any."""

    at: datetime
    deleted: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    archived: int = 0
    archive: Path | None = None
    #: False when the archive limit left events for the next run.
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "deleted": self.deleted,
            "by_rule": dict(self.by_rule),
            "archived": self.archived,
            "archive": None if self.archive is None else str(self.archive),
            "complete": self.complete,
        }


async def apply_rules(
    collector: EventCollector,
    rules: Sequence[RetentionRule],
    *,
    now: datetime | None = None,
    archive_dir: Path | None = None,
    archive_limit: int = ARCHIVE_LIMIT,
) -> RetentionRun:
    """Delete what ``rules`` say is too old at ``now``, archiving it to a new file in
    ``archive_dir`` first when given (see the module's docstring)."""
    run = RetentionRun(now or datetime.now(UTC))
    if archive_dir is None:
        for rule in rules:
            where = rule.where(run.at)
            n = await collector.cleanup_old_events(rule.days, now=run.at, where=where)
            run.by_rule[rule.text] = n
            run.deleted += n
        return run
    victims = await _select(collector, rules, run, archive_limit)
    if not victims:
        return run
    run.archive = await asyncio.to_thread(write_archive, archive_dir, run.at, victims)
    run.archived = len(victims)
    for chunk in _batches(victims, MAX_LIST_VALUES):
        run.deleted += await collector.cleanup_old_events(0, now=run.at, where=_exactly(chunk))
    return run


async def _select(
    collector: EventCollector, rules: Sequence[RetentionRule], run: RetentionRun, limit: int
) -> list[Event]:
    """The events the rules would delete, oldest first, at most ``limit``."""
    chosen: dict[str, Event] = {}
    for rule in rules:
        found = 0
        old = Query(until=run.at - rule.age, where=rule.where(run.at))
        async for page in pages(collector, old):
            for event in page:
                if event.id in chosen:
                    continue
                if len(chosen) >= limit:
                    run.complete = False
                    break
                chosen[event.id] = event
                found += 1
            if not run.complete:
                break
        run.by_rule[rule.text] = found
        if not run.complete:
            break
    return sorted(chosen.values(), key=lambda e: e.timestamp)


def _exactly(events: Sequence[Event]) -> Filter:
    """These events (oldest first) and no other: their ids, and the time range they span
    so that each backend reads only the days they are in."""
    return all_of(
        AnyOf(_ID, tuple(e.id for e in events)),
        Compare(_TIMESTAMP, ">=", events[0].timestamp),
        Compare(_TIMESTAMP, "<=", events[-1].timestamp),
    )


def write_archive(directory: Path, at: datetime, events: Sequence[Event]) -> Path:
    """``events`` as a new gzipped JSON Lines file in ``directory``, complete and synced
    (``events-<at>.jsonl.gz``; ``-2``, ``-3``, ... when that name is taken); its path."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    n = 1
    while True:
        path = directory / f"events-{stamp}{'' if n == 1 else f'-{n}'}.jsonl.gz"
        n += 1
        if path.exists():
            continue
        try:
            with durable_file(path, replace=False) as sink:
                for chunk in _batches(events, 1_000):
                    sink.write(b"".join(e.to_json() + b"\n" for e in chunk))
        except FileExistsError:  # taken meanwhile (another server on this directory)
            continue
        return path


def _batches(events: Sequence[Event], size: int) -> list[Sequence[Event]]:
    return [events[i : i + size] for i in range(0, len(events), size)]
