"""ActivityQuery's checks and buckets (the backends' counts: tests/storage/test_issues.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventcollector.issue_activity import ActivityQuery, IssueActivity


def test_activity_query_names_what_is_wrong() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"issue_ids": ()}, "id:"),
        ({"issue_ids": (-1,)}, "id:"),
        ({"issue_ids": tuple(range(201))}, "id:"),
        ({"interval": "5m"}, "interval:"),
        ({"until": at}, "until:"),
        ({"until": at + timedelta(days=42)}, "interval:"),  # 1,008 hours
        ({"since": datetime(2026, 1, 1)}, "since:"),
    ]
    for kwargs, field in cases:
        values: dict[str, Any] = {"issue_ids": (1,), "since": at, "until": at + timedelta(hours=1)}
        with pytest.raises(ValueError, match=f"^{field}"):
            ActivityQuery(**{**values, **kwargs})
    assert len(ActivityQuery((1,), at, at + timedelta(days=1000), "1d").buckets) == 1000
    end = datetime.max.replace(tzinfo=UTC)
    assert ActivityQuery((1,), end - timedelta(minutes=30), end).buckets == [
        end.replace(minute=0, second=0, microsecond=0)
    ]


def test_activity_round_trips_as_json() -> None:
    at = datetime(2026, 1, 1, 5, 30, tzinfo=UTC)
    query = ActivityQuery((3, 4), at, at + timedelta(hours=2))
    found = IssueActivity.from_counts(query, [(3, at, 2), (4, at + timedelta(hours=1), 1)])
    assert found.counts == {3: (2, 0, 0), 4: (0, 1, 0)}
    assert IssueActivity.from_dict(found.to_dict()) == found
