"""Tracing overhead on the offline pipeline: median latency per request with tracing off vs on, in one run.

Ingests the bundled corpus into a temporary AIWB_HOME, instruments a RAGPipeline (spans + cost ledger + metrics,
spans exported to DuckDB in the background), then answers every golden question with tracing off and on,
interleaved and alternating order, `--rounds` times. Exits 1 if the overhead exceeds `--max` (default 5 %).

    python bench/tracing_overhead.py [--rounds 3] [--max 0.05]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from aiwb.core import connect, load_config  # noqa: E402
from aiwb.eval import load_cases  # noqa: E402
from aiwb.observability import tracing_overhead  # noqa: E402
from aiwb.pipeline import RAGPipeline  # noqa: E402
from aiwb.store import ingest  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max", type=float, default=0.05, help="largest acceptable relative overhead")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        cfg = load_config(env={"AIWB_HOME": home})
        con = connect(config=cfg)
        ingest(con, REPO / "data" / "corpus", cfg)
        questions = [c.input for c in load_cases(REPO / "data" / "golden.jsonl").cases]
        res = tracing_overhead(RAGPipeline(con, cfg), questions, con, rounds=args.rounds)
        spans = con.execute("SELECT count(*) FROM obs_spans").fetchone()[0]
        con.close()
    print(f"requests per arm     {res['requests']}")
    print(f"median, tracing off  {res['median_off_ms']:.2f} ms")
    print(f"median, tracing on   {res['median_on_ms']:.2f} ms   ({spans} spans written to DuckDB)")
    print(f"overhead             {100 * res['overhead']:+.2f} %  (bound {100 * args.max:.0f} %)")
    return 0 if res["overhead"] <= args.max else 1


if __name__ == "__main__":
    raise SystemExit(main())
