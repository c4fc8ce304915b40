"""Explore (/) over seeded data: rows, histogram, facets, the filter and its errors,
expanded events, paging, context, the permalink, the keyboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from ..conftest import Server, start
from .conftest import Watched, post, wait_ready


def rows(page: Page) -> int:
    return page.locator("table.events tbody tr.event-row").count()


def test_explore_renders_rows_histogram_and_facets(seeded: Server, page: Page, shot) -> None:
    page.goto(f"{seeded.url}/")
    wait_ready(page)
    assert rows(page) == 100
    page.wait_for_selector("#histogram canvas")
    assert page.locator("#summary").inner_text().startswith("240 events")
    systems = page.locator(".facet[data-field=system] li[data-value]")
    assert systems.count() == 4
    assert page.locator(".facet[data-field=severity]").inner_text().count("\n") >= 5
    shot(page, "explore")


def test_the_histogram_legend_counts_each_severity_over_the_range(
    seeded: Server, page: Page
) -> None:
    """Off the bars the legend gives the range's count of each severity: the facet's."""
    page.goto(f"{seeded.url}/")
    wait_ready(page)
    page.wait_for_selector("#histogram canvas")
    facet = page.locator(".facet[data-field=severity] li[data-value]")
    counts = dict(
        zip(
            facet.locator(".facet-value").all_inner_texts(),
            facet.locator(".facet-count").all_inner_texts(),
            strict=True,
        )
    )
    series = page.locator("#histogram .u-legend .u-series")
    labels = [t.strip() for t in series.locator(".u-label").all_inner_texts()]
    values = [t.strip() for t in series.locator(".u-value").all_inner_texts()]
    legend = {k: v for k, v in zip(labels, values, strict=True) if k in counts}
    assert counts
    assert legend == counts


def test_explore_dark_theme(seeded: Server, dark_page: Page, shot) -> None:
    dark_page.goto(f"{seeded.url}/?q=severity:>=warning")
    wait_ready(dark_page)
    dark_page.locator("table.events tbody tr.event-row").first.click()
    dark_page.wait_for_selector("tr.detail-row .data-tree")
    shot(dark_page, "explore-dark")


def test_typing_a_filter_changes_rows_and_histogram(seeded: Server, page: Page) -> None:
    page.goto(f"{seeded.url}/")
    first = wait_ready(page)
    drawn = int(page.get_attribute("#histogram", "data-drawn") or 0)
    page.fill("#filter", "system:deployer severity:error")
    page.press("#filter", "Enter")
    wait_ready(page, first)
    systems = page.locator("table.events tbody tr.event-row td.sys").all_inner_texts()
    assert systems
    assert set(systems) == {"deployer"}
    assert set(page.locator("tr.event-row .sev").all_inner_texts()) == {"ERROR"}
    total = page.locator("#summary strong").inner_text()
    assert total == str(len(systems))  # fewer than a page: the rows are all of them
    assert int(page.get_attribute("#histogram", "data-drawn") or 0) > drawn
    assert "q=system%3Adeployer+severity%3Aerror" in page.url


def test_a_syntax_error_is_shown_at_its_column(seeded: Server, page: Page, shot) -> None:
    page.goto(f"{seeded.url}/")
    wait_ready(page)
    page.fill("#filter", "system:deployer severity:")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error:not(.hidden)")
    text = page.inner_text("#filter-error")
    lines = text.split("\n")
    assert lines[0] == "system:deployer severity:"
    assert lines[1] == " " * 25 + "^"
    assert lines[2] == "q: expected a value after 'severity:' at column 26"
    assert page.get_attribute("#filter", "aria-invalid") == "true"
    shot(page, "explore-filter-error")


def test_clicking_a_facet_value_filters_and_the_second_action_excludes(
    seeded: Server, page: Page
) -> None:
    page.goto(f"{seeded.url}/")
    gen = wait_ready(page)
    page.click(".facet[data-field=severity] li[data-value=critical] .facet-value")
    gen = wait_ready(page, gen)
    assert page.input_value("#filter") == "severity:critical"
    assert set(page.locator("tr.event-row .sev").all_inner_texts()) == {"CRITICAL"}
    page.hover(".facet[data-field=system] li[data-value=billing]")
    page.click(".facet[data-field=system] li[data-value=billing] .facet-exclude")
    wait_ready(page, gen)
    assert page.input_value("#filter") == "severity:critical -system:billing"
    assert "billing" not in page.locator("tr.event-row td.sys").all_inner_texts()


def test_the_tags_facet_counts_every_matching_event_and_filters(
    seeded: Server, page: Page, shot
) -> None:
    page.goto(f"{seeded.url}/")
    gen = wait_ready(page)
    tags = page.locator(".facet[data-field=tag]")
    # Over all 240 events of the range, not the 100 rows shown; one event, two tags.
    assert tags.locator("li[data-value]").evaluate_all(
        "items => items.map(i => [i.dataset.value, i.querySelector('.facet-count').innerText])"
    ) == [["eu-west", "160"], ["prod", "160"], ["staging", "80"]]
    assert "shown rows" not in tags.inner_text()
    shot(page, "explore-tags-facet")
    tags.locator("li[data-value=staging] .facet-value").click()
    gen = wait_ready(page, gen)
    assert page.input_value("#filter") == "tag:staging"
    assert page.locator("#summary strong").inner_text() == "80"
    assert tags.locator("li[data-value]").all_inner_texts()[0].startswith("staging")
    page.fill("#filter", "")
    page.press("#filter", "Enter")
    gen = wait_ready(page, gen)
    page.hover(".facet[data-field=tag] li[data-value=staging]")
    tags.locator("li[data-value=staging] .facet-exclude").click()
    wait_ready(page, gen)
    assert page.input_value("#filter") == "-tag:staging"
    assert page.locator("#summary strong").inner_text() == "160"
    assert tags.locator("li[data-value=staging]").count() == 0
    # Typing tag: suggests the tags from the same facet.
    page.fill("#filter", "")
    page.click("#filter")
    page.keyboard.type("tag:st")
    page.wait_for_selector("#filter-suggestions li:has-text('staging')")


def test_an_expanded_event_filters_by_any_value(seeded: Server, page: Page) -> None:
    page.goto(f"{seeded.url}/")
    gen = wait_ready(page)
    row = page.locator("table.events tbody tr.event-row").first
    row.click()
    detail = page.locator("tr.detail-row")
    assert detail.locator(".data-tree").inner_text().count('"repo"') == 1
    detail.locator(".data-tree .value", has_text='"acme/web"').click()
    gen = wait_ready(page, gen)
    assert page.input_value("#filter") == "data.repo:acme/web"
    row = page.locator("table.events tbody tr.event-row").first
    row.click()
    # A number stays a number; a nested key is a path.
    page.locator("tr.detail-row .data-tree .value.num").last.click()
    wait_ready(page, gen)
    assert page.input_value("#filter").startswith("data.repo:acme/web data.request.status:")
    assert page.locator("tr.event-row").count() > 0


def test_keyboard_slash_enter_escape(seeded: Server, page: Page) -> None:
    page.goto(f"{seeded.url}/")
    gen = wait_ready(page)
    page.locator("body").press("/")
    assert page.evaluate("document.activeElement.id") == "filter"
    page.keyboard.type("type:db.query")
    page.keyboard.press("Escape")  # closes the suggestions, keeps the text
    page.keyboard.press("Enter")
    gen = wait_ready(page, gen)
    assert set(page.locator("tr.event-row td:nth-child(4)").all_inner_texts()) == {"db.query"}
    first = page.locator("table.events tbody tr.event-row").first
    first.focus()
    page.keyboard.press("Enter")
    assert first.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    assert first.get_attribute("aria-expanded") == "false"
    assert page.locator("tr.detail-row").count() == 0


def test_suggestions_offer_fields_then_values(seeded: Server, page: Page, shot) -> None:
    page.goto(f"{seeded.url}/")
    gen = wait_ready(page)
    page.click("#filter")
    page.keyboard.type("sys")
    page.wait_for_selector("#filter-suggestions li:has-text('system')")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.input_value("#filter") == "system:"
    page.keyboard.type("ma")
    # The field's values come from /v1/facets: wait for them, not for the list just closed.
    only = "() => [...document.querySelectorAll('#filter-suggestions li')].map(li => li.innerText)"
    page.wait_for_function(f"() => ({only})().some(text => text.startsWith('mahavishnu'))")
    assert len(page.evaluate(only)) == 1
    shot(page, "explore-suggestions")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # takes the value and runs the filter
    wait_ready(page, gen)
    assert page.input_value("#filter") == "system:mahavishnu"
    assert set(page.locator("tr.event-row td.sys").all_inner_texts()) == {"mahavishnu"}


def test_paging_with_the_cursor(seeded: Server, page: Page) -> None:
    page.goto(f"{seeded.url}/")
    wait_ready(page)
    page.click("button.load-more")
    page.wait_for_function("() => document.querySelectorAll('tr.event-row').length === 200")
    page.click("button.load-more")
    page.wait_for_selector(".more:has-text('End of results')")
    stamps = page.locator("tr.event-row").evaluate_all("rows => rows.map(r => r.dataset.ts)")
    assert len(stamps) == 240
    assert (
        len(set(page.locator("tr.event-row").evaluate_all("rows => rows.map(r => r.dataset.id)")))
        == 240
    )
    assert stamps == sorted(stamps, reverse=True)


def test_context_permalink_and_trace_link(seeded: Server, page: Page, shot) -> None:
    page.goto(f"{seeded.url}/?q=correlation_id:req-0002")
    wait_ready(page)
    rows_ = page.locator("tr.event-row")
    assert rows_.count() == 2
    rows_.nth(1).click()
    detail = page.locator("tr.detail-row")
    detail.locator("button.context-system").click()
    page.wait_for_selector(".context table tr.here")
    context = page.locator(".context table tbody tr")
    # Event #10 (crackerjack): five older crackerjack events, it, and the two newer (#6, #2).
    assert context.count() == 8
    here = page.locator(".context table tr.here td:nth-child(5)").inner_text()
    assert here == rows_.nth(1).locator(".title").inner_text()
    shot(page, "explore-context")
    event_id = rows_.nth(1).get_attribute("data-id")
    assert event_id is not None
    detail.locator("a.permalink").click()
    page.wait_for_selector(".pinned-event")
    assert page.url.endswith(f"/?event={event_id}")
    assert event_id in page.inner_text(".pinned-event")
    page.go_back()
    wait_ready(page, 0)
    page.locator("tr.event-row").first.click()
    page.locator("tr.detail-row a.trace-link").click()
    page.wait_for_url(f"{seeded.url}/trace/req-0002")


def test_time_presets_and_drag_to_zoom(seeded: Server, page: Page) -> None:
    page.goto(f"{seeded.url}/")
    gen = wait_ready(page)
    page.click("button.preset[data-since='-1h']")
    gen = wait_ready(page, gen)
    assert "since=-1h" in page.url
    assert page.get_attribute("button.preset[data-since='-1h']", "aria-pressed") == "true"
    hour = int(page.locator("#summary strong").inner_text())
    assert 30 <= hour <= 41  # one event every 1.5 minutes
    box = page.locator("#histogram .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
    page.mouse.up()
    wait_ready(page, gen)
    assert "until=" in page.url
    zoomed = int(page.locator("#summary strong").inner_text())
    assert 0 < zoomed < hour


def test_copy_as_json(seeded: Server, page: Page) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{seeded.url}/")
    wait_ready(page)
    row = page.locator("table.events tbody tr.event-row").first
    row.click()
    page.click("tr.detail-row button.copy-json")
    page.wait_for_selector("tr.detail-row button.copy-json:text('Copied')")
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert copied["id"] == row.get_attribute("data-id")
    assert copied["data"]["repo"].startswith("acme/")


def test_a_data_path_facet_and_the_live_toggle(seeded: Server, page: Page) -> None:
    page.goto(f"{seeded.url}/")
    gen = wait_ready(page)
    page.fill(".facet-path", "data.repo")
    page.press(".facet-path", "Enter")
    gen = wait_ready(page, gen)
    assert "facets=data.repo" in page.url
    repo = page.locator(".facet[data-field='data.repo']")
    values = repo.locator("li[data-value]").evaluate_all("ls => ls.map(l => l.dataset.value)")
    assert sorted(values) == ["acme/api", "acme/jobs", "acme/web"]
    counts = repo.locator(".facet-count").all_inner_texts()
    assert counts == ["80", "80", "80"]
    repo.locator("li[data-value='acme/jobs'] .facet-value").click()
    wait_ready(page, gen)
    assert page.input_value("#filter") == "data.repo:acme/jobs"
    assert page.locator("#summary strong").inner_text() == "80"
    page.click("a.live-toggle")
    page.wait_for_selector(".view-root[data-status=live]")
    assert page.url.endswith("/live?q=data.repo%3Aacme%2Fjobs")
    assert page.input_value("#filter") == "data.repo:acme/jobs"


def test_a_long_data_path_facet_keeps_its_remove_button(seeded: Server, page: Page) -> None:
    path = "data.http.response.status_code.of_the_upstream_service"
    page.goto(f"{seeded.url}/?facets={path}")
    gen = wait_ready(page)
    panel = page.locator(f".facet[data-field='{path}']")
    remove = panel.locator(".facet-remove")
    box, button = panel.bounding_box(), remove.bounding_box()
    assert box is not None
    assert button is not None
    assert button["x"] + button["width"] <= box["x"] + box["width"]  # within the card
    assert panel.locator("h3 wbr").count() == path.count(".")  # it wraps at the dots
    remove.click()
    wait_ready(page, gen)
    assert "facets=" not in page.url
    assert panel.count() == 0


@pytest.fixture(scope="module")
def hurried(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose reads may run 50 ms, over 20,000 events with nested data."""
    for server in start(tmp_path_factory, "ui-hurried", "--rate-limit", "0",
                        "--query-timeout", "0.05"):  # fmt: skip
        now = datetime.now(UTC)
        for lo in range(0, 20_000, 5_000):
            post(server.url, [
                {"system": "akosha", "event_type": "job.run", "title": f"job {i}",
                 "timestamp": (now - timedelta(seconds=i)).isoformat(),
                 "data": {f"k{j}": {"x": i + j, "pad": "y" * 40} for j in range(8)}}
                for i in range(lo, lo + 5_000)
            ])  # fmt: skip
        yield server


def test_a_read_past_the_budget_says_what_to_do_and_facets_say_not_counted(
    hurried: Server, page: Page, watched: Watched
) -> None:
    # No event matches, so every read checks all 64 terms on every row: past 50 ms.
    heavy = " OR ".join(f"data.k{i % 8}.x:>{10**9 + i}" for i in range(64))
    page.goto(f"{hurried.url}/?q={quote(heavy)}")
    page.wait_for_selector(".view-root[data-state=error]")
    alert = page.locator("[role=alert]").filter(has_text="query_timeout").first.inner_text()
    assert "narrow the time range or the filter" in alert
    assert "eventcollector index add" in alert
    panels = page.locator("aside.facets section.facet")
    assert panels.count() == 5
    assert set(panels.locator(".muted").all_inner_texts()) == {"not counted"}
    watched.console.clear()  # the refused requests (503) the console reports
