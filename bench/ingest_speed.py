"""Ingest throughput against the raw embedding model on the same texts, and a second ingest that embeds nothing.

    .venv/bin/python bench/ingest_speed.py [--docs 2000] [--chunked]

Reads the first `--docs` SciFact abstracts (`../shared/data/scifact`, or `$AIWB_SHARED_DATA/scifact`), times
`model.encode` on exactly the texts ingest will embed, then `ingest_documents` into a fresh store (empty embedding
cache: everything is embedded), then the same ingest again. The target: ingest ≥ 0.9× the raw encode throughput.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.retrieval import shared_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--chunked", action="store_true", help="chunk documents (160 tokens) instead of one chunk each")
    args = ap.parse_args()
    from aiwb.core import connect, load_config
    from aiwb.embeddings import load_model
    from aiwb.store import chunk_text, ingest_documents, read_jsonl

    docs = []
    for d in read_jsonl(shared_data() / "scifact" / "corpus.jsonl"):
        docs.append(d)
        if len(docs) >= args.docs: break
    with tempfile.TemporaryDirectory() as home:
        cfg = load_config(env={"AIWB_HOME": home})
        texts = [c for d in docs for c in (chunk_text(d.text, cfg.chunk_tokens, cfg.chunk_overlap) if args.chunked else [d.text])]
        model = load_model()
        model.encode(texts[:64], batch_size=cfg.batch_size)  # warm-up, not timed
        t = time.perf_counter()
        model.encode(texts, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        raw = time.perf_counter() - t
        con = connect(config=cfg)
        t = time.perf_counter()
        first = ingest_documents(con, docs, cfg, chunk=args.chunked)
        ing = time.perf_counter() - t
        t = time.perf_counter()
        second = ingest_documents(con, docs, cfg, chunk=args.chunked)
        again = time.perf_counter() - t
        con.close()
    n = len(texts)
    print(f"SciFact, {len(docs)} documents, {n} texts ({'chunked' if args.chunked else 'one chunk per document'}), batch {cfg.batch_size}")
    print("| step | seconds | texts/s | ratio to raw encode | embedded |")
    print("|---|---|---|---|---|")
    print(f"| raw model.encode | {raw:.1f} | {n / raw:.1f} | 1.00 | {n} |")
    print(f"| ingest (fresh store) | {ing:.1f} | {n / ing:.1f} | {raw / ing:.2f} | {first.chunks_embedded} |")
    print(f"| ingest again (unchanged) | {again:.2f} | | | {second.chunks_embedded} |")
    print(f"\ntarget ingest ≥ 0.9× raw: {'PASS' if raw / ing >= 0.9 else 'FAIL'}; second ingest embeds nothing: "
          f"{'PASS' if second.chunks_embedded == 0 and not second.added else 'FAIL'}")


if __name__ == "__main__":
    main()
