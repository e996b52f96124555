"""SQuAD v1.1 (dev, half): the full offline RAG pipeline over 1,023 paragraphs and 5,397 questions.

Ingests every paragraph into an aiwb store, then runs the eval harness over the questions with several
configurations, and prints retrieval recall@1/@5 of the gold paragraph, EM and F1 (official normalisation) with
bootstrap 95 % CIs beside the published systems, and the paired verdict between configurations:

* `naive`         MiniLM only: vector search, answer = the most similar sentence of the top paragraph
* `sentence`      aiwb pipeline (vector top-k) + ExtractiveBaseline, answer = best sentence
* `span`          same, answer = the answer span inside the best sentence
* `span-hybrid`   span answers over hybrid retrieval (BM25 via DuckDB fts + vector, reciprocal-rank fusion)

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
from aiwb.pipeline import RAGPipeline  # noqa: E402
from aiwb.providers import ExtractiveBaseline, split_sentences  # noqa: E402
from aiwb.store import corpus_version, ingest, search  # noqa: E402

PUBLISHED = [  # EM, F1 on these 5,397 questions (shared/data/README.md); sliding window: SQuAD paper, full dev
    ("Logistic regression (SQuAD paper)", 38.52, 48.72),
    ("Match-LSTM (boundary, ensemble)", 66.28, 74.75),
    ("BERT ensemble", 85.99, 91.81),
    ("Sliding window (SQuAD paper, full dev)", None, 20.2),
]


def shared_data() -> Path:
    "The shared data folder: $AIWB_SHARED_DATA, else <repo>/../shared/data."
    root = Path(os.environ.get("AIWB_SHARED_DATA", REPO.parent / "shared" / "data"))
    squad = root / "squad-v1.1-dev-half"
    if not squad.is_dir():
        sys.exit(f"error: {squad} not found\n  hint: set AIWB_SHARED_DATA to the folder that holds squad-v1.1-dev-half")
    return squad


class HybridPipeline(RAGPipeline):
    "Retrieve with reciprocal-rank fusion of BM25 (DuckDB fts) and vector search; filter on the cosine score."
    pool = 20

    def retrieve(self, question: str) -> list[Source]:
        vec = search(self.con, question, k=self.pool)
        rows = self.con.execute("""SELECT chunk_id, score FROM (SELECT chunk_id, fts_main_chunks.match_bm25(chunk_id, ?) AS score
                                   FROM chunks) WHERE score IS NOT NULL ORDER BY score DESC LIMIT ?""", [question, self.pool]).fetchall()
        fused: dict[str, float] = {}
        for rank, h in enumerate(vec): fused[h.chunk_id] = fused.get(h.chunk_id, 0) + 1 / (60 + rank)
        for rank, (cid, _) in enumerate(rows): fused[cid] = fused.get(cid, 0) + 1 / (60 + rank)
        by_id = {h.chunk_id: h for h in vec}
        missing = [c for c in fused if c not in by_id]
        if missing:  # BM25-only hits: fetch them with their cosine score
            from aiwb.embeddings import EMBEDDING_DIM, embed
            qv = embed([question])[0].tolist()
            for cid, doc, text, score in self.con.execute(f"""SELECT chunk_id, doc_id, text, array_cosine_similarity(embedding, ?::FLOAT[{EMBEDDING_DIM}])
                                                            FROM chunks WHERE chunk_id IN (SELECT unnest(?))""", [qv, missing]).fetchall():
                by_id[cid] = Source(cid, doc, text, float(score))
        ranked = sorted(fused, key=lambda c: -fused[c])[: self.config.top_k]
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
    con.execute("PRAGMA create_fts_index('chunks', 'chunk_id', 'text', stemmer='english', stopwords='english', overwrite=1)")
    return corpus_version(con)


def warm_embeddings(con, questions: list[str]) -> int:
    """Embed every question and every chunk sentence once, in large batches, and serve later calls from memory.

    Batching is the only change: the vectors are the model's own, so results are those of per-call embedding,
    computed in a fraction of the time (one forward pass per 128 texts instead of one per question)."""
    import numpy as np
    import aiwb.embeddings as E
    import aiwb.store as S
    raw = E.embed
    texts = [q.strip() for q in questions]
    texts += [s for (t,) in con.execute("SELECT text FROM chunks").fetchall() for s in split_sentences(t)]
    texts = list(dict.fromkeys(texts))
    t0 = time.perf_counter()
    vecs = dict(zip(texts, raw(texts, batch_size=128, show_progress=True)))
    print(f"embedded {len(texts)} questions and sentences in {time.perf_counter() - t0:.0f} s")

    def cached(batch, batch_size: int = 64, show_progress: bool = False):
        missing = [t for t in dict.fromkeys(batch) if t not in vecs]
        if missing: vecs.update(zip(missing, raw(missing, batch_size=batch_size)))
        return np.stack([vecs[t] for t in batch]) if len(batch) else raw([])
    E.embed = S.embed = cached
    return len(texts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all 5,397)")
    ap.add_argument("--configs", default="naive,sentence,span,span-hybrid", help="comma-separated configurations")
    ap.add_argument("--home", default=str(Path(tempfile.gettempdir()) / "aiwb-bench-squad"), help="AIWB_HOME for the bench store and runs")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=4)
    args = ap.parse_args(argv)

    squad = shared_data()
    docs, cases = load_squad(squad)
    cases = cases[: args.limit] if args.limit else cases
    cfg = load_config(env={"AIWB_HOME": args.home, "AIWB_TOP_K": str(args.top_k)})
    con = connect(config=cfg)
    version = build_store(con, cfg, docs)
    # doc ids are the file names: "Super_Bowl_50_0.md" -> relevant doc "Super_Bowl_50_0.md"
    for c in cases: c.relevant_docs = [f"{d}.md" for d in c.relevant_docs]
    warm_embeddings(con, [c.input for c in cases])

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
    for a, b in pairs:
        print_table(comparison_table(compare(con, runs[a], runs[b], metrics=("em", "f1", "recall_at_1", "recall_at_5", "latency_ms")),
                                     title=f"{b} vs {a} (paired, {len(cases)} questions)"))
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
