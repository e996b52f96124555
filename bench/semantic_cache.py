"""Semantic-cache hit precision vs hit rate on STS-B, with and without the near-miss verification stage.

Each STS-B pair is read as (cached question, new question). Score >= 4 means "the same question" (a hit is
right), score <= 2 means "a different question" (a hit is wrong); pairs in between are left out. A pair hits
when cosine >= threshold (and, with verification, `aiwb.reliability.cache.near_miss_reason` finds no difference).
Thresholds are chosen on train + dev only (the lowest threshold whose Wilson 95 % lower bound of precision on
train+dev reaches 0.99; `--no-margin` uses the point estimate on each split); the test split is only reported. Also runs bench/near_miss_pairs.tsv (pairs that must never hit).

    python bench/semantic_cache.py            # ~3 min on a laptop CPU (embeds ~10k sentences)
    python bench/semantic_cache.py --vectors /tmp/stsb.npz   # keep the embeddings: a second run takes seconds
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from aiwb.reliability.cache import near_miss_reason  # noqa: E402
from aiwb.embeddings import embed  # noqa: E402


def shared_data() -> Path:
    "The shared data folder: $AIWB_SHARED_DATA, else ../shared/data beside the repository."
    env = os.environ.get("AIWB_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def load_split(name: str) -> list[tuple[float, str, str]]:
    path = shared_data() / "stsb" / f"sts-{name}.csv"
    if not path.is_file():
        sys.exit(f"STS-B not found at {path}: set AIWB_SHARED_DATA to the folder that holds stsb/")
    with open(path, encoding="utf-8") as f:
        rows = [(float(r[4]), r[5], r[6]) for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return [r for r in rows if r[0] >= 4.0 or r[0] <= 2.0]


def cosines(pairs, cache: dict) -> np.ndarray:
    todo = sorted({s for _, a, b in pairs for s in (a, b)} - cache.keys())
    if todo:
        for s, v in zip(todo, embed(todo, batch_size=128)): cache[s] = v
    return np.array([float(cache[a] @ cache[b]) for _, a, b in pairs])


def curve(cos, ok, pos, t):
    hit = (cos >= t) & ok
    n_hit, n_true = int(hit.sum()), int((hit & pos).sum())
    return (n_true / n_hit if n_hit else 1.0), n_true / max(1, int(pos.sum())), n_hit


def wilson_low(k: int, n: int, z: float = 1.96) -> float:
    "Lower end of the Wilson 95 % interval for a proportion k/n."
    if n == 0: return 0.0
    p = k / n
    return (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def choose(splits, use_verify, grid, target=0.99, margin=True):
    """Lowest threshold whose hit precision reaches `target` on train and dev.

    With `margin` (the default) the test is the Wilson 95 % lower bound of precision on train+dev pooled, not the
    point estimate: a threshold picked where the point estimate just touches 0.99 lands below it on new data half
    the time. Without it: the point estimate on each split."""
    for t in grid:
        rows = [curve(s["cos"], s["ok"] if use_verify else np.ones_like(s["ok"]), s["pos"], t) for s in splits]
        if margin:
            hits = sum(n for _, _, n in rows)
            true = sum(round(p * n) for p, _, n in rows)
            if hits and wilson_low(true, hits) >= target: return float(t)
        elif all(p >= target for p, _, _ in rows):
            return float(t)
    return float(grid[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=0.99, help="precision the threshold must reach on train and dev")
    ap.add_argument("--no-margin", action="store_true", help="select on the point estimate instead of the Wilson lower bound")
    ap.add_argument("--vectors", type=Path, default=None,
                    help="an .npz file of sentence embeddings: read if it exists, written at the end (before/after runs)")
    args = ap.parse_args()
    t0 = time.time()
    vecs: dict = {}
    if args.vectors and args.vectors.is_file():
        with np.load(args.vectors, allow_pickle=False) as z:
            vecs = dict(zip(z["sentences"].tolist(), z["vectors"]))
    data = {}
    for name in ("train", "dev", "test"):
        pairs = load_split(name)
        cos = cosines(pairs, vecs)
        reasons = [near_miss_reason(b, a) for _, a, b in pairs]
        data[name] = {"cos": cos, "pos": np.array([s >= 4 for s, _, _ in pairs]), "ok": np.array([not r for r in reasons]),
                      "n": len(pairs)}
    grid = np.round(np.arange(0.70, 1.0001, 0.01), 2)
    margin = not args.no_margin
    t_cos = choose([data["train"], data["dev"]], False, grid, args.target, margin)
    t_ver = choose([data["train"], data["dev"]], True, grid, args.target, margin)
    test = data["test"]
    ones = np.ones_like(test["ok"])
    print(f"STS-B test: {int(test['pos'].sum())} same-question pairs (score >= 4), {int((~test['pos']).sum())} different (<= 2)")
    rule = "Wilson 95% lower bound of precision on train+dev" if margin else "precision on train and on dev"
    print(f"thresholds chosen on train+dev ({rule} >= {args.target}): cosine only {t_cos:.2f}, with verification {t_ver:.2f}\n")
    print(f"{'cosine >=':>9} | {'cosine only: precision':>22} {'hit rate':>8} | {'+ verification: precision':>25} {'hit rate':>8}")
    print("-" * 84)
    for t in grid[::2] if len(grid) > 20 else grid:
        if t < 0.74 or t > 0.96: continue
        p0, h0, _ = curve(test["cos"], ones, test["pos"], t)
        p1, h1, _ = curve(test["cos"], test["ok"], test["pos"], t)
        print(f"{t:>9.2f} | {p0:>22.4f} {h0:>8.1%} | {p1:>25.4f} {h1:>8.1%}")
    print("-" * 84)
    p0, h0, n0 = curve(test["cos"], ones, test["pos"], t_cos)
    p1, h1, n1 = curve(test["cos"], test["ok"], test["pos"], t_ver)
    print(f"selected on train+dev -> test:  cosine only @ {t_cos:.2f}: precision {p0:.4f}, hit rate {h0:.1%} ({n0} hits)")
    print(f"                                 verified    @ {t_ver:.2f}: precision {p1:.4f}, hit rate {h1:.1%} ({n1} hits)")
    # near-miss pairs of our own: none may hit
    with open(ROOT / "bench" / "near_miss_pairs.tsv", encoding="utf-8") as f:
        nm = list(csv.DictReader(f, delimiter="\t"))
    nm_cos = cosines([(0, r["cached"], r["query"]) for r in nm], vecs)
    nm_ok = np.array([not near_miss_reason(r["query"], r["cached"]) for r in nm])
    print(f"\nnear-miss pairs (bench/near_miss_pairs.tsv, {len(nm)} pairs that must not hit; median cosine {np.median(nm_cos):.3f}):")
    kinds = sorted({r["kind"] for r in nm})
    print(f"{'kind':>10} {'pairs':>6} {'hits, cosine only @ %.2f' % t_cos:>26} {'cosine only @ %.2f' % t_ver:>20} {'verified @ %.2f' % t_ver:>17}")
    for k in kinds + ["all"]:
        m = np.array([k in ("all", r["kind"]) for r in nm])
        print(f"{k:>10} {int(m.sum()):>6} {int(((nm_cos >= t_cos) & m).sum()):>26} {int(((nm_cos >= t_ver) & m).sum()):>20}"
              f" {int(((nm_cos >= t_ver) & nm_ok & m).sum()):>17}")
    leaks = [(r["cached"], r["query"], c) for r, c, ok in zip(nm, nm_cos, nm_ok) if c >= t_ver and ok]
    for a, b, c in leaks: print(f"  LEAK {c:.3f}: {a} | {b}")
    if args.vectors:
        names = sorted(vecs)
        np.savez(args.vectors, sentences=np.array(names), vectors=np.stack([vecs[n] for n in names]))
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
