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
from aiwb.orchestration.pipeline import RAGPipeline  # noqa: E402
from aiwb.data.store import ingest  # noqa: E402


def skip_pandas_lookups() -> None:
    """DuckDB's Python client looks for pandas on every list parameter it binds (770 failed imports, each a scan of
    sys.path, for one 384-float query vector); marking pandas absent makes a vector search ~5x faster. Called after
    ingest, because pyarrow's pandas shim does not accept the marker."""
    import importlib.util
    if importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None


def span_cost_us(con, n: int = 1000) -> float:
    "Microseconds that the spans of one request cost on their own (tracing on minus off), no pipeline work inside."
    import time
    from aiwb.observability import disable_tracing, enable_tracing, flush_tracing
    from aiwb.trace import set_attributes, span

    def request():
        with span("rag.ask", question="How many retries?") as s:
            with span("retrieve", top_k=4) as r: set_attributes(r, hits=4, docs=["a.md", "b.md"])
            with span("generate", provider="local", model="extractive-baseline") as g:
                set_attributes(g, input_tokens=300, output_tokens=12, cost_usd=0.0, path="local", abstained=False)
            set_attributes(s, abstained=False)
    timings = {}
    for mode in ("off", "on", "off", "on"):
        enable_tracing(con) if mode == "on" else disable_tracing()
        t0 = time.perf_counter()
        for _ in range(n): request()
        timings.setdefault(mode, []).append((time.perf_counter() - t0) / n * 1e6)
        flush_tracing()
    disable_tracing()
    return max(min(timings["on"]) - min(timings["off"]), 0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max", type=float, default=0.05, help="largest acceptable relative overhead")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        cfg = load_config(env={"AIWB_HOME": home})
        con = connect(config=cfg)
        ingest(con, REPO / "data" / "corpus", cfg)
        skip_pandas_lookups()
        questions = [c.input for c in load_cases(REPO / "data" / "golden.jsonl").cases]
        res = tracing_overhead(RAGPipeline(con, cfg), questions, con, rounds=args.rounds)
        spans = con.execute("SELECT count(*) FROM obs_spans").fetchone()[0]
        per_request_us = span_cost_us(con)
        con.close()
    print(f"requests per arm     {res['requests']}")
    print(f"median, tracing off  {res['median_off_ms']:.2f} ms")
    print(f"median, tracing on   {res['median_on_ms']:.2f} ms   ({spans} spans written to DuckDB)")
    print(f"overhead             {100 * res['overhead']:+.2f} %  (bound {100 * args.max:.0f} %)")
    print(f"span cost in isolation: {per_request_us:.0f} µs per request (3 spans with attributes, exported to DuckDB)"
          f" = {100 * per_request_us / 1000 / res['median_off_ms']:.3f} % of the median request")
    return 0 if res["overhead"] <= args.max else 1


if __name__ == "__main__":
    raise SystemExit(main())
