"""The `aiwb` command as a user runs it: the installed console script, in a subprocess."""
import argparse
import json
import re

from conftest import DATA, run_cli


def parser_commands() -> dict[str, argparse.ArgumentParser]:
    "Every sub-command the `aiwb` parser defines, by name: the list comes from the parser, not from this test."
    from aiwb.cli import build_parser
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_help_lists_every_command():
    commands = parser_commands()
    assert {"demo", "choose", "ingest", "eval", "search", "index", "ask", "chat"} <= set(commands)
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd, parser in commands.items():
        assert re.search(rf"^ +{re.escape(cmd)} ", r.stdout, re.M), f"`aiwb --help` does not list {cmd}"
        sub = run_cli(cmd, "--help")
        assert sub.returncode == 0 and "usage: aiwb " + cmd in sub.stdout, (cmd, sub.stderr)
        assert parser.get_default("func").__name__ == "cmd_" + cmd  # each command runs its own function


def test_bad_usage_exits_2():
    r = run_cli("choose", "--no-such-flag")
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr


def test_choose_the_four_documented_examples():
    cases = [(["--realtime"], "rag"), (["--multi-step"], "agent"), (["--structured"], "structured_output"),
             (["--high-volume", "--domain-specific"], "fine_tuned")]
    for flags, want in cases:
        r = run_cli("choose", *flags)
        assert r.returncode == 0
        assert r.stdout.splitlines()[0].startswith(f"pattern: {want} ")
    r = run_cli("choose", "--examples", "--json")
    assert [v["pattern"] for v in json.loads(r.stdout).values()] == ["rag", "agent", "structured_output", "fine_tuned"]


def test_latency_sensitive_changes_the_advice():
    plain = json.loads(run_cli("choose", "--multi-step", "--json").stdout)
    fast = json.loads(run_cli("choose", "--multi-step", "--latency-sensitive", "--json").stdout)
    assert plain["warnings"] == [] and "unpredictable latency" in fast["warnings"][0]


def test_ingest_then_ask_with_sources(home):
    r = run_cli("ingest", DATA / "corpus", "--json", home=home)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert len(report["added"]) == 30 and report["store_documents"] == 30
    r = run_cli("ask", "Which HTTP status codes are transient and worth retrying?", "--json", home=home)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert "429" in answer["text"] and answer["sources"][0]["metadata"]["name"] == "reliability-retries.md"
    assert answer["cost_usd"] == 0.0 and answer["usage"]["input_tokens"] > 0


def test_empty_question_is_a_clear_error(home):
    r = run_cli("ask", "   ", home=home)
    assert r.returncode == 4 and "the question is empty" in r.stderr


def test_ask_on_an_empty_store_says_to_ingest(home):
    r = run_cli("ask", "What is RAG?", home=home)
    assert r.returncode == 4 and "aiwb ingest" in r.stderr


def test_eval_gate_passes_and_fails_with_exit_codes(home, tmp_path):
    assert run_cli("eval", DATA / "golden.jsonl", home=home).returncode == 4  # empty store: ingest first
    assert run_cli("ingest", DATA / "corpus", "--quiet", home=home).returncode == 0
    ok = run_cli("eval", DATA / "golden.jsonl", "--quiet", "--gate", "correct.ci_low>=0.3", home=home, env={"COLUMNS": "200"})
    assert ok.returncode == 0, ok.stderr
    assert "correct" in ok.stdout and "deploy gate: PASSED" in ok.stdout
    bad = run_cli("eval", DATA / "golden.jsonl", "--quiet", "--gate", "correct.ci_low>=0.99", home=home, env={"COLUMNS": "200"})
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    broken = tmp_path / "g.jsonl"
    broken.write_text('{"id": "a", "input": "What is RAG?"}\n{"id": "b", "input": \n')
    r = run_cli("eval", broken, "--quiet", home=home)
    assert r.returncode == 4 and "g.jsonl:2" in r.stderr
    r = run_cli("eval", DATA / "golden.jsonl", "--quiet", "--gate", "correct>>0.5", home=home)
    assert r.returncode == 4 and "bad gate rule" in r.stderr
