"""Drive a trade-off explorer notebook in a real browser: Voilà runs the notebook, Debian's chromium shows it.

Voilà executes the notebook in a fresh kernel on each page load and shows only its outputs, with live widgets.
The explorer is the last output that holds a slider described `max $/query`; its plotly `FigureWidget` is the
graph div in the same output. `drive_explorer` opens the page, times the first render, moves the slider with the
keyboard (Home and End in turn, so every move changes the data), and times each move from the key press to the
moment the graph's data changed, all in the page's own clock. `tests/test_browser.py` asserts on the result,
`bench/browser.py` repeats it.

Nothing leaves 127.0.0.1. Voilà's `lab` template links Font Awesome 5 from a CDN, although its own
`voila-style.js` already bundles Font Awesome 5.15.4 with its fonts: the page gets an empty style sheet for those
two links (`FONT_AWESOME`). Any other request off 127.0.0.1 is refused and reported.

Usage: python tools/browser_explorer.py [NOTEBOOK]   (prints one run's figures and saves a screenshot)
"""
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from browser_check import launch

ROOT = Path(__file__).resolve().parent.parent
# The notebook under test: the explorer app a user serves with `voila examples/explorer.ipynb`.
EXPLORER_NB = ROOT / "examples" / "explorer.ipynb"  # the explorer as an app: what a user serves with Voilà
SLIDER = "max $/query"
FIRST_RENDER_S = 15  # the limits a run must meet
ROUND_TRIP_P95_MS = 300
FONT_AWESOME = "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@"
# jupytext (a dev tool) installs a JupyterLab extension that cannot load outside JupyterLab: Voilà logs an error.
DENY_EXTENSIONS = ["jupyterlab-jupytext"]
VOILA = Path(sys.executable).parent / "voila"

# In the page: find the explorer's slider and graph, and record key presses and data changes in the page's clock.
_WATCH = """(description) => {
  const labels = [...document.querySelectorAll('.widget-slider label.widget-label')]
    .filter(l => l.textContent.trim() === description);
  if (!labels.length) return null;
  const out = labels.at(-1).closest('.jp-OutputArea-output') || document.body;
  const gd = out.querySelector('.js-plotly-plot');
  if (!gd || !gd.data || !gd.data.length || !gd.querySelector('.main-svg')) return null;
  if (window.__explorer) return performance.now();
  const fingerprint = () => JSON.stringify(gd.data.map(
    t => [t.x, t.y, t.marker, t.opacity, t.selectedpoints, t.visible]));
  const w = window.__explorer = {gd, keys: [], changes: [], last: fingerprint()};
  // points drawn: a hidden point has x null (the explorer's filters) or opacity 0
  w.points = () => gd.data.map(t => (t.x || []).filter((x, i) => x !== null && x !== undefined &&
    !(t.marker && Array.isArray(t.marker.opacity) && t.marker.opacity[i] === 0)).length);
  w.slider = labels.at(-1).closest('.widget-slider').querySelector('.noUi-target').noUiSlider;
  document.addEventListener('keydown', () => w.keys.push(performance.now()), true);
  new MutationObserver(() => {
    const now = fingerprint();
    if (now !== w.last) { w.last = now; w.changes.push(performance.now()); }
  }).observe(gd, {subtree: true, childList: true, attributes: true, characterData: true});
  return performance.now();
}"""


@dataclass
class ExplorerRun:
    "What one page load of the explorer showed."
    first_render_s: float = float("nan")  # navigation start -> the figure drawn with its data
    round_trips_ms: list = field(default_factory=list)  # key press -> the graph's data changed, one per move
    points: list = field(default_factory=list)  # points per trace: before the first move, then after each move
    console_errors: list = field(default_factory=list)  # console errors and uncaught page errors
    bad_requests: list = field(default_factory=list)  # failed requests, HTTP >= 400, requests off 127.0.0.1
    error: str = ""  # why the run stopped, if it did

    def failures(self, moves: int) -> list[str]:
        "Why this run fails the explorer's limits, having been asked for `moves` moves; empty if it passes."
        found = [self.error] if self.error else []
        if not self.first_render_s <= FIRST_RENDER_S:
            found.append(f"first render {self.first_render_s:.1f} s > {FIRST_RENDER_S} s")
        if len(self.round_trips_ms) != moves:
            found.append(f"{len(self.round_trips_ms)} of {moves} moves changed the plot")
        elif not self.p95_ms <= ROUND_TRIP_P95_MS:
            found.append(f"round trip p95 {self.p95_ms:.0f} ms > {ROUND_TRIP_P95_MS} ms")
        if len(self.points) > 2 and self.points[1] == self.points[2]:
            found.append(f"the points did not follow the slider: {self.points[:3]}")
        return found + self.console_errors + self.bad_requests

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.round_trips_ms) if self.round_trips_ms else float("nan")

    @property
    def p95_ms(self) -> float:
        "95th percentile, nearest rank."
        ordered = sorted(self.round_trips_ms)
        return ordered[max(0, -(-95 * len(ordered) // 100) - 1)] if ordered else float("nan")


def free_port() -> int:
    "A port of 127.0.0.1 that nothing listens on now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def voila(notebook: Path,  # The notebook to serve
          home: Path,  # AIWB_HOME for its kernels
          log: Path | None = None,  # Where Voilà's output goes (default: a file in a temporary folder)
          timeout: float = 30,  # Seconds to wait for Voilà to listen
          ):
    "Serve `notebook` with Voilà on a free port of 127.0.0.1, no token, no browser; yield its URL."
    port = free_port()
    jupyter = Path(tempfile.mkdtemp(prefix="aiwb-voila-"))  # no user config, kernelspecs or runtime files
    log = log or jupyter / "voila.log"
    env = {**os.environ, "AIWB_HOME": str(home), "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
           "JUPYTER_DATA_DIR": str(jupyter / "data"), "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = [str(VOILA), str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
            "--no-browser", "--show_tracebacks=True", f"--VoilaConfiguration.extension_denylist={DENY_EXTENSIONS}"]
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=notebook.parent,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"voila exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"voila did not listen on {port} in {timeout} s:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()  # Voilà shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # its own session: only Voilà and the kernels it started
            proc.wait()
        shutil.rmtree(jupyter, ignore_errors=True)


def _watch_requests(page, base: str, run: ExplorerRun) -> None:
    "Record console errors and bad requests of `page` in `run`; serve Font Awesome's links empty, refuse the web."
    def off_host(route):
        if route.request.url.startswith(FONT_AWESOME):
            route.fulfill(status=200, content_type="text/css", body="/* bundled in voila-style.js */")
        else:
            run.bad_requests.append(f"off-host (refused): {route.request.url}")
            route.abort()

    page.route(lambda url: not url.startswith((base, "data:", "blob:")), off_host)
    page.on("console", lambda m: run.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: run.console_errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: run.bad_requests.append(f"failed: {r.url} {r.failure}")
            if r.url.startswith(base) else None)
    page.on("response", lambda r: run.bad_requests.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


def drive_explorer(browser, url: str,  # The Voilà page of the explorer
                   moves: int = 12,  # Slider moves to time
                   screenshot: Path | None = None,  # Where to save a picture of the page after the moves
                   render_timeout_s: float = 60,  # Give up on the first render after this long
                   move_timeout_s: float = 5,  # Give up on a move whose data has not changed after this long
                   ) -> ExplorerRun:
    "Open the explorer in a new page, time its first render and `moves` slider moves; never raises for what it sees."
    run = ExplorerRun()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _watch_requests(page, url, run)
    try:
        page.goto(url, wait_until="commit")
        first = page.wait_for_function(_WATCH, arg=SLIDER, timeout=render_timeout_s * 1000)
        run.first_render_s = first.json_value() / 1000
        run.points.append(page.evaluate("() => window.__explorer.points()"))
        label = page.locator("label.widget-label", has_text=re.compile(rf"^\s*{re.escape(SLIDER)}\s*$"))
        handle = page.locator(".widget-slider").filter(has=label).last.locator(".noUi-handle")
        handle.focus()
        at_min = page.evaluate("() => { const s = window.__explorer.slider;"
                               " return Number(s.get()) <= s.options.range.min; }")
        keys = ["End", "Home"] if at_min else ["Home", "End"]
        for i in range(moves):
            seen = page.evaluate("() => window.__explorer.changes.length")
            page.keyboard.press(keys[i % 2])
            page.wait_for_function(f"() => window.__explorer.changes.length > {seen}", timeout=move_timeout_s * 1000)
            run.round_trips_ms.append(page.evaluate(
                f"() => window.__explorer.changes[{seen}] - window.__explorer.keys.at(-1)"))
            run.points.append(page.evaluate("() => window.__explorer.points()"))
        page.wait_for_timeout(300)  # late console errors
        if screenshot:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    except Exception as e:  # a timeout or a page that went away: the run failed, say where
        run.error = f"{type(e).__name__}: {str(e).splitlines()[0]} (after {len(run.round_trips_ms)} moves)"
        if screenshot:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-failed.png")), full_page=True)
    finally:
        page.close()
    return run


def main() -> int:
    from playwright.sync_api import sync_playwright

    notebook = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else EXPLORER_NB
    shot = ROOT / "tests" / "artifacts" / "explorer.png"
    with tempfile.TemporaryDirectory() as home, voila(notebook, Path(home)) as url, sync_playwright() as p:
        browser = launch(p)
        run = drive_explorer(browser, url, screenshot=shot)
        browser.close()
    print(f"{notebook.relative_to(ROOT)}: first render {run.first_render_s:.2f} s, round trip p50 {run.p50_ms:.0f} ms"
          f" p95 {run.p95_ms:.0f} ms over {len(run.round_trips_ms)} moves, points {run.points[:3]}...")
    failures = run.failures(12)
    for problem in failures:
        print("  " + problem)
    print(f"screenshot: {shot.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
