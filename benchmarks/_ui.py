"""The web UI's figures, measured in the browser (Debian's Chromium via Playwright)
against the real server over a SQLite file of ``--events`` events (issue 13):

- ``navigation_ms``: from the start of the navigation to Explore (``/``, the default
  last 24 hours) to its first rows, to rows and histogram drawn (the issue's figure),
  and to everything including the facets; ``cold`` in a fresh browser context, ``warm``
  with the assets cached (they are immutable);
- ``filter_change_ms``: from Enter in the filter box to the new rows (the issue's
  figure), to rows and histogram, and to everything, per filter;
- ``shipped_kb``: the JavaScript and CSS the page loads, uncompressed.

Targets: navigation <= 500 ms, filter change <= 300 ms, shipped <= 300 KB. The times
come from the view's own performance marks (js/views/explore.js). The database
is ``<workdir>/events.db`` when the ingest phase made it (or ``--workdir`` kept one with
enough events), else ``<workdir>/ui.db`` seeded here. Figures are printed, not asserted.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks._data import generate
from benchmarks._http import free_port, start_server

CHROMIUM = "/usr/bin/chromium"
FILTERS = [
    "system:deployer",
    "severity:>=error",
    "data.repo:acme",
    "database timeout",
    "type:workflow.failed -tag:staging",
]
_READY = """after => {
  const r = document.querySelector('#view > .view-root');
  const h = document.getElementById('histogram');
  return r && ['ready', 'error'].includes(r.dataset.state) && Number(r.dataset.generation) > after
    && h && Number(h.dataset.drawn || 0) > 0 && Number(r.dataset.generation);
}"""
# When the view had each part of that run drawn (its own performance marks), not when
# this process noticed.
# A part that failed (past the server's statement budget, say) has no mark: null.
_MARKS = """g => Object.fromEntries(['rows', 'histogram', 'ready'].map(name => [name,
  performance.getEntriesByName('explore-' + name).find(m => m.detail === g)?.startTime
  ?? null]))"""
_RUN_FILTER = """text => {
  const input = document.getElementById('filter');
  input.value = text;
  window.__filterStart = performance.now();
  input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
}"""


async def _seed(db: Path, n: int) -> None:
    from eventcollector import Event, EventCollector

    batch: list[Event] = []
    async with EventCollector(db_path=db) as collector:
        for fields in generate(n):
            batch.append(Event.create(**fields))
            if len(batch) == 5_000:
                await collector.ingest(batch)
                batch = []
        if batch:
            await collector.ingest(batch)


def _database(workdir: Path, n: int) -> tuple[Path, float | None]:
    import sqlite3

    for candidate in (workdir / "events.db", workdir / "ui.db"):
        if candidate.exists():
            with sqlite3.connect(candidate) as conn:
                (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
            if count >= n:
                return candidate, None
    db = workdir / "ui.db"
    for stale in workdir.glob("ui.db*"):
        stale.unlink()
    started = time.perf_counter()
    asyncio.run(_seed(db, n))
    return db, round(time.perf_counter() - started, 1)


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples), 1),
        "max": round(max(samples), 1),
        "runs": len(samples),
    }


def run_ui(workdir: Path, events: int, repeat: int = 5) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        return {"skipped": f"no Chromium at {CHROMIUM} (apt-get install chromium)"}
    db, seeded_s = _database(workdir, events)
    port = free_port()
    server = start_server(db, port)
    url = f"http://127.0.0.1:{port}/"
    report: dict[str, Any] = {"events": events, "database": db.name}
    if seeded_s is not None:
        report["seeded_s"] = seeded_s
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            cold: list[dict[str, float | None]] = []
            for i in range(repeat):
                # A fresh context: nothing cached, as on a first visit.
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                sizes: dict[str, int] = {}
                if i == 0:
                    page.on("response", functools.partial(_count_asset, sizes=sizes))
                cold.append(_navigate(page, url))
                if i == 0:
                    report["shipped_kb"] = round(sum(sizes.values()) / 1024, 1)
                    report["assets"] = len(sizes)
                if i < repeat - 1:
                    context.close()
            # The same context again: the immutable assets come from the cache.
            warm = [_navigate(page, url) for _ in range(repeat)]
            report["navigation_ms"] = {"cold": _figures(cold), "warm": _figures(warm)}
            report["filter_change_ms"] = _filters(page, repeat)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    report["targets"] = {
        "navigation_ms (rows_and_histogram)": 500,
        "filter_change_ms (rows)": 300,
        "shipped_kb": 300,
    }
    return report


def _count_asset(response: Any, sizes: dict[str, int]) -> None:
    if response.request.resource_type in ("script", "stylesheet"):
        sizes[response.url] = len(response.body())


def _marks(page: Any, generation: int, since: float) -> dict[str, float | None]:
    """When run ``generation`` had its rows, its histogram, and everything drawn (None
    for a part it could not draw)."""
    at: dict[str, float | None] = page.evaluate(_MARKS, generation)
    rows, histogram, ready = at["rows"], at["histogram"], at["ready"]
    return {
        "rows": None if rows is None else rows - since,
        "rows_and_histogram": None
        if rows is None or histogram is None
        else max(rows, histogram) - since,
        "complete": None if ready is None or rows is None or histogram is None else ready - since,
    }


def _navigate(page: Any, url: str) -> dict[str, float | None]:
    page.goto(url)
    generation = page.wait_for_function(_READY, arg=0, timeout=60_000).json_value()
    return _marks(page, generation, 0.0)  # marks count from the navigation's start


def _figures(samples: list[dict[str, float | None]]) -> dict[str, Any]:
    """Each part's summary over the runs that drew it, and how many could not."""
    out: dict[str, Any] = {}
    for name in samples[0]:
        drawn = [v for s in samples if (v := s[name]) is not None]
        out[name] = _summary(drawn) if drawn else {"runs": 0}
        if len(drawn) < len(samples):
            out[name]["failed"] = len(samples) - len(drawn)
    return out


def _filters(page: Any, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    generation = int(
        page.evaluate("Number(document.querySelector('.view-root').dataset.generation)")
    )
    for text in FILTERS:
        samples = []
        for _ in range(repeat):
            # Alternate with the empty filter, so that every run is a change.
            for q in ("", text):
                page.evaluate(_RUN_FILTER, q)
                generation = page.wait_for_function(
                    _READY, arg=generation, timeout=60_000
                ).json_value()
                if q:
                    samples.append(_marks(page, generation, page.evaluate("window.__filterStart")))
        out[text] = _figures(samples)
    return out
