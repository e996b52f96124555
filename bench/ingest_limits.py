"""Ingest under hostile sizes: each case in a fresh child process, with its wall time, peak RSS and outcome.

    .venv/bin/python bench/ingest_limits.py [--limit-mb 8] [--skip-at-limit]

Cases (default limits unless the case says otherwise): a 200 MB text file, a 10 MB single line, a 50 MB JSONL line,
a 5 MB metadata field in a 5 MB JSONL file (refused by default; then ingested with the limits raised to 6 MB, to show
the metadata stored once), a document of real text exactly at `max_document_bytes` (SciFact abstracts from
`../shared/data/scifact`, or `$AIWB_SHARED_DATA/scifact`; embedded for real), and chunking alone in s/MB on real text
and on hostile text (unique random words, one line), beside one tokenizer pass over the same text (the baseline).
The first row ingests one small file: the peak RSS of loading the embedding model, the floor of every other row.
Every refused case also holds a small good file in the same folder: "rest ingested" says it was still stored.
Targets: refusals at once; the document at the limit with peak RSS <= 1 GB; chunking <= 1 s/MB.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MB = 1_000_000


def _write_repeated(path: Path, unit: bytes, size: int, tail: bytes = b"") -> None:
    "Write `unit` repeated to `size` bytes (streamed: the bench never holds the file in memory)."
    with open(path, "wb") as f:
        left = size - len(tail)
        block = unit * max(1, (1 << 20) // len(unit))
        while left > 0:
            f.write(block[:left]); left -= len(block)
        f.write(tail)


def _real_text(size: int) -> str:
    "About `size` bytes of real prose: SciFact abstracts (or varied synthetic sentences when SciFact is absent)."
    from bench.retrieval import shared_data
    parts, n = [], 0
    try:
        path = shared_data() / "scifact" / "corpus.jsonl"
    except SystemExit:
        path = Path("/nonexistent")
    rows = path.open(encoding="utf-8") if path.is_file() else None
    rng = random.Random(0)
    words = "retry budget breaker probe cache eviction queue depth latency tail shard replica index vector".split()
    while n < size:
        line = next(rows, None) if rows else None
        para = json.loads(line)["text"] if line else " ".join(
            f"Sentence {i} says {rng.choice(words)} {rng.randrange(10**6)} is {rng.choice(words)}." for i in range(8))
        parts.append(para); n += len(para.encode("utf-8")) + 2
    text = "\n\n".join(parts).encode("utf-8")[:size].decode("utf-8", "ignore")
    return text


def case(name: str, limit_mb: float) -> dict:
    "Run one case in this (child) process; return its outcome."
    from aiwb.core import connect, load_config
    from aiwb.data.store import ingest
    tmp = Path(tempfile.mkdtemp(prefix="aiwb-limits-"))
    docs = tmp / "docs"; docs.mkdir()
    (docs / "good.md").write_text("# Good\nThe breaker opens after five failures.")
    env = {"AIWB_HOME": str(tmp / "home")}
    overrides = {"max_document_bytes": int(limit_mb * MB)}
    if name == "one small file (baseline)":
        size = (docs / "good.md").stat().st_size
    elif name == "200 MB text file":
        _write_repeated(docs / "big.txt", b"The quick brown fox jumps over the lazy dog.\n", 200 * MB); size = 200 * MB
    elif name == "10 MB single line":
        _write_repeated(docs / "line.md", b"word ", 10 * MB, b"\n"); size = 10 * MB
    elif name == "50 MB JSONL line":
        _write_repeated(docs / "line.jsonl", b"y", 50 * MB - 20, b'"}\n')
        with open(docs / "line.jsonl", "r+b") as f: f.write(b'{"_id": "x", "text": "')
        size = 50 * MB
    elif name.startswith("5 MB metadata field"):
        rec = {"_id": "m", "text": " ".join(f"Sentence {i} is about cache eviction." for i in range(400)), "blob": "z" * (5 * MB)}
        (docs / "meta.jsonl").write_text(json.dumps(rec) + "\n"); size = (docs / "meta.jsonl").stat().st_size
        if "raised" in name:
            overrides.update(max_line_bytes=6 * MB, max_metadata_bytes=6 * MB)
    elif name == "document at the limit":
        text = _real_text(int(limit_mb * MB)); (docs / "limit.md").write_text(text); size = len(text.encode("utf-8"))
    else:
        raise SystemExit(f"unknown case {name!r}")
    cfg = load_config(env=env, **overrides)
    con = connect(config=cfg)
    t0 = time.perf_counter()
    r = ingest(con, docs, cfg)
    wall = time.perf_counter() - t0
    con.execute("CHECKPOINT")
    chunks = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
    con.close()
    store_mb = (tmp / "home" / "aiwb.duckdb").stat().st_size / MB
    shutil.rmtree(tmp, ignore_errors=True)
    refused = [m.splitlines()[0].split(": ", 1)[-1] for _, m in r.errors]
    outcome = (f"refused: {refused[0][:70]}" if refused else f"ingested: {chunks} chunks") + \
              ("; rest ingested" if "good.md" in r.added and refused else "") + f"; store {store_mb:.1f} MB"
    return {"size": size, "wall": wall, "outcome": outcome}


def chunking(kind: str, size: int) -> dict:
    "Chunking alone (and one tokenizer pass, the baseline) over `size` bytes of real or hostile text."
    from aiwb.embeddings import count_tokens
    from aiwb.data.store import chunks_with_sizes
    if kind == "real":
        text = _real_text(size)
    else:
        rng = random.Random(1)
        text = " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10))) for _ in range(size // 7))
    t0 = time.perf_counter(); pairs = chunks_with_sizes(text); t_chunk = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, len(text), 100_000): count_tokens(text[i:i + 100_000])
    t_tok = time.perf_counter() - t0
    mb = len(text.encode("utf-8")) / MB
    return {"size": int(mb * MB), "wall": t_chunk,
            "outcome": f"{len(pairs)} chunks, {t_chunk / mb:.2f} s/MB; one tokenizer pass {t_tok / mb:.2f} s/MB "
                       f"(ratio {t_chunk / t_tok:.2f})"}


def run_child(args: list[str]) -> tuple[dict, float]:
    "Run this script with `args` in a child; (its JSON result, its peak RSS in MB)."
    p = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        return {"size": 0, "wall": float("nan"), "outcome": f"child failed (exit {p.returncode})"}, usage.ru_maxrss / 1024
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit-mb", type=float, default=None, help="max_document_bytes in MB (default: the config default)")
    ap.add_argument("--skip-at-limit", action="store_true", help="leave out the (slow, embedding) document-at-the-limit case")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--chunking", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from aiwb.core import Config
    limit_mb = args.limit_mb or Config.max_document_bytes / MB
    if args.case:
        print(json.dumps(case(args.case, limit_mb))); return
    if args.chunking:
        print(json.dumps(chunking(args.chunking[0], int(args.chunking[1])))); return
    cases = ["one small file (baseline)", "200 MB text file", "10 MB single line", "50 MB JSONL line", "5 MB metadata field",
             "5 MB metadata field, limits raised to 6 MB"] + ([] if args.skip_at_limit else ["document at the limit"])
    print(f"max_document_bytes = {limit_mb * MB:,.0f}, max_line_bytes = {Config.max_line_bytes:,}, "
          f"max_metadata_bytes = {Config.max_metadata_bytes:,} (defaults unless the case says otherwise); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'case':44} {'size':>9} {'wall s':>8} {'peak RSS MB':>12}  outcome", flush=True)
    runs = [(c, ["--case", c, "--limit-mb", str(limit_mb)]) for c in cases]
    runs += [(f"chunking alone, {k} text", ["--chunking", k, str(n)]) for k, n in (("real", 8 * MB), ("hostile", 2 * MB))]
    for name, child_args in runs:  # a row as soon as its case is done
        res, rss = run_child(child_args)
        print(f"{name:44} {res['size'] / MB:>7.1f}MB {res['wall']:>8.2f} {rss:>12.0f}  {res['outcome']}", flush=True)


if __name__ == "__main__":
    main()
