"""SQuAD v1.1 (dev, half): the full offline RAG pipeline over 1,023 paragraphs and 5,397 questions.

Ingests every paragraph into an aiwb store, then runs the eval harness over the questions with several
configurations, and prints retrieval recall@1/@5 of the gold paragraph, EM and F1 (official normalisation) with
bootstrap 95 % CIs beside the published systems, and the paired verdict between configurations:

* `naive`         MiniLM only: vector search, answer = the most similar sentence of the top paragraph
* `sentence`      aiwb pipeline (vector top-k) + ExtractiveBaseline, answer = best sentence
* `span`          same, answer = the answer span inside the best sentence
* `span-hybrid`   span answers over hybrid retrieval (in-memory BM25 + vector, reciprocal-rank fusion)

Data: `../shared/data/squad-v1.1-dev-half` beside the repository (override with AIWB_SHARED_DATA=<folder holding
squad-v1.1-dev-half>). Runs are stored in DuckDB under --home, so an interrupted bench resumes.

    python bench/squad.py                      # everything (about 10 min on 2 cores)
    python bench/squad.py --limit 500          # the first 500 questions (paragraphs: all)
    python bench/squad.py --configs naive,span # a subset of the configurations
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

from aiwb.core import Completion, Message, Source, connect, load_config  # noqa: E402
from aiwb.eval import (EvalTarget, compare, comparison_table, load_squad, print_table, run_eval,  # noqa: E402
                       summarize)
from aiwb.orchestration.pipeline import RAGPipeline  # noqa: E402
from aiwb.providers.extractive import ExtractiveBaseline  # noqa: E402
from aiwb.text import split_sentences  # noqa: E402
from aiwb.data.search import search  # noqa: E402
from aiwb.data.store import corpus_version, ingest  # noqa: E402

PUBLISHED = [  # EM, F1 on these 5,397 questions (shared/data/README.md); sliding window: SQuAD paper, full dev
    ("Logistic regression (SQuAD paper)", 38.52, 48.72),
    ("Match-LSTM (boundary, ensemble)", 66.28, 74.75),
    ("BERT ensemble", 85.99, 91.81),
    ("Sliding window (SQuAD paper, full dev)", None, 20.2),
]


def skip_pandas_lookups() -> None:
    """DuckDB's Python client looks for pandas on every list parameter it binds (770 failed imports, each a scan of
    sys.path, for one 384-float query vector); marking pandas absent makes a vector search ~5x faster. Called after
    ingest, because pyarrow's pandas shim does not accept the marker."""
    import importlib.util
    if importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None


def shared_data() -> Path:
    "The shared data folder: $AIWB_SHARED_DATA, else <repo>/../shared/data."
    root = Path(os.environ.get("AIWB_SHARED_DATA", REPO.parent / "shared" / "data"))
    squad = root / "squad-v1.1-dev-half"
    if not squad.is_dir():
        sys.exit(f"error: {squad} not found\n  hint: set AIWB_SHARED_DATA to the folder that holds squad-v1.1-dev-half")
    return squad


class BM25:
    "Okapi BM25 over the store's chunks (stemmed content words), in memory: about a millisecond per query."

    def __init__(self, con, k1: float = 0.9, b: float = 0.4):
        import math
        from collections import Counter
        from aiwb.text import content_words
        rows = con.execute("SELECT chunk_id, doc_id, text FROM chunks ORDER BY chunk_id").fetchall()
        self.chunks = {c: Source(c, d, t) for c, d, t in rows}
        self.postings: dict[str, list[tuple[str, int]]] = {}
        self.length = {}
        for c, _, t in rows:
            tf = Counter(content_words(t)); self.length[c] = sum(tf.values())
            for w, n in tf.items(): self.postings.setdefault(w, []).append((c, n))
        self.avg = sum(self.length.values()) / max(len(self.length), 1)
        n = len(rows)
        self.idf = {w: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for w, p in self.postings.items()}
        self.k1, self.b, self.words = k1, b, content_words

    def search(self, query: str, k: int = 20) -> list[tuple[str, float]]:
        scores: dict[str, float] = {}
        for w in set(self.words(query)):
            for c, tf in self.postings.get(w, ()):
                norm = tf + self.k1 * (1 - self.b + self.b * self.length[c] / self.avg)
                scores[c] = scores.get(c, 0.0) + self.idf[w] * tf * (self.k1 + 1) / norm
        return sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:k]


class HybridPipeline(RAGPipeline):
    "Retrieve with reciprocal-rank fusion of BM25 and vector search (top 20 each); filter on the cosine score."
    pool = 20
    bm25: BM25 | None = None

    def retrieve(self, question: str) -> list[Source]:
        from aiwb.embeddings import EMBEDDING_DIM, embed
        vec = search(self.con, question, k=self.pool)
        lex = self.bm25.search(question, self.pool)
        fused: dict[str, float] = {}
        for rank, h in enumerate(vec): fused[h.chunk_id] = fused.get(h.chunk_id, 0) + 1 / (60 + rank)
        for rank, (cid, _) in enumerate(lex): fused[cid] = fused.get(cid, 0) + 1 / (60 + rank)
        ranked = sorted(fused, key=lambda c: (-fused[c], c))[: self.config.top_k]
        by_id = {h.chunk_id: h for h in vec}
        missing = [c for c in ranked if c not in by_id]
        if missing:  # BM25-only hits: score them by cosine like the vector hits
            qv = embed([question.strip()])[0]
            for cid in missing:
                src = self.bm25.chunks[cid]
                v = embed([src.text])[0]
                by_id[cid] = Source(cid, src.doc_id, src.text, float(v @ qv))
        return [by_id[c] for c in ranked if by_id[c].score >= self.config.min_retrieval_score]


class NaiveTarget:
    "The naive baseline: vector search; answer = the sentence of the top paragraph most similar to the question."

    def __init__(self, con, k: int = 5):
        self.con, self.k = con, k
        self.config = {"system": "naive MiniLM: top paragraph, most similar sentence", "k": k}
        import threading
        self._local = threading.local()

    def __call__(self, question: str):
        from aiwb.embeddings import embed
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self.con.cursor()
        t0 = time.perf_counter()
        hits = search(con, question, k=self.k)
        top = [h for h in hits if h.doc_id == hits[0].doc_id]
        sentences = [s for h in top for s in split_sentences(h.text)]
        vecs = embed([question] + sentences)
        best = int((vecs[1:] @ vecs[0]).argmax())
        c = Completion(sentences[best], model="all-MiniLM-L6-v2", provider="naive", cost_usd=0.0, sources=top[:1],
                       latency_ms=(time.perf_counter() - t0) * 1000, path="naive")
        return c, [h.doc_id for h in hits]


def build_store(con, cfg, docs) -> str:
    "Ingest the paragraphs (title as a heading, one file per paragraph) unless the store already has them."
    have = con.execute("SELECT count(*) FROM documents").fetchone()[0]
    if have != len(docs):
        with tempfile.TemporaryDirectory() as d:
            for doc in docs:
                (Path(d) / f"{doc.id}.md").write_text(f"# {doc.title}\n\n{doc.text}\n", encoding="utf-8")
            t0 = time.perf_counter()
            rep = ingest(con, d, cfg, progress=True)
            print(f"ingested {len(rep.added) + len(rep.replaced)} paragraphs, {rep.chunks_written} chunks in {time.perf_counter() - t0:.0f} s")
    return corpus_version(con)


def warm_embeddings(con, questions: list[str], cache_file: Path) -> int:
    """Embed every question and every chunk sentence once, in large batches, and serve later calls from memory.

    Batching is the only change: the vectors are the model's own, so results are those of per-call embedding,
    computed in a fraction of the time (one forward pass per 128 texts instead of one per question)."""
    import numpy as np
    import aiwb.embeddings as E
    import aiwb.data.store as S
    raw = E.embed
    chunks = con.execute("SELECT text, embedding FROM chunks").fetchall()
    vecs = {t: np.asarray(v, dtype=np.float32) for t, v in chunks}  # chunk vectors are already in the store
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as z:
            vecs.update(zip(z["texts"].tolist(), z["vectors"]))
    texts = [q.strip() for q in questions] + [s for t, _ in chunks for s in split_sentences(t)]
    todo = [t for t in dict.fromkeys(texts) if t not in vecs]
    if todo:
        t0 = time.perf_counter()
        vecs.update(zip(todo, raw(todo, batch_size=128, show_progress=True)))
        print(f"embedded {len(todo)} questions and sentences in {time.perf_counter() - t0:.0f} s")
        keep = [t for t in vecs if t not in {c for c, _ in chunks}]
        np.savez(cache_file, texts=np.array(keep), vectors=np.stack([vecs[t] for t in keep]))

    def cached(batch, batch_size: int = 64, show_progress: bool = False, model: str = E.MODEL_NAME):
        missing = [t for t in dict.fromkeys(batch) if t not in vecs]
        if missing: vecs.update(zip(missing, raw(missing, batch_size=batch_size, model=model)))
        return np.stack([vecs[t] for t in batch]) if len(batch) else raw([])
    E.embed = S.embed = cached
    return len(texts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all 5,397)")
    ap.add_argument("--configs", default="naive,span,span-hybrid", help="comma-separated, from naive,sentence,span,span-hybrid")
    ap.add_argument("--home", default="", help="AIWB_HOME for the bench store, embedding cache and runs (default: a folder in the temp dir per chunk size)")
    ap.add_argument("--chunk-tokens", type=int, default=256, help="chunk size: 256 keeps most paragraphs whole")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=5)
    args = ap.parse_args(argv)

    squad = shared_data()
    docs, cases = load_squad(squad)
    cases = cases[: args.limit] if args.limit else cases
    args.home = args.home or str(Path(tempfile.gettempdir()) / f"aiwb-bench-squad-{args.chunk_tokens}")
    cfg = load_config(env={"AIWB_HOME": args.home, "AIWB_TOP_K": str(args.top_k), "AIWB_CHUNK_TOKENS": str(args.chunk_tokens)})
    con = connect(config=cfg)
    version = build_store(con, cfg, docs)
    skip_pandas_lookups()
    # doc ids are the file names: "Super_Bowl_50_0.md" -> relevant doc "Super_Bowl_50_0.md"
    for c in cases: c.relevant_docs = [f"{d}.md" for d in c.relevant_docs]
    warm_embeddings(con, [c.input for c in cases], Path(args.home) / "embeddings-cache.npz")
    HybridPipeline.bm25 = BM25(con)

    targets = {
        "naive": lambda: NaiveTarget(con),
        "sentence": lambda: EvalTarget(RAGPipeline(con, cfg, ExtractiveBaseline(answer="sentence"))),
        "span": lambda: EvalTarget(RAGPipeline(con, cfg, ExtractiveBaseline(answer="span"))),
        "span-hybrid": lambda: EvalTarget(HybridPipeline(con, cfg, ExtractiveBaseline(answer="span"))),
    }
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in targets]
    if unknown:
        sys.exit(f"error: unknown configuration(s) {unknown}\n  hint: choose from {', '.join(targets)}")
    runs, timing = {}, {}
    for n in names:
        t0 = time.perf_counter()
        runs[n] = run_eval(cases, targets[n](), con, name=f"squad-{n}", corpus_version=version,
                           concurrency=args.concurrency, progress=True)
        timing[n] = time.perf_counter() - t0
    summaries = {n: summarize(con, r) for n, r in runs.items()}

    from rich.table import Table
    t = Table(title=f"SQuAD v1.1 dev-half, {len(cases)} questions, {len(docs)} paragraphs (95% bootstrap CI)")
    for col in ("system", "recall@1", "recall@5", "EM", "F1", "F1 95% CI", "answered", "p50 ms", "wall s"):
        t.add_column(col, justify="right" if col != "system" else "left")
    for n, s in summaries.items():
        m = s.metrics
        t.add_row(f"aiwb {n}", f"{m['recall_at_1'].value:.3f}", f"{m['recall_at_5'].value:.3f}",
                  f"{100 * m['em'].value:.2f}", f"{100 * m['f1'].value:.2f}",
                  f"[{100 * m['f1'].ci_low:.2f}, {100 * m['f1'].ci_high:.2f}]", f"{m['answered'].value:.3f}",
                  f"{m['p50_ms'].value:.0f}", f"{timing[n]:.0f}")
    for name, em, f1 in PUBLISHED:
        t.add_row(name, "", "", "" if em is None else f"{em:.2f}", f"{f1:.2f}", "", "", "", "")
    print_table(t)
    for n, s in summaries.items():
        em, f1, r5 = s.metrics["em"], s.metrics["f1"], s.metrics["recall_at_5"]
        print(f"{n:12s} EM {100 * em.value:.2f} [{100 * em.ci_low:.2f}, {100 * em.ci_high:.2f}]  "
              f"F1 {100 * f1.value:.2f} [{100 * f1.ci_low:.2f}, {100 * f1.ci_high:.2f}]  "
              f"recall@5 {r5.value:.3f} [{r5.ci_low:.3f}, {r5.ci_high:.3f}]  grounding {s.metrics['grounding'].value:.3f}")
    pairs = [(a, b) for a, b in [("naive", "span"), ("sentence", "span"), ("span", "span-hybrid")] if a in runs and b in runs]
    if len(pairs) == 0 and len(runs) == 2: pairs = [tuple(runs)]
    for a, b in pairs:
        print_table(comparison_table(compare(con, runs[a], runs[b], metrics=("em", "f1", "recall_at_1", "recall_at_5", "latency_ms")),
                                     title=f"{b} vs {a} (paired, {len(cases)} questions)"))
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
