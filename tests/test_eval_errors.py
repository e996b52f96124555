"""`aiwb eval` through the real console script when the provider is down or faulting (issue 9, item 15): errored
cases are failures, counted and shown, with their own exit code; gate metrics are checked before the run."""
import json
import socket

import duckdb
import pytest

from aiwb.core import connect, load_config
from aiwb.eval import CASES_ERRORED, GATE_FAILED
from aiwb.data.store import ingest
from aiwb.providers.fakes import FaultSchedule, LocalLLMServer

from conftest import DATA, KEY, run_cli


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    "An aiwb home with the bundled corpus ingested, and a 6-case golden file."
    root = tmp_path_factory.mktemp("evalcli")
    cfg = load_config(env={"AIWB_HOME": str(root / "home")})
    con = connect(config=cfg)
    ingest(con, DATA / "corpus", cfg)
    con.close()
    golden = root / "golden.jsonl"
    golden.write_text("\n".join((DATA / "golden.jsonl").read_text().splitlines()[:6]) + "\n")
    return root / "home", golden


def closed_port_url() -> str:
    "The URL of a local port nothing listens on."
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def remote(url: str) -> dict:
    "Environment that makes the configured provider Anthropic, reached at `url` (the SDK's own variable)."
    return {"AIWB_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": url}


def runs(home) -> int:
    con = duckdb.connect(str(home / "aiwb.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM eval_runs").fetchone()[0]
    except duckdb.CatalogException:
        return 0
    finally:
        con.close()


def test_every_case_a_connection_error_exits_nonzero(home):
    h, golden = home
    r = run_cli("eval", golden, "--quiet", home=h, env=remote(closed_port_url()))
    assert r.returncode == CASES_ERRORED == 8, r.stdout + r.stderr
    assert r.stdout.startswith("run ") and "6 failed, 6 raised an error" in r.stdout
    assert "failed cases (6)" in r.stdout  # the table says which and why: the connection, or the breaker it opened
    assert "connection" in r.stdout or "is open" in r.stdout
    assert "error: 6 of 6 case run(s) raised an error" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.stderr


def test_errors_win_over_a_passing_gate(home):
    h, golden = home
    r = run_cli("eval", golden, "--quiet", "--gate", "p50_ms<=600000", home=h, env=remote(closed_port_url()))
    assert r.returncode == CASES_ERRORED, r.stdout + r.stderr


def test_faulting_server_json_report(home):
    h, golden = home
    # a 401 is not retried and says nothing about the endpoint's health (a 500 would be retried and absorbed)
    with LocalLLMServer(api_key=KEY, schedule=FaultSchedule(seed=1, rates={"401": 0.5}), hang_s=0.5) as srv:
        r = run_cli("eval", golden, "--quiet", "--json", home=h, env=remote(srv.url))
    assert r.returncode == CASES_ERRORED, r.stderr
    report = json.loads(r.stdout)  # stdout is one JSON document
    assert report["exit_code"] == CASES_ERRORED and report["run_id"] and report["n_cases"] == 6
    errors = [f for f in report["failures"] if f["kind"] == "error"]
    assert 0 < report["errored"] == len(errors) < 6
    assert all("HTTP 401" in f["why"] for f in errors)
    assert report["metrics"]["error"]["value"] == pytest.approx(len(errors) / 6)


def test_unknown_gate_metric_is_refused_before_the_run(home):
    h, golden = home
    before = runs(h)
    r = run_cli("eval", golden, "--quiet", "--gate", "faithfulness>=0.9,p99_ms<=2000", home=h)
    assert r.returncode == 4, r.stderr
    assert "unknown gate metric 'faithfulness'" in r.stderr and "valid metrics: correct" in r.stderr
    assert "p99_ms" in r.stderr and r.stdout == ""
    assert runs(h) == before  # nothing ran


def test_offline_run_ok_and_gate_failed(home):
    h, golden = home
    r = run_cli("eval", golden, "--quiet", "--json", home=h)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["errored"] == 0 and report["gate"] is None
    r = run_cli("eval", golden, "--quiet", "--gate", "correct.ci_low>=1.01", home=h)
    assert r.returncode == GATE_FAILED and "deploy gate: FAILED" in r.stdout and r.stdout.startswith("run ")


def test_eval_help_documents_exit_codes():
    r = run_cli("eval", "--help")
    assert r.returncode == 0 and "8 some cases raised an error" in r.stdout and "--json" in r.stdout
