"""Embedding and ingest throughput: raw sentence-transformers `encode`, the ONNX fp32 and int8 encoders, ingest.

    .venv/bin/python bench/ingest_speed.py [--docs 2000] [--chunked] [--threads 1] [--batch-size 64]

Reads the first `--docs` SciFact abstracts (`../shared/data/scifact`, or `$AIWB_SHARED_DATA/scifact`) and, on
exactly the texts ingest will embed, times sentence-transformers' `model.encode` (torch), aiwb's ONNX encoder in
fp32 and in int8 (onnxruntime), then `ingest_documents` into a fresh store (empty embedding cache: everything is
embedded, with ONNX fp32), then the same ingest again. torch and onnxruntime get the same thread count. Every ratio
is to the raw sentence-transformers throughput. Targets: ONNX fp32 ≥ 1.0× raw encode; ingest ≥ 0.9× raw encode.
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
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime alike")
    ap.add_argument("--batch-size", type=int, default=0, help="texts per forward pass (default: the config's batch_size)")
    args = ap.parse_args()
    os.environ["AIWB_TORCH_THREADS"] = os.environ["AIWB_EMBED_THREADS"] = str(args.threads)
    from aiwb.core import connect, load_config
    from aiwb.embeddings import load_encoder, load_model
    from aiwb.data.store import chunk_text, ingest_documents, read_jsonl

    docs = []
    for d in read_jsonl(shared_data() / "scifact" / "corpus.jsonl"):
        docs.append(d)
        if len(docs) >= args.docs: break
    with tempfile.TemporaryDirectory() as home:
        cfg = load_config(env={"AIWB_HOME": home}, **({"batch_size": args.batch_size} if args.batch_size else {}))
        texts = [c for d in docs for c in (chunk_text(d.text, cfg.chunk_tokens, cfg.chunk_overlap) if args.chunked else [d.text])]
        model = load_model()
        model.encode(texts[:64], batch_size=cfg.batch_size)  # warm-up, not timed
        onnx = {p: load_encoder(p) for p in ("fp32", "int8")}
        for enc in onnx.values():
            enc(texts[:64], batch_size=cfg.batch_size)  # warm-up, not timed
        t = time.perf_counter()
        model.encode(texts, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        raw = time.perf_counter() - t
        onnx_s = {}
        for p, enc in onnx.items():
            t = time.perf_counter()
            enc(texts, batch_size=cfg.batch_size)
            onnx_s[p] = time.perf_counter() - t
        con = connect(config=cfg)
        t = time.perf_counter()
        first = ingest_documents(con, docs, cfg, chunk=args.chunked)
        ing = time.perf_counter() - t
        t = time.perf_counter()
        second = ingest_documents(con, docs, cfg, chunk=args.chunked)
        again = time.perf_counter() - t
        con.close()
    n = len(texts)
    print(f"SciFact, {len(docs)} documents, {n} texts ({'chunked' if args.chunked else 'one chunk per document'}), "
          f"batch {cfg.batch_size}, {args.threads} thread(s) for torch and onnxruntime")
    print("| step | seconds | texts/s | ratio to raw ST encode | embedded |")
    print("|---|---|---|---|---|")
    print(f"| raw sentence-transformers model.encode (torch) | {raw:.1f} | {n / raw:.1f} | 1.00 | {n} |")
    for p, sec in onnx_s.items():
        print(f"| raw ONNX {p} encoder (onnxruntime) | {sec:.1f} | {n / sec:.1f} | {raw / sec:.2f} | {n} |")
    print(f"| ingest, ONNX fp32 (fresh store) | {ing:.1f} | {n / ing:.1f} | {raw / ing:.2f} | {first.chunks_embedded} |")
    print(f"| ingest again (unchanged) | {again:.2f} | | | {second.chunks_embedded} |")
    print(f"\ntarget ONNX fp32 ≥ 1.0× raw ST encode: {'PASS' if raw / onnx_s['fp32'] >= 1.0 else 'FAIL'}; "
          f"ingest ≥ 0.9× raw: {'PASS' if raw / ing >= 0.9 else 'FAIL'}; second ingest embeds nothing: "
          f"{'PASS' if second.chunks_embedded == 0 and not second.added else 'FAIL'}")


if __name__ == "__main__":
    main()
