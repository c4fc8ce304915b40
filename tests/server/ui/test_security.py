"""The UI's security properties in the browser: event text renders inert, keys are
asked for and sent as a header only, and a page of another origin cannot write."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page

from _common import cli, event

from ..conftest import Server, start
from .conftest import post, wait_ready

TITLE = "<img src=x onerror=alert(1)>"
DATA_KEY = "<script>alert(2)</script>"
DATA_VALUE = "<svg onload=alert(3)><b>bold</b>"
TAG = '"><img/src=y/onerror=alert(4)>'  # tags have no whitespace
DESCRIPTION = "<iframe src=javascript:alert(5)></iframe>"
PAYLOADS = [TITLE, DATA_KEY, DATA_VALUE, TAG, DESCRIPTION]


def injected(page: Page) -> int:
    count: int = page.evaluate(
        "document.querySelectorAll('#view img, #view script, #view svg, #view iframe, #view b')"
        ".length"
    )
    return count


def test_xss_payloads_render_as_text(server: Server, page: Page, shot) -> None:
    post(
        server.url,
        [
            event(
                title=TITLE, description=DESCRIPTION, tags=[TAG], correlation_id="xss-1",
                data={DATA_KEY: DATA_VALUE, "nested": {DATA_KEY: [DATA_VALUE]}},
                metadata={"note": TITLE},
            )
        ],
    )  # fmt: skip
    page.goto(f"{server.url}/?q=correlation_id:xss-1")
    wait_ready(page)
    row = page.locator("tr.event-row").first
    assert row.locator(".title").inner_text() == TITLE
    assert row.locator(".tag").inner_text() == TAG
    row.click()
    detail = page.locator("tr.detail-row")
    assert detail.locator(".detail-title").inner_text() == TITLE
    assert detail.locator(".detail-desc").inner_text() == DESCRIPTION
    tree = detail.locator(".data-tree").inner_text()
    assert f'"{DATA_KEY}"' in tree
    assert '"<svg onload=alert(3)><b>bold</b>"' in tree
    assert TAG in page.locator(".facet[data-field=tag]").inner_text()
    # A clicked payload becomes a quoted filter term, not markup.
    detail.locator(".data-tree .value.str").first.click()
    wait_ready(page, 1)
    assert page.input_value("#filter").endswith(
        f'data."{DATA_KEY}":"<svg onload=alert(3)><b>bold</b>"'
    )
    assert page.locator("tr.event-row").count() == 1
    assert injected(page) == 0
    shot(page, "explore-xss")
    page.goto(f"{server.url}/live?q=correlation_id:xss-1")
    page.wait_for_selector("tr.event-row")
    assert page.locator("tr.event-row .title").inner_text() == TITLE
    assert injected(page) == 0
    # conftest: no dialog opened, no CSP violation, no page error.


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    keys_file = tmp_path_factory.mktemp("ui-keys") / "keys.json"
    out = {"file": str(keys_file)}
    for name, scope in (("read", "read"), ("ingest", "ingest")):
        done = cli(
            "keys", "create", "--scope", scope, "--name", name, "--keys-file", str(keys_file)
        )
        assert done.returncode == 0, done.stderr
        out[name] = done.stdout.strip()
    return out


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, str]) -> Iterator[Server]:
    yield from start(tmp_path_factory, "ui-keyed", "--keys-file", keys["file"], "--rate-limit", "0")


def test_with_keys_nothing_loads_without_one(
    keyed: Server, keys: dict[str, str], page: Page, watched, shot
) -> None:
    post(keyed.url, [event(title="secret event")], key=keys["ingest"])
    page.goto(f"{keyed.url}/")
    page.wait_for_selector("#key-dialog[open]")
    assert page.locator("tr.event-row").count() == 0
    assert "secret event" not in page.inner_text("body")
    shot(page, "key-prompt")

    page.fill("#key-input", "eck_nope_nope")
    page.press("#key-input", "Enter")
    page.wait_for_selector("#key-dialog[open] p:has-text('unknown or revoked API key')")
    page.fill("#key-input", keys["ingest"])
    page.press("#key-input", "Enter")
    page.wait_for_selector("#key-dialog[open] p:has-text(\"lacks the 'read' scope\")")
    assert page.locator("tr.event-row").count() == 0

    page.fill("#key-input", keys["read"])
    page.press("#key-input", "Enter")
    wait_ready(page)
    assert page.locator("tr.event-row .title").all_inner_texts() == ["secret event"]
    assert page.evaluate("sessionStorage.getItem('eventcollector.key')") == keys["read"]
    # Live reads the stream with the key in a header too.
    page.click("#nav a:text('Live')")
    page.wait_for_selector(".view-root[data-status=live]")
    post(keyed.url, [event(title="streamed with a key")], key=keys["ingest"])
    page.wait_for_selector("tr.event-row:has-text('streamed with a key')")
    # The key never travels in a URL.
    assert not [u for u in watched.requests if keys["read"] in u or "access_token" in u]
    # 401/403 in the console are the refused requests before the key, not CSP.
    watched.console.clear()


def test_a_page_of_another_origin_cannot_write(server: Server, page: Page) -> None:
    post(server.url, [event(title="must survive")])
    with httpx.Client(base_url=server.url) as c:
        before = c.get("/v1/events/count").json()["count"]
    attack = f"""<!doctype html><body>
    <form id=f method=post action="{server.url}/v1/admin/cleanup" enctype="text/plain">
      <input name='{{"retention_days":0,"q":"' value='x"}}'></form></body>"""
    page.route(
        "http://evil.test/", lambda route: route.fulfill(body=attack, content_type="text/html")
    )
    page.goto("http://evil.test/")
    # A no-cors fetch needs no preflight: the classic cross-site write. (Chromium may
    # also block it as a public page reaching loopback; either way nothing is deleted.)
    page.evaluate(
        """url => fetch(url, {method: "POST", mode: "no-cors", body: '{"retention_days": 0}'})
            .catch(() => null)""",
        f"{server.url}/v1/admin/cleanup",
    )
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    assert '"error":"origin: ' in page.inner_text("body")
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/v1/events/count").json()["count"] == before
