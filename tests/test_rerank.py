"""The rerank step: each reranker lifts the passage that answers, never mutates its input, keeps its bounds, and the
LLM reranker falls back (labelled) against the real SDKs talking to the local wire-protocol server."""
import copy

import pytest

from aiwb.core import Completion, InputError, Source
from aiwb.orchestration.rerank import (MAX_CANDIDATES, RERANKERS, FusionReranker, LLMReranker, MaxSimReranker,
                                       Reranker, get_reranker, parse_ranking)
from aiwb.providers.anthropic import AnthropicProvider
from aiwb.providers.openai import OpenAIProvider
from conftest import KEY

QUESTION = "At what temperature does water boil at sea level?"


def candidates() -> list[Source]:
    "Retrieval puts a passage that only shares words with the question first, the answer (c2, 2nd sentence) second."
    texts = [("coast.md", "Sea level is rising along many coasts. Tide gauges measure the level of the water "
                          "every hour."),
             ("water.md", "The kettle was a gift. At sea level, pure water boils at 100 degrees Celsius, and at a "
                          "lower temperature on a mountain."),
             ("heat.md", "Temperature records were broken this summer. Level crossings were closed because the rails "
                         "expanded."),
             ("rain.md", "Rain water is collected in tanks. The tanks are cleaned every spring."),
             ("ocean.md", "The ocean covers most of the planet. Its surface temperature varies with the seasons."),
             ("tea.md", "Green tea is brewed below boiling. A thermometer helps.")]
    return [Source(f"c{i + 1}", d, t, round(0.62 - 0.01 * i, 2), {"name": d}) for i, (d, t) in enumerate(texts)]


class Scripted:
    "A Provider (the protocol) that answers every request with one fixed reply: the model side of a success path."
    name, model, is_remote = "scripted", "ranker-1", False

    def __init__(self, reply: str):
        self.reply, self.prompts = reply, []

    def complete(self, messages, **kw):
        self.prompts.append(messages[-1].content)
        return Completion(self.reply, self.model, self.name)


@pytest.mark.parametrize("name", ["maxsim", "fusion"])
def test_offline_rerankers_lift_the_answer(name):
    cands = candidates()
    before = copy.deepcopy(cands)
    out = get_reranker(name).rerank(QUESTION, cands)
    assert [s.chunk_id for s in out][0] == "c2", [(s.chunk_id, s.score) for s in out]
    assert cands == before  # scores, texts and metadata dicts untouched
    assert all(a is not b for a in out for b in cands)  # new Source objects
    top = out[0]
    assert top.metadata["retrieval_score"] == 0.61 and top.metadata["retrieval_rank"] == 2
    assert top.metadata["rerank"] == name and top.metadata["name"] == "water.md"
    assert [s.score for s in out] == sorted((s.score for s in out), reverse=True)


def test_maxsim_alone_and_top_k():
    out = MaxSimReranker(retrieval_weight=0.0).rerank(QUESTION, candidates(), top_k=1)
    assert [s.chunk_id for s in out] == ["c2"]
    assert 0.5 < out[0].metadata["maxsim"] <= 1.0  # the answering sentence's cosine


def test_retrieval_weight_can_keep_the_retrieval_order():
    "With the retrieval score weighted far above MaxSim, the first-stage order comes back: the fusion is real."
    out = MaxSimReranker(retrieval_weight=100.0).rerank(QUESTION, candidates())
    assert [s.chunk_id for s in out] == ["c1", "c2", "c3", "c4", "c5", "c6"]


def test_bounds_and_bad_input():
    r = MaxSimReranker()
    assert r.rerank(QUESTION, []) == []
    for bad in ("", "   ", None):
        with pytest.raises(InputError, match="empty"):
            r.rerank(bad, candidates())
    with pytest.raises(InputError, match="top_k"):
        r.rerank(QUESTION, candidates(), top_k=0)
    too_many = [Source(f"c{i}", "d", "text", 0.0) for i in range(MAX_CANDIDATES + 1)]
    for reranker in (r, FusionReranker(), LLMReranker(Scripted("1"))):
        with pytest.raises(InputError, match=f"at most {MAX_CANDIDATES}"):
            reranker.rerank(QUESTION, too_many)
    with pytest.raises(InputError, match="Source"):
        r.rerank(QUESTION, ["just a string"])
    huge = Source("big", "d", "word " * 200_000, 0.5)  # 1 MB of text: read only up to MAX_CHARS
    assert r.rerank(QUESTION, [huge])[0].text == huge.text


def test_registry_and_unknown_name():
    assert set(RERANKERS) == {"maxsim", "fusion", "llm"}
    assert all(isinstance(get_reranker(n, provider=Scripted("1")), Reranker) for n in RERANKERS)
    with pytest.raises(InputError) as e:
        get_reranker("colbert")
    assert "unknown reranker" in str(e.value) and "maxsim, fusion, llm" in e.value.hint
    with pytest.raises(InputError, match="needs a provider"):
        get_reranker("llm")


def test_llm_reranker_follows_a_ranking():
    p = Scripted("Passage 3 answers it.\n3, 1")
    out = LLMReranker(p).rerank(QUESTION, candidates())
    assert [s.chunk_id for s in out] == ["c3", "c1", "c2", "c4", "c5", "c6"]  # the rest follow in retrieval order
    assert out[0].metadata["rerank"] == "llm" and out[0].metadata["retrieval_score"] == 0.60
    assert "[2] The kettle was a gift." in p.prompts[0] and QUESTION in p.prompts[0]


def test_parse_ranking_formats():
    assert parse_ranking("[2] > [1]", 2) == [1, 0]
    assert parse_ranking('{"ranking": [2, 1]}', 2) == [1, 0]
    assert parse_ranking("Ranking: 1, 1, 5", 2) == [0]
    assert parse_ranking("I cannot rank these.", 2) is None


def test_llm_reranker_falls_back_on_the_fake_servers_reply(server):
    "The fake answers 'You asked: ... [id]': no ranking, so the retrieval order stays and every source says so."
    for provider in (AnthropicProvider(base_url=server.url, api_key=KEY),
                     OpenAIProvider(base_url=server.url + "/v1", api_key=KEY)):
        out = LLMReranker(provider).rerank(QUESTION, candidates(), top_k=2)
        assert [s.chunk_id for s in out] == ["c1", "c2"]
        assert all(s.metadata["rerank"].startswith("fallback: unparsable reply: 'You asked:") for s in out)
        assert [s.score for s in out] == [0.62, 0.61]
    assert server.requests == 2


@pytest.mark.parametrize("fault", ["500", "401", "429"])
def test_llm_reranker_falls_back_on_provider_errors(server, fault):
    server.enqueue(fault)
    out = LLMReranker(AnthropicProvider(base_url=server.url, api_key=KEY, timeout=5.0)).rerank(QUESTION, candidates())
    assert [s.chunk_id for s in out] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    label = out[0].metadata["rerank"]
    assert label.startswith("fallback: ProviderError") and KEY not in label


def test_rerank_span_is_recorded(server, tmp_path):
    from aiwb.core import connect, load_config
    from aiwb.observability import disable_tracing, enable_tracing, flush_tracing
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path / "h")}))
    enable_tracing(con)
    try:
        MaxSimReranker().rerank(QUESTION, candidates())
        LLMReranker(AnthropicProvider(base_url=server.url, api_key=KEY)).rerank(QUESTION, candidates())
        flush_tracing()
    finally:
        disable_tracing()
    rows = con.execute("SELECT name, attributes FROM obs_spans WHERE name = 'rerank' ORDER BY start_ns").fetchall()
    assert len(rows) == 2
    assert "maxsim" in rows[0][1] and "6" in rows[0][1]
    assert "fallback" in rows[1][1] and KEY not in rows[1][1]
