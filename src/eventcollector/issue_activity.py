"""How often each of some error issues was seen per hour or day: the sparklines of
the UI's Errors view (docs/issues.md, "Activity").

``ActivityQuery`` says which issues, over which range and in which buckets; a backend
counts the issues' linked events per bucket (``counts_per_bucket`` rows) and
``IssueActivity.from_counts`` turns them into one dense series per issue, empty
buckets included, so every series lines up with ``buckets``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventcollector.model import format_timestamp, parse_timestamp

__all__ = [
    "ACTIVITY_INTERVALS",
    "MAX_ACTIVITY_BUCKETS",
    "MAX_ACTIVITY_ISSUES",
    "ActivityQuery",
    "IssueActivity",
]

#: Bucket widths: an hour or a day, aligned to UTC midnight like ``/v1/aggregate``'s.
ACTIVITY_INTERVALS: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
#: Buckets in one answer (a month of hours; a longer range takes ``1d``).
MAX_ACTIVITY_BUCKETS = 1_000
#: Issues in one request (more than a page of the Errors view).
MAX_ACTIVITY_ISSUES = 200


def _floor(moment: datetime, interval: str) -> datetime:
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if interval == "1d" else start


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """The issues ``issue_ids``, their events with ``since <= timestamp < until``,
    counted per ``interval`` bucket (the first bucket starts at ``since`` rounded down)."""

    issue_ids: tuple[int, ...]
    since: datetime
    until: datetime
    interval: str = "1h"

    def __post_init__(self) -> None:
        ids = self.issue_ids
        if not ids or len(ids) > MAX_ACTIVITY_ISSUES:
            raise ValueError(f"id: give from 1 to {MAX_ACTIVITY_ISSUES} issue ids")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
            raise ValueError("id: issue ids are non-negative integers")
        if self.interval not in ACTIVITY_INTERVALS:
            raise ValueError(f"interval: one of {', '.join(ACTIVITY_INTERVALS)}")
        for name in ("since", "until"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name}: needs a time zone")
        if self.since >= self.until:
            raise ValueError("until: must be after since")
        width = ACTIVITY_INTERVALS[self.interval]
        if (self.until - _floor(self.since, self.interval)) / width > MAX_ACTIVITY_BUCKETS:
            raise ValueError(
                f"interval: more than {MAX_ACTIVITY_BUCKETS} buckets of {self.interval}"
                " between since and until; take a wider interval or a shorter range"
            )

    @property
    def buckets(self) -> list[datetime]:
        """The start of every bucket, oldest first."""
        width = ACTIVITY_INTERVALS[self.interval]
        start = _floor(self.since, self.interval)
        # Counted, not stepped past ``until``: the step after the last could overflow.
        n = math.ceil((self.until - start) / width)
        return [start + i * width for i in range(n)]

    def bucket_of(self, moment: datetime) -> datetime:
        return _floor(moment, self.interval)


@dataclass(frozen=True, slots=True)
class IssueActivity:
    """One count per bucket for each issue asked for (zeros for an unknown id)."""

    interval: str
    buckets: tuple[datetime, ...]
    counts: dict[int, tuple[int, ...]]

    @classmethod
    def from_counts(
        cls, query: ActivityQuery, rows: Iterable[tuple[int, datetime, int]]
    ) -> IssueActivity:
        """From ``(issue id, bucket start, count)`` rows, buckets without a row at 0."""
        buckets = query.buckets
        index = {b: i for i, b in enumerate(buckets)}
        series = {i: [0] * len(buckets) for i in query.issue_ids}
        for issue_id, bucket, n in rows:
            series[issue_id][index[query.bucket_of(bucket)]] += n
        return cls(query.interval, tuple(buckets), {i: tuple(c) for i, c in series.items()})

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "buckets": [format_timestamp(b) for b in self.buckets],
            "issues": {str(i): list(c) for i, c in self.counts.items()},
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> IssueActivity:
        """The inverse of ``to_dict`` (the remote client's answers)."""
        return cls(
            interval=str(payload["interval"]),
            buckets=tuple(parse_timestamp(b, "buckets") for b in payload["buckets"]),
            counts={int(i): tuple(int(n) for n in c) for i, c in payload["issues"].items()},
        )
