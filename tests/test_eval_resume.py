"A killed eval run resumes without redoing stored cases, and its final table equals an uninterrupted run's."
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from aiwb.core import connect, load_config
from aiwb.eval import case_rows, summarize

WORKER = Path(__file__).with_name("_eval_worker.py")
N = 40


def _run(db, env, delay="0.0"):
    out = subprocess.run([sys.executable, str(WORKER), str(db), str(N), delay], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def _table(db, env_home):
    con = connect(db, config=load_config(env={"AIWB_HOME": env_home}))
    [(run_id, status)] = con.execute("SELECT run_id, status FROM eval_runs").fetchall()
    s = summarize(con, run_id)
    rows = [{k: v for k, v in r.items() if k != "rep"} for r in case_rows(con, run_id)]
    con.close()
    return run_id, status, {k: (v.value, v.ci_low, v.ci_high, v.n) for k, v in s.metrics.items()}, rows


def test_killed_run_resumes_and_matches(tmp_path):
    env = {**os.environ, "AIWB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed, clean = tmp_path / "killed.duckdb", tmp_path / "clean.duckdb"
    # 1. start a slow run and SIGKILL it once about a third of the cases have been called
    p = subprocess.Popen([sys.executable, str(WORKER), str(killed), str(N), "0.15"], env=env, stdout=subprocess.PIPE, text=True)
    calls = 0
    for line in p.stdout:
        calls += line.startswith("call ")
        if calls >= 14: break
    os.kill(p.pid, signal.SIGKILL); p.wait(timeout=30)
    con = connect(killed, config=load_config(env={"AIWB_HOME": env["AIWB_HOME"]}))
    stored = con.execute("SELECT count(*) FROM eval_cases").fetchone()[0]
    status = con.execute("SELECT status FROM eval_runs").fetchone()[0]
    con.close()
    assert 0 < stored < N and status == "running"
    # 2. rerun: it resumes the same run and calls the system only for the missing cases
    lines = _run(killed, env)
    recalled = sum(l.startswith("call ") for l in lines)
    assert recalled <= N - stored, (recalled, stored)
    # 3. an uninterrupted run gives the same table
    _run(clean, env)
    rid_k, st_k, table_k, rows_k = _table(killed, env["AIWB_HOME"])
    rid_c, st_c, table_c, rows_c = _table(clean, env["AIWB_HOME"])
    assert st_k == st_c == "done"
    assert len(rows_k) == N
    assert table_k == table_c
    assert json.dumps(rows_k, sort_keys=True) == json.dumps(rows_c, sort_keys=True)
