"""`aiwb search`, `aiwb ask --mode/--filter` and `aiwb ingest` of every format, through the installed console script."""
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiwb.cli import parse_filter
from aiwb.data.filters import filter_spec
from conftest import DATA, run_cli

# A JSONL corpus whose extra fields become filterable metadata; p4 carries hostile keys and values.
PAPERS = [
    {"_id": "p1", "title": "Retrieval on DuckDB", "year": 2024, "lang": "en", "tags": ["duckdb", "rag", "hybrid"],
     "text": "Hybrid retrieval fuses BM25 and vector rankings; a breaker is not involved."},
    {"_id": "p2", "title": "Circuit breakers revisited", "year": 2019, "lang": "en", "tags": ["reliability"],
     "text": "A circuit breaker stops calls to a failing dependency and lets one probe request through after a cool-down."},
    {"_id": "p3", "title": "Leistungsschalter", "year": 2021, "lang": "de", "tags": ["reliability", "circuit breaker"],
     "text": "Ein breaker unterbricht Aufrufe an einen fehlerhaften Dienst und lässt nach einer Pause eine Probe durch."},
    {"_id": "p4", "title": "O'Brien; DROP TABLE chunks; --", "year": 2022, "lang": "en",
     "tags": ["'; DROP TABLE chunks; --", "%", "a_b", "\\"], "we'ird/key~": "x'y",
     "text": "Notes on a breaker for quoting, written by O'Brien."},
]
ALL = {"papers.jsonl#p1", "papers.jsonl#p2", "papers.jsonl#p3", "papers.jsonl#p4"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "One store for the module: two Markdown notes, an HTML page and a JSONL corpus, ingested by the console script."
    root = tmp_path_factory.mktemp("search")
    docs = root / "docs"
    docs.mkdir()
    for name in ("reliability-circuit-breaker.md", "reliability-retries.md"):
        shutil.copy(DATA / "corpus" / name, docs / name)
    (docs / "papers.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAPERS), encoding="utf-8")
    (docs / "budget.html").write_text("<html><head><title>Retry budgets</title><style>p{}</style></head><body><h1>Retry "
                                      "budgets</h1><p>A retry budget caps retries so that they cannot amplify an outage.</p>"
                                      "<script>var breaker = 1;</script></body></html>", encoding="utf-8")
    home = root / "home"
    r = run_cli("ingest", docs, "--json", home=home)
    assert r.returncode == 0, r.stderr
    return home, docs, json.loads(r.stdout)


def search(home, *args):
    r = run_cli("search", *args, "--json", home=home)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_ingest_reads_html_and_jsonl(store):
    home, docs, report = store
    assert sorted(report["added"]) == sorted(["budget.html", "reliability-circuit-breaker.md", "reliability-retries.md", *ALL])
    assert report["ok"] and report["store_documents"] == 7
    hits = search(home, "retry budget outage", "--mode", "bm25", "--filter", "name=budget.html")["results"]
    assert [h["title"] for h in hits] == ["Retry budgets"] and "var breaker" not in hits[0]["text"]  # scripts dropped
    p2 = search(home, "probe request cool-down", "--mode", "bm25", "--k", "1", "--filter", "doc_id contains #p2")["results"][0]
    assert p2["metadata"]["year"] == 2019 and p2["metadata"]["tags"] == ["reliability"]  # JSONL fields kept as metadata


# Each run that embeds the query loads the model in a fresh process (~10 s here), so the default suite runs the CLI
# in vector, bm25 and hybrid mode; ivf and hnsw run with `-m slow` (their filter pushdown is checked in-process,
# in every mode, by test_retrieval_filters.py).
@pytest.mark.parametrize("mode", ["vector", pytest.param("ivf", marks=pytest.mark.slow),
                                  pytest.param("hnsw", marks=pytest.mark.slow), "bm25", "hybrid"])
def test_search_each_mode_with_filters(store, mode):
    home = store[0]
    if mode == "hnsw":  # search opens the store read-only: the HNSW index is built by `aiwb index --hnsw`
        built = run_cli("index", "--hnsw", "--json", home=home)
        assert built.returncode == 0, built.stderr
    out = search(home, "circuit breaker lets a probe request through after the cool-down", "--mode", mode, "--k", "3",
                 "--filter", "tags contains reliability", "--filter", "lang=en")
    assert out["mode"] == mode and out["filter"] == {"and": [["tags", "contains", "reliability"], ["lang", "=", "en"]]}
    assert [h["name"] for h in out["results"]] == ["papers.jsonl#p2"]  # the only chunk that passes both filters
    assert out["results"][0]["rank"] == 1 and "probe request" in out["results"][0]["text"]


def test_unfiltered_search_ranks_best_first(store):
    out = search(store[0], "circuit breaker probe request", "--mode", "bm25", "--k", "4")
    assert len(out["results"]) == 4 and out["filter"] is None
    assert out["results"][0]["name"] in ("papers.jsonl#p2", "reliability-circuit-breaker.md")
    scores = [h["score"] for h in out["results"]]
    assert scores == sorted(scores, reverse=True) and [h["rank"] for h in out["results"]] == [1, 2, 3, 4]


def test_search_prints_a_ranked_table(store):
    r = run_cli("search", "retry budget outage", "--mode", "bm25", "--k", "2", home=store[0], env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "2 results for 'retry budget outage' (bm25)" in r.stdout
    for col in ("score", "doc", "title / source", "text"):
        assert col in r.stdout
    assert "budget.html" in r.stdout and "Retry budgets" in r.stdout


@pytest.mark.parametrize("filters, want", [
    (["--filter", "tags contains reliability"], {"papers.jsonl#p2", "papers.jsonl#p3"}),
    (["--filter", "tags contains reliability", "--filter", "year>=2020"], {"papers.jsonl#p3"}),
    (["--filter", "year in 2019,2024"], {"papers.jsonl#p1", "papers.jsonl#p2"}),
    (["--filter", "lang not in de", "--filter-json", '{"not": {"tags": "hybrid"}}'], {"papers.jsonl#p2", "papers.jsonl#p4"}),
    (["--filter-json", '{"or": [["year", "<", 2020], {"lang": "de"}]}'], {"papers.jsonl#p2", "papers.jsonl#p3"}),
    (["--filter", 'tags contains "circuit breaker"'], {"papers.jsonl#p3"}),
    (["--filter", "tags contains \"'; DROP TABLE chunks; --\""], {"papers.jsonl#p4"}),
    (["--filter", "tags contains %"], {"papers.jsonl#p4"}),
    (["--filter", "tags contains a%"], set()),  # no LIKE wildcards
    (["--filter", "tags contains a_b"], {"papers.jsonl#p4"}),
    (["--filter", 'tags contains "\\\\"'], {"papers.jsonl#p4"}),  # a JSON-quoted backslash
    (["--filter", "\"we'ird/key~\" = \"x'y\""], {"papers.jsonl#p4"}),
    (["--filter", "title contains O'Brien"], {"papers.jsonl#p4"}),
    (["--filter", 'year="2022"'], set()),  # a quoted value is a string: types do not mix
    (["--filter", "doc_id contains .md"], {"reliability-circuit-breaker.md"}),
])
def test_search_filters(store, filters, want):
    "BM25 (no embedding model, so fast) over every document mentioning 'breaker', restricted by each filter."
    out = search(store[0], "breaker", "--mode", "bm25", "--k", "20", *filters)
    assert {h["name"] for h in out["results"]} == want


def test_injection_through_filters_changes_nothing(store):
    home, docs, report = store
    for expr in ["lang = \"') OR true; DROP TABLE chunks; --\"", "tags contains \"'); DELETE FROM chunks; --\"",
                 "lang=en'; DROP TABLE chunks; --"]:
        assert search(home, "breaker", "--mode", "bm25", "--k", "20", "--filter", expr)["results"] == []
    for expr in ["\"x' OR '1'='1\" = 1", "\"lang') OR (1=1\" != zzz"]:  # fields no chunk has: refused, named, before any SQL
        r = run_cli("search", "breaker", "--mode", "bm25", "--filter", expr, home=home)
        assert r.returncode == 4 and "is in no chunk's metadata" in r.stderr and "'lang'" in r.stderr, r.stderr
    again = run_cli("ingest", docs, "--json", home=home)
    assert again.returncode == 0, again.stderr
    after = json.loads(again.stdout)
    assert (after["store_chunks"], after["store_documents"], after["added"]) == (report["store_chunks"], 7, [])


@pytest.mark.parametrize("args, code, message", [
    (["search", "breaker", "--mode", "fuzzy"], 2, "invalid choice: 'fuzzy'"),
    (["search", "breaker", "--k", "0"], 2, "'0' is not a positive integer"),
    (["search", "breaker", "--k", "many"], 2, "'many' is not a positive integer"),
    (["ask", "What is a breaker?", "--mode", "semantic"], 2, "invalid choice: 'semantic'"),
    (["search", "breaker", "--filter", "year"], 4, "bad --filter 'year': no operator"),
    (["search", "breaker", "--filter", "year>="], 4, "a value is missing"),
    (["search", "breaker", "--filter", "year>=true"], 4, "booleans only compare"),
    (["search", "breaker", "--filter", "title contains 'open"], 4, "unterminated"),
    (["search", "breaker", "--filter-json", "{or: 1}"], 4, "bad --filter-json: not valid JSON"),
    (["search", "breaker", "--filter-json", '{"year": {"$gt": 1}}'], 4, "has type dict"),
    (["ask", "What is a breaker?", "--filter", "lang ~ en"], 4, "no operator"),
    (["search", "   "], 4, "the query is empty"),
])
def test_bad_input_is_one_clear_error(store, args, code, message):
    r = run_cli(*args, home=store[0])
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and message in r.stderr.splitlines()[0]
    assert len(r.stderr.splitlines()) <= 2 and r.stdout == ""  # the message, then at most a hint


def test_search_on_an_empty_store_says_to_ingest(home):
    r = run_cli("search", "breaker", home=home)
    assert r.returncode == 4 and "aiwb ingest" in r.stderr


def test_ask_with_mode_and_filters(store):
    r = run_cli("ask", "What does a circuit breaker let through after the cool-down?", "--mode", "hybrid",
                "--filter", "tags contains reliability", "--filter", "lang!=de", "--json", home=store[0])
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert [s["metadata"]["name"] for s in answer["sources"]] == ["papers.jsonl#p2"] and "probe" in answer["text"]


# --- The expression syntax, in-process ---------------------------------------------------------------------------

HOSTILE = ["", " ", "'", '"', "\\", ",", "a,b", "%", "_", "'; DROP TABLE chunks; --", "x' OR '1'='1", ">=", " in ", "not in",
           "contains", "true", "1", "~1", "/", "日本", "\u2028", "e\u0301"]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8))
SCALAR = st.one_of(TEXT, st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def comparison(draw):
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in", "not in", "contains"]))
    field = draw(st.one_of(st.sampled_from(HOSTILE[1:]), st.text(min_size=1, max_size=6)))
    if op in ("in", "not in"):
        value = draw(st.lists(SCALAR, min_size=1, max_size=3))
    else:
        value = draw(TEXT if op in ("<", "<=", ">", ">=") else SCALAR)
    return field, op, value


def spell(v, bare):
    "A value as a user may type it: JSON (strings quoted), or bare when that reads back the same."
    if bare and isinstance(v, str) and v.isidentifier() and v not in ("true", "false"):
        return v
    return json.dumps(v)


@settings(max_examples=400, deadline=None)
@given(c=comparison(), bare=st.booleans(), space=st.sampled_from(["", " ", "  "]))
def test_expressions_round_trip(c, bare, space):
    "Any field and value, JSON-quoted (or bare where that is unambiguous), parses back to the same comparison."
    field, op, value = c
    val = ", ".join(spell(v, bare) for v in value) if isinstance(value, list) else spell(value, bare)
    gap = space if op[0] in "=!<>" else space or " "
    expr = f"{field if bare and field.isidentifier() else json.dumps(field)}{gap}{op}{gap}{val}"
    assert filter_spec(parse_filter(expr)) == [field, op, value]
