"""Issue 11: structured output through the real SDKs against the local wire-protocol server's structured faults,
repair counted and traced, typed errors, bounds, a planted key nowhere, and extractive fields offline."""
import pytest
from pydantic import BaseModel, ConfigDict

from conftest import KEY
from aiwb.core import InputError, Source, connect, load_config
from aiwb.observability import disable_tracing, enable_tracing
from aiwb.orchestration.structured import MAX_JSON_CHARS, StructuredOutputError, complete_structured, extract_json
from aiwb.providers.anthropic import AnthropicProvider
from aiwb.providers.extractive import ExtractiveBaseline
from aiwb.providers.fakes import STRUCTURED_FAULTS
from aiwb.providers.openai import OpenAIProvider
from aiwb.reliability.chain import ReliableProvider
from aiwb.reliability.retry import FakeClock, RetryPolicy


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str
    confidence: float
    sources: list[str]


def providers(server):
    return {"anthropic": AnthropicProvider(api_key=KEY, base_url=server.url, timeout=5),
            "openai": OpenAIProvider(api_key=KEY, base_url=server.url + "/v1", timeout=5)}


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
@pytest.mark.parametrize("fault", [f for f in STRUCTURED_FAULTS if f != "refusal"])
def test_each_fault_is_repaired_within_the_bound(server, protocol, fault):
    server.enqueue(fault)
    r = complete_structured(providers(server)[protocol], Finding, "What did the study find?")
    assert isinstance(r.value, Finding) and r.value.answer  # (a repaired answer echoes the repair turn)
    repaired = fault != "json_in_prose"  # prose around a whole object parses as it is
    assert (r.attempts, r.repairs) == ((2, 1) if repaired else (1, 0)) and len(r.errors) == r.repairs
    if repaired:
        sent = server.log[-1]
        assert sent["fault"] == "ok" and len(server.log) == 2


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_refusal_is_a_typed_error_at_once(server, protocol):
    server.enqueue("refusal")
    with pytest.raises(StructuredOutputError) as e:
        complete_structured(providers(server)[protocol], Finding, "Tell me.")
    assert (e.value.kind, e.value.attempts, e.value.exit_code) == ("refusal", 1, 12) and len(server.log) == 1


def test_out_of_repairs_is_a_typed_error_naming_each_problem(server):
    server.enqueue("json_wrong_type", "json_missing_field", "json_extra_field")
    with pytest.raises(StructuredOutputError) as e:
        complete_structured(providers(server)["openai"], Finding, "Tell me.", max_repairs=2)
    assert e.value.kind == "invalid" and e.value.attempts == 3 and len(e.value.errors) == 3
    assert "answer" in e.value.errors[0] and "confidence" in e.value.errors[1] or "answer" in e.value.errors[1]
    assert "unexpected_field" in e.value.errors[2]


def test_through_a_chain_and_repairs_traced(server, tmp_path):
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))
    clk = FakeClock()
    p = providers(server)
    chain = ReliableProvider([p["anthropic"], p["openai"]], RetryPolicy(attempts=2), clock=clk, sleep=clk.sleep)
    assert chain.supports_json_schema
    enable_tracing(con)
    try:
        server.enqueue("503", "503", "json_truncated")  # the first route is down; the second's first answer is cut
        r = complete_structured(chain, Finding, "What did it find?")
    finally:
        disable_tracing()
    assert r.repairs == 1 and len(server.log) == 4  # 2 × 503, the fallback's cut answer, the repair
    assert [e["protocol"] for e in server.log] == ["anthropic", "anthropic", "openai", "anthropic"]
    rows = con.execute("SELECT attributes FROM obs_spans WHERE name = 'structured.repair'").fetchall()
    assert len(rows) == 1 and "cut off" in rows[0][0]
    con.close()


def test_a_planted_key_appears_in_no_error(server):
    wrong = "sk-planted-structured-0f9e8d7c6b5a"
    bad = AnthropicProvider(api_key=wrong, base_url=server.url, timeout=5)
    with pytest.raises(Exception) as e:
        complete_structured(bad, Finding, "q")
    assert wrong not in str(e.value) and wrong[-8:] not in str(e.value)
    server.enqueue("refusal")
    with pytest.raises(StructuredOutputError) as e:
        complete_structured(providers(server)["anthropic"], Finding, f"q with {KEY}")
    assert KEY not in str(e.value) and all(KEY not in x for x in e.value.errors)


def test_bad_input_is_one_clear_error(server):
    p = providers(server)["anthropic"]
    for schema, repairs, message in ((dict, 2, "pydantic BaseModel subclass"), (Finding, -1, "max_repairs"),
                                     (Finding, 99, "max_repairs"), (Finding, True, "max_repairs")):
        with pytest.raises(InputError, match=message):
            complete_structured(p, schema, "q", max_repairs=repairs)
    with pytest.raises(InputError, match="empty"):
        complete_structured(p, Finding, "  ")
    with pytest.raises(ValueError, match="over the limit"):
        extract_json("{" + " " * MAX_JSON_CHARS + "}")


def test_offline_provider_fills_fields_from_its_answer():
    ctx = [Source("c1", "breaker.md", "A half-open breaker lets one probe request through to test the endpoint.", 0.8),
           Source("c2", "retries.md", "Retries use full jitter.", 0.3)]
    r = complete_structured(ExtractiveBaseline(), Finding, "What does a half-open breaker let through?", context=ctx)
    assert "probe" in r.value.answer and r.value.sources == ["c1"] and r.value.confidence == 0.8

    class Needs(BaseModel):
        answer: str
        table: dict
    with pytest.raises(StructuredOutputError, match="cannot fill table"):
        complete_structured(ExtractiveBaseline(), Needs, "q", context=ctx)
