"Property tests: invariants of the breaker, the budget book and the rate limiter under random operation sequences."
from hypothesis import given, settings, strategies as st

from aiwb.reliability.breaker import CircuitBreaker, CircuitOpenError
from aiwb.reliability.limits import BudgetBook, LimitExceeded, RateLimiter
from aiwb.reliability.retry import FakeClock

ops = st.lists(st.one_of(st.just(("acquire",)), st.tuples(st.just("finish"), st.booleans()),
                         st.tuples(st.just("advance"), st.floats(0, 20))), max_size=80)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_breaker_never_admits_two_probes(seq):
    clk = FakeClock()
    br = CircuitBreaker("x", failure_threshold=3, window=6, min_calls=4, error_rate=0.5, reset_timeout=10, clock=clk)
    in_flight = []  # (is_probe) of admitted calls not yet finished
    for op in seq:
        if op[0] == "acquire":
            state = br.state
            try:
                probe = br.acquire()
            except CircuitOpenError:
                assert state in ("open", "half_open")
                continue
            assert state != "open"
            in_flight.append(probe)
            assert sum(in_flight) <= 1, "two probes in flight"
        elif op[0] == "finish" and in_flight:
            before, probe = br._state, in_flight.pop(0)
            br.record(op[1], probe)
            if not probe and before != "closed":
                assert br._state == before, "a stale call moved an open or half-open breaker"
        elif op[0] == "advance":
            clk.advance(op[1])
        assert br.state in ("closed", "open", "half_open")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 2), st.floats(0, 1), st.booleans()), max_size=60))
def test_budget_never_overspends(calls):
    book = BudgetBook(per_user_usd=5.0)
    open_res = []
    for amount, frac, settle_now in calls:
        try:
            open_res.append(book.reserve("u", amount))
        except LimitExceeded as e:
            assert "user u hit the monthly budget of $5.00" in str(e)
        if settle_now and open_res:
            r = open_res.pop(0)
            book.settle(r, r.amount * frac)  # the actual cost never exceeds the reservation
        b = book.users["u"]
        assert b.spent_usd + b.reserved_usd <= 5.0 + 1e-9
    for r in open_res: book.release(r)
    assert abs(book.users["u"].reserved_usd) < 1e-9 if book.users else True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.floats(0, 30)), max_size=60))
def test_token_bucket_admits_no_more_than_the_rate(reqs):
    clk = FakeClock()
    lim = RateLimiter(requests_per_min=10, tokens_per_min=1000, max_concurrent=None, clock=clk)
    admitted_tokens, admitted = 0, 0
    for tokens, gap in reqs:
        clk.advance(gap)
        try:
            lim.acquire("u", tokens).release(); admitted_tokens += tokens; admitted += 1
        except LimitExceeded:
            pass
    minutes = clk() / 60
    assert admitted <= 10 + 10 * minutes + 1e-9
    assert admitted_tokens <= 1000 + 1000 * minutes + 1e-6


def test_stale_call_does_not_decide_half_open():
    "A call admitted while closed that finishes during half-open must not close (or re-open) the breaker."
    clk = FakeClock()
    br = CircuitBreaker("x", failure_threshold=2, reset_timeout=5, clock=clk)
    stale = br.acquire()  # admitted while closed, still running
    for _ in range(2):
        br.record(False, br.acquire())
    assert br.state == "open"
    clk.advance(5)
    probe = br.acquire()
    assert probe is True and br._state == "half_open"
    br.record(True, stale)  # the stale call succeeds late: ignored
    assert br._state == "half_open"
    try:
        br.acquire(); raise AssertionError("a second call got through during half-open")
    except CircuitOpenError:
        pass
    br.record(False, probe)  # the probe decides
    assert br.state == "open"
