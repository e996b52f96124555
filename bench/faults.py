"""Fault-matrix benchmark: N requests through the real Anthropic/OpenAI SDKs against local fault-injecting servers.

Every configuration sees the same seeded fault schedule (fresh servers, same seed), so the comparison is fair and
the whole table is a function of the seed:

  * sdk, no retries      - the bare SDK call (max_retries=0): the baseline
  * sdk, built-in retry  - the SDK's own retries (max_retries=2, its default)
  * aiwb, one route      - ReliableProvider: tenacity retry + breaker, primary endpoint only
  * aiwb, fallback chain - primary -> second Anthropic endpoint -> OpenAI model, one shared call budget
  * aiwb pipeline        - the composed system built from a config.toml (claude with an endpoint fallback, then
                           gpt): every request goes cache -> retrieve -> generate -> validate -> cache store with
                           tracing, request log and ledger on, run by the eval harness, which scores the degraded
                           answers (fell back, degraded, error) with 95 % CIs

Latency is *modelled* time, so it is reproducible: each upstream call costs a fixed time by what the server did
(the model is printed under the table) plus the backoff waits, which aiwb takes on an injected clock. The servers
really return the faults; only the waiting is simulated. The SDK's own retry sleeps cannot be injected, so its
latency column is left empty.

    python bench/faults.py                   # 1,000 requests per configuration, seed 0
    python bench/faults.py --seed 1 --n 2000
    python bench/faults.py --only pipeline     # just the composed pipeline's row
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import itertools  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

from aiwb.core import AiwbError, Message, connect, load_config  # noqa: E402
from aiwb.providers.anthropic import AnthropicProvider  # noqa: E402
from aiwb.providers.openai import OpenAIProvider  # noqa: E402
from aiwb.reliability.breaker import CircuitBreaker  # noqa: E402
from aiwb.reliability.chain import ReliableProvider  # noqa: E402
from aiwb.reliability.retry import FakeClock, RetryPolicy  # noqa: E402
from aiwb.providers.fakes import FaultSchedule, LocalLLMServer  # noqa: E402

KEY = "sk-bench-local-key"
RATES = {"429": 0.10, "503": 0.05, "hang": 0.02, "500": 0.01, "529": 0.01, "slow": 0.01, "reset": 0.01,
         "truncate": 0.01, "malformed": 0.01}
# modelled seconds per upstream call, by what the server did
COST = {"ok": 0.6, "slow": 5.0, "hang": 10.0, "429": 0.03, "401": 0.03, "500": 0.03, "503": 0.03, "529": 0.03,
        "reset": 0.01, "truncate": 0.3, "malformed": 0.6}
ARRIVAL_GAP = 1.0  # modelled seconds between request arrivals
REAL_TIMEOUT = 1.0  # seconds the client really waits for a hung request (stands for COST["hang"]); generous, so load never times out a normal call


class Timed:
    "Wraps a provider: after each call, advance the fake clock by the modelled cost of what the server did."
    is_remote = True  # it wraps an SDK provider
    def __init__(self, provider, server, clock):
        self.p, self.server, self.clock = provider, server, clock
        self.name, self.model, self.endpoint = provider.name, provider.model, provider.endpoint
        self.is_remote = provider.is_remote

    def __getattr__(self, name):  # anything else (route name, capabilities) is the wrapped provider's
        return getattr(self.p, name)

    def complete(self, messages, *, timeout=None, **kw):
        n0 = len(self.server.log)
        try:
            return self.p.complete(messages, timeout=REAL_TIMEOUT, **kw)
        finally:
            for e in self.server.log[n0:]: self.clock.advance(COST[e["fault"]])


def servers(seed: int, outage: tuple[int, int]):
    primary = LocalLLMServer(FaultSchedule(seed, RATES), api_key=KEY, retry_after=0.2, hang_s=REAL_TIMEOUT * 3, slow_s=0)
    second = LocalLLMServer(FaultSchedule(seed + 1, RATES), api_key=KEY, retry_after=0.2, hang_s=REAL_TIMEOUT * 3, slow_s=0)
    openai = LocalLLMServer(FaultSchedule(seed + 2, RATES), api_key=KEY, retry_after=0.2, hang_s=REAL_TIMEOUT * 3, slow_s=0)
    return [s.start() for s in (primary, second, openai)]


def set_outage(primary, i, outage, seed):
    "The primary endpoint is down (every call 503) while request number i is inside the outage window."
    down = outage[0] <= i < outage[1]
    if down != getattr(primary, "_down", False):
        primary.schedule = FaultSchedule(seed, {"503": 1.0}) if down else FaultSchedule(seed, RATES)
        primary._down = down


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def run_sdk(n, seed, outage, max_retries):
    import anthropic
    srvs = servers(seed, outage)
    client = anthropic.Anthropic(api_key=KEY, base_url=srvs[0].url, max_retries=max_retries, timeout=REAL_TIMEOUT)
    ok = opaque = cost = 0
    lat = []
    from aiwb.providers.prices import cost_usd
    from aiwb.core import Usage
    for i in range(n):
        set_outage(srvs[0], i, outage, seed)
        n0 = len(srvs[0].log)
        try:
            r = client.messages.create(model="claude-sonnet-4-20250514", max_tokens=64,
                                       messages=[{"role": "user", "content": f"question {i}"}])
            ok += 1
            cost += cost_usd("claude-sonnet-4-20250514", Usage(r.usage.input_tokens, r.usage.output_tokens))
        except Exception:
            opaque += 1
        if max_retries == 0: lat.append(sum(COST[e["fault"]] for e in srvs[0].log[n0:]) * 1000)
    calls = sum(len(s.log) for s in srvs)
    for s in srvs: s.stop()
    return dict(ok=ok, transparent=0, other=opaque, calls=calls, lat=lat, transitions="-", fallback=0, cost=cost)


def run_aiwb(n, seed, outage, chain: bool):
    srvs = servers(seed, outage)
    clk = FakeClock()
    routes = [Timed(AnthropicProvider(api_key=KEY, base_url=srvs[0].url), srvs[0], clk)]
    if chain:
        routes += [Timed(AnthropicProvider(api_key=KEY, base_url=srvs[1].url), srvs[1], clk),
                   Timed(OpenAIProvider(api_key=KEY, base_url=srvs[2].url + "/v1"), srvs[2], clk)]
    rp = ReliableProvider(routes, RetryPolicy(attempts=3, base=0.25, cap=4.0, attempt_timeout=REAL_TIMEOUT, deadline=30.0,
                                              max_retry_after=5.0),
                          max_upstream_calls=5, clock=clk, sleep=clk.sleep, seed=seed,
                          breaker_factory=lambda name: CircuitBreaker(name, failure_threshold=5, window=20, error_rate=0.5,
                                                                      min_calls=10, reset_timeout=30.0, clock=clk))
    ok = transparent = other = fallback = 0
    cost, lat, reports = 0.0, [], []
    rp.on_report = reports.append
    for i in range(n):
        set_outage(srvs[0], i, outage, seed)
        clk.now = max(clk.now, i * ARRIVAL_GAP)  # open-loop arrivals: request i arrives at i * gap
        t0 = clk()
        try:
            c = rp.complete([Message("user", f"question {i}")], max_tokens=64)
            ok += 1; cost += c.cost_usd or 0.0
            fallback += c.path.count("→") > 0
        except AiwbError:
            transparent += 1
        except Exception:
            other += 1
        lat.append((clk() - t0) * 1000)
    calls = sum(r.upstream_calls for r in reports)
    assert calls == sum(len(s.log) for s in srvs), "upstream calls reported must match what the servers saw"
    trans = {name: len(b.transitions) for name, b in rp.breakers.items()}
    for s in srvs: s.stop()
    return dict(ok=ok, transparent=transparent, other=other, calls=calls, lat=lat, fallback=fallback, cost=cost,
                transitions=" / ".join(str(v) for v in trans.values()))


PIPELINE_CONFIG = """
default_model = "claude"
[[models]]
name = "claude"
provider = "anthropic"
model = "claude-sonnet-4-20250514"
base_url = "{primary}"
fallback_base_urls = ["{second}"]
api_key_env = "AIWB_BENCH_KEY"
timeout_s = {timeout}
retries = 2
[[models]]
name = "gpt"
provider = "openai"
model = "gpt-4o-mini"
base_url = "{openai}/v1"
api_key_env = "AIWB_BENCH_KEY"
timeout_s = {timeout}
retries = 2
[fallbacks]
claude = ["gpt"]
[cache]
exact = true
[tracing]
enabled = true
"""


def run_pipeline(n, seed, outage):
    "The composed pipeline from a config file, driven by the eval harness, one request at a time in arrival order."
    from aiwb.data.store import ingest
    from aiwb.eval import EvalTarget, load_cases, run_eval, summarize
    from aiwb.observability import Observer, disable_tracing, enable_tracing
    from aiwb.orchestration.pipeline import GoldenCase, build_pipeline, open_runtime
    srvs = servers(seed, outage)
    home = tempfile.mkdtemp(prefix="aiwb-bench-faults-")
    os.environ["AIWB_HOME"], os.environ["AIWB_BENCH_KEY"] = home, KEY
    path = Path(home) / "config.toml"
    path.write_text(PIPELINE_CONFIG.format(primary=srvs[0].url, second=srvs[1].url, openai=srvs[2].url,
                                           timeout=REAL_TIMEOUT))
    cfg = load_config(path)
    con = connect(config=cfg)
    ingest(con, ROOT / "data" / "corpus", cfg, progress=False)
    runtime = open_runtime(cfg)
    enable_tracing(runtime)
    clk = FakeClock()
    rag = build_pipeline(cfg, con, runtime, observer=Observer(runtime, command="python"), clock=clk, sleep=clk.sleep)
    by_url = {srvs[0].url: srvs[0], srvs[1].url: srvs[1], srvs[2].url + "/v1": srvs[2]}
    rag.provider.routes = [Timed(r, by_url[r.base_url], clk) for r in rag.provider.routes]
    golden = load_cases(ROOT / "data" / "golden.jsonl").cases
    answerable = [c for c in golden if not c.expect_abstain]
    cases = [GoldenCase(id=f"r{i:04d}", input=f"{answerable[i % len(answerable)].input} (request {i})")
             for i in range(n)]
    evt, arrivals, outcomes = EvalTarget(rag, name="pipeline"), itertools.count(), []

    def target(question):
        i = next(arrivals)
        set_outage(srvs[0], i, outage, seed)
        clk.now = max(clk.now, i * ARRIVAL_GAP)
        t0 = clk()
        try:
            out = evt(question)
        except AiwbError:
            outcomes.append(("transparent", None, (clk() - t0) * 1000))
            raise
        except Exception:
            outcomes.append(("other", None, (clk() - t0) * 1000))
            raise
        outcomes.append(("ok", out[0], (clk() - t0) * 1000))
        return out
    target.config = evt.config
    run_id = run_eval(cases, target, con, name="faults-pipeline", concurrency=1, progress=False)
    rag.flush()
    disable_tracing()
    summary = summarize(con, run_id)
    answers = [a for kind, a, _ in outcomes if kind == "ok"]
    fell_back = [a for a in answers if "→" in a.path]
    calls = runtime.execute("SELECT sum(upstream_calls) FROM obs_requests").fetchone()[0]
    assert calls == sum(len(s.log) for s in srvs), "upstream calls in the request log must match what the servers saw"
    trans = " / ".join(str(len(b.transitions)) for b in rag.provider.breakers.values())
    for s in srvs: s.stop()
    con.close(); runtime.close()
    return dict(ok=len(answers), transparent=sum(k == "transparent" for k, _, _ in outcomes),
                other=sum(k == "other" for k, _, _ in outcomes), calls=calls, lat=[ms for *_, ms in outcomes],
                fallback=len(fell_back), cost=sum(a.cost_usd or 0.0 for a in answers), transitions=trans,
                labelled=sum(bool(a.degraded) for a in fell_back), summary=summary)


def main():
    ap = argparse.ArgumentParser(description="fault-matrix benchmark")
    ap.add_argument("--n", type=int, default=1000, help="requests per configuration")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sdk-retry", action="store_true", help="leave out the SDK built-in retry row (it sleeps for real: ~5 min)")
    ap.add_argument("--only", choices=("pipeline",), default=None, help="run only this configuration")
    args = ap.parse_args()
    outage = (int(args.n * 0.3), int(args.n * 0.45))  # primary endpoint down for these request numbers
    t0 = time.time()
    rows = []
    for name, fn in [("sdk, no retries (baseline)", lambda: run_sdk(args.n, args.seed, outage, 0)),
                     ("sdk, built-in retry (x2)", None if args.skip_sdk_retry else lambda: run_sdk(args.n, args.seed, outage, 2)),
                     ("aiwb, one route", lambda: run_aiwb(args.n, args.seed, outage, chain=False)),
                     ("aiwb, fallback chain", lambda: run_aiwb(args.n, args.seed, outage, chain=True)),
                     ("aiwb pipeline (config)", lambda: run_pipeline(args.n, args.seed, outage))]:
        if fn is None or (args.only and not name.startswith("aiwb pipeline")): continue
        t1 = time.time(); rows.append((name, fn()))
        print(f"  ran {name} in {time.time() - t1:.0f} s", file=sys.stderr)
    print(f"{args.n} requests per configuration, seed {args.seed}; faults per upstream call: "
          + ", ".join(f"{k} {v:.0%}" for k, v in RATES.items()) + f"; primary endpoint down (503) while requests {outage[0]}-{outage[1] - 1} arrive\n")
    head = f"{'configuration':<28}{'success':>8}{'transp.err':>11}{'other err':>10}{'sum':>7}{'calls/req':>10}{'p50 ms':>8}{'p99 ms':>8}{'fallback':>9}{'breaker transitions':>21}{'cost $':>10}"
    print(head); print("-" * len(head))
    for name, r in rows:
        n = args.n
        p50 = f"{statistics.median(r['lat']):.0f}" if r["lat"] else "-"
        p99 = f"{pct(r['lat'], 0.99):.0f}" if r["lat"] else "-"
        print(f"{name:<28}{r['ok'] / n:>8.1%}{r['transparent'] / n:>11.1%}{r['other'] / n:>10.1%}{(r['ok'] + r['transparent']) / n:>7.0%}"
              f"{r['calls'] / n:>10.2f}{p50:>8}{p99:>8}{r['fallback']:>9}{r['transitions']:>21}{r['cost']:>10.4f}")
    for name, r in rows:
        if "summary" not in r: continue
        m = r["summary"].metrics
        stat = lambda k: str(m[k]) if k in m else "-"
        print(f"\n{name}: {r['labelled']} of {r['fallback']} answers that fell back are labelled degraded; "
              f"{r['calls'] / args.n:.2f} upstream calls per request (target <= 1.5)")
        print(f"  the eval harness scores them (run {r['summary'].run_id}, mean [95% CI]): fell_back {stat('fell_back')}, "
              f"degraded {stat('degraded')}, error {stat('error')}, answered {stat('answered')}")
    print(f"\nsum = success + transparent errors (aiwb errors that name every route's failure); 'other err' are raw SDK exceptions.")
    print("latency model (s per upstream call): " + ", ".join(f"{k} {v}" for k, v in COST.items()) + "; plus backoff waits.")
    print("breaker transitions: per endpoint (primary / second endpoint / openai).")
    print(f"wall time {time.time() - t0:.0f} s (not part of the table)")


if __name__ == "__main__":
    main()
