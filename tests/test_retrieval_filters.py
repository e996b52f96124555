"""The filter algebra: compiled SQL agrees with the Python reference on generated filters and rows; nothing injects."""
import json

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiwb.core import InputError
from aiwb.retrieval import And, Cmp, F, Not, Or, as_filter, compile_filter, matches

# Keys and strings chosen to break naive quoting: quotes, JSON-pointer and JSONPath syntax, SQL comments, unicode.
KEYS = ["a", "b", "it's", 'q"uote', "x/y", "~t", "a.b", "$.a", "[0]", "; DROP TABLE t; --", "é", " "]
HOSTILE = st.sampled_from(["", "'", "''", '"', "\\", "%", "_", "' OR '1'='1", "'; DROP TABLE t; --", "a\x00b",
                           "NULL", "true", "1", "/a", "~0", "$.a", "日本", "e\u0301"])
TEXT = st.one_of(HOSTILE, st.text(max_size=6))
NUM = st.one_of(st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False, width=64))
SCALAR = st.one_of(st.booleans(), NUM, TEXT)
STORED = st.one_of(st.none(), SCALAR, st.lists(SCALAR, max_size=2))


@st.composite
def leaf(draw):
    key, op = draw(st.sampled_from(KEYS)), draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in", "not in", "contains"]))
    if op in ("in", "not in"):
        return Cmp(key, op, draw(st.lists(SCALAR, max_size=3)))
    if op == "contains":
        return Cmp(key, op, draw(TEXT))
    if op in ("=", "!="):
        return Cmp(key, op, draw(SCALAR))
    return Cmp(key, op, draw(st.one_of(NUM, TEXT)))


FILTERS = st.recursive(leaf(), lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda xs: And(tuple(xs))),
    st.lists(inner, max_size=3).map(lambda xs: Or(tuple(xs))),
    inner.map(Not)), max_leaves=8)
ROWS = st.lists(st.dictionaries(st.sampled_from(KEYS), STORED, max_size=5), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE t (i INTEGER, metadata JSON)")
    yield c
    c.close()


def sql_matches(con, flt, rows):
    con.execute("DELETE FROM t")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[i, json.dumps(r)] for i, r in enumerate(rows)])
    sql, params = compile_filter(flt)
    return [i for (i,) in con.execute(f"SELECT i FROM t WHERE {sql} ORDER BY i", params).fetchall()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flt=FILTERS, rows=ROWS)
def test_sql_agrees_with_reference(con, flt, rows):
    assert sql_matches(con, flt, rows) == [i for i, r in enumerate(rows) if matches(flt, r)]


@settings(max_examples=200, deadline=None)
@given(flt=FILTERS, marker=st.text(min_size=1, max_size=5).map(lambda t: "ZQ\u00a7" + t))
def test_values_and_keys_are_never_spliced(flt, marker):
    "A marker put in a key and in a value shows up among the parameters, never in the SQL text."
    sql, params = compile_filter(flt & (F(marker) == marker) & F("k").isin([marker]))
    assert "ZQ\u00a7" not in sql
    assert marker in params and "/" + marker.replace("~", "~0").replace("/", "~1") in params


def test_injection_through_filters_does_nothing(con):
    rows = [{"a": "x"}, {"it's": 1}]
    for flt in [F("a") == "x' OR '1'='1", F("'; DROP TABLE t; --") == 1, F("a").contains("%"),
                F("a) OR (1=1") != "zzz", F("a").isin(["x' --", "y"])]:
        got = sql_matches(con, flt, rows)
        assert got == [i for i, r in enumerate(rows) if matches(flt, r)]
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 2  # the table is still there
    assert sql_matches(con, F("it's") == 1, rows) == [1]


def test_semantics_of_missing_and_mixed_types():
    m = {"n": 3, "s": "3", "b": True, "z": None}
    assert matches(F("n") == 3.0, m) and not matches(F("n") == "3", m) and not matches(F("s") == 3, m)
    assert not matches(F("z") != 1, m) and not matches(F("missing").notin([1]), m)
    assert matches(~(F("missing") == 1), m) and not matches(F("b") == 1, m)


@pytest.mark.parametrize("bad, msg", [(Cmp("x", "~", 1), "operator"), (F("x") == [1], "has type list"),
                                      (F("x").isin("abc"), "needs a list"), (Cmp("", "=", 1), "non-empty"),
                                      ({"and": {"a": 1}}, "needs a list"), (42, "cannot read"),
                                      (F("x").contains(3), "contains needs a string"), (F("x") < float("inf"), "finite")])
def test_bad_filters_name_the_problem(bad, msg):
    with pytest.raises(InputError, match=msg):
        as_filter(bad)
