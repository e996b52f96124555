"API keys never appear in logs, reprs, exception messages or cache rows."
import asyncio
import io
import json
import logging
import secrets
import traceback
from pathlib import Path

import pytest

from aiwb.reliability.cache import CachedAnswerer, ExactCache, SemanticCache
from aiwb.core import connect, load_config, Message
from aiwb.eval import EvalTarget, load_cases, run_eval
from aiwb.providers.anthropic import AnthropicProvider
from aiwb.providers.chat import ProviderError
from aiwb.providers.openai import OpenAIProvider
from aiwb.observability import Observer, configure_logging, disable_tracing, enable_tracing, flush_tracing
from aiwb.trace import redact, register_secret
from aiwb.orchestration.pipeline import RAGPipeline
from aiwb.reliability.chain import AllRoutesFailed, ReliableProvider
from aiwb.reliability.retry import FakeClock, RetryPolicy
from aiwb.data.store import ingest
from aiwb.providers.fakes import FAULTS, FaultSchedule, LocalLLMServer

from conftest import DATA, KEY, run_cli


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


# --- planted keys through every failure the local server injects, every path, every place a key could land ---

def _plant(tag: str, tail: str) -> str:
    "A unique key-shaped secret: a marker, random hex and a distinctive tail (what a masked echo shows)."
    return f"sk-PLANT{tag}{secrets.token_hex(12)}{tail}"


def _needles(key: str) -> list[str]:
    "The key and the parts of it a masked echo or a partial leak would show."
    return [key, key[-12:], key[8:20], key[:8] + "…", "…" + key[-4:], "*" + key[-4:], key[-4:], "PLANT"]


def _attempt(texts: list, fn) -> None:
    "Run `fn`, keeping the text of what it returned or raised (message, repr and formatted traceback)."
    try:
        out = fn()
        texts += [repr(out), json.dumps(out.to_dict(), default=str) if hasattr(out, "to_dict") else str(out)]
    except Exception as e:  # every failure is expected here: only its text matters
        texts += [str(e), repr(e), "".join(traceback.format_exception(e)), str(getattr(e, "hint", ""))]


def _every_table(home: Path) -> list[str]:
    "Every row of every table of every DuckDB file under `home`, as text."
    import duckdb
    out = []
    for f in sorted(home.rglob("*.duckdb")):
        con = duckdb.connect(str(f), read_only=True)
        try:
            tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
            assert tables, f
            for schema, name in tables:
                out += [f"{f.name}:{name}:{row}" for row in con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()]
        finally:
            con.close()
    return out


def _all_rates() -> dict:
    "Every fault the local server can inject, at equal rates (the rest is 'ok')."
    faults = [f for f in FAULTS if f != "ok"]
    return {f: 0.9 / len(faults) for f in faults}


def _search(home: Path, texts: list[str], keys: list[str]) -> None:
    "Fail if any planted key, or a part a masked echo would show, is in `texts`, a table or a file under `home`."
    rows = _every_table(home)
    haystack = "\n".join(texts + rows)
    raw = b"".join(f.read_bytes() for f in home.rglob("*") if f.is_file())
    for key in keys:
        for needle in _needles(key):
            assert needle not in haystack, f"{needle!r} of a planted key leaked"
        for needle in (key, key[8:20], key[-12:]):
            assert needle.encode() not in raw, f"{needle!r} of a planted key is in a file under AIWB_HOME"


@pytest.fixture
def planted(monkeypatch):
    "Unique planted keys for both providers (env vars), local servers that accept them, the SDKs pointed at them."
    keys = {"anthropic": _plant("A", "Qz9K"), "openai": _plant("O", "Wv3J")}
    with LocalLLMServer(api_key=keys["anthropic"], hang_s=0.5, slow_s=0.05, retry_after=0.01) as sa, \
         LocalLLMServer(api_key=keys["openai"], hang_s=0.5, slow_s=0.05, retry_after=0.01) as so:
        monkeypatch.setenv("ANTHROPIC_API_KEY", keys["anthropic"])
        monkeypatch.setenv("OPENAI_API_KEY", keys["openai"])
        monkeypatch.setenv("ANTHROPIC_BASE_URL", sa.url)  # the SDKs' own variables: the CLI reaches the servers too
        monkeypatch.setenv("OPENAI_BASE_URL", so.url + "/v1")
        yield keys, {"anthropic": sa, "openai": so}


def test_planted_keys_never_leak_python_paths(aiwb_home, planted, caplog):
    "Every provider path through every fault, with tracing and JSON logs on: no key in any text, table or file."
    keys, servers = planted
    sa, so = servers["anthropic"], servers["openai"]
    wrong = _plant("W", "Jk7M")  # a key the server refuses: it is echoed back masked
    caplog.set_level(logging.DEBUG)  # everything the SDKs, httpx and aiwb log
    log = io.StringIO()
    configure_logging("DEBUG", stream=log)
    texts: list[str] = []
    cfg = load_config()
    con = connect(config=cfg)
    ingest(con, DATA / "corpus", cfg, progress=False)
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exported = InMemorySpanExporter()  # what an external (OTLP) exporter would be sent: attributes, events, status
    enable_tracing(con, exporters=[exported])
    try:
        # each provider, sync, streaming and async, through every fault
        a, o = AnthropicProvider(timeout=5), OpenAIProvider(timeout=5)
        for fault in FAULTS:
            for p, srv in ((a, sa), (o, so)):
                srv.enqueue(fault); _attempt(texts, lambda: p.complete([Message("user", "What is jitter?")]))
                srv.enqueue(fault); _attempt(texts, lambda: p.stream([Message("user", "Stream jitter")]).collect())
                srv.enqueue(fault)
                _attempt(texts, lambda: asyncio.run(p.acomplete([Message("user", "Async jitter")])))
        for cls in (AnthropicProvider, OpenAIProvider):
            _attempt(texts, lambda: cls(api_key=wrong, timeout=5).complete([Message("user", "hi")]))
        # reliability + caches + pipeline + the cost ledger
        clk = FakeClock()
        rp = ReliableProvider([a, o], RetryPolicy(attempts=2), clock=clk, sleep=clk.sleep)
        rag = RAGPipeline(con, cfg, provider=rp)
        qa = CachedAnswerer(rp, ExactCache(con), SemanticCache(con), pipeline=rag)
        obs = Observer(con)
        for i, fault in enumerate(FAULTS):
            sa.enqueue(fault, fault); so.enqueue(fault, fault)
            _attempt(texts, lambda: qa.answer(f"How does the circuit breaker recover, case {i}?", scope="tenant=t1"))
            sa.enqueue(fault); so.enqueue(fault)
            _attempt(texts, lambda: rag.ask("What does the circuit breaker do?"))
            try:
                obs.record_call(a.complete([Message("user", "ledger")]))
            except ProviderError as e:
                obs.record_call(error=e)
        texts.append(repr(obs.metrics))
        # the eval harness: the stored config and the case errors
        cases = load_cases(DATA / "golden.jsonl").cases[:8]
        for name, p in (("anthropic", AnthropicProvider(timeout=5)), ("openai", OpenAIProvider(timeout=5))):
            servers[name].schedule = FaultSchedule(seed=3, rates=_all_rates())
            run_eval(cases, EvalTarget(RAGPipeline(con, cfg, provider=p)), con, name=name, progress=False)
        run_eval(cases, EvalTarget(RAGPipeline(con, cfg, provider=AnthropicProvider(api_key=wrong, timeout=5))), con,
                 name="wrong-key", progress=False)
        flush_tracing()
        n_errors = con.execute("SELECT count(*) FROM eval_cases WHERE error IS NOT NULL").fetchone()[0]
        spans = exported.get_finished_spans()
        texts += [s.to_json() for s in spans]
        assert any(e.name == "exception" for s in spans for e in s.events)  # failures are exported, redacted
    finally:
        disable_tracing()
        con.close()
    assert n_errors >= 8  # the wrong-key run errored on every case, and its errors are stored
    joined = "\n".join(texts)
    assert "invalid x-api-key [REDACTED]" in joined and "Incorrect API key provided: [REDACTED]" in joined
    tables = "\n".join(_every_table(aiwb_home))
    for table in ("eval_runs", "eval_cases", "obs_spans", "obs_ledger", "cache_exact", "cache_semantic"):
        assert f":{table}:" in tables, table
    _search(aiwb_home, texts + [log.getvalue(), caplog.text], [*keys.values(), wrong])


def test_planted_keys_never_leak_cli(aiwb_home, planted, tmp_path):
    "ask, eval (tables and --json) and demo on both providers through injected faults, then with the servers down."
    keys, servers = planted
    cfg = load_config()
    con = connect(config=cfg)
    ingest(con, DATA / "corpus", cfg, progress=False)
    con.close()
    golden = tmp_path / "golden.jsonl"
    golden.write_text("\n".join((DATA / "golden.jsonl").read_text().splitlines()[:6]) + "\n")
    outs = []
    for name, srv in servers.items():
        env = {"AIWB_PROVIDER": name}
        srv.schedule = FaultSchedule(seed=5, rates=_all_rates())
        srv.enqueue("401")  # the key echoed back masked
        outs.append(run_cli("ask", "What does the circuit breaker do?", env=env))
        outs.append(run_cli("eval", golden, "--quiet", "--json" if name == "openai" else "--concurrency=2", env=env))
        srv.enqueue("401")
        outs.append(run_cli("demo", env=env))
    for srv in servers.values(): srv.stop()  # connection refused from here on
    outs.append(run_cli("ask", "What does the circuit breaker do?", env={"AIWB_PROVIDER": "openai"}))
    outs.append(run_cli("eval", golden, "--quiet", env={"AIWB_PROVIDER": "anthropic"}))
    texts = [r.stdout + r.stderr for r in outs]
    codes = [r.returncode for r in outs]  # 7: the provider's error; 11: its breaker, kept from the run before, is open
    assert [c in (7, 11) for c in codes] == [True, False, True, True, False, True, True, False], texts
    assert codes[0] == codes[3] == 7 and (codes[1], codes[4], codes[7]) == (8, 8, 8), codes
    assert "invalid x-api-key [REDACTED]" in texts[0] and "Incorrect API key provided: [REDACTED]" in texts[3]
    assert "Traceback" not in "\n".join(texts)
    _search(aiwb_home, texts, list(keys.values()))


def test_eval_config_is_an_allow_list(aiwb_home, server):
    "A provider's key, client and URL credentials never reach `eval_runs.config` (built from allow-lists)."
    planted = _plant("C", "Cc3C")
    cfg = load_config()
    con = connect(config=cfg)
    ingest(con, DATA / "corpus", cfg, progress=False)
    url = server.url.replace("http://", "http://user:hunter2@") + "?token=abc123secret"
    target = EvalTarget(RAGPipeline(con, cfg, provider=AnthropicProvider(api_key=planted, base_url=url, timeout=5)))
    run_id = run_eval(load_cases(DATA / "golden.jsonl").cases[:2], target, con, progress=False)
    stored = con.execute("SELECT config FROM eval_runs WHERE run_id=?", [run_id]).fetchone()[0]
    con.close()
    for needle in (planted, planted[8:20], "hunter2", "abc123secret", "_key", "_client"):
        assert needle not in stored
    cfg_obj = json.loads(stored)
    assert cfg_obj["provider_params"]["base_url"] == server.url and cfg_obj["mode"] == "vector"


def test_masked_forms_are_redacted():
    key = _plant("R", "Rr5R")
    register_secret(key)
    for echo in (f"{key[:8]}…{key[-4:]}", f"{key[:8]}...{key[-4:]}", f"{key[:8]}{'*' * 30}{key[-4:]}",
                 f"****{key[-4:]}", f"{key[:14]}…", f"Bearer {key}", f"x-api-key: {key}"):
        out = redact(f"Incorrect API key provided: {echo}.")
        assert key[-4:] not in out and "PLANT" not in out and "[REDACTED]" in out, (echo, out)
    assert redact("sk-live…9f2a was revoked") == "[REDACTED] was revoked"  # key-shaped, even if unknown
    assert redact("retrying... then waiting…") == "retrying... then waiting…"
