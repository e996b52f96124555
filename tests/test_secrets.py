"API keys never appear in logs, reprs, exception messages or cache rows."
import logging

import pytest

from aiwb.cache import CachedAnswerer, ExactCache, SemanticCache
from aiwb.core import connect, load_config, Message
from aiwb.llm import AnthropicProvider, OpenAIProvider, ProviderError
from aiwb.reliability import AllRoutesFailed, FakeClock, ReliableProvider, RetryPolicy

from conftest import KEY


def test_keys_never_leak(server, server2, caplog, aiwb_home):
    caplog.set_level(logging.DEBUG)  # everything the SDKs, httpx and aiwb log
    a = AnthropicProvider(api_key=KEY, base_url=server.url)
    o = OpenAIProvider(api_key=KEY, base_url=server2.url + "/v1")
    texts = [repr(a), repr(o), repr(server)]
    clk = FakeClock()
    rp = ReliableProvider([a, o], RetryPolicy(attempts=2), clock=clk, sleep=clk.sleep)
    server.enqueue("429")
    con = connect(config=load_config())
    qa = CachedAnswerer(rp, ExactCache(con), SemanticCache(con))
    c = qa.answer("What is jitter?")  # retried once, then cached
    server.enqueue("500", "500"); server2.enqueue("reset")
    c2 = rp.complete([Message("user", "fallback please")])  # falls back to OpenAI after a reset there too
    assert c2.provider == "openai" and c2.degraded
    texts += [repr(c), str(c.to_dict()), repr(c2)]
    for fault in ("401", "503", "malformed", "truncate"):
        server.enqueue(fault)
        try: a.complete([Message("user", "hi")])
        except ProviderError as e: texts += [str(e), repr(e), e.hint]
    bad = AnthropicProvider(api_key=KEY + "-wrong", base_url=server.url)
    with pytest.raises(AllRoutesFailed) as e:
        ReliableProvider([bad], clock=clk, sleep=clk.sleep).complete([Message("user", "hi")])
    texts += [str(e.value)]
    rows = []
    for table in ("cache_exact", "cache_semantic"):
        rows += [str(r) for r in con.execute(f"SELECT * EXCLUDE (embedding) FROM {table}" if table == "cache_semantic"
                                             else f"SELECT * FROM {table}").fetchall()]
    assert rows, "the cache stored something"
    con.close()
    haystack = "\n".join(texts + rows + [caplog.text])
    assert KEY not in haystack
    assert KEY[-12:] not in haystack  # not even a suffix
    raw = (aiwb_home / "aiwb.duckdb").read_bytes()
    assert KEY.encode() not in raw
