"""Sweep benchmark: the cost-latency-quality front of the composed pipeline, measured, with paired 95 % CIs.

Two sweeps through `aiwb.explorers.sweeps.run_sweep` (the same code `aiwb sweep` runs), then the cost of
recomputing a front:

* bundled: the bundled corpus and golden set (22 questions, each asked twice), 32 configurations: search mode x
  top_k x exact cache x prompt compression (all the context, or the half closest to the question) x streaming
  (time to first text). Small: its CIs are wide, so few configurations separate.
* squad500: 500 questions sampled (seeded) from the SQuAD v1.1 dev half (`../shared/data`), over all 1,023
  paragraphs, 12 configurations: search mode x top_k x embedding precision (fp32 / int8 ONNX, one store each).
  quality = F1 (official normalisation); $/query = the measured tokens at claude-3-5-haiku's list price.
* front: recomputing the statistical front of 1,000 configurations from their pairwise tests, against the
  point-estimate Pareto front (what Optuna draws) measured in the same run, as a ratio.

Each sweep's table lists every configuration with its ratio to the sweep's baseline configuration (the first
one), measured in the same run. The trade-offs are saved as JSON under bench/results/ for the explorers notebook
and the docs site. Measured configurations are kept under --home, so a re-run reuses them (use a fresh --home to
measure again).

    python bench/sweep.py                         # both sweeps and the front timing (< 10 min on 2 cores)
    python bench/sweep.py --only bundled          # one part: bundled, squad500 or front
    python bench/sweep.py --front-only            # = --only front (and the explorer's slider update)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from aiwb.eval import load_squad  # noqa: E402
from aiwb.explorers.front import front, paired_tests, tradeoff_to_json, _estimate_dominates  # noqa: E402
from aiwb.explorers.sweeps import (_cases, front_table, open_sweep_store, projection_checks,  # noqa: E402
                                   projections_table, run_sweep, sweep_samples, sweep_spec)

RESULTS = REPO / "bench" / "results"
PRICE = "claude-3-5-haiku-20241022"
console = Console(width=160)


def squad_files(home: Path, n: int, seed: int) -> tuple[Path, Path]:
    "The SQuAD dev half as a folder of paragraphs and a golden JSONL of `n` sampled questions."
    root = Path(os.environ.get("AIWB_SHARED_DATA", REPO.parent / "shared" / "data")) / "squad-v1.1-dev-half"
    if not root.is_dir():
        sys.exit(f"error: {root} not found\n  hint: set AIWB_SHARED_DATA to the folder holding squad-v1.1-dev-half")
    docs, cases = load_squad(root)
    corpus, golden = home / "squad-corpus", home / f"squad-{n}-{seed}.jsonl"
    if not corpus.is_dir():
        corpus.mkdir(parents=True)
        for d in docs:
            (corpus / f"{d.id}.md").write_text(f"# {d.title}\n\n{d.text}\n", encoding="utf-8")
    sample = random.Random(seed).sample(cases, n)
    with golden.open("w", encoding="utf-8") as f:
        for c in sample:
            f.write(json.dumps({"id": c.id, "input": c.input, "reference": c.reference,
                                "relevant_docs": [f"{d}.md" for d in c.relevant_docs], "tags": c.tags}) + "\n")
    return corpus, golden


def ratio_table(trade, title: str) -> Table:
    "Every measured configuration against the sweep's baseline (the first configuration), as ratios."
    pts = trade.measured()
    base = pts[0]
    t = Table(title=f"{title}: ratio to the baseline {base.label}")
    for col in ("id", "settings", "quality", "p50", "p99", "$/query", "status"):
        t.add_column(col)
    status = trade.front().status
    for p in pts:
        r = lambda o: f"{p.values[o] / base.values[o]:.2f}x" if base.values[o] else "-"
        t.add_row(p.id, p.label, r("quality"), r("p50_ms"), r("p99_ms"), r("cost_usd"), status[p.id])
    return t


def run_one(name: str, spec, home: Path) -> dict:
    "Run one sweep, print its tables, save its trade-off; return its figures."
    start = time.perf_counter()
    trade = run_sweep(spec, home, progress=True)
    seconds = time.perf_counter() - start
    console.print(front_table(trade))
    console.print(projections_table(trade))
    console.print(ratio_table(trade, name))
    for note in trade.notes:
        console.print(note)
    con = open_sweep_store(home)
    ids, _, samples = sweep_samples(con, spec, _cases(spec))
    con.close()
    checks = projection_checks(trade, dict(zip(ids, samples["latency_ms"])), spec.repeats)
    if checks:
        t = Table(title=f"{name}: offline levers, projected beside measured (projected / measured)")
        for col in ("lever", "from", "measured", "$/query", "p50", "p99"):
            t.add_column(col)
        for c in checks:
            t.add_row(c["lever"], c["basis"], c["measured"],
                      *(f"{c[k]:.2f}" if c.get(k) else "-" for k in ("cost_usd projected/measured",
                                                                     "p50_ms projected/measured",
                                                                     "p99_ms projected/measured")))
        console.print(t)
    f = trade.front()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"sweep-{name}.json").write_text(json.dumps(tradeoff_to_json(trade), indent=1) + "\n", encoding="utf-8")
    counts = {s: sum(v == s for v in f.status.values()) for s in ("front", "tie", "dominated")}
    console.print(f"[bold]{name}[/bold]: {len(trade.measured())} configurations in {seconds:.0f} s; {counts}; "
                  f"saved bench/results/sweep-{name}.json")
    return {"configurations": len(trade.measured()), "seconds": seconds, **counts}


def front_timing(n: int = 1000, cases: int = 200, repeats: int = 20) -> dict:
    "Recomputing the statistical front of `n` configurations vs the point-estimate Pareto front, same run."
    rng = np.random.default_rng(0)
    base = rng.random(n)[:, None]
    samples = {"quality": (rng.random((n, cases)) < base).astype(float),
               "latency_ms": rng.gamma(4, 10 * (1 + base), (n, cases)),
               "cost_usd": rng.normal(1e-4 * (1 + base), 2e-5, (n, cases))}
    t0 = time.perf_counter()
    tests = paired_tests([f"c{i}" for i in range(n)], samples, objectives=("quality", "p50_ms", "cost_usd"), n_boot=200)
    test_s = time.perf_counter() - t0
    keep = np.arange(n) % 4 != 0

    def timed(fn) -> float:
        best = []
        for _ in range(repeats):
            s = time.perf_counter()
            fn()
            best.append(time.perf_counter() - s)
        return float(np.median(best)) * 1000
    objs = ("quality", "p50_ms", "cost_usd")
    hib = np.array([True, False, False])
    t = Table(title=f"recomputing the front ({n} configurations tested, {cases} cases, 3 objectives)")
    for col in ("configurations", "what", "ms (median of 20)", "ratio", "on the front"):
        t.add_column(col)
    out = {}
    for label, mask in (("all 1,000", np.ones(n, dtype=bool)), ("750 (a filter)", keep)):
        ours = timed(lambda: front(tests, objs, mask))
        est = np.stack([tests.estimates[o][mask] for o in objs], axis=1)
        pareto = timed(lambda: _estimate_dominates(est, hib).any(axis=0))
        naive_front = int((~_estimate_dominates(est, hib).any(axis=0)).sum())
        t.add_row(label, "point-estimate Pareto (baseline)", f"{pareto:.2f}", "1.00x", str(naive_front))
        t.add_row(label, "statistical front from paired tests", f"{ours:.2f}", f"{ours / pareto:.2f}x",
                  str(len(front(tests, objs, mask).on_front)))
        out[label] = ours
    console.print(t)
    console.print(f"pairwise paired-bootstrap tests (computed once per set of measurements): {test_s:.1f} s")
    return {"front_ms": out, "tests_s": test_s}


def widget_timing(name: str, moves: int = 200) -> dict:
    "Kernel-side time of one slider move in the explorer, against rebuilding the figure (the baseline), same run."
    import statistics
    from aiwb.explorers.front import tradeoff_from_json
    from aiwb.explorers.widgets import TradeOffExplorer, front_figure
    trade = tradeoff_from_json(json.loads((RESULTS / f"sweep-{name}.json").read_text()))
    e = TradeOffExplorer(trade)
    costs = sorted(p.values["cost_usd"] for p in trade.measured())
    ours, rebuild = [], []
    for i in range(moves):
        e.max_cost.value = costs[i % len(costs)]
        ours.append(e.last_update_ms)
        s = time.perf_counter()
        front_figure(trade, max_cost=costs[i % len(costs)])
        rebuild.append((time.perf_counter() - s) * 1000)
    p = lambda v, q: float(np.percentile(v, q))
    t = Table(title=f"explorer: one 'max $/query' slider move, kernel side ({moves} moves, {name})")
    for col in ("what", "p50 ms", "p95 ms", "ratio (p50)"):
        t.add_column(col)
    t.add_row("rebuild the figure (baseline)", f"{p(rebuild, 50):.2f}", f"{p(rebuild, 95):.2f}", "1.00x")
    t.add_row("TradeOffExplorer.update (front + restyle + table)", f"{p(ours, 50):.2f}", f"{p(ours, 95):.2f}",
              f"{p(ours, 50) / p(rebuild, 50):.2f}x")
    console.print(t)
    return {"update_p50_ms": p(ours, 50), "update_p95_ms": p(ours, 95)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("bundled", "squad500", "front"), default=None)
    ap.add_argument("--front-only", action="store_true")
    ap.add_argument("--home", type=Path, default=None, help="keep measured configurations here (default: a temp dir)")
    ap.add_argument("--n", type=int, default=500, help="SQuAD questions")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    only = "front" if args.front_only else args.only
    home = args.home or Path(tempfile.mkdtemp(prefix="aiwb-sweep-"))
    os.environ.setdefault("AIWB_MODELS_DIR", str(REPO / ".venv" / "aiwb-models"))
    figures, start = {}, time.perf_counter()
    if only in (None, "bundled"):
        data = REPO / "data"
        spec = sweep_spec("bundled", data / "golden.jsonl", data / "corpus",
                          {"pipeline.mode": ["vector", "hybrid"], "top_k": [4, 2], "cache.exact": [False, True],
                           "pipeline.compress": [1.0, 0.5], "streaming": [False, True]},
                          repeats=2, price_as=PRICE, metric="correct")
        figures["bundled"] = run_one("bundled", spec, home)
    if only in (None, "squad500"):
        corpus, golden = squad_files(home, args.n, args.seed)
        spec = sweep_spec("squad500", golden, corpus,
                          {"embedding_precision": ["fp32", "int8"], "pipeline.mode": ["vector", "bm25", "hybrid"],
                           "top_k": [4, 2]}, repeats=1, price_as=PRICE, metric="f1")
        figures["squad500"] = run_one("squad500", spec, home)
    if only in (None, "front"):
        figures["front"] = front_timing()
        name = "squad500" if (RESULTS / "sweep-squad500.json").is_file() else "bundled"
        if (RESULTS / f"sweep-{name}.json").is_file():
            figures["widget"] = widget_timing(name)
    console.print(f"total {time.perf_counter() - start:.0f} s; measured configurations kept in {home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
