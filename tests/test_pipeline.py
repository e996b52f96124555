"""Issue 11: the composed pipeline in Python — steps as data, graceful degradation, stale answers, validation,
cache isolation, streaming, the request log — with the real SDK providers against the local wire-protocol server."""
import duckdb
import pytest

from conftest import DATA, KEY
from aiwb.core import AiwbError, Completion, StoreError, connect, load_config
from aiwb.data.store import ingest
from aiwb.observability import Observer, disable_tracing, enable_tracing, request_log
from aiwb.orchestration.pipeline import BaseStep, PIPELINE_STEPS, RAGPipeline, open_runtime
from aiwb.providers.anthropic import AnthropicProvider
from aiwb.providers.extractive import ExtractiveBaseline
from aiwb.providers.fakes import FaultSchedule, LocalLLMServer
from aiwb.providers.openai import OpenAIProvider
from aiwb.reliability.cache import ExactCache, SemanticCache
from aiwb.reliability.chain import AllRoutesFailed, ReliableProvider
from aiwb.reliability.retry import FakeClock, RetryPolicy

Q = "What happens when the breaker is half-open?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "A store over the bundled corpus, read-only for the tests, and its config."
    home = tmp_path_factory.mktemp("pipeline-home")
    cfg = load_config(env={"AIWB_HOME": str(home)})
    con = connect(config=cfg)
    ingest(con, DATA / "corpus", cfg, progress=False)
    yield cfg, con
    con.close()


@pytest.fixture
def runtime(corpus):
    cfg, _ = corpus
    con = open_runtime(cfg)
    for table in ("cache_exact", "cache_semantic", "obs_requests", "obs_ledger", "obs_spans"):
        try:
            con.execute(f"DELETE FROM {table}")
        except duckdb.CatalogException:
            pass
    yield con
    con.close()


def chain(server, server2):
    clk = FakeClock()
    a = AnthropicProvider(api_key=KEY, base_url=server.url, timeout=3)
    o = OpenAIProvider(api_key=KEY, base_url=server2.url + "/v1", timeout=3)
    return ReliableProvider([a, o], RetryPolicy(attempts=2), clock=clk, sleep=clk.sleep)


def test_steps_are_data_switched_off_and_swapped(corpus):
    cfg, con = corpus
    default = RAGPipeline(con, cfg).ask(Q)
    assert [s.name for s in default.steps] == list(PIPELINE_STEPS)
    assert {s.name: s.status for s in default.steps} == {"cache": "off", "retrieve": "ok", "rerank": "off",
                                                         "generate": "ok", "validate": "ok", "cache_store": "off"}

    class Shout(BaseStep):  # a step of our own, swapped in by name
        name = "validate"
        def run(self, rag, req):
            req.answer.text = req.answer.text.upper()
            return "ok", "shouted"
    loud = RAGPipeline(con, cfg, steps=["retrieve", "generate", Shout()]).ask(Q)
    assert loud.text == default.text.upper() and [s.detail for s in loud.steps][-1] == "shouted"
    bare = RAGPipeline(con, cfg, steps=["generate"]).ask(Q)  # no retrieval: no context, the baseline abstains
    assert bare.abstained and [s.name for s in bare.steps] == ["generate"]
    with pytest.raises(AiwbError, match="unknown pipeline step 'rank'"):
        RAGPipeline(con, cfg, steps=["rank"])


def test_retrieval_failure_answers_without_context_labelled(corpus, server):
    cfg, con = corpus

    class Broken(RAGPipeline):
        def retrieve(self, question):
            raise StoreError("the index is damaged")
    a = Broken(con, cfg, provider=AnthropicProvider(api_key=KEY, base_url=server.url, timeout=3)).ask(Q)
    assert a.path.endswith("+no-retrieval") and a.degraded[0].startswith("retrieval: StoreError")
    assert a.sources == [] and {s.name: s.status for s in a.steps}["retrieve"] == "degraded"


def test_rerank_failure_keeps_the_order_labelled(corpus):
    cfg, con = corpus

    class BadReranker:
        name = "bad"
        def rerank(self, question, sources, top_k=None):
            raise RuntimeError("model file missing")
    plain = RAGPipeline(con, cfg).ask(Q)
    a = RAGPipeline(con, cfg, reranker=BadReranker()).ask(Q)
    assert a.text == plain.text and a.degraded == ["rerank: RuntimeError: model file missing (kept the retrieval order)"]


def test_fallback_chain_labels_the_path_and_counts_upstream_calls(corpus, server, server2, runtime):
    cfg, con = corpus
    server.schedule = FaultSchedule(rates={"503": 1.0})
    rag = RAGPipeline(con, cfg, provider=chain(server, server2), observer=Observer(runtime, command="python"))
    a = rag.ask(Q)
    assert a.provider == "openai" and "→" in a.path and a.degraded and "503" in a.degraded[0]
    assert a.upstream_calls == len(server.log) + len(server2.log) == 3
    rag.flush()
    row = request_log(runtime)[0]
    assert (row["path"], row["upstream_calls"], row["degraded"]) == (a.path, 3, a.degraded)


def test_every_route_down_stale_else_the_error_naming_each_route(corpus, server, server2, runtime):
    cfg, con = corpus
    now = [1000.0]
    exact = ExactCache(runtime, ttl=10, clock=lambda: now[0])
    obs = Observer(runtime, command="python")
    rag = RAGPipeline(con, cfg, provider=chain(server, server2), exact=exact, observer=obs)
    fresh = rag.ask(Q)
    assert fresh.cache == "miss" and not fresh.degraded
    assert rag.ask(Q).cache == "exact"
    now[0] += 60  # expired
    server.schedule = server2.schedule = FaultSchedule(rates={"503": 1.0})
    stale = rag.ask(Q)
    assert stale.stale and stale.path == "cache:stale" and stale.text == fresh.text and stale.cost_usd == 0.0
    assert "served a stale cached answer, 60 s old" in stale.degraded[-1]
    assert {s.name: s.status for s in stale.steps}["generate"] == "degraded"
    assert {s.name: s.status for s in stale.steps}["cache_store"] == "skipped"  # a stale answer is not stored again
    with pytest.raises(AllRoutesFailed) as e:
        rag.ask("How many retries are allowed?")
    assert "anthropic:" in str(e.value) and "openai:" in str(e.value)
    rag.flush()
    failed = request_log(runtime, failed=True)
    assert failed[0]["question"] == "How many retries are allowed?" and failed[0]["error"].startswith("all 2 routes")


def test_validate_flags_citations_of_chunks_it_was_not_given(corpus):
    cfg, con = corpus

    class Inventor:
        name, model, is_remote = "inventor", "m", False
        def complete(self, messages, **kw):
            return Completion("It probes [0123456789abcdef].", "m", "inventor", sources=list(kw["context"]))
    a = RAGPipeline(con, cfg, provider=Inventor()).ask(Q)
    assert a.degraded == ["validate: cites chunks it was not given: 0123456789abcdef"]
    assert {s.name: s.status for s in a.steps}["validate"] == "failed"


def test_a_cache_hit_never_crosses_scope_filters_mode_model_or_corpus(corpus, runtime, server):
    cfg, con = corpus
    exact, semantic = ExactCache(runtime), SemanticCache(runtime)
    base = RAGPipeline(con, cfg, exact=exact, semantic=semantic, scope="tenant-a")
    first = base.ask(Q)
    assert first.cache == "miss" and base.ask(Q).cache == "exact"
    assert base.ask("What happens once the breaker is half-open?").cache == "semantic"
    others = [RAGPipeline(con, cfg, exact=exact, semantic=semantic, scope="tenant-b"),
              RAGPipeline(con, cfg, exact=exact, semantic=semantic, scope="tenant-a", filters={"doc_id": "x.md"}),
              RAGPipeline(con, cfg, exact=exact, semantic=semantic, scope="tenant-a", mode="bm25"),
              RAGPipeline(con, cfg, exact=exact, semantic=semantic, scope="tenant-a",
                          provider=ExtractiveBaseline(model="another-baseline")),
              RAGPipeline(con, cfg, exact=exact, semantic=semantic, scope="tenant-a",
                          provider=AnthropicProvider(api_key=KEY, base_url=server.url, timeout=3))]
    for rag in others:
        assert rag.ask(Q).cache == "miss", rag.settings()
    assert base.ask(Q, scope="tenant-c").cache == "miss"
    cursor = con.cursor()
    version = cursor.execute("SELECT value FROM corpus_state WHERE key = 'version'").fetchone()[0]
    try:
        cursor.execute("UPDATE corpus_state SET value = 'another-version' WHERE key = 'version'")
        assert base.ask(Q).cache == "miss"  # an ingest changed the corpus: the old answers are not served
    finally:
        cursor.execute("UPDATE corpus_state SET value = ? WHERE key = 'version'", [version])


def test_streaming_passes_text_as_it_arrives_and_times_the_first(corpus):
    cfg, con = corpus
    parts = []
    a = RAGPipeline(con, cfg).ask(Q, on_text=parts.append)
    assert len(parts) > 3 and "".join(parts) == a.text
    assert a.ttft_ms is not None and 0 < a.ttft_ms <= a.latency_ms


def test_tracing_links_the_request_log_to_its_spans(corpus, runtime):
    cfg, con = corpus
    enable_tracing(runtime)
    try:
        rag = RAGPipeline(con, cfg, observer=Observer(runtime, command="python"))
        a = rag.ask(Q)
        rag.flush()
    finally:
        disable_tracing()
    names = [r[0] for r in runtime.execute("SELECT name FROM obs_spans WHERE trace_id = ? ORDER BY start_ns",
                                           [a.trace_id]).fetchall()]
    assert names == ["rag.ask", "retrieve", "generate", "validate"]
    assert request_log(runtime)[0]["trace_id"] == a.trace_id
    ledger = runtime.execute("SELECT trace_id, provider FROM obs_ledger").fetchall()
    assert ledger == [(a.trace_id, "local")]
