"""The explorer in a real browser, N times in a row with no retries: how often it passes, and how fast it is.

Usage: .venv/bin/python bench/browser.py [--runs 20] [--moves 12] [--notebook PATH]
One Voilà server (tools/browser_explorer.py) and one chromium serve every run; each run is a new page, so a new
kernel runs the notebook. A run passes when the figure draws within 15 s, all its slider moves change the plot with
a p95 round trip within 300 ms, and the page logs no console error and makes no failed or off-host request (the
limits of tests/test_browser.py). Prints runs passed, first render p50/max, the round trip p50/p95 over every move
of every run, console errors, and each failure. Needs Debian's chromium, playwright and voila (dev requirements).
"""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import browser_explorer  # noqa: E402
from browser_check import launch  # noqa: E402


def nearest_rank(values: list, pct: int) -> float:
    "The `pct` percentile of `values`, nearest rank."
    ordered = sorted(values)
    return ordered[max(0, -(-pct * len(ordered) // 100) - 1)] if ordered else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--moves", type=int, default=12)
    p.add_argument("--notebook", type=Path, default=browser_explorer.EXPLORER_NB)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    notebook = args.notebook.resolve()
    runs = []
    with tempfile.TemporaryDirectory() as home, browser_explorer.voila(notebook, Path(home)) as url, \
            sync_playwright() as pw:
        browser = launch(pw)
        for i in range(args.runs):
            run = browser_explorer.drive_explorer(browser, url, moves=args.moves)
            runs.append(run)
            verdict = "pass" if not run.failures(args.moves) else "FAIL"
            print(f"run {i + 1:2}: {verdict}  first render {run.first_render_s:5.2f} s  round trip p50 "
                  f"{run.p50_ms:4.0f} ms p95 {run.p95_ms:4.0f} ms", flush=True)
        browser.close()
    renders = [r.first_render_s for r in runs if r.first_render_s == r.first_render_s]
    trips = [t for r in runs for t in r.round_trips_ms]
    passed = sum(not r.failures(args.moves) for r in runs)
    shown = notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook
    rows = [("notebook", str(shown)),
            ("runs passed", f"{passed} / {len(runs)}"),
            ("first render p50 / max", f"{statistics.median(renders):.2f} s / {max(renders):.2f} s" if renders else "-"),
            (f"round trip p50 / p95 ({len(trips)} moves)",
             f"{statistics.median(trips):.0f} ms / {nearest_rank(trips, 95):.0f} ms" if trips else "-"),
            ("console errors", str(sum(len(r.console_errors) for r in runs))),
            ("failed or off-host requests", str(sum(len(r.bad_requests) for r in runs)))]
    print()
    for name, value in rows:
        print(f"{name:34} {value}")
    for i, r in enumerate(runs, 1):
        for problem in r.failures(args.moves)[:5]:
            print(f"run {i}: {problem}")
    return 0 if passed == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
