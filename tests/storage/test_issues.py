"""Error issues on every backend: kept on ingest, in the events' transaction, with
statuses, regressions, mutes, paging, the events of an issue and retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from _common import make_event
from eventcollector.fingerprint import fingerprint
from eventcollector.issue_activity import ActivityQuery
from eventcollector.issues import IssueChange, IssueQuery
from eventcollector.model import Event
from eventcollector.storage import IssueFeed, IssueStore, Storage


def _error(title: str, system: str = "akosha", severity: str = "error", **kw: Any) -> Event:
    return make_event(
        system=system, event_type="error.occurred", title=title, severity=severity, **kw
    )


def _store(storage: Storage) -> IssueStore:
    assert isinstance(storage, IssueStore)
    assert isinstance(storage, IssueFeed)
    return storage


async def test_errors_are_counted_into_issues_and_others_are_not(storage: Storage) -> None:
    store = _store(storage)
    errors = [_error(f"Timeout after {i}ms on 10.0.0.{i}") for i in range(1, 6)]
    others = [make_event(title=f"Timeout after {i}ms", severity="warning") for i in range(3)]
    critical = _error("Disk full on /dev/sda1", severity="critical")
    assert await storage.append([*errors, *others, critical]) == [True] * 9
    issues = await store.issues(IssueQuery(order_by="count"))
    assert [(i.count, i.title) for i in issues] == [
        (5, "Timeout after 1ms on 10.0.0.1"),
        (1, "Disk full on /dev/sda1"),
    ]
    top = issues[0]
    assert top.fingerprint == fingerprint(errors[0])
    assert top.systems == ("akosha",)
    assert (top.event_type, top.error_type) == ("error.occurred", "error.occurred")
    assert top.first_seen == min(e.timestamp for e in errors)
    assert top.last_seen == max(e.timestamp for e in errors)
    assert top.last_event_id == max(errors, key=lambda e: e.timestamp).id
    assert (top.status, top.regressed, top.muted_until) == ("unresolved", False, None)
    assert await store.get_issue(top.id) == top
    assert await store.get_issue(10**9) is None


async def test_duplicates_do_not_count_on_small_or_large_commits(storage: Storage) -> None:
    store = _store(storage)
    small = [_error(f"Refused by 10.1.1.{i}") for i in range(3)]  # a small commit
    large = [_error(f"Refused by 10.2.2.{i % 250}") for i in range(300)]  # a large one
    await storage.append(small)
    assert await storage.append([small[0], *small]) == [False] * 4
    await storage.append(large)
    assert await storage.append(large[:40]) == [False] * 40
    (issue,) = await store.issues(IssueQuery())
    assert issue.count == 303
    events = await store.issue_events(issue.id, 1_000)
    assert sorted(e.id for e in events) == sorted(e.id for e in [*small, *large])


async def test_concurrent_appends_count_every_error(storage: Storage) -> None:
    store = _store(storage)
    batches = [[_error(f"Lock held {j}s by {i}") for j in range(i % 5 + 1)] for i in range(40)]
    await asyncio.gather(*(storage.append(b) for b in batches))
    (issue,) = await store.issues(IssueQuery())
    assert issue.count == sum(len(b) for b in batches)


async def test_resolved_issue_that_comes_back_is_unresolved_and_regressed(
    storage: Storage,
) -> None:
    store = _store(storage)
    changes: list[IssueChange] = []
    assert isinstance(storage, IssueFeed)
    storage.watch_issues(changes.extend)
    await storage.append([_error("Crash in worker 7")])
    (issue,) = await store.issues(IssueQuery())
    resolved = await store.set_issue_status(issue.id, "resolved")
    assert resolved is not None
    assert resolved.status == "resolved"
    assert await store.issues(IssueQuery(status="unresolved")) == []
    await storage.append([_error("Crash in worker 9")])
    again = await store.get_issue(issue.id)
    assert again is not None
    assert (again.status, again.regressed, again.count) == ("unresolved", True, 2)
    await storage.append([_error("Crash in worker 11")])  # no longer resolved: no news
    await asyncio.sleep(0.2)
    assert changes == [
        IssueChange("new", issue.id, issue.fingerprint),
        IssueChange("regressed", issue.id, issue.fingerprint),
    ]
    reopened = await store.set_issue_status(issue.id, "unresolved")
    assert reopened is not None
    assert not reopened.regressed


async def test_ignored_stays_ignored_and_a_mute_ends(storage: Storage) -> None:
    store = _store(storage)
    await storage.append([_error("Cache miss 1"), _error("Quota 5 exceeded", system="oneiric")])
    cache, quota = sorted(await store.issues(IssueQuery()), key=lambda i: i.title)
    await store.set_issue_status(cache.id, "ignored")
    until = datetime.now(UTC) + timedelta(seconds=1)
    muted = await store.set_issue_status(quota.id, "muted", until=until)
    assert muted is not None
    assert (muted.status, muted.muted_until) == ("muted", until)
    await storage.append([_error("Cache miss 2"), _error("Quota 6 exceeded", system="oneiric")])
    assert [i.id for i in await store.issues(IssueQuery(status="ignored"))] == [cache.id]
    assert [i.id for i in await store.issues(IssueQuery(status="muted"))] == [quota.id]
    await asyncio.sleep(1.1)
    assert await store.issues(IssueQuery(status="muted")) == []
    (back,) = await store.issues(IssueQuery(status="unresolved"))
    assert (back.id, back.status, back.muted_until) == (quota.id, "unresolved", None)


async def test_bad_status_changes_name_the_field(storage: Storage) -> None:
    store = _store(storage)
    with pytest.raises(ValueError, match=r"^status:"):
        await store.set_issue_status(1, "closed")
    with pytest.raises(ValueError, match=r"^until:"):
        await store.set_issue_status(1, "muted")
    with pytest.raises(ValueError, match=r"^until:"):
        await store.set_issue_status(1, "muted", until=datetime.now(UTC) - timedelta(hours=1))
    assert await store.set_issue_status(10**9, "resolved") is None
    with pytest.raises(ValueError, match=r"^limit:"):
        IssueQuery(limit=-1)
    with pytest.raises(ValueError, match=r"^order_by:"):
        IssueQuery(order_by="title")


async def test_filters_and_paging(storage: Storage) -> None:
    store = _store(storage)
    now = datetime.now(UTC)
    events = [
        _error(f"Error kind {chr(97 + i)} 1", system="akosha" if i % 2 else "oneiric",
               timestamp=now - timedelta(minutes=i))
        for i in range(7)
    ]  # fmt: skip
    await storage.append(events)
    everything = await store.issues(IssueQuery(limit=100))
    assert [i.last_seen for i in everything] == sorted((e.timestamp for e in events), reverse=True)
    pages = [await store.issues(IssueQuery(limit=3, offset=o)) for o in (0, 3, 6)]
    assert [i.id for page in pages for i in page] == [i.id for i in everything]
    akosha = await store.issues(IssueQuery(system="akosha"))
    assert {i.systems for i in akosha} == {("akosha",)}
    assert len(akosha) == 3
    recent = await store.issues(IssueQuery(seen_since=now - timedelta(minutes=2, seconds=30)))
    assert len(recent) == 3


async def test_one_fingerprint_across_systems_lists_each(storage: Storage) -> None:
    store = _store(storage)
    shared = {"fingerprint": "payments-down"}
    await storage.append([_error("a", system="oneiric", data=shared)])
    await storage.append([_error("b", system="akosha", data=shared)])
    (issue,) = await store.issues(IssueQuery())
    assert issue.systems == ("akosha", "oneiric")
    assert issue.title == "a"


async def test_retention_drops_the_events_of_an_issue_not_the_issue(storage: Storage) -> None:
    store = _store(storage)
    old = datetime.now(UTC) - timedelta(days=3)
    await storage.append([_error("Old 1", timestamp=old), _error("Old 2")])
    (issue,) = await store.issues(IssueQuery())
    assert await storage.cleanup_old_events(1) == 1
    assert [e.title for e in await store.issue_events(issue.id)] == ["Old 2"]
    kept = await store.get_issue(issue.id)
    assert kept is not None
    assert kept.count == 2


async def test_activity_counts_each_issues_events_per_hour_and_day(storage: Storage) -> None:
    store = _store(storage)
    at = datetime(2026, 11, 30, 22, 10, tzinfo=UTC)
    timeouts = [
        _error(f"Timeout after {i}ms", timestamp=at + timedelta(minutes=25 * i)) for i in range(6)
    ]
    disk = [_error("Disk full", system="oneiric", timestamp=at + timedelta(hours=3))]
    await storage.append([*timeouts, *disk])
    ids = {i.title: i.id for i in await store.issues(IssueQuery())}
    timeout, full = ids["Timeout after 0ms"], ids["Disk full"]
    since, until = datetime(2026, 11, 30, 21, 30, tzinfo=UTC), at + timedelta(hours=4)
    hourly = await store.issue_activity(ActivityQuery((timeout, full, 10**9), since, until))
    assert hourly.buckets == tuple(
        datetime(2026, 11, 30, 21, tzinfo=UTC) + timedelta(hours=h) for h in range(6)
    )
    # 22:10, 22:35 | 23:00, 23:25, 23:50 | 00:15; the disk error at 01:10.
    assert hourly.counts == {timeout: (0, 2, 3, 1, 0, 0), full: (0, 0, 0, 0, 1, 0), 10**9: (0,) * 6}
    narrow = ActivityQuery((timeout,), at + timedelta(minutes=20), at + timedelta(minutes=75))
    assert (await store.issue_activity(narrow)).counts == {
        timeout: (1, 1)
    }  # 22:35, 23:00; until 23:25 exclusive
    daily = await store.issue_activity(ActivityQuery((timeout, full), since, until, "1d"))
    assert daily.buckets == (datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert daily.counts == {timeout: (5, 1), full: (0, 1)}


async def test_the_events_of_an_issue_come_newest_first_by_timestamp(storage: Storage) -> None:
    # Stored out of time order (a late import, a backfill): the newest happened first.
    store = _store(storage)
    now = datetime.now(UTC)
    late = [_error("Lost connection to db-1", timestamp=now - timedelta(hours=h)) for h in (1, 3)]
    backfill = [
        _error("Lost connection to db-1", timestamp=now - timedelta(hours=h)) for h in (5, 2)
    ]
    for batch in (late, backfill):
        await storage.append(batch)
    (issue,) = await store.issues(IssueQuery())
    events = await store.issue_events(issue.id, 10)
    assert [e.timestamp for e in events] == sorted(
        (e.timestamp for e in late + backfill), reverse=True
    )
    assert [e.id for e in await store.issue_events(issue.id, 2)] == [late[0].id, backfill[1].id]
