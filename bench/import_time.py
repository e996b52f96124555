"""Import time of `aiwb` and `aiwb.explorers.patterns` against a bare interpreter start, measured in the same run.

Usage: .venv/bin/python bench/import_time.py [--runs 15]
Prints the median wall time of `python -c "import aiwb, aiwb.explorers.patterns"`, of `python -c "pass"` (the baseline),
their difference (what aiwb adds) and the ratio. Target: the import command under 0.5 s.
"""
import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    rows = [("python -c pass (baseline)", median_seconds("pass", args.runs)),
            ("import aiwb, aiwb.explorers.patterns", median_seconds("import aiwb, aiwb.explorers.patterns", args.runs)),
            ("import aiwb.cli", median_seconds("import aiwb.cli", args.runs))]
    base = rows[0][1]
    print(f"{'command':32} {'median s':>9} {'added s':>8} {'ratio':>6}")
    for name, t in rows:
        print(f"{name:32} {t:9.3f} {t - base:8.3f} {t / base:6.2f}")
    ok = rows[1][1] < 0.5
    print(f"target: import aiwb, aiwb.explorers.patterns < 0.5 s: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
