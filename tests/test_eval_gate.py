"Deploy gate: parsing, CI-lower-bound default, readable failures and the CLI exit codes."
import json

import pytest

from aiwb.core import InputError
from aiwb.eval import GATE_FAILED, RunSummary, Stat, evaluate_gate, gate_table, parse_gate, print_table, run_eval_cli


def summary(correct=(0.85, 0.78, 0.92), p99=(1500.0, 1200.0, 1900.0), cost=(0.002, 0.001, 0.003)):
    return RunSummary("r1", "x", 50, {"correct": Stat(*correct, 50), "p99_ms": Stat(*p99, 50), "cost_per_query": Stat(*cost, 50)})


def test_gate_defaults_to_the_conservative_end_of_the_ci():
    rules = parse_gate("correctness.ci_low>=0.8, p99_ms<=2000 ,cost_per_query<=0.01")
    assert [(r.metric, r.field, r.op, r.threshold) for r in rules] == [
        ("correct", "ci_low", ">=", 0.8), ("p99_ms", "ci_high", "<=", 2000.0), ("cost_per_query", "ci_high", "<=", 0.01)]
    assert parse_gate("correctness>=0.8")[0].field == "ci_low"
    assert parse_gate("correctness.value>=0.8")[0].field == "value"
    # point estimate 0.85 clears 0.8 but the CI lower bound 0.78 does not: the default gate fails
    res = evaluate_gate(summary(), "correctness>=0.8,p99_ms<=2000,cost_per_query<=0.01")
    assert not res.passed and [r["passed"] for r in res.rows] == [False, True, True]
    assert res.rows[0]["why"] == "ci_low 0.78 fails >= 0.8"
    assert evaluate_gate(summary(), "correctness.value>=0.8").passed
    assert not evaluate_gate(summary(p99=(1500.0, 1200.0, 2100.0)), "p99_ms<=2000").passed


def test_missing_metric_fails_and_table_is_readable(capsys):
    res = evaluate_gate(summary(), "faithfulness>=0.9")
    assert not res.passed and res.rows[0]["why"] == "metric not in run"
    print_table(gate_table(res))
    out = capsys.readouterr().out
    assert "FAILED" in out and "faithfulness>=0.9" in out and "metric not in run" in out


@pytest.mark.parametrize("bad", ["correctness>>0.8", "correctness>=high", "", "p99_ms<=2000,,nonsense"])
def test_bad_gate_is_one_clear_error(bad):
    with pytest.raises(InputError) as e:
        parse_gate(bad)
    assert "gate" in str(e.value) and e.value.exit_code == 4


def test_cli_exit_codes(tmp_path, monkeypatch):
    from aiwb.core import load_config
    monkeypatch.setenv("AIWB_HOME", str(tmp_path / "home"))
    cfg = load_config()
    out = []
    assert run_eval_cli(tmp_path / "missing.jsonl", config=cfg, print_fn=out.append) == 4
    assert "golden file not found" in out[-1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": "ok?"}\n{"id": "b"\n')
    assert run_eval_cli(bad, config=cfg, print_fn=out.append) == 4
    assert "bad.jsonl:2: not valid JSON" in out[-1]
    assert run_eval_cli(bad, gate="correct>>1", config=cfg, print_fn=out.append) == 4


@pytest.mark.slow
def test_cli_gate_pass_and_fail(tmp_path, monkeypatch):
    "A real run over the bundled corpus: an impossible gate exits 1, a lenient one 0."
    from pathlib import Path
    from aiwb.core import connect, load_config
    from aiwb.data.store import ingest
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("AIWB_HOME", str(tmp_path / "home"))
    cfg = load_config()
    con = connect(config=cfg); ingest(con, repo / "data" / "corpus", cfg); con.close()
    golden = tmp_path / "g.jsonl"
    golden.write_text("\n".join((repo / "data" / "golden.jsonl").read_text().splitlines()[:5]) + "\n")
    out = []
    assert run_eval_cli(golden, gate="correctness.ci_low>=1.01", config=cfg, progress=False, print_fn=out.append) == GATE_FAILED
    assert run_eval_cli(golden, gate="correctness.value>=0,p99_ms<=600000", config=cfg, progress=False, print_fn=out.append) == 0
