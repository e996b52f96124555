"""The filter algebra: compiled SQL agrees with the Python reference on generated filters and rows — in a bare table
and through every search mode of a real store — including list fields and hostile keys and values; nothing injects."""
import json
import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiwb.core import InputError, connect, load_config
from aiwb.embeddings import EMBEDDING_DIM
from aiwb.data.filters import And, Cmp, F, Not, Or, as_filter, compile_filter, filter_spec, matches
from aiwb.data.search import MODES, build_indexes, hnsw_index, search

# Keys chosen to break naive quoting and path handling: quotes, JSON-pointer escapes (`~0`, `~1`, `/`),
# JSONPath syntax, SQL comments, LIKE wildcards, backslashes, control characters and unicode.
KEYS = st.one_of(st.sampled_from(["a", "b", "tags", "it's", 'q"uote', "x/y", "/", "~", "~t", "~0", "~1", "~01", "a/~b",
                                  "a.b", "$.a", "$[*]", "[0]", "*", "%", "_", "\\", "; DROP TABLE t; --", "é", "e\u0301",
                                  " ", "\x00", "🦆"]),
                 st.text(min_size=1, max_size=3))
# Values: a small pool so that generated filters and rows collide often, plus arbitrary text.
HOSTILE = st.sampled_from(["", "'", "''", '"', "\\", "\\'", "\\\\", "%", "_", "a%b_c", "' OR '1'='1", "'; DROP TABLE t; --",
                           "'); DELETE FROM chunks; --", "a\x00b", "NULL", "null", "true", "1", "1.0", "/a", "~0", "~1",
                           "$.a", "$[*]", "[1]", "{}", "日本", "🦆", "e\u0301", "\u00e9", "\u2028", "rag", "duckdb"])
TEXT = st.one_of(HOSTILE, st.text(max_size=6))
NUM = st.one_of(st.integers(-3, 3), st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False, width=64))
SCALAR = st.one_of(st.booleans(), NUM, TEXT)
NESTED = st.one_of(st.lists(SCALAR, max_size=2), st.dictionaries(st.sampled_from(["a", "rag"]), SCALAR, max_size=2))
ELEMENT = st.one_of(SCALAR, SCALAR, SCALAR, st.none(), NESTED)  # list elements: mostly scalars, sometimes null or nested
STORED = st.one_of(st.none(), SCALAR, SCALAR, st.lists(ELEMENT, max_size=4), NESTED)
OPS = ["=", "!=", "<", "<=", ">", ">=", "in", "not in", "contains"]


@st.composite
def leaf(draw):
    key, op = draw(KEYS), draw(st.sampled_from(OPS))
    if op in ("in", "not in"):
        return Cmp(key, op, draw(st.lists(SCALAR, max_size=3)))
    if op in ("=", "!=", "contains"):
        return Cmp(key, op, draw(SCALAR))
    return Cmp(key, op, draw(st.one_of(NUM, TEXT)))


FILTERS = st.recursive(leaf(), lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda xs: And(tuple(xs))),
    st.lists(inner, max_size=3).map(lambda xs: Or(tuple(xs))),
    inner.map(Not)), max_leaves=8)
METADATA = st.dictionaries(KEYS, STORED, max_size=5)
ROWS = st.lists(METADATA, min_size=1, max_size=8)


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE t (i INTEGER, metadata JSON)")
    yield c
    c.close()


def sql_matches(con, flt, rows):
    con.execute("DELETE FROM t")
    con.register("_rows", pa.table({"i": pa.array(range(len(rows)), pa.int32()), "metadata": [json.dumps(r) for r in rows]}))
    con.execute("INSERT INTO t SELECT i, metadata FROM _rows")
    con.unregister("_rows")
    sql, params = compile_filter(flt)
    return [i for (i,) in con.execute(f"SELECT i FROM t WHERE {sql} ORDER BY i", params).fetchall()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flt=FILTERS, rows=ROWS)
def test_sql_agrees_with_reference(con, flt, rows):
    assert sql_matches(con, flt, rows) == [i for i, r in enumerate(rows) if matches(flt, r)]


def twins(v):
    "Values of other JSON types that look like `v` (what a type-confused comparison would wrongly match)."
    if isinstance(v, bool): return ["true" if v else "false", int(v), float(v)]
    if isinstance(v, (int, float)): return [json.dumps(v), str(v), repr(float(v)), v == 1]
    try:
        number = float(v)  # "NAN" and "inf" parse too, but JSON has no such number: they have no number twin
        return [number] if v.strip() and math.isfinite(number) else []
    except ValueError:
        return [v.lower() == "true"] if v.lower() in ("true", "false") else []


def list_field_cases(key, value, others, rows) -> tuple[list[dict], list]:
    "Metadata with `value` planted in some lists of `key` (and look-alikes of other JSON types), and the filters to try."
    metas = [{key: xs + ([value] if i % 2 else [])} for i, xs in enumerate(rows)] + [{key: value}, {key: []}, {}]
    metas += [{key: [t]} for t in twins(value)] + [{key: t} for t in twins(value)]
    filters = [F(key).contains(value), F(key) == value, F(key) != value, F(key).isin([*others, value]), F(key).notin(others),
               F(key) < value if not isinstance(value, bool) else F(key) == value]
    return metas, filters


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS, value=SCALAR, others=st.lists(SCALAR, max_size=4), rows=st.lists(st.lists(SCALAR, max_size=4), min_size=1, max_size=6))
def test_list_fields_agree_with_reference(con, key, value, others, rows):
    "List membership, with the filter value planted in some of the lists, and look-alikes of other types in others."
    metas, filters = list_field_cases(key, value, others, rows)
    for flt in filters:
        want = [i for i, m in enumerate(metas) if matches(flt, m)]
        assert sql_matches(con, flt, metas) == want, flt
        assert all(matches(F(key).contains(value), m) for m in metas[1:len(rows):2])


@settings(max_examples=200, deadline=None)
@given(flt=FILTERS, rows=ROWS)
def test_filter_spec_round_trips_through_json(flt, rows):
    back = as_filter(json.loads(json.dumps(filter_spec(flt))))
    assert filter_spec(back) == filter_spec(flt)
    assert [matches(back, r) for r in rows] == [matches(flt, r) for r in rows]


@settings(max_examples=200, deadline=None)
@given(flt=FILTERS, marker=st.text(min_size=1, max_size=5).map(lambda t: "ZQ\u00a7" + t))
def test_values_and_keys_are_never_spliced(flt, marker):
    "A marker put in a key and in a value shows up among the parameters, never in the SQL text."
    sql, params = compile_filter(flt & (F(marker) == marker) & F("k").isin([marker]) & F(marker).contains(marker))
    assert "ZQ\u00a7" not in sql
    assert marker in params and "/" + marker.replace("~", "~0").replace("/", "~1") in params


def test_injection_through_filters_does_nothing(con):
    rows = [{"a": "x"}, {"it's": 1}, {"tags": ["x' OR '1'='1", "%", "'; DROP TABLE t; --"]},
            {"'; DROP TABLE t; --": ["a", 1]}]
    for flt in [F("a") == "x' OR '1'='1", F("'; DROP TABLE t; --") == 1, F("a").contains("%"), F("a").contains("_"),
                F("a) OR (1=1") != "zzz", F("a").isin(["x' --", "y"]), F("tags").contains("'; DROP TABLE t; --"),
                F("tags").contains("%"), F("tags").contains("x"), F("'; DROP TABLE t; --").contains(1),
                F("tags') OR true; --").contains("a"), F("tags").isin(["') OR true; --"])]:
        got = sql_matches(con, flt, rows)
        assert got == [i for i, r in enumerate(rows) if matches(flt, r)]
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 4  # the table is still there, with its rows
    assert sql_matches(con, F("it's") == 1, rows) == [1]
    assert sql_matches(con, F("tags").contains("'; DROP TABLE t; --"), rows) == [2]
    assert sql_matches(con, F("'; DROP TABLE t; --").contains(1), rows) == [3]


def test_semantics_of_missing_and_mixed_types():
    m = {"n": 3, "s": "3", "b": True, "z": None}
    assert matches(F("n") == 3.0, m) and not matches(F("n") == "3", m) and not matches(F("s") == 3, m)
    assert not matches(F("z") != 1, m) and not matches(F("missing").notin([1]), m)
    assert matches(~(F("missing") == 1), m) and not matches(F("b") == 1, m)


def test_semantics_of_list_fields():
    m = {"tags": ["duckdb", "rag", 2, True, None, ["nested"]], "title": "rag notes", "empty": [], "obj": {"rag": 1}}
    assert matches(F("tags").contains("rag"), m) and not matches(F("tags").contains("ra"), m)  # element, not substring
    assert matches(F("title").contains("ra"), m) and not matches(F("title").contains(1), m)  # substring of a string
    assert matches(F("tags").contains(2.0), m) and not matches(F("tags").contains("2"), m)  # numbers compare like =
    assert matches(F("tags").contains(True), m) and not matches(F("tags").contains(1), m)
    assert not matches(F("tags").contains("nested"), m) and not matches(F("obj").contains("rag"), m)  # no deep look
    assert matches(F("tags") == "rag", m) and not matches(F("tags") != "rag", m) and matches(F("tags") != "x", m)
    assert matches(F("tags").isin(["x", "duckdb"]), m) and not matches(F("tags").notin(["x", "duckdb"]), m)
    assert matches(F("tags") > 1, m) and not matches(F("tags") > 2, m) and matches(F("tags") >= "rag", m)
    assert matches(F("empty") != 1, m) and matches(F("empty").notin([1]), m) and not matches(F("empty") == 1, m)
    assert matches({"tags": ["x", "rag"]}, m)  # the dict form's list means IN: the lists overlap


@pytest.mark.parametrize("bad, msg", [(Cmp("x", "~", 1), "operator"), (F("x") == [1], "is a list"),
                                      (F("x") > {"a": 1}, "has type dict"), (F("x").contains(["a"]), "is a list"),
                                      (F("x").isin("abc"), "needs a list"), (Cmp("", "=", 1), "non-empty"),
                                      ({"and": {"a": 1}}, "needs a list"), (42, "cannot read"),
                                      (F("x") < True, "booleans only compare"), (F("x") < float("inf"), "finite")])
def test_bad_filters_name_the_problem(bad, msg):
    with pytest.raises(InputError, match=msg):
        as_filter(bad)


# --- The same agreement through every search mode of a real store -------------------------------------------------

N = 24


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "A store of N chunks with random unit vectors (no embedding model), every text matching the BM25 query, HNSW built."
    cfg = load_config(env={"AIWB_HOME": str(tmp_path_factory.mktemp("filters"))})
    c = connect(config=cfg)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, EMBEDDING_DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tbl = pa.table({"chunk_id": [f"c{i:03d}" for i in range(N)], "doc_id": [f"d{i}" for i in range(N)],
                    "position": pa.array([0] * N, pa.int32()), "text": [f"alpha chunk {i} word{i % 5}" for i in range(N)],
                    "n_tokens": pa.array([4] * N, pa.int32()), "metadata": ["{}"] * N,
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), EMBEDDING_DIM)})
    c.register("_t", tbl)
    c.execute(f"INSERT INTO chunks SELECT chunk_id, doc_id, position, text, n_tokens, metadata, embedding::FLOAT[{EMBEDDING_DIM}] FROM _t")
    c.unregister("_t")
    c.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', 'filters-test')")
    hnsw_index(c)
    yield c, x[0] + 0.1 * x[1]
    c.close()


@settings(max_examples=60, deadline=None)
@given(flt=FILTERS, metas=st.lists(METADATA, min_size=N, max_size=N))
def test_every_mode_returns_exactly_the_matching_chunks(store, flt, metas):
    "With k = all chunks, each mode returns the chunks `matches` accepts, no more and no fewer; hostile metadata changes nothing."
    con, q = store
    ids = [f"c{i:03d}" for i in range(N)]
    con.register("_m", pa.table({"chunk_id": ids, "metadata": [json.dumps(m) for m in metas]}))
    con.execute("UPDATE chunks SET metadata = _m.metadata FROM _m WHERE chunks.chunk_id = _m.chunk_id")
    con.unregister("_m")
    # chunks changed by hand, not by ingest: record a new corpus version and build what ingest would have built
    con.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', ?)", [str(hash(json.dumps(metas)))])
    build_indexes(con)
    want = {c for c, m in zip(ids, metas) if matches(flt, m)}
    for mode in MODES:  # fields that no row has are allowed here: they match nothing, as `matches` says
        hits = search(con, "alpha chunk", k=N, mode=mode, filters=flt, query_vector=q, check_fields=False)
        assert {h.chunk_id for h in hits} == want, mode
        assert all(matches(flt, h.metadata) for h in hits), mode
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True), mode
    assert con.execute("SELECT count(*), count(DISTINCT chunk_id) FROM chunks").fetchone() == (N, N)
