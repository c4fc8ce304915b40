"""Alerts (/alerts) in the browser over a server evaluating real rules: the rules with
their state, a rule's groups and history, silencing a rule and a group and ending a
silence over the API, a key without the admin scope told so, and names rendered as text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from _common import cli, wait_until

from ..conftest import Server, start
from .conftest import Watched, post

XSS = "<img src=x onerror=alert(1)>"
RULES: list[dict[str, Any]] = [
    {"name": "errors per system", "filter": "severity:>=error", "window": "1h",
     "condition": "count >= 1", "group_by": "system", "every": "0.05s", "notify": []},
    {"name": f"quiet {XSS}", "filter": "type:heartbeat", "window": "1h",
     "condition": "count > 5", "every": "0.05s", "notify": []},
]  # fmt: skip


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("alert-ui-keys") / "keys.json"
    found: dict[str, Any] = {"file": path}
    for scope in ("read", "admin"):
        done = cli("keys", "create", "--scope", scope, "--keys-file", str(path))
        assert done.returncode == 0, done.stderr
        found[scope] = done.stdout.strip()
    return found


@pytest.fixture(scope="module")
def evaluating(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Any]) -> Iterator[Server]:
    options = (
        "--rate-limit",
        "0",
        "--keys-file",
        str(keys["file"]),
        "--alerts-min-interval",
        "0.05",
    )
    for server in start(tmp_path_factory, "ui-alerts", *options):
        with server.client(keys["admin"]) as c:
            for rule in RULES:
                assert c.post("/v1/alerts", json=rule).status_code == 201
        post(server.url, [
            {"system": s, "event_type": "job.failed", "severity": "error", "title": "failed"}
            for s in ("billing", "billing", "crackerjack")
        ], keys["admin"])  # fmt: skip
        with server.client(keys["read"]) as c:
            wait_until(lambda: _firing(c) == {"billing", "crackerjack"}, timeout=20)
        yield server


def _firing(client: httpx.Client) -> set[str]:
    alerts = client.get("/v1/alerts").json()["alerts"]
    grouped = next(a for a in alerts if a["name"] == "errors per system")
    return {s["group"] for s in grouped["states"] if s["state"] == "firing"}


def _open(page: Page, server: Server, key: str, path: str = "/alerts") -> None:
    page.goto(f"{server.url}{path}")
    page.wait_for_selector("#key-dialog[open]")  # the server has keys
    page.fill("#key-input", key)
    page.press("#key-input", "Enter")
    page.wait_for_selector(".alerts-view[data-state=ready]")


def test_rules_with_their_state_and_a_rules_history(
    evaluating: Server, keys: dict[str, Any], page: Page, shot: Any
) -> None:
    _open(page, evaluating, keys["read"])
    rows = page.locator("tr.alert-row")
    assert rows.count() == 2
    grouped = page.locator("tr.alert-row[data-name='errors per system']")
    assert grouped.locator(".status").inner_text().lower() == "firing"
    assert "billing, crackerjack" in grouped.inner_text()
    assert "count >= 1 over 1h" in grouped.inner_text()
    quiet = page.locator("tr.alert-row").nth(1)
    assert quiet.locator(".alert-name").inner_text() == f"quiet {XSS}"  # text, not markup
    assert page.locator(".alerts-view img").count() == 0
    shot(page, "alerts")
    grouped.click()
    page.wait_for_selector(".alert-history-table")
    assert "rule=errors+per+system" in page.url
    groups = page.locator(".alert-groups tr.group-row").evaluate_all(
        "rows => rows.map(r => r.dataset.group)"
    )
    assert sorted(groups) == ["billing", "crackerjack"]
    kinds = page.locator(".alert-history-table td:nth-child(3)").all_inner_texts()
    assert kinds.count("transition") == 2
    shot(page, "alert-detail")
    page.reload()  # the open rule is in the URL
    page.wait_for_selector(".alert-history-table")
    assert page.locator(".alert-detail-title").inner_text() == "errors per system"


def test_silencing_a_group_and_ending_it(
    evaluating: Server, keys: dict[str, Any], page: Page, shot: Any
) -> None:
    _open(page, evaluating, keys["admin"], "/alerts?rule=errors+per+system")
    page.wait_for_selector(".alert-groups")
    group = page.locator(".alert-groups tr.group-row[data-group='billing']")
    group.locator("select.silence-for").select_option("4h")
    page.wait_for_selector("tr.silence-row")
    row = page.locator("tr.silence-row")
    assert "errors per system" in row.inner_text()
    assert "billing" in row.inner_text()
    with evaluating.client(keys["read"]) as c:
        (silence,) = c.get("/v1/silences").json()["silences"]
    assert (silence["rule"], silence["group"]) == ("errors per system", "billing")
    assert "1 group silenced" in page.inner_text("tr.alert-row[data-name='errors per system']")
    assert "silenced" in group.inner_text()
    shot(page, "alerts-silenced")
    row.locator("button.end-silence").click()
    page.wait_for_selector("tr.silence-row", state="detached")
    with evaluating.client(keys["read"]) as c:
        assert c.get("/v1/silences").json() == {"silences": []}


def test_a_read_key_is_told_that_silencing_needs_the_admin_scope(
    evaluating: Server, keys: dict[str, Any], page: Page, watched: Watched
) -> None:
    _open(page, evaluating, keys["read"])
    page.locator("tr.alert-row").first.locator("select.silence-for").select_option("1h")
    page.wait_for_selector(".alerts-message [role=alert]")
    assert "Silencing needs a key with the admin scope" in page.inner_text(".alerts-message")
    page.wait_for_selector("#key-dialog[open]")  # and the shell asks for one
    assert "Give a key with the admin scope" in page.locator("#key-dialog").inner_text()
    with evaluating.client(keys["read"]) as c:
        assert c.get("/v1/silences").json() == {"silences": []}
    watched.console.clear()  # the refused request (403) the console reports
