"""Load every page of the built docs site in a real browser: console errors, failed or remote requests, figures drawn.

Not part of `make test`: it needs Debian's `chromium` (`apt-get install -y chromium`) and Playwright's Python
package (`pip install playwright`; the browser is the system one, never `playwright install`). It serves `_docs/`
on 127.0.0.1 (search fetches `search.json`, which browsers refuse over file://), opens each page, types a query
into the search box of the home page, and saves a screenshot of every figure and widget snapshot.

Usage: python tools/browser_check.py [SHOTS_DIR]   (after `make docs`; exits 1 if a page has a problem)
"""
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

SITE = Path(__file__).resolve().parent.parent / "_docs"


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


def check_page(browser, url: str,  # The page's address
               shots: Path,  # Where screenshots go
               ) -> list[str]:
    "Open one page; return its problems (console errors, failed requests, requests that leave the site)."
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    base = url.rsplit("/", 1)[0]
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on("request", lambda r: problems.append(f"remote: {r.url}") if not r.url.startswith((base, "data:")) else None)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(800)
    name = url.rsplit("/", 1)[1].removesuffix(".html")
    if name == "index":
        page.fill(".smalldocs-search input", "circuit breaker")
        page.wait_for_timeout(800)
        if not page.locator(".smalldocs-search-results a").count():
            problems.append("search found nothing for 'circuit breaker'")
    figures = page.locator(".plotly-graph-div")
    drawn = page.locator(".plotly-graph-div .main-svg").count()
    if figures.count() and not drawn:
        problems.append("figures not drawn")
    for i in range(figures.count()):
        figures.nth(i).screenshot(path=str(shots / f"{name}-figure{i}.png"))
    widgets = page.locator(".widget-snapshot")
    for i in range(widgets.count()):
        widgets.nth(i).screenshot(path=str(shots / f"{name}-widget{i}.png"))
    counts = f"{figures.count()} figures ({drawn} svg layers), {widgets.count()} widgets"
    print(f"{name}: {counts}, {len(problems)} problems")
    page.close()
    return problems


def main() -> int:
    from playwright.sync_api import sync_playwright

    shots = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/aiwb-docs-shots")
    shots.mkdir(parents=True, exist_ok=True)
    server = serve(SITE)
    root = f"http://127.0.0.1:{server.server_address[1]}"
    problems = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        for page in sorted(SITE.glob("*.html")):
            found = check_page(browser, f"{root}/{page.name}", shots)
            if found:
                problems[page.name] = found
        browser.close()
    server.shutdown()
    for name, found in problems.items():
        print(f"{name}:\n  " + "\n  ".join(found[:10]))
    print(f"screenshots in {shots}/; {len(problems)} pages with problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
