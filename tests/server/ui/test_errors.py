"""Errors (/errors) in the browser over seeded error issues: the list with counts and
sparklines, filters by status and system kept in the URL, sorting, the detail with the
issue's events, triage over the API, the empty state and XSS payloads rendered inert."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from _common import cli

from ..conftest import Server, start
from .conftest import Watched, post, wait_ready

XSS = "<img src=x onerror=alert(1)>"


def _errors(now: datetime) -> list[dict[str, Any]]:
    def error(i: int, system: str, title: str, severity: str = "error", **kw: Any):
        at = now - timedelta(minutes=47 * i)
        return {"system": system, "event_type": "error.occurred", "severity": severity,
                "title": title, "timestamp": at.isoformat(), **kw}  # fmt: skip

    return [
        *(error(i, "billing", f"Timeout after {100 + i}ms calling 10.0.0.{i}",
                data={"error_type": "TimeoutError"}) for i in range(12)),
        *(error(i * 3, "oneiric", "Disk /dev/sdb full", "critical") for i in range(3)),
        # One fingerprint for all four, so one issue seen in three systems.
        *(error(i * 5, system, "Connection refused by db-1", data={"fingerprint": "db-refused"})
          for i, system in enumerate(["billing", "mahavishnu", "mahavishnu", "crackerjack"])),
        error(2, "crackerjack", XSS, data={XSS: XSS, "error_type": XSS}, tags=["<b>x</b>"]),
        # Not errors: no issue.
        {"system": "billing", "event_type": "job.done", "title": "Invoice sent"},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def issues(server: Server) -> dict[str, dict[str, Any]]:
    post(server.url, _errors(datetime.now(UTC)))
    with server.client() as c:
        found = c.get("/v1/issues", params={"limit": 100}).json()["issues"]
    return {i["title"]: i for i in found}


def ready(page: Page) -> None:
    page.wait_for_selector(
        ".errors-view[data-state=ready], .errors-view[data-state=empty],"
        " .errors-view[data-state=error]"
    )


def listed(page: Page) -> list[tuple[str, str, str]]:
    """(title, total count, in range) per row, in order."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "tr.issue-row",
        "rows => rows.map(r => [r.querySelector('.issue-title').textContent,"
        " r.querySelector('.count').textContent, r.querySelector('.in-range').textContent])",
    )
    return [(a, b, c) for a, b, c in rows]


def test_errors_lists_the_issues_with_counts_and_sparklines(
    server: Server, issues: dict[str, dict[str, Any]], page: Page, shot
) -> None:
    page.goto(f"{server.url}/errors?since=-24h")
    ready(page)
    rows = listed(page)
    assert sorted(rows) == sorted([
        ("Timeout after 100ms calling 10.0.0.0", "12", "12"),
        ("Disk /dev/sdb full", "3", "3"),
        ("Connection refused by db-1", "4", "4"),
        (XSS, "1", "1"),
    ])  # fmt: skip
    # Newest last seen first (the default order), as the API lists them.
    with server.client() as c:
        api = c.get("/v1/issues", params={"status": "unresolved"}).json()["issues"]
    assert [r[0] for r in rows] == [i["title"] for i in api]
    assert page.locator("tr.issue-row svg.sparkline").count() == 4
    timeout = page.locator("tr.issue-row", has_text="Timeout after")
    assert timeout.locator(".chip").all_inner_texts() == ["billing"]
    refused = page.locator("tr.issue-row", has_text="Connection refused")
    assert sorted(refused.locator(".chip").all_inner_texts()) == [
        "billing", "crackerjack", "mahavishnu",
    ]  # fmt: skip
    shot(page, "errors")


def test_sorting_and_filters_live_in_the_url(
    server: Server, issues: dict[str, dict[str, Any]], page: Page
) -> None:
    page.goto(f"{server.url}/errors")
    ready(page)
    page.locator("th button.sort[data-order=count]").click()
    page.wait_for_url("**/errors?order_by=count")
    ready(page)
    assert [r[1] for r in listed(page)] == ["12", "4", "3", "1"]
    page.locator("select.system-filter").select_option("mahavishnu")
    page.wait_for_url("**system=mahavishnu**")
    page.wait_for_function("() => document.querySelectorAll('tr.issue-row').length === 1")
    assert [r[0] for r in listed(page)] == ["Connection refused by db-1"]
    page.reload()
    ready(page)
    assert [r[0] for r in listed(page)] == ["Connection refused by db-1"]
    assert page.locator("select.system-filter").input_value() == "mahavishnu"
    page.go_back()  # order_by=count, all systems
    ready(page)
    page.wait_for_function("() => document.querySelectorAll('tr.issue-row').length === 4")
    # A status without issues: the empty state.
    page.locator(".status-filter button[data-status=ignored]").click()
    page.wait_for_selector(".errors-view[data-state=empty]")
    assert "No error issues match" in page.locator(".errors-body").inner_text()


def test_detail_shows_the_issue_and_its_events_and_triages(
    server: Server, issues: dict[str, dict[str, Any]], page: Page, shot
) -> None:
    disk = issues["Disk /dev/sdb full"]
    page.goto(f"{server.url}/errors?since=-24h")
    ready(page)
    page.locator("tr.issue-row", has_text="Disk /dev/sdb full").click()
    detail = page.locator(".issue-detail")
    detail.locator("table.issue-event-table tbody tr.event-row").first.wait_for()
    assert detail.locator("tr.event-row").count() == 3
    assert disk["fingerprint"] in detail.locator(".fields").inner_text()
    assert f"issue={disk['id']}" in page.url
    assert detail.locator("a.latest-event").get_attribute("href") == (
        f"/?event={disk['last_event_id']}"
    )
    # Every event of the issue in Explore, over its lifetime.
    href = detail.locator("a.issue-in-explore").get_attribute("href") or ""
    other = page.context.new_page()  # the detail stays open here; the link opens in another
    other.goto(f"{server.url}{href}")
    wait_ready(other)
    assert other.locator("table.events tbody tr.event-row").count() == 3
    assert other.input_value("#filter") == f"fingerprint:{disk['fingerprint']}"
    other.close()
    shot(page, "errors-detail")
    detail.locator("button.triage-resolved").click()
    # Resolved: gone from the unresolved list, listed under Resolved.
    page.wait_for_function("() => document.querySelectorAll('tr.issue-row').length === 3")
    with server.client() as c:
        assert c.get(f"/v1/issues/{disk['id']}").json()["status"] == "resolved"
    page.locator(".status-filter button[data-status=resolved]").click()
    page.wait_for_function("() => document.querySelectorAll('tr.issue-row').length === 1")
    page.locator("tr.issue-row").first.focus()
    page.keyboard.press("Enter")
    page.locator(".issue-detail button.triage-unresolved").click()
    page.wait_for_selector(".errors-view[data-state=empty]")
    with server.client() as c:
        assert c.get(f"/v1/issues/{disk['id']}").json()["status"] == "unresolved"


def test_xss_in_an_issue_renders_as_text(
    server: Server, issues: dict[str, dict[str, Any]], page: Page
) -> None:
    page.goto(f"{server.url}/errors")
    ready(page)
    row = page.locator("tr.issue-row", has_text=XSS)
    assert row.locator(".issue-title").inner_text() == XSS
    row.click()
    detail = page.locator(".issue-detail")
    detail.locator("tr.event-row").first.click()
    assert XSS in detail.locator(".data-tree").inner_text()
    assert "<b>x</b>" in detail.locator("tr.detail-row").inner_text()
    assert page.locator("#view img, #view b, #view script").count() == 0


def test_a_server_error_is_shown_as_a_message(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/errors?status=closed")
    page.wait_for_selector(".errors-view[data-state=error]")
    assert page.locator(".errors-body [role=alert]").inner_text().startswith("status: one of")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    keys_file = tmp_path_factory.mktemp("errors-keys") / "keys.json"
    keys = {}
    for scope in ("read", "ingest", "triage"):
        done = cli("keys", "create", "--scope", scope, "--keys-file", str(keys_file))
        assert done.returncode == 0, done.stderr
        keys[scope] = done.stdout.strip()
    for server in start(tmp_path_factory, "errors-keyed", "--keys-file", str(keys_file)):
        yield server, keys


def test_triage_needs_a_key_with_the_triage_scope(
    keyed: tuple[Server, dict[str, str]], page: Page, watched: Watched
) -> None:
    server, keys = keyed
    post(server.url, _errors(datetime.now(UTC))[:3], key=keys["ingest"])
    page.goto(f"{server.url}/errors")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", keys["read"])
    page.press("#key-input", "Enter")
    ready(page)
    page.locator("tr.issue-row").first.click()
    page.locator(".issue-detail button.triage-resolved").click()
    page.wait_for_selector(".triage-message [role=alert]")
    assert "triage scope" in page.locator(".triage-message").inner_text()
    # The shell asks for another key, naming the scope; one with the triage scope does it.
    page.wait_for_selector("#key-dialog[open]")
    assert "Give a key with the triage scope" in page.locator("#key-dialog").inner_text()
    page.fill("#key-input", keys["triage"])
    page.press("#key-input", "Enter")
    ready(page)
    page.locator("tr.issue-row").first.click()
    page.locator(".issue-detail button.triage-resolved").click()
    page.wait_for_selector(".errors-view[data-state=empty]")
    headers = {"Authorization": f"Bearer {keys['read']}"}
    with httpx.Client(base_url=server.url, headers=headers) as c:
        (issue,) = c.get("/v1/issues").json()["issues"]
    assert issue["status"] == "resolved"
    watched.console.clear()  # the refused requests (401, 403) the console reports
