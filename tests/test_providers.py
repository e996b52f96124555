"Provider adapters through the real SDKs against the local server."
import asyncio
import time

import pytest

from aiwb.core import ConfigError, Message, Source
from aiwb.providers.anthropic import AnthropicProvider
from aiwb.providers.chat import ProviderError, Tool, ToolCallMessage, ToolResultMessage
from aiwb.providers.openai import OpenAIProvider
from aiwb.providers.base import get_provider
from aiwb.providers.fakes import FaultSchedule

from conftest import KEY

Q = [Message("user", "What is jitter?")]


def providers(server):
    return [AnthropicProvider(api_key=KEY, base_url=server.url, timeout=5),
            OpenAIProvider(api_key=KEY, base_url=server.url + "/v1", timeout=5)]


def test_registry_builds_sdk_providers(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    p = get_provider("anthropic", base_url=server.url)
    assert isinstance(p, AnthropicProvider) and p.complete(Q).text == "You asked: What is jitter?"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_provider("openai")


@pytest.mark.parametrize("i", [0, 1])
def test_complete_stream_async_and_tools(server, i):
    p = providers(server)[i]
    ctx = [Source("c42", "d", "Jitter spreads retries.")]
    c = p.complete(Q, context=ctx)
    assert c.text.endswith("[c42]") and [s.chunk_id for s in c.sources] == ["c42"]
    assert c.usage.input_tokens > 0 and c.cost_usd > 0 and c.latency_ms > 0
    s = p.stream(Q)
    assert "".join(s) == "You asked: What is jitter?" and s.completion.ttft_ms <= s.completion.latency_ms
    assert asyncio.run(p.acomplete(Q)).text == "You asked: What is jitter?"
    tool = Tool("lookup", "look up", {"type": "object", "properties": {"term": {"type": "string"}}})
    r = p.complete([Message("user", "jitter")], tools=[tool])
    assert r.tool_calls[0].name == "lookup" and r.tool_calls[0].arguments == {"term": "jitter"}
    msgs = [Message("user", "jitter"), ToolCallMessage("assistant", "", r.tool_calls), ToolResultMessage("tool", "42", r.tool_calls[0].id)]
    assert p.complete(msgs, tools=[tool]).text == "The tool returned: 42"


def test_sdk_clients_do_not_retry(server):
    for p in providers(server):
        assert p.client.max_retries == 0 and p.aclient.max_retries == 0
        server.enqueue("503")
        with pytest.raises(ProviderError) as e: p.complete(Q)
        assert e.value.transient and e.value.status == 503
    assert len(server.log) == 2  # one request each: the SDK did not retry behind our back


@pytest.mark.parametrize("fault,kind", [("truncate", None), ("malformed", None), ("reset", "connection")])
def test_broken_streams_are_transient_errors(server, fault, kind):
    for p in providers(server):
        server.enqueue(fault)
        with pytest.raises(ProviderError) as e: p.stream(Q).collect()
        assert e.value.transient
        if kind: assert e.value.kind == kind


def test_hang_is_cut_by_timeout(server):
    server.enqueue("hang", "hang")
    for p in providers(server):
        t = time.perf_counter()
        with pytest.raises(ProviderError) as e: p.complete(Q, timeout=0.2)
        assert e.value.kind == "timeout" and time.perf_counter() - t < 1.5


def test_unknown_model_costs_unknown_not_zero(server):
    c = AnthropicProvider(model="claude-unreleased", api_key=KEY, base_url=server.url).complete(Q)
    assert c.cost_usd is None


def test_fault_schedule_is_replayable():
    s = dict(seed=3, rates={"429": 0.1, "hang": 0.02, "malformed": 0.01}, outages=[(5, 8)])
    assert [FaultSchedule(**s).fault(i) for i in range(500)] == [FaultSchedule(**s).fault(i) for i in range(500)]
    assert [FaultSchedule(**s).fault(i) for i in range(500)] != [FaultSchedule(**dict(s, seed=4)).fault(i) for i in range(500)]


def test_key_from_env_and_explicit_timeout(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    p = OpenAIProvider(base_url=server.url + "/v1", timeout=7.5)
    assert p.complete(Q).provider == "openai"
    assert p.client.max_retries == 0 and float(p.client.timeout) == 7.5
    assert KEY not in repr(p)
