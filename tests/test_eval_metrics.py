"Per-case coverage metrics, retrieval metrics and summaries on hand-made completions (no model needed)."
from aiwb.core import Completion, connect, load_config
from aiwb.eval import bootstrap_ci, run_eval, score_case, summarize
from aiwb.orchestration.pipeline import GoldenCase


def test_coverage_fields():
    unanswerable = GoldenCase(id="u", input="Who painted it?", expect_abstain=True)
    answerable = GoldenCase(id="a", input="How many?", reference=["five"], must_contain=["five"], relevant_docs=["d1"])
    abst = Completion("I don't know from the given context.", "m", "p", abstained=True)
    wrong = Completion("Leonardo", "m", "p")
    fell = Completion("five failures", "m", "p", path="anthropic→openai", degraded=["cache"])
    assert score_case(unanswerable, abst)["should_have_abstained"] == 0.0
    assert score_case(unanswerable, wrong)["should_have_abstained"] == 1.0
    row = score_case(answerable, fell, retrieved=["d2", "d1"])
    assert (row["fell_back"], row["degraded"], row["answered"], row["keyword_pass"], row["correct"]) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (row["recall_at_1"], row["recall_at_5"], row["mrr"]) == (0.0, 1.0, 0.5)
    assert row["em"] == 0.0 and 0 < row["f1"] < 1
    assert score_case(answerable, abst)["f1"] == 0.0 and score_case(unanswerable, abst)["em"] is None


def test_summary_rates_and_latency_percentiles(tmp_path):
    con = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))
    cases = [GoldenCase(id=f"q{i}", input=f"q{i}?", reference=["yes"]) for i in range(40)]

    def system(q):
        i = int(q[1:-1])
        return Completion("yes" if i % 4 else "no", "m", "p", latency_ms=float(i), cost_usd=0.001)
    s = summarize(con, run_eval(cases, system, con, config={"x": 1}, corpus_version="v", progress=False))
    assert s.metrics["correct"].value == 0.75 and s.metrics["correct"].ci_low < 0.75 < s.metrics["correct"].ci_high
    assert s.metrics["p50_ms"].value == bootstrap_ci([float(i) for i in range(40)], stat="p50").value == 19.5
    assert abs(s.metrics["cost_per_query"].value - 0.001) < 1e-12 and s.metrics["cost_known"].value == 40
    con.close()
