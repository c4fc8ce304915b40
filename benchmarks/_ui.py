"""The web UI's figures, measured in the browser (Debian's Chromium via Playwright)
against the real server over a SQLite file of ``--events`` events (issue 13):

- ``navigation_ms``: from the start of the navigation to Explore (``/``, the default
  last 24 hours) to its first rows, histogram and facets drawn; ``cold`` in a fresh
  browser context, ``warm`` with the assets cached (they are immutable);
- ``filter_change_ms``: from Enter in the filter box to the new rows, histogram and
  facets, per filter;
- ``shipped_kb``: the JavaScript and CSS the page loads, uncompressed.

Targets: navigation <= 500 ms, filter change <= 300 ms, shipped <= 300 KB. The database
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
from benchmarks._http import _free_port, _start_server

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
  return r && r.dataset.state === 'ready' && Number(r.dataset.generation) > after
    && h && Number(h.dataset.drawn || 0) > 0 && Number(r.dataset.generation);
}"""
# When the view had that run drawn (its own performance mark), not when we noticed.
_READY_AT = (
    """g => performance.getEntriesByName('explore-ready').find(m => m.detail === g).startTime"""
)
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
    port = _free_port()
    server = _start_server(db, port)
    url = f"http://127.0.0.1:{port}/"
    report: dict[str, Any] = {"events": events, "database": db.name}
    if seeded_s is not None:
        report["seeded_s"] = seeded_s
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            cold: list[float] = []
            shipped = 0
            for i in range(repeat):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                sizes: dict[str, int] = {}
                if i == 0:
                    page.on("response", functools.partial(_count_asset, sizes=sizes))
                page.goto(url)
                first = page.wait_for_function(_READY, arg=0, timeout=60_000).json_value()
                cold.append(page.evaluate(_READY_AT, first))
                if i == 0:
                    shipped = sum(sizes.values())
                    report["assets"] = len(sizes)
                warm: list[float] = []
                if i == repeat - 1:
                    for _ in range(repeat):
                        page.goto(url)
                        first = page.wait_for_function(_READY, arg=0, timeout=60_000).json_value()
                        warm.append(page.evaluate(_READY_AT, first))
                    report["navigation_ms"] = {"cold": _summary(cold), "warm": _summary(warm)}
                    report["filter_change_ms"] = _filters(page, repeat)
                context.close()
            browser.close()
        report["shipped_kb"] = round(shipped / 1024, 1)
    finally:
        server.terminate()
        server.wait(timeout=60)
    report["targets"] = {"navigation_ms": 500, "filter_change_ms": 300, "shipped_kb": 300}
    return report


def _count_asset(response: Any, sizes: dict[str, int]) -> None:
    if response.request.resource_type in ("script", "stylesheet"):
        sizes[response.url] = len(response.body())


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
                    done = page.evaluate(_READY_AT, generation)
                    samples.append(done - page.evaluate("window.__filterStart"))
        out[text] = _summary(samples)
    everything = [s for figure in out.values() for s in [figure["median"]]]
    out["median_of_medians"] = round(statistics.median(everything), 1)
    return out
