"""Live (/live): the server's filtered stream in the page, pause/resume, the row bound,
and reconnecting with catch-up after the server restarts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from playwright.sync_api import Page

from _common import event
from eventcollector import EventCollector
from reliability._support import Server as RestartableServer

from ..conftest import Server
from .conftest import post

ROW = "table.live-table tbody tr.event-row"


def wait_live(page: Page) -> None:
    page.wait_for_selector(".view-root[data-status=live]")


def test_a_posted_event_appears_within_two_seconds(server: Server, page: Page, shot) -> None:
    post(server.url, [event(title=f"earlier {i}", severity="info") for i in range(3)])
    page.goto(f"{server.url}/live?q=-severity:debug")
    wait_live(page)
    page.wait_for_function(f"() => document.querySelectorAll('{ROW}').length === 3")  # backfill
    post(server.url, [event(title="new arrival", severity="error", tags=["live"])])
    page.wait_for_selector(f"{ROW}:has-text('new arrival')", timeout=2_000)
    assert page.locator(ROW).first.locator(".title").inner_text() == "new arrival"
    # The server applies the filter: a debug event never arrives.
    post(server.url, [event(title="filtered out", severity="debug")])
    post(server.url, [event(title="after it", severity="warning")])
    page.wait_for_selector(f"{ROW}:has-text('after it')", timeout=2_000)
    assert page.locator(f"{ROW}:has-text('filtered out')").count() == 0
    shot(page, "live")


def test_pause_and_resume(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/live?q=system:pausing")
    wait_live(page)
    page.click("button.pause")
    page.wait_for_selector(".view-root[data-status=paused]")
    post(server.url, [event(system="pausing", title="held while paused")])
    page.wait_for_selector(".live-count:has-text('1 new while paused')")
    assert page.locator(f"{ROW}:has-text('held while paused')").count() == 0
    page.click("button.pause")
    page.wait_for_selector(f"{ROW}:has-text('held while paused')")
    wait_live(page)


def test_the_page_keeps_a_bounded_number_of_rows(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/live?q=system:bounded")
    wait_live(page)
    post(server.url, [event(system="bounded", title=f"flood {i}") for i in range(600)])
    page.wait_for_selector(f"{ROW}:has-text('flood 599')")
    page.wait_for_function(f"() => document.querySelectorAll('{ROW}').length === 500")
    assert page.locator(f"{ROW}:has-text('flood 99')").count() == 0  # the oldest went
    assert page.locator(f"{ROW}:has-text('flood 100')").count() == 1


def test_reconnects_and_catches_up_after_a_restart(tmp_path: Path, page: Page) -> None:
    server = RestartableServer(tmp_path, "--rate-limit", "0")
    try:
        post(server.url, [event(title="before the restart")])
        page.goto(f"{server.url}/live")
        wait_live(page)
        page.wait_for_selector(f"{ROW}:has-text('before the restart')")
        server.stop()
        page.wait_for_selector(".view-root[data-status=reconnecting]")

        # Stored while no server ran: only the catch-up after reconnecting can show it.
        async def store_offline() -> None:
            collector = EventCollector(server.db)
            await collector.start()
            await collector.collect(system="deployer", event_type="x.y", title="while away")
            await collector.stop()

        # In a thread: sync Playwright keeps this thread's event loop running.
        worker = threading.Thread(target=asyncio.run, args=(store_offline(),))
        worker.start()
        worker.join(30)
        server.start()
        wait_live(page)
        page.wait_for_selector(f"{ROW}:has-text('while away')")
        post(server.url, [event(title="after the restart")])
        page.wait_for_selector(f"{ROW}:has-text('after the restart')", timeout=2_000)
        titles = page.locator(f"{ROW} .title").all_inner_texts()
        assert titles == ["after the restart", "while away", "before the restart"]
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


def test_a_filter_error_stops_the_stream_and_shows_the_column(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/live?q=severity:loud")
    page.wait_for_selector("#filter-error:not(.hidden)")
    assert page.locator("#filter-error").inner_text().endswith("at column 10")
    assert page.locator(".view-root").get_attribute("data-status") == "failed"
