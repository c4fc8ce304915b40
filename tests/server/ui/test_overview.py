"""Overview (/overview) in the browser over seeded data: totals by system, severity and
type equal to what was seeded; events per hour with the seeded spike marked as an
anomaly; duration percentiles as the API computes them; every number a link to
Explore with its filter; the empty state; the dark theme."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page

from ..conftest import Server
from .conftest import post

XSS = "<img src=x onerror=alert(1)>"
SPIKE_HOURS_AGO = 10


def _seed(now: datetime) -> tuple[list[dict[str, Any]], str]:
    hour = now.replace(minute=0, second=0, microsecond=0)
    kinds = [("deploy.finished", "info"), ("http.request", "debug"), ("job.failed", "error")]
    events: list[dict[str, Any]] = []
    for ago in range(1, 48):
        start = hour - timedelta(hours=ago)
        per_hour = 60 if ago == SPIKE_HOURS_AGO else 2
        for i in range(per_hour):
            kind, severity = kinds[(ago + i) % 3]
            events.append({
                "system": ["alpha", "beta", "gamma"][i % 3 if per_hour > 2 else ago % 2],
                "event_type": kind, "severity": severity,
                "title": XSS if i == 1 else f"{kind} {ago}-{i}",
                "timestamp": (start + timedelta(seconds=20 * i + 60)).isoformat(),
                "duration_ms": (ago * 7 + i * 13) % 400 + 1 if kind != "job.failed" else None,
                "data": {XSS: XSS},
            })  # fmt: skip
    spike = (hour - timedelta(hours=SPIKE_HOURS_AGO)).isoformat()
    return [{k: v for k, v in e.items() if v is not None} for e in events], spike


@pytest.fixture(scope="module")
def seeded(server: Server) -> tuple[list[dict[str, Any]], str]:
    events, spike = _seed(datetime.now(UTC))
    post(server.url, events)
    return events, spike


def js(number: float) -> str:
    """A number as JavaScript writes it (both give the shortest round trip)."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def ready(page: Page) -> None:
    page.wait_for_selector(
        ".overview-view[data-state=ready], .overview-view[data-state=empty],"
        " .overview-view[data-state=error]"
    )


def breakdown(page: Page, field: str) -> dict[str, int]:
    pairs: list[list[str]] = page.eval_on_selector_all(
        f".breakdown[data-field={field}] li[data-value]",
        "items => items.map(i => [i.dataset.value, i.querySelector('.count').textContent])",
    )
    return {value: int(count.replace(",", "")) for value, count in pairs}


def test_totals_match_what_was_seeded(
    server: Server, seeded: tuple[list[dict[str, Any]], str], page: Page, shot
) -> None:
    events, _ = seeded
    page.goto(f"{server.url}/overview")
    ready(page)
    assert page.locator(".card-total .card-value").inner_text() == f"{len(events):,}"
    errors = sum(1 for e in events if e["severity"] == "error")
    assert page.locator(".card-errors .card-value").inner_text() == str(errors)
    for field in ("system", "severity", "event_type"):
        assert breakdown(page, field) == Counter(e[field] for e in events), field
    # Severities read from the worst down.
    assert list(breakdown(page, "severity")) == ["error", "info", "debug"]
    page.wait_for_selector(".hour-chart canvas")
    page.wait_for_function("() => Number(document.querySelector('.hour-chart').dataset.drawn) > 0")
    shot(page, "overview")


def test_the_spike_is_marked_as_an_anomaly(
    server: Server, seeded: tuple[list[dict[str, Any]], str], page: Page
) -> None:
    _, spike = seeded
    page.goto(f"{server.url}/overview")
    ready(page)
    with server.client() as c:
        patterns = c.get("/v1/analysis/patterns", params={"days": 7}).json()["patterns"]
    assert [p["type"] for p in patterns] == ["spike"]
    marked = page.locator(".anomaly-spike")
    assert marked.count() == 1
    assert datetime.fromisoformat(marked.get_attribute("data-hour") or "") == (
        datetime.fromisoformat(spike)
    )
    assert "60 events" in marked.inner_text()
    assert page.locator(".card-anomalies .card-value").inner_text() == "1"
    # Its link opens Explore on that hour: the 60 events.
    marked.locator("a").click()
    page.wait_for_selector("#view > .view-root[data-state=ready]")
    assert page.locator("#summary").inner_text().startswith("60 events")


def test_percentiles_are_the_apis_and_link_to_the_slow_events(
    server: Server, seeded: tuple[list[dict[str, Any]], str], page: Page
) -> None:
    page.goto(f"{server.url}/overview")
    ready(page)
    metrics = ["count", "p50:duration_ms", "p95:duration_ms", "p99:duration_ms"]
    since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    with server.client() as c:
        params: dict[str, Any] = {"since": since, "q": "duration_ms:*", "metric": metrics}
        overall = c.get("/v1/aggregate", params=params).json()["rows"][0]["values"]
        by = c.get("/v1/aggregate", params={**params, "by": "system"}).json()["rows"]
    row = page.locator("tr.percentile-all")
    assert row.locator("td").nth(1).inner_text() == str(overall["count"])
    href = row.locator("td.p95 a").get_attribute("href") or ""
    assert parse_qs(urlsplit(href).query)["q"] == [
        f"duration_ms:>={js(overall['p95:duration_ms'])}"
    ]
    systems = page.locator("tr.percentile-system td.name").all_inner_texts()
    assert sorted(systems) == sorted(r["key"]["system"] for r in by)
    alpha = next(r["values"] for r in by if r["key"]["system"] == "alpha")
    link = page.locator("tr.percentile-system", has_text="alpha").locator("td.p99 a")
    query = parse_qs(urlsplit(link.get_attribute("href") or "").query)["q"][0]
    assert query == f"system:alpha duration_ms:>={js(alpha['p99:duration_ms'])}"
    link.click()
    page.wait_for_selector("#view > .view-root[data-state=ready]")
    assert page.locator("[data-filter]").input_value() == query


def test_a_breakdown_number_opens_explore_with_its_filter(
    server: Server, seeded: tuple[list[dict[str, Any]], str], page: Page
) -> None:
    events, _ = seeded
    page.goto(f"{server.url}/overview")
    ready(page)
    page.locator(".breakdown[data-field=event_type] li[data-value='job.failed'] a").click()
    page.wait_for_selector("#view > .view-root[data-state=ready]")
    assert page.locator("[data-filter]").input_value() == "event_type:job.failed"
    failed = sum(1 for e in events if e["event_type"] == "job.failed")
    assert page.locator("#summary").inner_text().startswith(f"{failed} events")
    page.go_back()
    ready(page)
    assert page.url.endswith("/overview")


def test_dark_theme_and_empty_range(
    server: Server, seeded: tuple[list[dict[str, Any]], str], dark_page: Page, shot
) -> None:
    dark_page.goto(f"{server.url}/overview")
    ready(dark_page)
    dark_page.wait_for_function(
        "() => Number(document.querySelector('.hour-chart').dataset.drawn) > 0"
    )
    background = dark_page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 23)"
    shot(dark_page, "overview-dark")
    dark_page.goto(f"{server.url}/overview?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z")
    dark_page.wait_for_selector(".overview-view[data-state=empty]")
    assert "No events in this range" in dark_page.locator(".overview-view").inner_text()
    assert dark_page.locator("#view img").count() == 0


def test_a_server_error_is_shown_as_a_message(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/overview?since=1990-01-01T00:00:00Z")  # beyond 10 years
    page.wait_for_selector(".overview-view[data-state=error]")
    # The first of the requests refused: analysis (days) or the hourly series (interval).
    message = page.locator(".overview-body [role=alert]").inner_text()
    assert message.startswith(("days: must be", "interval: ")), message
