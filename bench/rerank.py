"""Rerank: does re-scoring the retrieved candidates pay, on SciFact and SQuAD, and what does it cost per question?

    nice -n 19 .venv/bin/python bench/rerank.py                 # everything (full test sets)
    nice -n 19 .venv/bin/python bench/rerank.py --limit 50 --squad-limit 500 --latency-queries 10   # while iterating

* SciFact (BEIR, `../shared/data/scifact`): one chunk per abstract (as `bench/retrieval.py`); the first stage is the
  train-chosen hybrid of `bench/retrieval.py` (cosine + 0.05 × BM25, Porter, k1=1.2 b=0.5), its top `--candidates`
  reranked. nDCG@10 and recall@10 (document level) on the 300 *test* claims, bootstrap 95 % CIs, paired verdicts
  against no rerank. The rerankers' weights are chosen on the 809 *train* claims (grid printed), never on test.
* SQuAD v1.1 dev-half (`../shared/data/squad-v1.1-dev-half`): the paragraphs ingested as `bench/squad.py` does; the
  first stage is aiwb's default hybrid (RRF of vector and BM25), its top `--squad-candidates` reranked; recall@1 of
  the gold paragraph over all 5,397 questions (or `--squad-limit`).
* Latency: each reranker as shipped (live MiniLM encoder, empty vector cache: every sentence embedded, the worst
  case) on the first `--latency-queries` test questions, p50/p95 ms, beside the first stage (query embedding +
  hybrid search) and the ratio of first stage + rerank to the first stage alone. The LLM reranker is timed against
  `LocalLLMServer` through the real Anthropic SDK (the fake's reply is no ranking, so it falls back: its quality is
  the first stage's by construction, and it is not in the quality tables).

Quality runs use the same reranker code with the MiniLM vectors computed once per store folder (`--home`): every
corpus sentence, every query, and the chunk vectors already in the store, served by a dictionary `encode`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from aiwb.core import Source, connect, load_config, stable_hash  # noqa: E402
from aiwb.embeddings import embed  # noqa: E402
from aiwb.eval import bootstrap_ci, load_squad, paired_compare  # noqa: E402
from aiwb.data.bm25 import bm25_index  # noqa: E402
from aiwb.data.search import HybridParams, search  # noqa: E402
from aiwb.data.store import ingest_documents, load_beir  # noqa: E402
from aiwb.orchestration.rerank import FusionReranker, LLMReranker, MaxSimReranker, sentences_of  # noqa: E402
from bench.retrieval import ndcg_at, recall_at  # noqa: E402

SCIFACT_HYBRID = HybridParams(fusion="linear", bm25_weight=0.05, bm25_k1=1.2, bm25_b=0.5)  # bench/retrieval.py


def shared() -> Path:
    "The shared data folder: $AIWB_SHARED_DATA, else <repo>/../shared/data."
    root = Path(os.environ.get("AIWB_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (root / "scifact" / "corpus.jsonl").is_file():
        sys.exit(f"error: SciFact not found under {root}\n  hint: set AIWB_SHARED_DATA to the folder holding scifact/")
    return root


class Vectors:
    "MiniLM vectors of texts (keyed by a hash of the text), computed once and kept in an .npz beside the store."

    def __init__(self, path: Path):
        self.path, self.vecs, self.saved = path, {}, set()
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                self.vecs = dict(zip(z["keys"].tolist(), z["vectors"]))
            self.saved = set(self.vecs)

    @staticmethod
    def key(text: str) -> str:
        return stable_hash(text, n=24)

    def put(self, texts, vectors) -> None:
        "Remember vectors that are not to be saved (the store's own chunk vectors)."
        self.vecs.update((self.key(t), np.asarray(v, dtype=np.float32)) for t, v in zip(texts, vectors))

    def get(self, text: str):
        return self.vecs[self.key(text)]

    def add(self, texts, label: str) -> None:
        "Embed the texts not seen yet, in large batches, and save every vector embedded here."
        todo = [t for t in dict.fromkeys(texts) if self.key(t) not in self.vecs]
        if todo:
            t0 = time.perf_counter()
            self.put(todo, embed(todo, batch_size=128, show_progress=True))
            self.saved.update(self.key(t) for t in todo)
            print(f"embedded {len(todo)} {label} in {time.perf_counter() - t0:.0f} s", flush=True)
            keys = sorted(self.saved)
            np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.vecs[k] for k in keys]))

    def encode(self, texts):
        "The vectors of `texts` (an `encode` for the rerankers); a text never seen is embedded live."
        missing = [t for t in dict.fromkeys(texts) if self.key(t) not in self.vecs]
        if missing:
            self.put(missing, embed(missing))
        return np.stack([self.get(t) for t in texts])


def pct(xs, p) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), p))


def quality_rows(per_query: dict[str, dict[str, list[float]]], metrics: list[str]) -> list[str]:
    "Markdown rows: each system's metrics with CIs, and its paired verdict against the first row."
    base = next(iter(per_query))
    lines = []
    for name, vals in per_query.items():
        cells = []
        for m in metrics:
            s = bootstrap_ci(vals[m])
            cells.append(f"{s.value:.4f} [{s.ci_low:.4f}, {s.ci_high:.4f}]")
            if name != base:
                c = paired_compare(per_query[base][m], vals[m], metric=m)
                cells.append(f"{c.diff.value:+.4f} [{c.diff.ci_low:+.4f}, {c.diff.ci_high:+.4f}] {c.verdict}"
                             + (f" (McNemar p={c.mcnemar_p:.3g})" if c.mcnemar_p is not None else ""))
            else:
                cells.append("baseline")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def print_quality(title: str, per_query, metrics: list[str]) -> None:
    print(f"\n{title}")
    head = " | ".join(f"{m} [95% CI] | Δ{m} vs first row [95% CI], verdict" for m in metrics)
    print(f"| system | {head} |")
    print("|---|" + "---|" * (2 * len(metrics)))
    print("\n".join(quality_rows(per_query, metrics)))


def scifact_metrics(runs: dict[str, list[str]], qrels) -> dict[str, list[float]]:
    qs = list(qrels)
    return {"nDCG@10": [ndcg_at(runs[q], qrels[q], 10) for q in qs],
            "R@10": [recall_at(runs[q], qrels[q], 10) for q in qs]}


def rerank_runs(reranker, questions: dict[str, str], cands: dict[str, list[Source]]) -> dict[str, list[str]]:
    return {q: [s.doc_id for s in reranker.rerank(questions[q], cands[q])] for q in questions}


def dedupe_docs(ranked: list[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def latency(first_stage, reranker, questions: list[str]) -> tuple[list[float], list[float]]:
    "Per-question ms of the first stage alone and of its rerank, live (the reranker's own encoder)."
    first, rer = [], []
    for q in questions:
        t0 = time.perf_counter()
        cands = first_stage(q)
        t1 = time.perf_counter()
        if reranker is not None:
            reranker.rerank(q, cands)
        t2 = time.perf_counter()
        first.append((t1 - t0) * 1000)
        rer.append((t2 - t1) * 1000)
    return first, rer


def print_latency(title: str, rows: dict[str, tuple[list[float], list[float]]]) -> None:
    print(f"\n{title}")
    print("| reranker | questions | first stage p50 / p95 ms | rerank p50 / p95 ms | first stage + rerank p50 ms "
          "| ratio to no rerank (p50) |")
    print("|---|---|---|---|---|---|")
    for name, (first, rer) in rows.items():
        total = [a + b for a, b in zip(first, rer)]
        print(f"| {name} | {len(first)} | {pct(first, 50):.1f} / {pct(first, 95):.1f} | {pct(rer, 50):.1f} / "
              f"{pct(rer, 95):.1f} | {pct(total, 50):.1f} | {pct(total, 50) / pct(first, 50):.2f}× |")


def llm_reranker_for_bench():
    "An LLMReranker over the real Anthropic SDK against LocalLLMServer (started here, stopped at exit)."
    import atexit
    from aiwb.providers.anthropic import AnthropicProvider
    from aiwb.providers.fakes import LocalLLMServer
    server = LocalLLMServer().start()
    atexit.register(server.stop)
    return LLMReranker(AnthropicProvider(base_url=server.url, api_key=server.api_key))


def tune(name: str, grid: list[tuple[str, object]], questions, cands, qrels) -> tuple[str, object]:
    "The grid entry with the best train nDCG@10 (printed as a table)."
    print(f"\n{name} variants on SciFact *train* ({len(questions)} claims), nDCG@10 / R@10")
    print("| variant | nDCG@10 | R@10 |\n|---|---|---|")
    base = scifact_metrics({q: dedupe_docs([s.doc_id for s in cands[q]]) for q in questions}, qrels)
    print(f"| no rerank | {np.mean(base['nDCG@10']):.4f} | {np.mean(base['R@10']):.4f} |")
    best, best_score = None, -1.0
    for label, r in grid:
        m = scifact_metrics(rerank_runs(r, questions, cands), qrels)
        n, r10 = np.mean(m["nDCG@10"]), np.mean(m["R@10"])
        print(f"| {label} | {n:.4f} | {r10:.4f} |", flush=True)
        if n > best_score:
            best, best_score = (label, r), n
    return best


def scifact(args) -> None:
    data = shared() / "scifact"
    home = Path(args.home) / "scifact"
    cfg = load_config(env={"AIWB_HOME": str(home)})
    con = connect(config=cfg)
    docs, test_q, test_qrels = load_beir(data, "test")
    _, train_q, train_qrels = load_beir(data, "train")
    t0 = time.perf_counter()
    rep = ingest_documents(con, docs, cfg, chunk=False)
    print(f"SciFact store: {len(docs)} abstracts, {rep.chunks_embedded} embedded now, "
          f"in {time.perf_counter() - t0:.0f} s")
    bm25_index(con, stemmer="porter")
    if args.limit:
        test_q = dict(list(test_q.items())[: args.limit])
        train_q = dict(list(train_q.items())[: args.limit * 3])
    test_qrels = {q: test_qrels[q] for q in test_q}
    train_qrels = {q: train_qrels[q] for q in train_q}
    vecs = Vectors(home / "rerank-vectors.npz")
    rows = con.execute("SELECT text, embedding FROM chunks").fetchall()
    vecs.put([t for t, _ in rows], [v for _, v in rows])
    questions = {**train_q, **test_q}
    vecs.add([questions[q].strip() for q in questions], "SciFact claims")
    t0 = time.perf_counter()
    cands = {q: search(con, questions[q], k=args.candidates, mode="hybrid", hybrid=SCIFACT_HYBRID,
                       query_vector=vecs.get(questions[q].strip())) for q in questions}
    print(f"first stage: {len(cands)} hybrid searches (top {args.candidates}) in {time.perf_counter() - t0:.0f} s")
    vecs.add([t for q in questions for s in cands[q] for t in sentences_of(s.text)], "candidate sentences")

    enc = vecs.encode
    grid_ms = [(f"maxsim retrieval_weight={w} top_sentences={k}",
                MaxSimReranker(retrieval_weight=w, top_sentences=k, encode=enc, cache_size=0))
               for k in (1, 2) for w in (0.0, 0.5, 1.0, 2.0, 4.0)]
    grid_fu = [(f"fusion lexical={lw} dense={dw} retrieval={rw}",
                FusionReranker(lexical_weight=lw, dense_weight=dw, retrieval_weight=rw, encode=enc, cache_size=0))
               for dw in (0.0, 1.0) for lw in (0.25, 0.5, 1.0) for rw in (1.0, 2.0, 4.0)]
    best_ms = tune("MaxSim", grid_ms, train_q, cands, train_qrels)
    best_fu = tune("Fusion", grid_fu, train_q, cands, train_qrels)
    print(f"\nchosen on train: {best_ms[0]}; {best_fu[0]}")

    runs = {f"hybrid top-{args.candidates}, no rerank": {q: dedupe_docs([s.doc_id for s in cands[q]]) for q in test_q},
            f"+ maxsim (library default: {MaxSimReranker()!r})":
                rerank_runs(MaxSimReranker(encode=enc, cache_size=0), test_q, cands),
            f"+ fusion (library default: {FusionReranker()!r})":
                rerank_runs(FusionReranker(encode=enc, cache_size=0), test_q, cands),
            f"+ {best_ms[0]} (train-best)": rerank_runs(best_ms[1], test_q, cands),
            f"+ {best_fu[0]} (train-best)": rerank_runs(best_fu[1], test_q, cands)}
    print_quality(f"SciFact test ({len(test_q)} claims), document level, first stage = train-chosen hybrid",
                  {k: scifact_metrics(v, test_qrels) for k, v in runs.items()}, ["nDCG@10", "R@10"])

    lat_q = [test_q[q] for q in list(test_q)[: args.latency_queries]]
    if not lat_q:
        return con.close()
    def first_stage(q: str):
        return search(con, q, k=args.candidates, mode="hybrid", hybrid=SCIFACT_HYBRID)  # embeds the query live
    rows = {"none": latency(first_stage, None, lat_q),
            "maxsim (cold cache)": latency(first_stage, MaxSimReranker(cache_size=0), lat_q),
            "fusion (cold cache)": latency(first_stage, FusionReranker(cache_size=0), lat_q),
            "llm (Anthropic SDK → LocalLLMServer, falls back)": latency(first_stage, llm_reranker_for_bench(), lat_q)}
    warm = MaxSimReranker()
    latency(first_stage, warm, lat_q)  # fills its sentence cache
    rows["maxsim (warm cache: same questions again)"] = latency(first_stage, warm, lat_q)
    print_latency(f"SciFact rerank latency, top {args.candidates} candidates, {len(lat_q)} test claims, live encoder "
                  f"(AIWB_EMBED_THREADS={os.environ.get('AIWB_EMBED_THREADS', '1')})", rows)
    con.close()


def squad(args) -> None:
    from bench.squad import build_store
    root = Path(os.environ.get("AIWB_SHARED_DATA", REPO.parent / "shared" / "data")) / "squad-v1.1-dev-half"
    docs, cases = load_squad(root)
    cases = cases[: args.squad_limit] if args.squad_limit else cases
    home = Path(args.home) / "squad"
    cfg = load_config(env={"AIWB_HOME": str(home), "AIWB_CHUNK_TOKENS": "256"})
    con = connect(config=cfg)
    build_store(con, cfg, docs)
    bm25_index(con)
    vecs = Vectors(home / "rerank-vectors.npz")
    chunks = con.execute("SELECT text, embedding FROM chunks").fetchall()
    vecs.put([t for t, _ in chunks], [v for _, v in chunks])
    vecs.add([c.input.strip() for c in cases], "SQuAD questions")
    vecs.add([s for t, _ in chunks for s in sentences_of(t)], "SQuAD sentences")
    t0 = time.perf_counter()
    cands = {i: search(con, c.input, k=args.squad_candidates, mode="hybrid", query_vector=vecs.get(c.input.strip()))
             for i, c in enumerate(cases)}
    print(f"first stage: {len(cands)} hybrid searches (top {args.squad_candidates}) "
          f"in {time.perf_counter() - t0:.0f} s")
    gold = {i: {f"{d}.md" for d in c.relevant_docs} for i, c in enumerate(cases)}  # doc ids end in "<title>_<n>.md"
    qs = {i: c.input for i, c in enumerate(cases)}
    enc = vecs.encode
    systems = {f"hybrid top-{args.squad_candidates}, no rerank": None,
               f"+ maxsim ({MaxSimReranker()!r})": MaxSimReranker(encode=enc, cache_size=0),
               f"+ fusion ({FusionReranker()!r})": FusionReranker(encode=enc, cache_size=0),
               "+ maxsim retrieval_weight=0 (MaxSim alone)":
                   MaxSimReranker(retrieval_weight=0.0, encode=enc, cache_size=0)}
    per = {}
    for name, r in systems.items():
        ranked = {i: dedupe_docs([Path(s.doc_id).name for s in (cands[i] if r is None else r.rerank(qs[i], cands[i]))])
                  for i in qs}
        per[name] = {"recall@1": [float(ranked[i][:1] != [] and ranked[i][0] in gold[i]) for i in qs],
                     "recall@5": [float(bool(set(ranked[i][:5]) & gold[i])) for i in qs]}
    print_quality(f"SQuAD v1.1 dev-half ({len(qs)} questions, {len(docs)} paragraphs), gold-paragraph recall",
                  per, ["recall@1", "recall@5"])
    lat_q = [c.input for c in cases[: args.latency_queries]]
    if not lat_q:
        return con.close()
    def first_stage(q: str):
        return search(con, q, k=args.squad_candidates, mode="hybrid")
    rows = {"none": latency(first_stage, None, lat_q),
            "maxsim (cold cache)": latency(first_stage, MaxSimReranker(cache_size=0), lat_q),
            "fusion (cold cache)": latency(first_stage, FusionReranker(cache_size=0), lat_q)}
    print_latency(f"SQuAD rerank latency, top {args.squad_candidates} candidates, {len(lat_q)} questions, live encoder",
                  rows)
    con.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", default=str(Path(tempfile.gettempdir()) / "aiwb-bench-rerank"),
                    help="folder for the bench stores and vectors (reused by a second run)")
    ap.add_argument("--candidates", type=int, default=30, help="SciFact: first-stage candidates reranked")
    ap.add_argument("--squad-candidates", type=int, default=20, help="SQuAD: first-stage candidates reranked")
    ap.add_argument("--limit", type=int, default=0, help="SciFact: only the first N test claims (3N train); 0 = all")
    ap.add_argument("--squad-limit", type=int, default=0, help="SQuAD: only the first N questions; 0 = all 5,397")
    ap.add_argument("--latency-queries", type=int, default=50, help="questions timed live per reranker")
    ap.add_argument("--skip-scifact", action="store_true")
    ap.add_argument("--skip-squad", action="store_true")
    args = ap.parse_args(argv)
    if not args.skip_scifact:
        scifact(args)
    if not args.skip_squad:
        squad(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
