"""Overhead of the reliability wrappers and of a cache hit, on a no-op provider, against the bare call in the same run.

Targets: retry + breaker + limiter <= 50 us per call (median overhead over the bare call); exact-cache hit <= 200 us.

    python bench/overhead.py            # ~20 s
    python bench/overhead.py --n 50000
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiwb.reliability.cache import CachedAnswerer, ExactCache, request_key  # noqa: E402
from aiwb.core import Completion, Message, Usage, connect, load_config  # noqa: E402
from aiwb.reliability.retry import (CallBudget, CircuitBreaker, RateLimiter, ReliableProvider, RetryPolicy,  # noqa: E402
                              retry_call)


class NoOp:
    "A provider that returns a prebuilt completion: the bare call costs only a method call."
    name, model = "noop", "noop-model"
    is_remote = False
    def __init__(self): self.c = Completion("ok", self.model, self.name, Usage(10, 2), cost_usd=0.0)
    def complete(self, messages, *, system=None, context=None, max_tokens=512, temperature=0.0, timeout=None):
        return self.c


def per_call_us(fn, n: int) -> float:
    "Median wall time of one call to `fn`, in microseconds (after a warm-up)."
    for _ in range(min(1000, n)): fn()
    ts = []
    pc = time.perf_counter_ns
    for _ in range(n):
        t = pc(); fn(); ts.append(pc() - t)
    return statistics.median(ts) / 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="timed calls per row")
    args = ap.parse_args()
    p, msgs = NoOp(), [Message("user", "What is full jitter?")]
    br = CircuitBreaker("noop")
    lim = RateLimiter(requests_per_min=1e12, tokens_per_min=1e15, max_concurrent=10**6)
    rp = ReliableProvider([p], RetryPolicy(), limiter=lim)
    rp_plain = ReliableProvider([p], RetryPolicy())

    def limiter_only():
        with lim.acquire("u", 100) as lease: p.complete(msgs); lease.settle(12)

    home = tempfile.mkdtemp()
    con = connect(config=load_config(env={"AIWB_HOME": home}))
    ex, ex_cold = ExactCache(con), ExactCache(con, memory_size=0)
    key = request_key(p.model, msgs, None, {"max_tokens": 512})
    ex.put(key, p.c, p.model)
    qa = CachedAnswerer(p, exact=ex)
    qa.answer("What is full jitter?")  # stores it

    rows = [("bare call (baseline)", lambda: p.complete(msgs)),
            ("retry_call (tenacity)", lambda: retry_call(lambda t: p.complete(msgs), budget=CallBudget(4))),
            ("circuit breaker", lambda: br.call(lambda: p.complete(msgs))),
            ("rate limiter (acquire+settle+release)", limiter_only),
            ("ReliableProvider: retry+breaker", lambda: rp_plain.complete(msgs)),
            ("ReliableProvider: retry+breaker+limiter", lambda: rp.complete(msgs, user="u")),
            ("exact-cache hit (key + memory LRU)", lambda: ex.get(request_key(p.model, msgs, None, {"max_tokens": 512}))),
            ("exact-cache hit (key + DuckDB row)", lambda: ex_cold.get(request_key(p.model, msgs, None, {"max_tokens": 512}))),
            ("CachedAnswerer.answer, exact hit", lambda: qa.answer("What is full jitter?"))]
    results = [(name, per_call_us(fn, args.n if "DuckDB" not in name else max(1000, args.n // 10))) for name, fn in rows]
    bare = results[0][1]
    targets = {"ReliableProvider: retry+breaker+limiter": 50.0, "CachedAnswerer.answer, exact hit": 200.0,
               "exact-cache hit (key + memory LRU)": 200.0}
    print(f"median per call over {args.n} calls (DuckDB row: {max(1000, args.n // 10)}), no-op provider\n")
    print(f"{'path':<42}{'median us':>10}{'overhead us':>13}{'target':>9}{'':>6}")
    print("-" * 80)
    for name, us in results:
        over = us - bare
        t = targets.get(name)
        verdict = "" if t is None else ("ok" if over <= t else "MISS")
        print(f"{name:<42}{us:>10.2f}{over:>13.2f}{(f'<= {t:.0f}' if t else ''):>9}{verdict:>6}")
    con.close()


if __name__ == "__main__":
    main()
