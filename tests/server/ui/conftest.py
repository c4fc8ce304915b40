"""The UI in a real browser: Debian's Chromium driven by Playwright, over the real
server (``eventcollector serve`` in a subprocess, see tests/server/conftest.py).

One browser for the package (in effect the session), a fresh context and page per
test. Every page records its console, page errors and dialogs; a test fails at
teardown if the page reported a Content-Security-Policy violation or a JavaScript
error, or opened a dialog.
Screenshots go to ``$EVENTCOLLECTOR_UI_SCREENSHOTS`` when set (docs/ui/ is made so),
else under the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, sync_playwright

from ..conftest import Server, start

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS_ENV = "EVENTCOLLECTOR_UI_SCREENSHOTS"


# Package scope, not session: sync Playwright keeps an event loop on the main thread
# while it runs, which would break the asyncio tests that pytest runs after this package.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
    )
    yield browser
    browser.close()


@dataclass
class Watched:
    """What a page said while a test ran."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]


@pytest.fixture
def watched() -> Watched:
    return Watched()


def _page(browser: Browser, watched: Watched, **context: Any) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, **context)
    page = ctx.new_page()
    page.set_default_timeout(10_000)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            watched.console.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("dialog", on_dialog)
    page.on("request", lambda request: watched.requests.append(request.url))
    yield page
    ctx.close()
    assert not watched.dialogs, watched.dialogs
    assert not watched.csp_violations(), watched.csp_violations()
    assert not watched.errors, watched.errors


@pytest.fixture
def page(browser: Browser, watched: Watched) -> Iterator[Page]:
    yield from _page(browser, watched)


@pytest.fixture
def dark_page(browser: Browser, watched: Watched) -> Iterator[Page]:
    yield from _page(browser, watched, color_scheme="dark")


@pytest.fixture
def shot(request: pytest.FixtureRequest, tmp_path: Path):
    """``shot(page, name)``: save a screenshot of the page as ``name``.png."""
    configured = os.environ.get(SCREENSHOTS_ENV)
    directory = Path(configured) if configured else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return save


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory, "ui", "--rate-limit", "0")


def post(url: str, events: list[dict[str, Any]], key: str | None = None) -> list[str]:
    """Store ``events`` over HTTP at the server ``url``; returns their ids."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        r = c.post("/v1/events", json=events)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(events), r.text
    ids: list[str] = r.json()["ids"]
    return ids


def sample_events(now: datetime | None = None) -> list[dict[str, Any]]:
    """A small, varied data set over the last six hours (what the screenshots show)."""
    now = now or datetime.now(UTC)
    systems = ["deployer", "mahavishnu", "crackerjack", "billing"]
    kinds = [
        ("workflow.started", "info", "Workflow started", None),
        ("workflow.completed", "info", "Workflow completed", 1840.5),
        ("http.request", "debug", "GET /api/orders 200", 12.3),
        ("cache.miss", "warning", "Cache miss for tenant settings", None),
        ("db.query", "error", "Database connection refused", 5003.0),
        ("deploy.failed", "critical", "Deploy of web-frontend failed", 92000.0),
    ]
    out = []
    retried = "Retried three times; the pool was exhausted."
    for i in range(240):
        kind, severity, title, duration = kinds[(i * 7) % len(kinds) if i % 11 else 0]
        if i % 13 == 0:
            kind, severity, title, duration = kinds[4]
        system = systems[i % len(systems)]
        out.append(
            {
                "system": system,
                "event_type": kind,
                "severity": severity,
                "title": f"{title} #{i}",
                "timestamp": (now - timedelta(minutes=i * 1.5)).isoformat(),
                "tags": ["prod", "eu-west"] if i % 3 else ["staging"],
                "data": {
                    "repo": f"acme/{['web', 'api', 'jobs'][i % 3]}",
                    "attempt": i % 4,
                    "request": {"method": "GET", "status": 200 + (i % 5) * 100},
                },
                "metadata": {"host": f"node-{i % 5}"},
                "correlation_id": f"req-{i // 4:04d}" if i % 2 == 0 else None,
                "source_component": ["scheduler", "api", "worker"][i % 3],
                "duration_ms": duration,
                "description": retried if i % 13 == 0 else "",
            }
        )
    return [{k: v for k, v in e.items() if v not in (None, "")} for e in out]


@pytest.fixture(scope="module")
def seeded(server: Server) -> Server:
    post(server.url, sample_events())
    return server


def wait_ready(page: Page, after: int = 0) -> int:
    """Wait until Explore has rendered rows, histogram and facets (a run newer than
    ``after``); returns that run's number."""
    handle = page.wait_for_function(
        "after => { const r = document.querySelector('#view > .view-root');"
        " return r && r.dataset.state === 'ready' && Number(r.dataset.generation) > after"
        " && Number(r.dataset.generation); }",
        arg=after,
    )
    generation: int = handle.json_value()
    return generation
