"""The composed pipeline's own overhead over bare retrieve + generate, on the bundled demo corpus, tracing on.

Both arms run in one process on the same store, the same questions and the same offline model instance,
interleaved (bare, pipeline, bare, pipeline, ... with the order alternating), so machine noise hits both alike:

  * bare                 `rag.retrieve(q)` then the local model's `complete` with those chunks: the baseline
  * pipeline, cache miss the whole system of `build_pipeline`: exact-cache lookup (every request in a new scope, so it
                         misses) → retrieve → generate through the reliability layer (a one-route `ReliableProvider`)
                         → validate → cache store, with tracing on (spans exported to DuckDB), the request log and
                         the cost ledger written for every request
  * exact-cache hit      the same question again in the same scope
  * semantic hit         a paraphrase, with the semantic cache on (one query embedding)

Targets (issue 11): miss path ≤ +2 ms at p50 and ≤ +5 ms at p99 over bare; exact hit ≤ 1 ms p50; semantic hit
≤ 15 ms p50. Also prints where the pipeline's time goes, step by step. Exits 1 when a target is missed.

    python bench/pipeline.py                 # 5 rounds over the 22 golden questions
    python bench/pipeline.py --rounds 10
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from aiwb.core import Message, connect, load_config  # noqa: E402
from aiwb.data.store import ingest  # noqa: E402
from aiwb.eval import load_cases  # noqa: E402
from aiwb.observability import Observer, disable_tracing, enable_tracing  # noqa: E402
from aiwb.orchestration.pipeline import build_pipeline, open_runtime  # noqa: E402

PARAPHRASES = [("What happens when the breaker is half-open?", "What happens once the breaker is half-open?"),
               ("How many retries are allowed?", "How many retries are permitted?"),
               ("What is stored in DuckDB?", "What gets stored in DuckDB?")]


def pct(xs: list[float], q: float) -> float:
    "The q-th percentile (0-100) of `xs`, nearest rank."
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


def timed(fn) -> float:
    "Milliseconds one call of `fn` takes."
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="aiwb-bench-pipeline-")
    os.environ["AIWB_HOME"] = home
    cfg = load_config()
    con = connect(config=cfg)
    ingest(con, REPO / "data" / "corpus", cfg, progress=False)
    con.close()
    con = connect(config=cfg, read_only=True)  # as `aiwb ask`, `chat` and the API open it: side by side with readers
    questions = [c.input for c in load_cases(REPO / "data" / "golden.jsonl").cases]
    runtime = open_runtime(cfg)
    enable_tracing(runtime)
    rag = build_pipeline(cfg, con, runtime, observer=Observer(runtime, command="python"), corpus_frozen=True)
    model = rag.provider.routes[0]  # the very model instance the pipeline calls: same caches, same work

    def bare(q: str) -> None:
        model.complete([Message("user", q)], context=rag.retrieve(q))

    for q in questions[:3]:  # warm the encoder, the index and the model's sentence cache
        bare(q)
        rag.ask(q, scope="warm")
    off, on, steps, n = [], [], {}, 0
    for r in range(args.rounds):
        for i, q in enumerate(questions):
            n += 1
            arms = [("bare", lambda: bare(q)), ("pipe", lambda: answers.append(rag.ask(q, scope=f"miss-{n}")))]
            answers: list = []
            for name, fn in (arms if (r + i) % 2 == 0 else arms[::-1]):
                (off if name == "bare" else on).append(timed(fn))
            for s in answers[0].steps:
                steps.setdefault(s.name, []).append(s.ms)
            assert answers[0].cache == "miss", answers[0].cache
    exact_ms, hit_answers = [], []
    for rnd in range(args.rounds):
        for q in questions:
            rag.ask(q, scope=f"hit-{rnd}")
            exact_ms.append(timed(lambda: hit_answers.append(rag.ask(q, scope=f"hit-{rnd}"))))
    assert all(a.cache == "exact" for a in hit_answers if not a.abstained), [a.cache for a in hit_answers]
    exact_ms = [t for t, a in zip(exact_ms, hit_answers) if a.cache == "exact"]  # abstentions are never cached
    sem_cfg = dataclasses.replace(cfg, cache=dataclasses.replace(cfg.cache, exact=False, semantic=True))
    sem = build_pipeline(sem_cfg, con, runtime, observer=Observer(runtime, command="python"), corpus_frozen=True)
    sem_ms = []
    for rnd in range(max(1, args.rounds)):
        for q, para in PARAPHRASES:
            sem.ask(q, scope=f"sem-{rnd}")
            out = []
            sem_ms.append(timed(lambda: out.append(sem.ask(para, scope=f"sem-{rnd}"))))
            assert out[0].cache == "semantic", (para, out[0].cache, out[0].steps[0].detail)
    disable_tracing()

    p50 = pct(on, 50) - pct(off, 50)
    p99 = pct(on, 99) - pct(off, 99)
    rows = [("bare retrieve + generate (baseline)", pct(off, 50), pct(off, 99), "", ""),
            ("pipeline, cache miss, tracing on", pct(on, 50), pct(on, 99), f"+{p50:.2f} ms p50, +{p99:.2f} ms p99",
             f"{pct(on, 50) / pct(off, 50):.3f}x"),
            ("exact-cache hit", pct(exact_ms, 50), pct(exact_ms, 99), "", f"{pct(exact_ms, 50) / pct(off, 50):.4f}x"),
            ("semantic hit (one query embedding)", pct(sem_ms, 50), pct(sem_ms, 99), "",
             f"{pct(sem_ms, 50) / pct(off, 50):.3f}x")]
    print(f"\n{len(off)} requests per arm, interleaved, {args.rounds} rounds over {len(questions)} golden questions; "
          f"{len(exact_ms)} exact hits, {len(sem_ms)} semantic hits\n")
    print(f"{'arm':<40} {'p50 ms':>9} {'p99 ms':>9}  {'overhead':<28} {'vs bare p50':>11}")
    for name, a, b, over, ratio in rows:
        print(f"{name:<40} {a:9.2f} {b:9.2f}  {over:<28} {ratio:>11}")
    print(f"\n{'step (pipeline, cache miss)':<28} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for name, xs in steps.items():
        print(f"{name:<28} {statistics.mean(xs):9.3f} {pct(xs, 50):9.3f} {pct(xs, 99):9.3f}")
    targets = [("miss path p50 overhead <= 2 ms", p50 <= 2.0), ("miss path p99 overhead <= 5 ms", p99 <= 5.0),
               ("exact hit p50 <= 1 ms", pct(exact_ms, 50) <= 1.0), ("semantic hit p50 <= 15 ms", pct(sem_ms, 50) <= 15)]
    print()
    for name, ok in targets:
        print(f"{'met   ' if ok else 'MISSED'} {name}")
    return 0 if all(ok for _, ok in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
