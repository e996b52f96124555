"Reliability behaviours, proven with the real SDKs against the local fault server."
import asyncio
import concurrent.futures as cf
import threading
import time

import pytest

from aiwb.core import Message
from aiwb.providers.anthropic import AnthropicProvider
from aiwb.providers.chat import ProviderError
from aiwb.providers.openai import OpenAIProvider
from aiwb.reliability.breaker import CircuitBreaker, CircuitOpenError
from aiwb.reliability.chain import AllRoutesFailed, ReliableProvider
from aiwb.reliability.limits import BudgetBook, LimitExceeded, RateLimiter
from aiwb.reliability.retry import FakeClock, RetryPolicy

from conftest import KEY

Q = [Message("user", "What is jitter?")]


def claude(server, **kw):
    return AnthropicProvider(api_key=KEY, base_url=server.url, **kw)


def test_429_retry_after_is_waited_for(server):
    "Real sleep: the second attempt starts no earlier than Retry-After (0.3 s) after the 429."
    server.enqueue("429")
    rp = ReliableProvider([claude(server)], RetryPolicy(attempts=3, base=0.01, cap=0.02))
    t = time.monotonic()
    c = rp.complete(Q)
    assert c.provider == "anthropic" and time.monotonic() - t >= 0.3
    assert [e["status"] for e in server.log] == [429, 200]


def test_429_retry_after_with_injected_clock(server):
    server.enqueue("429", "429")
    clk, reports = FakeClock(), []
    rp = ReliableProvider([claude(server)], RetryPolicy(attempts=4, base=0.01, cap=0.01), clock=clk, sleep=clk.sleep,
                          on_report=reports.append)
    rp.complete(Q)
    assert clk.slept == [0.3, 0.3] and reports[-1].upstream_calls == 3


def test_retry_after_beyond_limit_fails_fast_and_transparently(server):
    server.retry_after = 120
    server.enqueue("429")
    clk = FakeClock()
    rp = ReliableProvider([claude(server)], RetryPolicy(max_retry_after=30), clock=clk, sleep=clk.sleep)
    with pytest.raises(AllRoutesFailed, match="HTTP 429"): rp.complete(Q)
    assert clk.slept == [] and len(server.log) == 1


@pytest.mark.parametrize("status", ["401"])
def test_401_is_not_retried(server, status):
    server.enqueue(status)
    clk, reports = FakeClock(), []
    rp = ReliableProvider([claude(server)], RetryPolicy(attempts=5), clock=clk, sleep=clk.sleep, on_report=reports.append)
    with pytest.raises(AllRoutesFailed, match="HTTP 401"): rp.complete(Q)
    assert len(server.log) == 1 and reports[-1].upstream_calls == 1 and clk.slept == []


def test_wrong_key_is_401_and_not_retried(server):
    rp = ReliableProvider([AnthropicProvider(api_key="sk-wrong-key-xyz", base_url=server.url)], RetryPolicy(attempts=5))
    with pytest.raises(AllRoutesFailed) as e: rp.complete(Q)
    assert "401" in str(e.value) and "sk-wrong-key-xyz" not in str(e.value) and len(server.log) == 1


def test_transient_errors_are_retried_then_fallback(server, server2):
    server.enqueue("503", "529", "500")
    clk, reports = FakeClock(), []
    gpt = OpenAIProvider(api_key=KEY, base_url=server2.url + "/v1")
    rp = ReliableProvider([claude(server), gpt], RetryPolicy(attempts=3), clock=clk, sleep=clk.sleep, on_report=reports.append)
    c = rp.complete(Q)
    assert c.provider == "openai" and "HTTP 500" in c.degraded[0] and c.path.count("→") == 1
    assert reports[-1].upstream_calls == 4 == len(server.log) + len(server2.log)


def test_call_budget_caps_retries_across_fallbacks(server, server2):
    server.schedule.outages = [(0, 10**6)]; server2.schedule.outages = [(0, 10**6)]
    clk, reports = FakeClock(), []
    rp = ReliableProvider([claude(server), OpenAIProvider(api_key=KEY, base_url=server2.url + "/v1")],
                          RetryPolicy(attempts=4), max_upstream_calls=5, clock=clk, sleep=clk.sleep, on_report=reports.append,
                          breaker_factory=lambda n: CircuitBreaker(n, failure_threshold=100, min_calls=100, clock=clk))
    with pytest.raises(AllRoutesFailed, match="after 5 upstream calls"): rp.complete(Q)
    assert len(server.log) + len(server2.log) == 5 == reports[-1].upstream_calls


def test_deadline_bounds_total_time(server):
    server.schedule.outages = [(0, 10**6)]
    clk = FakeClock()
    rp = ReliableProvider([claude(server)], RetryPolicy(attempts=50, base=1, cap=1, deadline=3.5), max_upstream_calls=50,
                          clock=clk, sleep=clk.sleep,
                          breaker_factory=lambda n: CircuitBreaker(n, failure_threshold=100, min_calls=100, clock=clk))
    with pytest.raises(AllRoutesFailed): rp.complete(Q)
    assert clk() < 3.5


def test_half_open_admits_exactly_one_probe_under_thread_concurrency(server):
    clk = FakeClock()
    br = CircuitBreaker("anthropic", failure_threshold=2, reset_timeout=10, clock=clk)
    p = claude(server)
    server.enqueue("503", "503")
    for _ in range(2):
        with pytest.raises(ProviderError): br.call(lambda: p.complete(Q))
    assert br.state == "open"
    clk.advance(10)
    server.latency_s = 0.5  # the probe is slow: everyone else arrives while it is in flight
    n0 = len(server.log)
    barrier = threading.Barrier(30)

    def attempt():
        barrier.wait()
        try: return br.call(lambda: p.complete(Q)).text
        except CircuitOpenError: return "refused"
    with cf.ThreadPoolExecutor(30) as ex:
        out = list(ex.map(lambda _: attempt(), range(30)))
    assert out.count("refused") == 29 and len(server.log) - n0 == 1
    assert br.state == "closed"


def test_half_open_admits_exactly_one_probe_under_asyncio(server):
    clk = FakeClock()
    br = CircuitBreaker("anthropic-async", failure_threshold=1, reset_timeout=5, clock=clk)
    p = claude(server)
    br.record(False); assert br.state == "open"
    clk.advance(5)
    server.latency_s = 0.3
    n0 = len(server.log)

    async def attempt():
        try: probe = br.acquire()
        except CircuitOpenError: return "refused"
        try:
            c = await p.acomplete(Q)
        except Exception:
            br.record(False, probe); raise
        br.record(True, probe); return c.text

    async def main(): return await asyncio.gather(*[attempt() for _ in range(25)])
    out = asyncio.run(main())
    assert out.count("refused") == 24 and len(server.log) - n0 == 1 and br.state == "closed"


def test_breaker_fails_fast_when_open(server):
    server.schedule.outages = [(0, 10**6)]
    clk, reports = FakeClock(), []
    rp = ReliableProvider([claude(server)], RetryPolicy(attempts=2), clock=clk, sleep=clk.sleep, on_report=reports.append,
                          breaker_factory=lambda n: CircuitBreaker(n, failure_threshold=4, reset_timeout=60, clock=clk))
    for _ in range(2):
        with pytest.raises(AllRoutesFailed): rp.complete(Q)
    n = len(server.log)
    with pytest.raises(AllRoutesFailed, match="is open"): rp.complete(Q)
    assert len(server.log) == n and reports[-1].upstream_calls == 0


def test_budget_holds_under_50_concurrent_calls(server):
    "50 threads, real SDK calls; the per-user budget admits only what it can pay for, and is never exceeded."
    server.latency_s = 0.05
    book = BudgetBook(per_user_usd=0.05)
    rp = ReliableProvider([claude(server)], RetryPolicy(attempts=1), budgets=book)
    errors, done = [], []

    def call(i):
        try: done.append(rp.complete([Message("user", f"question {i}")], user="alice", max_tokens=1000))
        except LimitExceeded as e: errors.append(str(e))
    with cf.ThreadPoolExecutor(50) as ex: list(ex.map(call, range(50)))
    b = book.users["alice"]
    assert b.spent_usd <= 0.05 and b.reserved_usd == pytest.approx(0.0, abs=1e-12)
    assert len(done) + len(errors) == 50 and errors and done
    assert all(e.startswith("user alice hit the monthly budget of $0.05") for e in errors)
    assert len(server.log) == len(done)  # refused calls never reached the network
    assert b.spent_usd == pytest.approx(sum(c.cost_usd for c in done))


def test_rate_limits_and_concurrency_are_transparent(server):
    clk = FakeClock()
    rp = ReliableProvider([claude(server)], limiter=RateLimiter(requests_per_min=2, tokens_per_min=None, clock=clk),
                          clock=clk, sleep=clk.sleep)
    rp.complete(Q, user="bob"); rp.complete(Q, user="bob")
    with pytest.raises(LimitExceeded, match="user bob hit the limit of 2 requests/min: retry in 30.0 s"): rp.complete(Q, user="bob")
    rp.complete(Q, user="carol")
    lim = RateLimiter(max_concurrent=1, requests_per_min=None, tokens_per_min=None)
    with lim.acquire("dan"):
        with pytest.raises(LimitExceeded, match="concurrency limit of 1"): lim.acquire("dan")
    lim.acquire("dan").release()


def test_async_chain_retries_and_falls_back(server, server2):
    clk, reports = FakeClock(), []
    gpt = OpenAIProvider(api_key=KEY, base_url=server2.url + "/v1")
    rp = ReliableProvider([claude(server), gpt], RetryPolicy(attempts=2), clock=clk, sleep=clk.asleep, on_report=reports.append)
    server.enqueue("429")

    async def main():
        first = await rp.acomplete(Q)  # 429 then success on the primary
        server.enqueue("503", "503")
        second = await rp.acomplete(Q)  # 503, 503: falls back to OpenAI
        return first, second
    first, second = asyncio.run(main())
    assert first.provider == "anthropic" and first.degraded == [] and 0.3 in clk.slept
    assert second.provider == "openai" and "HTTP 503" in second.degraded[0]
    assert [r.upstream_calls for r in reports] == [2, 3]


def test_retries_and_fallbacks_are_traced(server, server2, tmp_path):
    "With tracing on, each attempt is a retry.attempt span and the second route a fallback span, stored in DuckDB."
    from aiwb.core import connect, load_config
    from aiwb.observability import disable_tracing, enable_tracing, flush_tracing
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))
    server.enqueue("503", "503", "503")
    clk = FakeClock()
    rp = ReliableProvider([claude(server), OpenAIProvider(api_key=KEY, base_url=server2.url + "/v1")],
                          RetryPolicy(attempts=3), clock=clk, sleep=clk.sleep)
    enable_tracing(con)
    try:
        assert rp.complete(Q).provider == "openai"
        flush_tracing()
    finally:
        disable_tracing()
    names = [r[0] for r in con.execute("SELECT name FROM obs_spans ORDER BY start_ns").fetchall()]
    assert names.count("retry.attempt") == 4 and names.count("fallback") == 1
    attrs = con.execute("SELECT attributes FROM obs_spans WHERE name = 'fallback'").fetchone()[0]
    assert "openai" in attrs and "503" in attrs and KEY not in " ".join(map(str, names)) + attrs
    con.close()
