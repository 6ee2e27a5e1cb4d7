"""The built site in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against a server on 127.0.0.1 inside the test's own network namespace.

Checks the home page, the API page of ``MulticastSocket`` and that the search box
answers (Material's search runs in JavaScript, in a web worker). Screenshots are saved
to ``artifacts/site/`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import require_or_skip
from tests.support.netns import Netns
from tests.support.site import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.kernel


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server(netns: Netns, built_site: Path) -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1 of the test's namespace (thread inherits it)."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


@pytest.fixture
def page(server: str, tmp_path: Path) -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        require_or_skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip("playwright is not installed (pip install -e '.[dev]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            pg = browser.new_page()
            pg.set_default_timeout(20_000)
            failed: list[str] = []
            pg.on("requestfailed", lambda r: failed.append(r.url))
            pg.on("pageerror", lambda e: failed.append(f"page error: {e}"))
            pg.failed = failed
            yield pg
        finally:
            browser.close()


def test_home_page(page: Any, server: str) -> None:
    resp = page.goto(server + "/")
    assert resp is not None and resp.status == 200
    assert page.title().startswith("mcastkit")
    assert page.locator("h1").first.inner_text().rstrip("¶") == "mcastkit"
    nav = page.locator("nav.md-nav--primary").inner_text()
    for entry in ("Quick start", "Tutorials", "API reference", "MulticastSocket"):
        assert entry in nav
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=False)
    assert page.failed == [], page.failed


def test_multicastsocket_api_page(page: Any, server: str) -> None:
    resp = page.goto(server + "/api/socket/")
    assert resp is not None and resp.status == 200
    heading = page.locator('[id="mcastkit.MulticastSocket"]')
    assert heading.count() == 1 and "MulticastSocket" in heading.inner_text()
    join = page.locator('[id="mcastkit.MulticastSocket.join"]')
    assert join.count() == 1
    join.scroll_into_view_if_needed()
    text = page.locator("article").inner_text()
    assert "A UDP socket for IPv4 or IPv6 multicast" in text
    page.screenshot(path=str(ARTIFACTS / "api-multicastsocket.png"))
    assert page.failed == [], page.failed


@pytest.mark.parametrize("query, expect_href", [("MulticastSocket", "/api/socket/"),
                                                ("drop-oldest", "/aio/")])
def test_search_answers(page: Any, server: str, query: str, expect_href: str) -> None:
    page.goto(server + "/")
    page.locator("input.md-search__input").click()
    # typed key by key: Material searches on keyboard events
    page.locator("input.md-search__input").press_sequentially(query, delay=20)
    page.wait_for_selector(".md-search-result__item", timeout=20_000)
    meta = page.locator(".md-search-result__meta").inner_text()
    assert "matching document" in meta, meta
    # one snapshot of the list: it may re-render while the results stream in (reading
    # it element by element then waits for an item that no longer exists)
    hrefs = page.eval_on_selector_all(".md-search-result__item > a",
                                      "els => els.map(e => e.getAttribute('href') || '')")
    assert any(expect_href in h for h in hrefs), hrefs
    page.screenshot(path=str(ARTIFACTS / f"search-{query}.png"))
    # following the first hit opens a page of the site
    page.locator(".md-search-result__item > a").first.click()
    page.wait_for_load_state()
    assert page.url.startswith(server)
    assert page.failed == [], page.failed


def test_search_finds_nothing_for_nonsense(page: Any, server: str) -> None:
    page.goto(server + "/")
    page.locator("input.md-search__input").click()
    page.locator("input.md-search__input").press_sequentially("qqxzzyv", delay=20)
    page.wait_for_function(
        "document.querySelector('.md-search-result__meta').innerText.includes('No matching')",
        timeout=20_000)
    assert page.locator(".md-search-result__item").count() == 0
