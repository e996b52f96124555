"""Issue 12: sweeps of the composed pipeline through the real console script; resumable, exported, hostile specs,
the Ray engine equal to the local run, and no key in what a sweep stores."""
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
KEY = "sk-ant-api03-PLANTEDsweepKEY0123456789abcdefghijklmnopqrstuvwxyzABCDEF"


def spec_file(tmp_path: Path, grid: str, extra: str = "", name: str = "t") -> Path:
    "A sweep file over the bundled data, the first 8 golden questions."
    f = tmp_path / f"{name}.toml"
    f.write_text(f'name = "{name}"\ngolden = "{DATA / "golden.jsonl"}"\ncorpus = "{DATA / "corpus"}"\nlimit = 8\n'
                 f'price_as = "claude-3-5-haiku-20241022"\n{extra}\n[grid]\n{grid}\n')
    return f


def one_error(r, code: int, message: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert lines and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert len(lines) <= 2 and all(l.startswith("  hint: ") for l in lines[1:]), r.stderr
    assert "Traceback" not in r.stderr


def test_sweep_cli_front_resume_and_export(home, tmp_path):
    spec = spec_file(tmp_path, '"pipeline.mode" = ["vector", "bm25"]\ntop_k = [2, 4]')
    r = run_cli("sweep", spec, "--json", home=home, env={"ANTHROPIC_API_KEY": KEY})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    measured = [p for p in out["points"] if p["kind"] == "measured"]
    assert len(measured) == 4
    assert {p["status"] for p in measured} <= {"front", "tie", "dominated"} and any(p["status"] == "front" for p in measured)
    for p in measured:
        for o in ("quality", "p50_ms", "p99_ms", "cost_usd"):
            lo, hi = p[f"{o}_ci"]
            assert lo <= p[o] <= hi
        if p["status"] == "dominated":
            assert p["dominated_by"]
    assert all(p["assumption"] for p in out["points"] if p["kind"] == "projected")
    # a re-run measures nothing: the store has every configuration
    again = run_cli("sweep", spec, "--json", home=home)
    assert again.returncode == 0
    assert [p["id"] for p in json.loads(again.stdout)["points"]] == [p["id"] for p in out["points"]]
    # the table names the front
    table = run_cli("sweep", spec, home=home, env={"COLUMNS": "200"})
    assert table.returncode == 0 and "front" in table.stdout and "projections" in table.stdout
    # export the best configuration and ask with it
    best = next(p for p in measured if p["status"] == "front")
    chosen = tmp_path / "chosen.toml"
    ex = run_cli("sweep", spec, "--export", best["id"][:6], "--out", chosen, home=home)
    assert ex.returncode == 0, ex.stderr
    assert "mode" in chosen.read_text()
    ingest = run_cli("ingest", DATA / "corpus", home=home)
    assert ingest.returncode == 0, ingest.stderr
    ask = run_cli("--config", chosen, "ask", "What does the circuit breaker do?", "--json", home=home)
    assert ask.returncode == 0, ask.stderr
    # no key anywhere in what the sweep stored
    for f in home.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f


@pytest.mark.parametrize("body, code, message", [
    ('name = "x"\n', 4, "missing golden, corpus, grid"),
    ('name = "x"\ngolden = "g.jsonl"\ncorpus = "c"\n[grid]\ntop_k = [1]\n', 4, "does not exist"),
    ("name = [\n", 4, "is not valid TOML"),
])
def test_bad_spec_files(home, tmp_path, body, code, message):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    one_error(run_cli("sweep", f, home=home), code, message)


@pytest.mark.parametrize("grid, code, message", [
    ('"top-k" = [2]', 4, "unknown sweep key 'top-k'"),
    ('top_k = 2', 4, "must be a non-empty list"),
    ('"pipeline.mode" = ["fuzzy"]', 3, "must be a search mode"),
    ('top_k = [0]', 3, "'top_k' must be between 1 and 1000"),
    ('"cache.semantic_threshold" = [1.5]', 3, "between 0.0 and 1.0"),
    ('"pipeline.compress" = [0.0]', 3, "'pipeline.compress' must be between 0.05 and 1.0"),
    ("top_k = [" + ", ".join(str(i) for i in range(1, 70)) + "]", 4, "at most 64"),
])
def test_bad_grid_values_fail_before_anything_runs(home, tmp_path, grid, code, message):
    r = run_cli("sweep", spec_file(tmp_path, grid), home=home)
    one_error(r, code, message)
    assert not (home / "sweep-corpus-fp32-160-32.duckdb").exists()  # nothing was ingested


def test_missing_spec_and_unknown_export(home, tmp_path):
    one_error(run_cli("sweep", tmp_path / "none.toml", home=home), 4, "does not exist")
    spec = spec_file(tmp_path, "top_k = [2]")
    assert run_cli("sweep", spec, "--quiet", home=home).returncode == 0
    one_error(run_cli("sweep", spec, "--export", "zzzz", home=home), 4, "matches no measured configuration")


def test_interrupted_sweep_resumes(tmp_path):
    from aiwb.explorers.sweeps import open_sweep_store, run_sweep, sweep_spec
    spec = sweep_spec("r", DATA / "golden.jsonl", DATA / "corpus", {"top_k": [1, 2, 3]}, limit=4)
    seen = []

    def stop_after_one(m):
        seen.append(m.config_id)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path, progress=False, on_point=stop_after_one)
    con = open_sweep_store(tmp_path)
    assert con.execute("SELECT count(*) FROM sweep_points").fetchone()[0] == 1  # the finished one is kept
    con.close()
    rest = []
    trade = run_sweep(spec, tmp_path, progress=False, on_point=lambda m: rest.append(m.config_id))
    assert len(rest) == 2 and seen[0] not in rest
    assert len(trade.measured()) == 3


def test_ray_engine_equals_local(tmp_path):
    pytest.importorskip("ray")
    from aiwb.explorers.sweeps import run_sweep, sweep_spec
    spec = sweep_spec("ray", DATA / "golden.jsonl", DATA / "corpus",
                      {"pipeline.mode": ["vector", "bm25"], "top_k": [2, 4]}, limit=8,
                      price_as="claude-3-5-haiku-20241022")
    local = run_sweep(spec, tmp_path / "local", progress=False)
    ray_run = run_sweep(spec, tmp_path / "ray", engine="ray", progress=False)
    pick = lambda t: {p.id: (p.settings, round(p.values["quality"], 9), round(p.values["cost_usd"], 12))
                      for p in t.measured()}
    assert pick(local) == pick(ray_run)
    assert len(pick(local)) == 4


def test_optuna_sampler_measures_what_it_asks(tmp_path):
    pytest.importorskip("optuna")
    from aiwb.explorers.sweeps import run_sweep, sweep_spec
    spec = sweep_spec("opt", DATA / "golden.jsonl", DATA / "corpus", {"pipeline.mode": ["vector", "bm25"], "top_k": [2, 4]},
                      sampler="optuna", trials=5, limit=4, seed=1)
    seen = []
    trade = run_sweep(spec, tmp_path, progress=False, on_point=lambda m: seen.append(m.config_id))
    assert 1 <= len(seen) <= 4 and len(set(seen)) == len(seen)  # a configuration asked twice is measured once
    assert len(trade.measured()) == len(seen)


def test_prompt_compression_sends_less_and_keeps_the_sources(tmp_path):
    from aiwb.core import connect, load_config
    from aiwb.data.store import ingest
    from aiwb.orchestration.pipeline import build_pipeline
    (tmp_path / "config.toml").write_text("[pipeline]\ncompress = 0.4\n")
    full = load_config(env={"AIWB_HOME": str(tmp_path / "h")})
    half = load_config(tmp_path / "config.toml", env={"AIWB_HOME": str(tmp_path / "h")})
    assert half.pipeline.compress == 0.4
    con = connect(config=full)
    ingest(con, DATA / "corpus", full)
    q = "What does the circuit breaker do when a provider keeps failing?"
    a = build_pipeline(full, con, cache=False).ask(q)
    b = build_pipeline(half, con, cache=False).ask(q)
    assert b.usage.input_tokens < 0.7 * a.usage.input_tokens
    assert not b.abstained and b.sources and all(len(s.chunk_id) == 16 for s in b.sources)
    con.close()


def test_streaming_lever_measures_time_to_first_text(tmp_path):
    from aiwb.explorers.sweeps import export_config, run_sweep, sweep_spec
    spec = sweep_spec("s", DATA / "golden.jsonl", DATA / "corpus", {"streaming": [False, True]}, limit=6)
    trade = run_sweep(spec, tmp_path, progress=False)
    by = {p.settings["streaming"]: p for p in trade.measured()}
    assert set(by) == {False, True} and "ttft_ms" in trade.tests.better
    streamed, whole = by[True].values, by[False].values
    assert streamed["ttft_ms"] <= streamed["p50_ms"] + 1e-9  # the first words arrive before the answer ends
    assert abs(whole["ttft_ms"] - whole["p50_ms"]) < 1e-9  # not streamed: the first text is the whole answer
    text = export_config(spec, trade, by[True].id)
    assert text.startswith("# measured with streaming = true") and "streaming =" not in text.split("\n", 1)[1]


def test_a_damaged_sweep_store_is_one_error_line(home, tmp_path):
    home.mkdir(parents=True, exist_ok=True)
    (home / "sweeps.duckdb").write_bytes(b"not a duckdb file\n" * 100)
    r = run_cli("sweep", spec_file(tmp_path, "top_k = [2]"), home=home)
    one_error(r, 5, "cannot open the sweep store")
    assert (home / "sweeps.duckdb").read_bytes().startswith(b"not a duckdb file")  # nothing lost
