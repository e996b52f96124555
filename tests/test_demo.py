"""`aiwb demo`: the main job, offline, on the bundled data, with the real embedding model."""
import json

from conftest import run_cli


def test_demo_answers_golden_questions_with_sources_and_is_idempotent(home):
    r = run_cli("demo", "--json", home=home, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    s = out["summary"]
    assert s["documents_added"] == 30 and s["chunks_written"] > 30 and s["questions"] == 22
    assert s["passed"] >= 15 and s["cost_usd"] == 0.0
    answered = [a for a in out["answers"] if not a["abstained"]]
    assert answered and all(a["sources"] for a in answered)
    assert all(a["passed"] for a in out["answers"] if a["id"] in ("g21", "g22"))  # the unanswerable ones abstain
    again = json.loads(run_cli("demo", "--json", home=home).stdout)["summary"]
    assert again["chunks_written"] == 0 and again["documents_unchanged"] == 30
    assert again["corpus_version"] == s["corpus_version"] and again["passed"] == s["passed"]


def test_demo_prints_readable_output(home):
    r = run_cli("demo", home=home, env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "PASS" in r.stdout and "sources:" in r.stdout and "summary" in r.stdout
