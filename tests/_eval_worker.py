"""Subprocess used by test_eval_resume: evaluates a slow deterministic system over N cases into a DuckDB file.

usage: python _eval_worker.py DB N DELAY   (prints 'call <case>' for every system call, flushed)
"""
import sys
import time

from aiwb.core import Completion, Source, connect, load_config
from aiwb.orchestration.pipeline import GoldenCase

db, n, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cases = [GoldenCase(id=f"q{i:03d}", input=f"What is item {i}?", reference=f"answer {i}" if i % 3 else "wrong",
                    must_contain=[] if i % 4 else [f"{i}"], relevant_docs=[f"d{i % 7}"]) for i in range(n)]


def system(question: str):
    i = int(question.split()[-1].rstrip("?"))
    print(f"call {i}", flush=True)
    time.sleep(delay)
    text = "I don't know." if i % 5 == 0 else f"answer {i}"
    src = []  # no chunks: grounding needs no embedding model, so the worker starts fast
    return Completion(text, "fake", "fake", latency_ms=10.0 + i, cost_usd=0.001 * (i % 2), sources=src,
                      abstained=i % 5 == 0), [f"d{(i * 3) % 7}", f"d{i % 7}"]


if __name__ == "__main__":
    from aiwb.eval import run_eval
    con = connect(db, config=load_config())
    run_id = run_eval(cases, system, con, name="resume-test", config={"system": "worker"}, corpus_version="v1",
                      concurrency=2, progress=False)
    print(f"run {run_id}", flush=True)
    con.close()
