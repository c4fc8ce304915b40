"""The shell: every view's path serves the one page with the security headers, the
assets are cached by version, and the page asks no other host for anything."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page

from ..conftest import Server
from .conftest import Watched

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGES = {
    "/": "explore",
    "/live": "live",
    "/trace/req-0001": "trace",
    "/errors": "errors",
    "/overview": "overview",
    "/alerts": "alerts",
}


def test_every_view_path_serves_the_shell_with_security_headers(server: Server) -> None:
    with server.client() as c:
        bodies = set()
        for path, view in PAGES.items():
            r = c.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            assert r.headers["content-security-policy"] == CSP
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert r.headers["cache-control"] == "no-cache"
            # The one shell, announcing the modules of the path's view.
            preload = re.compile(rf'<link rel="modulepreload" href="[^"]+/js/views/{view}\.js">\n?')
            assert preload.search(r.text), r.text
            bodies.add(preload.sub("", r.text))
        assert len(bodies) == 1
        (shell,) = bodies
        # No inline script or style: every script is a file under the versioned path.
        assert "<style" not in shell
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", shell, re.S)
        assert scripts
        assert all(body.strip() == "" and "src=" in attrs for attrs, body in scripts)


def test_assets_are_versioned_and_cached(server: Server) -> None:
    with server.client() as c:
        shell = c.get("/").text
        app = re.search(r'src="(/ui/assets/[0-9a-f]{12}/js/app\.js)"', shell)
        assert app is not None, shell
        r = c.get(app.group(1))
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/javascript; charset=utf-8"
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-security-policy"] == CSP
        assert "export function navigate" in r.text
        stale = c.get("/ui/assets/000000000000/js/app.js")
        assert stale.status_code == 200
        assert stale.headers["cache-control"] == "no-cache"
        missing = c.get(app.group(1).replace("app.js", "nope.js"))
        assert missing.status_code == 404
        assert missing.json()["error"].startswith("path:")
        css = c.get(app.group(1).replace("js/app.js", "css/app.css"))
        assert css.headers["content-type"] == "text/css; charset=utf-8"


def test_unknown_paths_stay_json_errors(server: Server) -> None:
    r = httpx.get(f"{server.url}/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "path: not found"}


def test_navigation_between_views(server: Server, page: Page, watched: Watched) -> None:
    page.goto(f"{server.url}/overview")
    page.wait_for_selector("#nav a[aria-current=page]:text('Overview')")
    page.click("#nav a:text('Errors')")
    page.wait_for_url(f"{server.url}/errors")
    page.wait_for_selector("#nav a[aria-current=page]:text('Errors')")
    page.go_back()
    page.wait_for_selector("#nav a[aria-current=page]:text('Overview')")
    # Offline: nothing but this server was asked for anything.
    assert watched.requests
    assert all(u.startswith(server.url) for u in watched.requests), watched.requests


def test_theme_toggle_switches_and_persists(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/errors")
    page.click("#theme-button")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.click("#theme-button")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.reload()
    page.wait_for_selector("#theme-button:text('Dark')")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
