"""Cold start: wall time of whole `aiwb` CLI calls on the demo store, beside bare Python and `import duckdb`.

    .venv/bin/python bench/cold_start.py [--runs 5] [--precision fp32|int8]

Builds the demo store (`aiwb ingest data/corpus`) in a temporary AIWB_HOME, exports the ONNX embedding model
if it is not cached yet (not timed: a one-off), then runs every command `--runs` times, interleaved so a busy
moment of the machine hits them all alike, and prints the median, min and max wall time of each beside
`python -c pass` and `python -c "import duckdb"` measured in the same run. Targets on the 2-core machine:
`aiwb ask` ≤ 1.0 s and `aiwb search --mode bm25` ≤ 0.5 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUESTION = "How does the circuit breaker decide to close again?"
EMBED_ONE = "from aiwb.embeddings import embed; embed(['circuit breaker half-open'])"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    "Wall seconds of one run of `cmd` (which must succeed)."
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="embedding_precision of the store")
    args = ap.parse_args()
    aiwb, py = str(BIN / "aiwb"), sys.executable
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "AIWB_HOME": home, "AIWB_EMBEDDING_PRECISION": args.precision,
               "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        t = time.perf_counter()
        timed([aiwb, "ingest", str(REPO / "data" / "corpus")], env)  # builds the store (and the ONNX model, once)
        print(f"demo store built in {time.perf_counter() - t:.1f} s (AIWB_HOME={home}, embedding_precision={args.precision})")
        cases = {
            "python -c pass": [py, "-c", "pass"],
            'python -c "import duckdb"': [py, "-c", "import duckdb"],
            "aiwb --help": [aiwb, "--help"],
            "aiwb search --mode bm25": [aiwb, "search", "--mode", "bm25", "circuit breaker half-open"],
            "aiwb search (vector)": [aiwb, "search", "circuit breaker half-open"],
            "aiwb ask": [aiwb, "ask", QUESTION],
            # what aiwb.embeddings alone costs a process: import, load the model, embed one query
            "embed one query, onnx (aiwb.embeddings)": [py, "-c", EMBED_ONE],
            "embed one query, torch (sentence-transformers)": [py, "-c", EMBED_ONE],
        }
        envs = {name: env for name in cases}
        envs["embed one query, torch (sentence-transformers)"] = {**env, "AIWB_EMBEDDING_BACKEND": "torch"}
        for name, cmd in cases.items():
            timed(cmd, envs[name])  # warm the page cache: we measure start-up work, not the disk
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                times[name].append(timed(cmd, envs[name]))
    base = statistics.median(times["python -c pass"])
    duck = statistics.median(times['python -c "import duckdb"'])
    targets = {"aiwb search --mode bm25": 0.5, "aiwb ask": 1.0}
    print(f"\nmedian of {args.runs} runs, {os.cpu_count()} cores")
    print("| command | median s | min s | max s | × python -c pass | × import duckdb | target |")
    print("|---|---|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        target = targets.get(name)
        verdict = f"≤ {target} s: {'PASS' if med <= target else 'FAIL'}" if target else ""
        print(f"| {name} | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {med / base:.1f} | {med / duck:.1f} | {verdict} |")


if __name__ == "__main__":
    main()
