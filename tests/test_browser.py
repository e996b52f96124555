"""The explorers and the docs site in a real browser: Debian's chromium driven by Playwright, nothing off 127.0.0.1.

The explorer test serves the explorer app (`browser_explorer.EXPLORER_NB`: `examples/explorer.ipynb`, the
`TradeOffExplorer` over the measured SQuAD sweep, as a user serves it) with Voilà, waits for the figure, moves the
`max $/query` slider with the keyboard and checks that the graph's data follows, fast, with no console error and
no request that fails or leaves the machine. The docs test serves `_docs/` and loads every page.

Both need `chromium` (`apt-get install -y chromium chromium-driver`), Playwright's Python package and Voilà
(`pip install playwright voila`, in `dev_requirements`). Without them the tests fail, saying so;
AIWB_SKIP_BROWSER=1 skips them on purpose. The browser is the system one: never `playwright install`."""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import browser_check  # noqa: E402
import browser_explorer  # noqa: E402

ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots (gitignored)
FIRST_RENDER_S = browser_explorer.FIRST_RENDER_S
ROUND_TRIP_P95_MS = browser_explorer.ROUND_TRIP_P95_MS
MOVES = 12
DOCS_INPUTS = [ROOT / "nbs", ROOT / "tools" / "build_docs.py", ROOT / "tools" / "docs_outputs.py"]


def missing() -> list[str]:
    "What the browser tests need and cannot find, with how to install it."
    return [what for what, there in [
        ("chromium (apt-get install -y chromium chromium-driver)", shutil.which("chromium")),
        ("playwright (pip install playwright)", importlib.util.find_spec("playwright")),
        ("voila (pip install voila)", browser_explorer.VOILA.exists())] if not there]


def require_browser() -> None:
    "Fail, naming what to install, when chromium, Playwright or Voilà is missing; skip if AIWB_SKIP_BROWSER=1."
    if not missing():
        return
    if os.environ.get("AIWB_SKIP_BROWSER") == "1":
        pytest.skip(f"AIWB_SKIP_BROWSER=1: browser tests skipped on purpose; missing {', '.join(missing())}")
    pytest.fail(f"the browser tests need {', '.join(missing())}; never `playwright install`, the browser is Debian's. "
                "Set AIWB_SKIP_BROWSER=1 to skip them.", pytrace=False)


@pytest.fixture(scope="module")
def browser():
    "Debian's chromium, headless, for every test in this module (None when missing: each test then says so)."
    if missing():
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = browser_check.launch(p)
        yield chromium
        chromium.close()


def test_explorer_slider_moves_the_plot(browser, tmp_path):
    require_browser()
    with browser_explorer.voila(browser_explorer.EXPLORER_NB, tmp_path / "home", log=tmp_path / "voila.log") as url:
        run = browser_explorer.drive_explorer(browser, url, moves=MOVES, screenshot=ARTIFACTS / "explorer.png")
    where = f"{browser_explorer.EXPLORER_NB.relative_to(ROOT)} (Voilà log: {tmp_path / 'voila.log'})"
    assert not run.error, f"{where}: {run.error}; console errors: {run.console_errors[:5]}"
    print(f"\nfirst render {run.first_render_s:.2f} s; round trip p50 {run.p50_ms:.0f} ms, p95 {run.p95_ms:.0f} ms "
          f"over {len(run.round_trips_ms)} moves")
    assert run.first_render_s <= FIRST_RENDER_S, f"{where}: first render took {run.first_render_s:.1f} s"
    assert len(run.round_trips_ms) == MOVES
    # every move changed the graph's data (the watcher saw it); Home and End in turn show different point sets
    assert run.points[1] != run.points[2], f"the points did not follow the slider: {run.points}"
    assert run.p95_ms <= ROUND_TRIP_P95_MS, f"slider -> plot p95 {run.p95_ms:.0f} ms: {run.round_trips_ms}"
    assert not run.console_errors, f"console errors: {run.console_errors}"
    assert not run.bad_requests, f"failed or off-host requests: {run.bad_requests}"
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000


def docs_site():
    "`_docs/`, built again (`tools/build_docs.py`) when it is missing or older than a notebook or the build."
    index = browser_check.SITE / "index.html"
    inputs = [f for p in DOCS_INPUTS for f in ([p] if p.is_file() else p.iterdir())]
    if index.exists() and index.stat().st_mtime >= max(f.stat().st_mtime for f in inputs):
        return browser_check.SITE
    build = subprocess.run([sys.executable, str(ROOT / "tools" / "build_docs.py")], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, f"docs build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    return browser_check.SITE


def test_every_docs_page_loads_cleanly(browser):
    require_browser()
    site = docs_site()
    shots = ARTIFACTS / "docs"
    shots.mkdir(parents=True, exist_ok=True)
    server = browser_check.serve(site)
    try:
        root = f"http://127.0.0.1:{server.server_address[1]}"
        pages = sorted(site.glob("*.html"))
        found = browser_check.check_pages(browser, [f"{root}/{page.name}" for page in pages], shots)
    finally:
        server.shutdown()
    assert len(found) == len(pages) >= 20
    problems = {url.rsplit("/", 1)[1]: issues[:5] for url, issues in found.items() if issues}
    assert not problems, f"docs pages with problems: {problems}"


def test_the_docs_check_sees_problems(browser, tmp_path):
    "The checker itself: a console error, a missing file and a request for the web are each reported."
    require_browser()
    (tmp_path / "clean.html").write_text("<html><body><p>fine</p></body></html>")
    (tmp_path / "broken.html").write_text(
        "<html><body><script>console.error('boom')</script><script src='missing.js'></script>"
        "<img src='https://example.invalid/x.png'></body></html>")
    server = browser_check.serve(tmp_path)
    try:
        root = f"http://127.0.0.1:{server.server_address[1]}"
        found = browser_check.check_pages(browser, [f"{root}/clean.html", f"{root}/broken.html"], None)
    finally:
        server.shutdown()
    assert found[f"{root}/clean.html"] == []
    broken = " | ".join(found[f"{root}/broken.html"])
    assert "console: boom" in broken and "HTTP 404" in broken and "remote: https://example.invalid/x.png" in broken
