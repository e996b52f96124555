"Secrets are redacted in logs, spans, ledger rows, eval rows and exceptions; spans land in DuckDB."
import io
import json
import logging

import pytest

from aiwb.core import Completion
from aiwb.observability import (Observer, configure_logging, disable_tracing, enable_tracing, flush_tracing,
                                log_event)
from aiwb.trace import redact, redact_obj, span

SECRETS = ["sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv", "sk-proj-0123456789abcdefABCDEF", "sk-0123456789abcdefghijklmn",
           "ghp_abcdefghijklmnopqrstuvwxyz0123", "AKIAIOSFODNN7EXAMPLE"]


@pytest.mark.parametrize("secret", SECRETS)
def test_key_patterns_are_redacted(secret):
    out = redact(f"calling with {secret} now")
    assert secret not in out and "[REDACTED]" in out and out.startswith("calling with")


def test_headers_assignments_and_env_values(monkeypatch):
    assert redact("Authorization: Bearer abc.def.ghi") == "Authorization: Bearer [REDACTED]"
    assert redact('{"api_key": "hunter2hunter2"}') == '{"api_key": "[REDACTED]"}'
    assert redact("x-api-key=abcdefgh1234") == "x-api-key=[REDACTED]"
    monkeypatch.setenv("MYPROVIDER_API_KEY", "no-recognisable-shape-42")
    assert "no-recognisable-shape-42" not in redact("value no-recognisable-shape-42 seen")
    assert redact("short sk-1 and plain words") == "short sk-1 and plain words"
    assert redact_obj({"a": ["Bearer tok123456"], "n": 1}) == {"a": ["Bearer [REDACTED]"], "n": 1}


def test_json_logs_and_exceptions_are_redacted():
    buf = io.StringIO()
    configure_logging(stream=buf)
    log_event("call", key=SECRETS[0])
    try:
        raise ValueError(f"bad key {SECRETS[1]}")
    except ValueError:
        logging.getLogger("aiwb").exception("failed")
    text = buf.getvalue()
    assert not any(s in text for s in SECRETS)
    lines = [json.loads(l) for l in text.splitlines()]
    assert lines[0]["event"] == "call" and lines[1]["level"] == "error" and "ValueError" in lines[1]["exc"]


def test_spans_and_ledger_in_duckdb_are_redacted(tmp_path):
    from aiwb.core import connect, load_config
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))
    enable_tracing(con)
    try:
        with span("generate", auth=f"Bearer {SECRETS[2]}"):
            with span("retry.attempt", n=1):
                pass
        flush_tracing()
    finally:
        disable_tracing()
    rows = con.execute("SELECT name, parent_id, attributes FROM obs_spans ORDER BY start_ns").fetchall()
    assert [r[0] for r in rows] == ["generate", "retry.attempt"] and rows[0][1] is None and rows[1][1] is not None
    assert SECRETS[2] not in rows[0][2]
    obs = Observer(con)
    obs.record_call(error=RuntimeError(f"401 {SECRETS[0]}"), provider="anthropic", model="m", latency_ms=5)
    obs.record_call(Completion("ok", "m", "openai", cost_usd=None, latency_ms=3))
    obs.flush()
    assert SECRETS[0] not in con.execute("SELECT string_agg(error, ' ') FROM obs_ledger").fetchone()[0]
    snap = obs.snapshot()
    assert (snap["requests"], snap["errors"], snap["cost_unknown_calls"]) == (2, 1, 1)
    con.close()


def test_eval_rows_redact_errors(tmp_path):
    from aiwb.core import connect, load_config
    from aiwb.eval import case_rows, run_eval
    from aiwb.orchestration.pipeline import GoldenCase
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))

    def broken(q):
        raise RuntimeError(f"provider said: invalid key {SECRETS[1]}")
    rid = run_eval([GoldenCase(id="a", input="q?")], broken, con, config={"s": 1}, corpus_version="v", progress=False)
    [row] = case_rows(con, rid)
    assert row["error"] == 1.0 and row["correct"] == 0.0
    assert SECRETS[1] not in row["error_text"] and "[REDACTED]" in row["error_text"]
    con.close()


@pytest.mark.slow
def test_tracing_overhead_bound():
    "bench/tracing_overhead.py: tracing on costs at most 5 % of the offline pipeline's median latency."
    import subprocess
    import sys
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "bench" / "tracing_overhead.py"
    out = subprocess.run([sys.executable, str(bench), "--rounds", "2"], capture_output=True, text=True, timeout=900)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
