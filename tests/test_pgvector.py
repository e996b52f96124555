"""pgvector store on a real PostgreSQL started here (initdb + pg_ctl, 127.0.0.1, a free port): the compiled JSONB filters
agree with `aiwb.data.filters.matches` on the same adversarial generators as the DuckDB compiler, nothing injects, and
search returns the same top-k as DuckDB's exact vector search on the bundled corpus, with and without filters.

Needs the PostgreSQL server binaries and pgvector (`make pgvector`). Without them these tests FAIL with the reason;
set AIWB_SKIP_PG=1 to skip them on purpose."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiwb.core import DependencyError, InputError, StoreError, connect, load_config
from aiwb.embeddings import embed
from aiwb.data.filters import And, Cmp, F, Not, Or, matches
from aiwb.data.vectors import CHUNK_METADATA
from aiwb.data.search import search
from test_retrieval_filters import FILTERS, KEYS, ROWS, SCALAR, STORED, list_field_cases  # the generators used for DuckDB

ROOT = Path(__file__).resolve().parents[1]
SKIP = os.environ.get("AIWB_SKIP_PG") == "1"


def _strip_nul(v):
    "PostgreSQL text and JSONB cannot hold U+0000: stored metadata is generated without it (filters keep it)."
    if isinstance(v, str): return v.replace("\x00", "")
    if isinstance(v, list): return [_strip_nul(x) for x in v]
    if isinstance(v, dict): return {_strip_nul(k): _strip_nul(x) for k, x in v.items()}
    return v


STORED_ROWS = ROWS.map(lambda rows: [_strip_nul(r) for r in rows])


def _fields(flt):
    if isinstance(flt, (And, Or)): return [f for i in flt.items for f in _fields(i)]
    if isinstance(flt, Not): return _fields(flt.item)
    return [flt.field]


@st.composite
def filter_and_rows(draw):
    "A filter, and rows whose keys are mostly the filter's own fields, so that most comparisons meet a stored value."
    flt = draw(FILTERS)
    keys = st.one_of(st.sampled_from(_fields(flt)), KEYS) if _fields(flt) else KEYS
    near = [v for f in [flt] for v in _values(f)]
    stored = st.one_of(STORED, st.sampled_from(near), st.lists(st.sampled_from(near), max_size=3)) if near else STORED
    rows = draw(st.lists(st.dictionaries(keys, stored, max_size=5), min_size=1, max_size=8))
    return flt, [_strip_nul(r) for r in rows]


def _values(flt):
    "The scalar values in a filter (stored values equal to them, or a list holding them, test the edges)."
    if isinstance(flt, (And, Or)): return [v for i in flt.items for v in _values(i)]
    if isinstance(flt, Not): return _values(flt.item)
    return list(flt.value) if isinstance(flt.value, list) else [flt.value]


@pytest.fixture(scope="session")
def pg_dsn():
    "A real PostgreSQL with pgvector for this test session, stopped and deleted at the end."
    if SKIP:
        pytest.skip("AIWB_SKIP_PG=1: PostgreSQL tests skipped on purpose")
    from aiwb.data.pgvector import pg_missing, temporary_postgres
    why = pg_missing()
    if why:
        pytest.fail(f"{why}: install PostgreSQL 15 and run `make pgvector`, or set AIWB_SKIP_PG=1 to skip the pgvector tests",
                    pytrace=False)
    import psycopg
    with temporary_postgres() as dsn:
        with psycopg.connect(dsn, autocommit=True) as c:
            try:
                c.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as e:
                pytest.fail(f"pgvector is not installed for this PostgreSQL ({e}): run `make pgvector`, "
                            "or set AIWB_SKIP_PG=1 to skip the pgvector tests", pytrace=False)
        yield dsn


@pytest.fixture(scope="module")
def pg(pg_dsn):
    import psycopg
    c = psycopg.connect(pg_dsn, autocommit=True)
    c.execute("CREATE TABLE t (i integer, metadata jsonb)")
    yield c
    c.execute("DROP TABLE t")
    c.close()


def sql_matches(pg, flt, rows):
    from aiwb.data.pgvector import compile_pg_filter
    with pg.transaction():
        pg.execute("DELETE FROM t")
        with pg.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s::jsonb)", [(i, json.dumps(r)) for i, r in enumerate(rows)])
    sql, params = compile_pg_filter(flt)
    assert sql.count("%s") == len(params)
    return [i for (i,) in pg.execute(f"SELECT i FROM t WHERE {sql} ORDER BY i", params).fetchall()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flt=FILTERS, rows=STORED_ROWS)
def test_sql_agrees_with_reference(pg, flt, rows):
    assert sql_matches(pg, flt, rows) == [i for i, r in enumerate(rows) if matches(flt, r)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=filter_and_rows())
def test_sql_agrees_with_reference_on_colliding_rows(pg, case):
    "The same, with rows built around the filter's fields and values (nulls, look-alike types, lists of them)."
    flt, rows = case
    assert sql_matches(pg, flt, rows) == [i for i, r in enumerate(rows) if matches(flt, r)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS, value=SCALAR, others=st.lists(SCALAR, max_size=4), rows=st.lists(st.lists(SCALAR, max_size=4), min_size=1, max_size=6))
def test_list_fields_agree_with_reference(pg, key, value, others, rows):
    "List membership, with the filter value planted in some lists and look-alikes of other JSON types in others."
    metas, filters = list_field_cases(key, value, others, rows)
    metas = [_strip_nul(m) for m in metas]
    for flt in filters:
        assert sql_matches(pg, flt, metas) == [i for i, m in enumerate(metas) if matches(flt, m)], flt


def test_strings_with_nul_in_filters(pg):
    "A filter value or key with U+0000 is decided without binding it (PostgreSQL text cannot hold it), as `matches` decides."
    rows = [{"s": "a"}, {"s": "a\x01"}, {"s": "b"}, {"s": ""}, {"s": ["a", "c"]}, {}]
    for flt in [F("s") < "a\x00b", F("s") <= "a\x00", F("s") > "a\x00", F("s") >= "\x00", F("s") == "a\x00",
                F("s") != "a\x00", F("s").contains("\x00"), F("s").isin(["a\x00", "b"]), F("s").notin(["\x00"]),
                F("s\x00") != 1, ~(F("s\x00") == "a")]:
        assert sql_matches(pg, flt, rows) == [i for i, r in enumerate(rows) if matches(flt, r)], flt


@settings(max_examples=200, deadline=None)
@given(flt=FILTERS, marker=st.text(min_size=1, max_size=5).map(lambda t: "ZQ\u00a7" + t))
def test_values_and_keys_are_never_spliced(flt, marker):
    "A marker put in a key and in a value shows up among the parameters, never in the SQL text."
    from aiwb.data.pgvector import compile_pg_filter
    sql, params = compile_pg_filter(flt & (F(marker) == marker) & F("k").isin([marker]) & F(marker).contains(marker))
    assert "ZQ\u00a7" not in sql and sql.count("%s") == len(params)
    if "\x00" not in marker:  # a value with U+0000 is decided by the compiler, not bound (PostgreSQL text cannot hold it)
        assert marker in params


def test_injection_through_filters_does_nothing(pg):
    rows = [{"a": "x"}, {"it's": 1}, {"tags": ["x' OR '1'='1", "%", "'; DROP TABLE t; --"]},
            {"'; DROP TABLE t; --": ["a", 1]}, {"a": "%s"}, {"a') OR true; --": "%(x)s"}]
    for flt in [F("a") == "x' OR '1'='1", F("'; DROP TABLE t; --") == 1, F("a").contains("%"), F("a").contains("%s"),
                F("a) OR (1=1") != "zzz", F("a").isin(["x' --", "y"]), F("tags").contains("'; DROP TABLE t; --"),
                F("tags").contains("%"), F("tags").contains("x"), F("'; DROP TABLE t; --").contains(1),
                F("tags') OR true; --").contains("a"), F("tags").isin(["') OR true; --"]), F("%s") == "%s",
                F("a') OR true; --") == "%(x)s", F("metadata") != "x", F("a'::jsonb) OR (true") == 1]:
        got = sql_matches(pg, flt, rows)
        assert got == [i for i, r in enumerate(rows) if matches(flt, r)], flt
    assert pg.execute("SELECT count(*) FROM t").fetchone()[0] == len(rows)  # the table is still there, with its rows
    assert sql_matches(pg, F("it's") == 1, rows) == [1]
    assert sql_matches(pg, F("tags").contains("'; DROP TABLE t; --"), rows) == [2]
    assert sql_matches(pg, F("'; DROP TABLE t; --").contains(1), rows) == [3]
    assert sql_matches(pg, F("a") == "%s", rows) == [4]


# --- The store: the bundled corpus, synchronised from DuckDB -------------------------------------------------------

QUERIES = ["how is a vector index built?", "what does BM25 score?", "how do I gate a deploy on evals?",
           "chunk size and overlap", "retry with backoff when the provider fails"]
FILTERS_CORPUS = [None, F("title").contains("DuckDB"), F("doc_id").isin(["data-bm25.md", "evals-golden-sets.md"]),
                  (F("position") >= 1) & ~F("doc_id").contains("data"), F("position") == 0, F("doc_id") == "no-such-doc"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, pg_dsn):
    "The bundled corpus ingested into DuckDB (the store of record) and synchronised to PostgreSQL."
    from aiwb.data.pgvector import PgVectorStore
    from aiwb.data.store import ingest
    cfg = load_config(env={"AIWB_HOME": str(tmp_path_factory.mktemp("pgcorpus"))})
    db = connect(config=cfg)
    ingest(db, ROOT / "data" / "corpus", config=cfg)
    store = PgVectorStore(pg_dsn, table="corpus_chunks")
    report = store.sync_from(db)
    yield db, store, report
    store.close()
    db.close()


def test_sync_copies_every_chunk_once(corpus):
    db, store, report = corpus
    n = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert report["copied"] == n == len(store) and not report["skipped"]
    again = store.sync_from(db)
    assert again["skipped"] and again["copied"] == 0 and len(store) == n and store.version() == report["version"]
    forced = store.sync_from(db, force=True)  # idempotent by chunk_id: copying again changes nothing
    assert forced["copied"] == n and forced["deleted"] == 0 and len(store) == n
    cols = store.con.execute("SELECT chunk_id, doc_id, text, metadata FROM corpus_chunks ORDER BY chunk_id").fetchall()
    want = db.execute(f"SELECT c.chunk_id, c.doc_id, c.text, {CHUNK_METADATA} FROM chunks c LEFT JOIN documents d USING (doc_id) "
                      "ORDER BY chunk_id").fetchall()  # a chunk's metadata: its document's, stored once, plus its position
    assert [(a, b, c, m) for a, b, c, m in cols] == [(a, b, c, json.loads(m)) for a, b, c, m in want]
    idx = store.con.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'corpus_chunks'").fetchall()
    assert any("hnsw" in d and "vector_cosine_ops" in d for (d,) in idx)


@pytest.mark.parametrize("exact", [True, False])
def test_search_agrees_with_duckdb_exact_vector_search(corpus, exact):
    db, store, _ = corpus
    vecs = embed(QUERIES)
    for q, v in zip(QUERIES, vecs):
        for flt in FILTERS_CORPUS:
            for k in (1, 5, 10):
                want = search(db, q, k=k, mode="vector", filters=flt, query_vector=v)
                got = store.search(q, k=k, filters=flt, query_vector=v, exact=exact)
                assert [s.chunk_id for s in got] == [s.chunk_id for s in want], (q, flt, k)
                for a, b in zip(got, want):
                    assert (a.doc_id, a.text, a.metadata) == (b.doc_id, b.text, b.metadata)
                    assert abs(a.score - b.score) < 1e-5
                assert all(matches(flt, s.metadata) for s in got) if flt is not None else True


def test_search_embeds_the_question(corpus):
    db, store, _ = corpus
    q = QUERIES[0]
    assert [s.chunk_id for s in store.search(q, k=4)] == [s.chunk_id for s in search(db, q, k=4)]


def test_bad_input_is_refused(corpus):
    _, store, _ = corpus
    with pytest.raises(InputError, match="empty"): store.search("  ")
    with pytest.raises(InputError, match="positive"): store.search("q", k=0)
    with pytest.raises(InputError, match="384 finite"): store.search("q", query_vector=[1.0, 2.0])
    with pytest.raises(InputError, match="booleans"): store.search("q", filters=F("a") < True)
    assert len(store.search("q", query_vector=np.ones(384), k=3)) == 3


def test_k_and_filter_fields_are_checked_as_in_duckdb(corpus):
    "Issue 9: k is bounded by MAX_K, and a field no chunk has is an InputError naming the fields (kept by sync_from)."
    from aiwb.data.filters import RetrievalWarning
    _, store, _ = corpus
    with pytest.raises(InputError, match="MAX_K"): store.search("q", k=10 ** 8, query_vector=np.ones(384))
    with pytest.raises(InputError, match="did you mean 'title'") as e:
        store.search("q", filters=F("titel").contains("DuckDB"), query_vector=np.ones(384))
    assert "'doc_id'" in e.value.hint
    with pytest.warns(RetrievalWarning, match="holds numbers"):
        assert store.search("q", filters=F("position") >= "one", query_vector=np.ones(384)) == []
    assert store.search("q", filters=F("titel") == "x", query_vector=np.ones(384), check_fields=False) == []


def test_a_failed_sync_changes_nothing_and_a_removal_is_synced(pg_dsn, tmp_path):
    "One transaction: a chunk PostgreSQL cannot store aborts the whole sync; a document removed in DuckDB is deleted."
    from aiwb.data.pgvector import PgVectorStore
    from aiwb.data.store import ingest
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ["data-bm25.md", "data-duckdb.md", "evals-grounding.md"]:
        (docs / name).write_text((ROOT / "data" / "corpus" / name).read_text())
    db = connect(config=cfg)
    ingest(db, docs, config=cfg)
    with PgVectorStore(pg_dsn, table="sync_test") as store:
        first = store.sync_from(db)
        n = len(store)
        db.execute("UPDATE chunks SET text = text || chr(0) WHERE chunk_id = (SELECT min(chunk_id) FROM chunks)")
        db.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', 'with-nul')")
        with pytest.raises(StoreError, match="U\\+0000"):
            store.sync_from(db)
        assert len(store) == n and store.version() == first["version"]  # nothing changed
        (docs / "data-duckdb.md").unlink()
        db.execute("UPDATE chunks SET text = replace(text, chr(0), '')")
        ingest(db, docs, config=cfg)
        r = store.sync_from(db)
        left = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        assert r["deleted"] > 0 and len(store) == left < n
        assert store.con.execute("SELECT count(*) FROM sync_test WHERE doc_id = 'data-duckdb.md'").fetchone()[0] == 0
    db.close()


def test_unreachable_server_is_a_store_error():
    from aiwb.data.pgvector import PgVectorStore
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    with pytest.raises(StoreError, match="cannot connect"):
        PgVectorStore(f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2")


def test_driver_is_imported_lazily_and_its_absence_is_explained():
    code = ("import sys, aiwb, aiwb.data.pgvector, aiwb.data.search; assert 'psycopg' not in sys.modules\n"
            "sys.modules['psycopg'] = None\n"
            "from aiwb.core import DependencyError\n"
            "try:\n    aiwb.data.pgvector.PgVectorStore('host=127.0.0.1')\n"
            "except DependencyError as e:\n    assert 'psycopg' in str(e) and 'aiwb[pgvector]' in e.hint; print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
