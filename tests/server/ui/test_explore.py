"""Explore (/) over seeded data: rows, histogram, facets, the filter and its errors,
expanded events, paging, context, the permalink, the keyboard."""

from __future__ import annotations

from playwright.sync_api import Page

from ..conftest import Server
from .conftest import wait_ready


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
