"""Load every page of the built docs site in a real browser: console errors, failed or remote requests, figures drawn.

It needs Debian's `chromium` (`apt-get install -y chromium chromium-driver`) and Playwright's Python package
(`pip install playwright`; the browser is the system one, never `playwright install`). It serves `_docs/` on
127.0.0.1 (search fetches `search.json`, which browsers refuse over file://), opens each page, types a query into
the search box of the home page, and saves a screenshot of every figure and widget snapshot. A request that would
leave 127.0.0.1 is refused, and reported. `tests/test_browser.py` runs the same checks under `make test`.

Usage: python tools/browser_check.py [SHOTS_DIR]   (after `make docs`; exits 1 if a page has a problem)
"""
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

SITE = Path(__file__).resolve().parent.parent / "_docs"
# Without the last five, chromium spends its first seconds calling Google services, which fail offline.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
SETTLE_MS = 100  # after `load` and the figures: late scripts log their errors


def launch(playwright):
    "Debian's chromium (on PATH as `chromium`), headless and quiet: it makes no request of its own."
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    "Serves files without logging each request."

    def log_message(self, *args) -> None:
        "Log nothing."


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    "Serve `folder` on a free port of 127.0.0.1, in a daemon thread."
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def watch(page, base: str,  # The site's address: requests elsewhere are refused
          problems: list,  # Where problems go; `problems[:] = []` starts a new page's list
          ) -> None:
    "Record `page`'s console errors, page errors, failed requests, responses >= 400 and requests off the site."
    def refuse(route):
        problems.append(f"remote: {route.request.url}")
        route.abort()

    page.route(lambda u: not u.startswith((base, "data:", "blob:")), refuse)
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}") if r.url.startswith(base) else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


def inspect_page(page, url: str,  # The page's address
                 problems: list,  # The list `watch` fills
                 shots: Path | None,  # Where screenshots go (None: no screenshots)
                 ) -> list[str]:
    "Load `url` in `page`, check its figures (and the home page's search), take screenshots; return its problems."
    page.goto(url, wait_until="load")
    figures = page.locator(".plotly-graph-div")
    if figures.count():
        try:
            page.wait_for_function("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                   ".every(d => d.querySelector('.main-svg'))", timeout=5000)
        except Exception:
            problems.append("figures not drawn")
    page.wait_for_timeout(SETTLE_MS)
    name = url.rsplit("/", 1)[1].removesuffix(".html") or "index"
    if name == "index":
        page.fill(".smalldocs-search input", "circuit breaker")
        try:
            page.wait_for_selector(".smalldocs-search-results a", timeout=3000)
        except Exception:
            problems.append("search found nothing for 'circuit breaker'")
    widgets = page.locator(".widget-snapshot")
    for kind, found in [("figure", figures), ("widget", widgets)] if shots else []:
        for i in range(found.count()):
            found.nth(i).screenshot(path=str(shots / f"{name}-{kind}{i}.png"))
    print(f"{name}: {figures.count()} figures, {widgets.count()} widgets, {len(problems)} problems")
    return list(problems)


def check_page(browser, url: str,  # The page's address
               shots: Path | None,  # Where screenshots go (None: no screenshots)
               ) -> list[str]:
    "Open one page in a new tab; return its problems (console errors, failed requests, requests off the site)."
    return check_pages(browser, [url], shots)[url]


def check_pages(browser, urls: list[str],  # The pages' addresses, all on one site
                shots: Path | None,  # Where screenshots go (None: no screenshots)
                ) -> dict[str, list[str]]:
    "Load `urls` one after the other in one tab (a tab per page costs twice the time); return url -> its problems."
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems, found = [], {}
    watch(page, urls[0].rsplit("/", 1)[0] + "/", problems)
    for url in urls:
        problems[:] = []
        found[url] = inspect_page(page, url, problems, shots)
    page.close()
    return found


def main() -> int:
    from playwright.sync_api import sync_playwright

    shots = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/aiwb-docs-shots")
    shots.mkdir(parents=True, exist_ok=True)
    server = serve(SITE)
    root = f"http://127.0.0.1:{server.server_address[1]}"
    with sync_playwright() as p:
        browser = launch(p)
        found = check_pages(browser, [f"{root}/{page.name}" for page in sorted(SITE.glob("*.html"))], shots)
        browser.close()
    server.shutdown()
    problems = {url.rsplit("/", 1)[1]: issues for url, issues in found.items() if issues}
    for name, issues in problems.items():
        print(f"{name}:\n  " + "\n  ".join(issues[:10]))
    print(f"screenshots in {shots}/; {len(problems)} pages with problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
