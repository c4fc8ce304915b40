"""Trace (/trace/{correlation_id}) in the browser: a trace sent through the OTLP traces
door (span ids, parents, an error, an exception span event) and a JSON event beside it;
one bar per event, nested by parent span, in timestamp order; the detail; Explore links;
keyboard; an unknown id; XSS payloads rendered inert."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from ..conftest import Server
from .conftest import post

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
XSS = "<img src=x onerror=alert(1)>"
# Correlation ids and components take no whitespace, commas (or, in a URL path, slashes).
XSS_ID = "'\"><marquee>trace<marquee>"


def _attrs(**values: str) -> list[dict[str, Any]]:
    return [{"key": k.replace("_", "."), "value": {"stringValue": v}} for k, v in values.items()]


# The trace starts a minute ago (one instant for every span of it).
BASE_NS = time.time_ns() - 60 * 10**9


def _span(span_id: str, parent: str, name: str, start_ms: float, end_ms: float, **extra: Any):
    base = BASE_NS
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 2 if not parent else 3,
        "startTimeUnixNano": str(base + int(start_ms * 1e6)),
        "endTimeUnixNano": str(base + int(end_ms * 1e6)),
        **extra,
    }


def _service(name: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resource": {"attributes": _attrs(service_name=name)},
        "scopeSpans": [{"scope": {"name": "shop"}, "spans": spans}],
    }


@pytest.fixture(scope="module")
def trace(server: Server) -> Server:
    failed = _span(
        "00000000000000c3", "00000000000000b2", "charge card", 40, 95,
        status={"code": 2, "message": "card declined"},
        events=[{"name": "exception", "timeUnixNano": str(BASE_NS + 90 * 10**6),
                 "attributes": _attrs(exception_type="CardDeclined",
                                      exception_message="card declined")}],
    )  # fmt: skip
    body = {
        "resourceSpans": [
            _service(
                "shop-api",
                [
                    # Sent out of order: the view orders by time and nests by parent.
                    _span("00000000000000b1", "00000000000000a1", "SELECT cart", 5, 25),
                    _span("00000000000000a1", "", "POST /checkout", 0, 120),
                    _span("00000000000000b2", "00000000000000a1", "call payments", 30, 110),
                ],
            ),
            _service("payments", [failed]),
        ]
    }
    with server.client() as c:
        r = c.post("/v1/traces", json=body)
    assert r.status_code == 200, r.text
    # A plain event of the same trace, without span ids or duration: a marker.
    at = datetime.fromtimestamp(BASE_NS / 1e9, UTC) + timedelta(milliseconds=115)
    post(server.url, [{"system": "mailer", "event_type": "mail.queued", "title": "Receipt queued",
                   "correlation_id": TRACE, "timestamp": at.isoformat()}])  # fmt: skip
    return server


def bars(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.eval_on_selector_all(
        ".wf-row",
        "rows => rows.map(r => ({title: r.querySelector('.wf-title').textContent,"
        " depth: Number(r.dataset.depth), ts: r.dataset.ts, span: r.dataset.span,"
        " marker: r.querySelector('.wf-bar').classList.contains('wf-marker'),"
        " error: r.classList.contains('wf-row-error'),"
        " left: parseFloat(r.querySelector('.wf-bar').style.left),"
        " width: parseFloat(r.querySelector('.wf-bar').style.width || '0')}))",
    )
    return rows


def ready(page: Page) -> None:
    page.wait_for_selector(".trace-view[data-state=ready], .trace-view[data-state=empty]")


def test_waterfall_nests_spans_and_orders_by_time(trace: Server, page: Page, shot) -> None:
    page.goto(f"{trace.url}/trace/{TRACE}")
    ready(page)
    found = bars(page)
    with trace.client() as c:
        events = c.get(f"/v1/traces/{TRACE}").json()["events"]
    assert len(found) == len(events) == 6  # one bar per event
    assert [(b["title"], b["depth"]) for b in found] == [
        ("POST /checkout", 0),
        ("SELECT cart", 1),
        ("call payments", 1),
        ("charge card", 2),
        ("CardDeclined: card declined", 3),  # the exception, under its span
        ("Receipt queued", 0),
    ]
    # Depth first, each level in timestamp order; every bar where its timestamp is.
    assert [b["left"] for b in found] == sorted(b["left"] for b in found)
    assert found[0]["left"] == 0
    assert found[0]["width"] == pytest.approx(100, abs=0.5)
    assert found[1]["width"] == pytest.approx(20 / 120 * 100, abs=0.5)
    assert [b["marker"] for b in found] == [False, False, False, False, True, True]
    assert [b["error"] for b in found] == [False, False, False, True, True, False]
    assert page.locator(".trace-total").inner_text() == "120 ms"
    assert page.locator(".trace-errors").inner_text() == "2"
    assert page.locator(".trace-legend .legend-item").all_inner_texts() == [
        "shop-api", "payments", "mailer",
    ]  # fmt: skip
    shot(page, "trace")


def test_clicking_a_bar_shows_the_event_and_keeps_it_in_the_url(
    trace: Server, page: Page, shot
) -> None:
    page.goto(f"{trace.url}/trace/{TRACE}")
    ready(page)
    page.locator(".wf-row", has_text="charge card").click()
    detail = page.locator(".trace-detail")
    assert detail.locator(".detail-title").inner_text() == "charge card"
    assert detail.locator(".data-tree").inner_text().count("card declined") == 1
    assert "event=" in page.url
    shot(page, "trace-detail")
    page.reload()
    ready(page)
    assert page.locator(".trace-detail .detail-title").inner_text() == "charge card"
    # Escape closes; the keyboard walks the rows and collapses a span.
    page.keyboard.press("Escape")
    assert page.locator(".trace-detail").is_hidden()
    page.locator(".wf-row").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator(".trace-detail .detail-title").inner_text() == "call payments"
    page.keyboard.press("ArrowLeft")  # collapse "call payments"
    assert page.locator(".wf-row:visible").count() == 4
    page.keyboard.press("ArrowRight")
    assert page.locator(".wf-row:visible").count() == 6


def test_explore_links_to_the_trace_and_back(trace: Server, page: Page) -> None:
    page.goto(f"{trace.url}/trace/{TRACE}")
    ready(page)
    page.locator(".explore-link").click()
    page.wait_for_selector("#view > .view-root[data-state=ready]")
    assert page.locator("table.events tbody tr.event-row").count() == 6
    assert f"correlation_id:{TRACE}" in page.locator("[data-filter]").input_value()
    page.locator("tr.event-row", has_text="Receipt queued").click()
    page.locator("tr.detail-row a.trace-link").click()
    ready(page)
    assert page.url.endswith(f"/trace/{TRACE}")
    assert page.locator(".wf-row").count() == 6


def test_unknown_trace_and_server_errors_are_shown(trace: Server, page: Page) -> None:
    page.goto(f"{trace.url}/trace/no-such-trace")
    ready(page)
    assert "No events carry this correlation id" in page.locator(".trace-view").inner_text()
    page.goto(f"{trace.url}/trace/{'x' * 300}")  # longer than a correlation id may be
    page.wait_for_selector(".trace-view[data-state=error], .trace-view[data-state=empty]")


def test_xss_payloads_render_as_text(trace: Server, page: Page) -> None:
    post(trace.url, [{
        "system": "x-sys", "event_type": "xss.test", "title": XSS, "severity": "error",
        "correlation_id": XSS_ID, "tags": ["<script>alert(2)</script>"],
        "data": {XSS: XSS, "span_id": XSS, "parent_span_id": XSS, "nested": {"k": XSS}},
        "source_component": "<svg/onload=alert(3)>", "duration_ms": 5,
    }, {
        "system": "x-sys", "event_type": "xss.test", "title": "child of xss",
        "correlation_id": XSS_ID, "data": {"parent_span_id": XSS},
    }])  # fmt: skip
    page.goto(f"{trace.url}/trace/{quote(XSS_ID, safe='')}")
    ready(page)
    assert page.locator(".trace-id").inner_text() == XSS_ID
    assert [
        int(d) for d in page.eval_on_selector_all(".wf-row", "r => r.map(x => x.dataset.depth)")
    ] == [0, 1]
    page.locator(".wf-row").first.click()
    detail = page.locator(".trace-detail")
    assert detail.locator(".detail-title").inner_text() == XSS
    assert XSS in detail.locator(".data-tree").inner_text()
    assert "<svg/onload=alert(3)>" in detail.inner_text()
    assert "<script>alert(2)</script>" in detail.inner_text()
    assert page.locator("#view img, #view script, #view marquee, #view svg").count() == 0
    # The conftest fails the test if a dialog opened or the page reported an error.
