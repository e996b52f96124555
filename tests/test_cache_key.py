"""A cached answer is served only to a request it answers: the key covers scope, filters, mode, top_k, model and
the corpus version read at lookup time, for the exact and the semantic cache alike (issue 9, item 7)."""
import json

import pytest

from aiwb.reliability.cache import CachedAnswerer, ExactCache, SemanticCache
from aiwb.core import InputError, connect, load_config
from aiwb.orchestration.pipeline import RAGPipeline
from aiwb.providers.extractive import ExtractiveBaseline
from aiwb.data.filters import F
from aiwb.data.store import ingest

RECORDS = [
    {"id": "alice-refunds", "tenant": "alice", "text": "Alice Corp refunds are accepted within 30 days of delivery."},
    {"id": "bob-refunds", "tenant": "bob", "text": "Bob Ltd refunds are accepted within 14 days of purchase."},
    {"id": "alice-shipping", "tenant": "alice", "text": "Alice Corp ships every order by courier within two days."},
    {"id": "bob-shipping", "tenant": "bob", "text": "Bob Ltd ships orders by post, which takes about a week."},
]
QUESTION = "How many days do I have to ask for a refund?"


def write_corpus(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def store(tmp_path):
    "A store holding two tenants' documents (a `tenant` metadata field), and its config."
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    corpus = tmp_path / "tenants.jsonl"
    write_corpus(corpus, RECORDS)
    con = connect(config=cfg)
    ingest(con, corpus, cfg)
    yield con, cfg, corpus
    con.close()


def answerer(kind, provider, pipeline, con):
    "An answerer with only the exact or only the semantic cache, so each is tested on its own."
    return CachedAnswerer(provider, ExactCache(con) if kind == "exact" else None,
                          SemanticCache(con) if kind == "semantic" else None, pipeline=pipeline)


@pytest.mark.parametrize("kind", ["exact", "semantic"])
def test_same_request_hits(store, kind):
    con, cfg, _ = store
    rag = RAGPipeline(con, cfg, filters=F("tenant") == "alice")
    qa = answerer(kind, ExtractiveBaseline(), rag, con)
    first, again = qa.answer(QUESTION, scope="alice"), qa.answer(QUESTION, scope="alice")
    assert first.path == "local" and again.path == f"cache:{kind}" and again.text == first.text


@pytest.mark.parametrize("kind", ["exact", "semantic"])
def test_another_tenants_filter_is_not_served_alices_answer(store, kind):
    con, cfg, _ = store
    provider = ExtractiveBaseline()
    alice = answerer(kind, provider, RAGPipeline(con, cfg, filters=F("tenant") == "alice"), con)
    bob = answerer(kind, provider, RAGPipeline(con, cfg, filters=F("tenant") == "bob"), con)
    a = alice.answer(QUESTION)
    b = bob.answer(QUESTION)  # the same caches, no explicit scope: only the filter differs
    assert "30 days" in a.text and {s.doc_id.rsplit("#", 1)[-1] for s in a.sources} <= {"alice-refunds", "alice-shipping"}
    assert b.path == "local" and "14 days" in b.text
    assert all(s.doc_id.rsplit("#", 1)[-1].startswith("bob-") for s in b.sources)


@pytest.mark.parametrize("kind", ["exact", "semantic"])
def test_explicit_scopes_do_not_share(store, kind):
    con, cfg, _ = store
    qa = answerer(kind, ExtractiveBaseline(), RAGPipeline(con, cfg), con)
    assert qa.answer(QUESTION, scope="user:1").path == "local"
    assert qa.answer(QUESTION, scope="user:2").path == "local"
    assert qa.answer(QUESTION, scope="user:1").path == f"cache:{kind}"


@pytest.mark.parametrize("kind", ["exact", "semantic"])
@pytest.mark.parametrize("dimension", ["mode", "top_k", "model", "params"])
def test_each_dimension_changes_the_key(store, kind, dimension):
    con, cfg, _ = store
    exact, semantic = ExactCache(con), SemanticCache(con)
    caches = (exact if kind == "exact" else None, semantic if kind == "semantic" else None)
    base = CachedAnswerer(ExtractiveBaseline(), *caches, pipeline=RAGPipeline(con, cfg))
    assert base.answer(QUESTION).path == "local"
    provider, pipeline, params = ExtractiveBaseline(), RAGPipeline(con, cfg), {}
    if dimension == "mode": pipeline = RAGPipeline(con, cfg, mode="bm25")
    if dimension == "top_k": pipeline = RAGPipeline(con, load_config(env={"AIWB_HOME": str(cfg.home)}, top_k=1))
    if dimension == "model": provider = ExtractiveBaseline(model="another-model")
    if dimension == "params": params = {"max_tokens": 64}
    other = CachedAnswerer(provider, *caches, pipeline=pipeline)
    assert other.answer(QUESTION, **params).path == "local"
    assert base.answer(QUESTION).path == f"cache:{kind}"  # the first entry is still there, for its own requests


@pytest.mark.parametrize("kind", ["exact", "semantic"])
def test_long_lived_answerer_sees_a_reingest(store, kind):
    con, cfg, corpus = store
    rag = RAGPipeline(con, cfg, filters=F("tenant") == "alice")
    qa = answerer(kind, ExtractiveBaseline(), rag, con)
    assert "30 days" in qa.answer(QUESTION).text
    assert qa.answer(QUESTION).path == f"cache:{kind}"
    changed = [dict(r, text=r["text"].replace("30 days", "45 days")) for r in RECORDS]
    write_corpus(corpus, changed)
    ingest(con, corpus, cfg)  # the corpus version changes; the answerer is the same object
    fresh = qa.answer(QUESTION)
    assert fresh.path == "local" and "45 days" in fresh.text


def test_a_retriever_the_cache_cannot_see_is_refused(store):
    con, cfg, _ = store
    rag = RAGPipeline(con, cfg)
    qa = CachedAnswerer(ExtractiveBaseline(), ExactCache(con), SemanticCache(con))
    with pytest.raises(InputError, match="cannot see"):
        qa.answer(QUESTION, lambda q: rag.retrieve(q))
    assert qa.answer(QUESTION, rag.retrieve).path == "local"  # a pipeline's own method says what it depends on
    assert qa.answer(QUESTION, lambda q: rag.retrieve(q), retrieval=rag.settings()).path == "cache:exact"
