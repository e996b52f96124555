"""Issue 9 items 12, 14 and 16, `aiwb chat` and a CLI that imports only what a command needs, through the installed
console script on one small store."""
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

from conftest import AIWB, DATA, KEY, run_cli

WIDE = {"COLUMNS": "400"}  # rich wraps tables to the terminal width: keep every cell on one line
MARKUP = ("The retry budget is explained on [the wiki page](https://example.org/wiki/budget) and it caps "
          "retries at [/b] ten percent of [bold]all[/bold] calls.")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "A store with one note of the bundled corpus and one note whose text looks like rich markup."
    root = tmp_path_factory.mktemp("ux")
    docs = root / "docs"
    docs.mkdir()
    shutil.copy(DATA / "corpus" / "reliability-circuit-breaker.md", docs)
    (docs / "budget [draft].md").write_text(f"# Retry budgets\n\n{MARKUP}\n", encoding="utf-8")
    home = root / "home"
    r = run_cli("ingest", docs, home=home)
    assert r.returncode == 0, r.stderr
    return home


# --- item 12: user content is printed literally ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["vector", "bm25"])
def test_search_prints_markup_in_documents_literally(store, mode):
    r = run_cli("search", "retry budget wiki page", "--mode", mode, "--k", "2", home=store, env=WIDE)
    assert r.returncode == 0, r.stderr
    assert "[the wiki page](https://example.org/wiki/budget)" in r.stdout and "[/b]" in r.stdout
    assert "[bold]all[/bold]" in r.stdout and "budget [draft].md" in r.stdout


def test_ask_prints_markup_in_the_answer_literally(store):
    r = run_cli("ask", "How much of all calls may retries be, per the retry budget?", home=store, env=WIDE)
    assert r.returncode == 0, r.stderr
    assert "[the wiki page](https://example.org/wiki/budget)" in r.stdout and "[/b] ten percent" in r.stdout
    assert "budget [draft].md" in r.stdout  # the source's name, brackets included


# --- item 14: a store held by another process -----------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys
    from aiwb.core import connect, load_config
    con = connect(config=load_config(), read_only=sys.argv[1] == "read")
    print("holding", flush=True)
    sys.stdin.read()  # hold the store until the test closes stdin
""")


@pytest.fixture
def holder(store):
    "Start a process that holds the store open for 'read' or 'write'; yield its PID."
    procs = []

    def start(how: str) -> int:
        p = subprocess.Popen([sys.executable, "-c", HOLD, how], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "AIWB_HOME": str(store)})
        procs.append(p)
        assert p.stdout.readline().strip() == "holding"
        return p.pid
    yield start
    for p in procs:
        p.stdin.close()
        p.wait(timeout=60)


def test_read_commands_run_while_another_process_reads(store, holder):
    holder("read")
    r = run_cli("search", "half-open", "--json", home=store)
    assert r.returncode == 0 and json.loads(r.stdout)["results"], r.stderr
    r = run_cli("ask", "What happens when the breaker is half-open?", "--json", home=store)
    assert r.returncode == 0 and json.loads(r.stdout)["sources"], r.stderr
    r = subprocess.run([str(AIWB), "chat", "--json"], input="What is half-open?\n",
                       capture_output=True, text=True, env={**os.environ, "AIWB_HOME": str(store)}, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0])["sources"], r.stderr


def test_a_writer_names_the_reader_that_holds_the_store(store, holder):
    pid = holder("read")
    r = run_cli("ingest", DATA / "corpus" / "reliability-retries.md", home=store)
    assert r.returncode == 5, r.stderr
    assert f"open for reading in process {pid}" in r.stderr and "hint:" in r.stderr
    assert "damaged" not in r.stderr and len(r.stderr.splitlines()) == 2


def test_a_reader_names_the_writer_that_holds_the_store(store, holder):
    pid = holder("write")
    for cmd in (["search", "half-open"], ["ask", "What is half-open?"]):
        r = run_cli(*cmd, home=store)
        assert r.returncode == 5, r.stderr
        assert f"being written by process {pid}" in r.stderr and "wait until it finishes" in r.stderr
        assert "damaged" not in r.stderr and len(r.stderr.splitlines()) == 2


def test_search_and_ask_do_not_change_the_store_file(store):
    db = store / "aiwb.duckdb"
    before = (db.stat().st_mtime_ns, db.read_bytes())
    assert run_cli("search", "half-open", home=store).returncode == 0
    assert run_cli("ask", "What is half-open?", home=store).returncode == 0
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before


# --- item 16: the configured model, --provider/--model, connection failures ------------------------------------

def provider_env(server, protocol: str) -> dict:
    if protocol == "anthropic":
        return {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": server.url}
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url + "/v1"}


@pytest.mark.parametrize("protocol, model", [("anthropic", "claude-3-5-haiku-latest"), ("openai", "gpt-4.1-nano")])
def test_configured_model_is_the_one_called(store, server, protocol, model):
    env = {**provider_env(server, protocol), "AIWB_PROVIDER": protocol, "AIWB_MODEL": model}
    r = run_cli("ask", "What happens when the breaker is half-open?", "--json", home=store, env=env)
    assert r.returncode == 0, r.stderr
    assert [e["model"] for e in server.log] == [model] and json.loads(r.stdout)["model"] == model


@pytest.mark.parametrize("protocol, model", [("anthropic", "claude-3-5-haiku-latest"), ("openai", "gpt-4.1-nano")])
def test_provider_and_model_flags_win_over_the_config(store, server, protocol, model):
    env = {**provider_env(server, protocol), "AIWB_PROVIDER": "local", "AIWB_MODEL": "extractive-baseline"}
    r = run_cli("ask", "What is half-open?", "--provider", protocol, "--model", model, home=store, env=env)
    assert r.returncode == 0, r.stderr
    assert [e["model"] for e in server.log] == [model] and f"{protocol}/{model}" in r.stdout
    r = run_cli("ask", "What is half-open?", "--provider", protocol, home=store, env=env)  # --provider alone: its default
    assert r.returncode == 0, r.stderr
    default = {"anthropic": "claude-sonnet-4-20250514", "openai": "gpt-4o-mini-2024-07-18"}[protocol]
    assert server.log[-1]["model"] == default


def test_eval_takes_provider_and_model(store, server, tmp_path):
    golden = tmp_path / "g.jsonl"
    golden.write_text(json.dumps({"id": "q1", "input": "What happens when the breaker is half-open?"}) + "\n")
    env = provider_env(server, "anthropic")
    r = run_cli("eval", golden, "--provider", "anthropic", "--model", "claude-3-5-haiku-latest", "--quiet", home=store, env=env)
    assert r.returncode == 0, r.stderr
    assert server.log and {e["model"] for e in server.log} == {"claude-3-5-haiku-latest"}


@pytest.mark.parametrize("protocol, var", [("anthropic", "ANTHROPIC_BASE_URL"), ("openai", "OPENAI_BASE_URL")])
def test_a_closed_port_is_one_clear_error_naming_endpoint_and_variable(store, protocol, var):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {"ANTHROPIC_API_KEY": KEY, "OPENAI_API_KEY": KEY, var: closed}
    r = run_cli("ask", "What is half-open?", "--provider", protocol, home=store, env=env)
    assert r.returncode == 7, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and closed in lines[0], r.stderr
    assert lines[1].startswith("  hint: ") and var in lines[1] and "Traceback" not in r.stderr


def test_a_missing_key_names_the_variable(store):
    r = run_cli("ask", "What is half-open?", "--provider", "openai", home=store)
    assert r.returncode == 3 and "OPENAI_API_KEY" in r.stderr


def test_an_unknown_provider_lists_the_known_ones(store):
    r = run_cli("ask", "What is half-open?", "--provider", "gpt-9", home=store)
    assert r.returncode == 4 and "known providers: anthropic, local, openai" in r.stderr


# --- aiwb chat ---------------------------------------------------------------------------------------------------

def chat(store, text: str, *args, env=None):
    return subprocess.run([str(AIWB), "chat", *args], input=text, capture_output=True, text=True,
                          env={**os.environ, "AIWB_HOME": str(store), **WIDE, **(env or {})}, timeout=300)


def test_chat_answers_every_piped_question_in_one_process(store):
    r = chat(store, "What happens when the breaker is half-open?\n\n/help\nHow much of all calls may retries be?\n"
                    "/quit\nThis line is never read?\n", "--json")
    assert r.returncode == 0, r.stderr
    answers = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(answers) == 2 and all(a["sources"] for a in answers)
    assert "[/b] ten percent" in answers[1]["text"] and "/quit" in r.stderr  # /help went to stderr


def test_chat_text_output_ends_at_eof_and_prints_literally(store):
    r = chat(store, "How much of all calls may retries be, per the retry budget?")  # no newline, then EOF
    assert r.returncode == 0, r.stderr
    assert "> How much of all calls" in r.stdout and "[the wiki page](https://example.org/wiki/budget)" in r.stdout


def test_chat_keeps_going_after_a_failed_question(store):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = chat(store, "first?\nsecond?\n", "--provider", "anthropic",
             env={"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": closed})
    assert r.returncode == 7 and r.stderr.count("error: ") == 2 and "Traceback" not in r.stderr


def test_chat_with_its_mode_filter_and_model_flags(store, server):
    r = chat(store, "What happens when the breaker is half-open?\n", "--json", "--mode", "hybrid",
             "--filter", "doc_id contains breaker", "--provider", "openai", "--model", "gpt-4.1-nano",
             env=provider_env(server, "openai"))
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["model"] == "gpt-4.1-nano" and server.log[-1]["model"] == "gpt-4.1-nano"
    assert answer["sources"] and all("breaker" in s["doc_id"] for s in answer["sources"])


def test_chat_on_an_empty_store_says_to_ingest(home):
    r = chat(home, "What is RAG?\n")
    assert r.returncode == 4 and "aiwb ingest" in r.stderr


# --- a fast CLI: a command imports only what it needs ------------------------------------------------------------

HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime")
PROBE = textwrap.dedent("""
    import json, sys
    from aiwb.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
    import aiwb.embeddings
    print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules],
                      "model_loaded": aiwb.embeddings.load_model.cache_info().currsize if hasattr(aiwb.embeddings, "load_model") else 0}),
          file=sys.stderr)
""" % (HEAVY,))


@pytest.mark.parametrize("args", [["--help"], ["search", "--help"], ["search", "half-open", "--mode", "bm25"],
                                  ["search", "half-open", "--mode", "bm25", "--json"], ["choose", "--realtime"]])
def test_these_commands_load_no_model(store, args):
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "AIWB_HOME": str(store)})
    report = json.loads(r.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, r.stderr
    assert report["heavy"] == [] and report["model_loaded"] == 0, report
