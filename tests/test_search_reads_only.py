"""Issue 9, query side: a search only reads (indexes are built by ingest or `aiwb index`), the vector sidecar is checked
byte for byte, k and filter nesting are bounded, and a filter that cannot match says so. No embedding model: the
chunks are written by hand with random unit vectors, and queries pass `query_vector`."""
import json
import warnings

import numpy as np
import pyarrow as pa
import pytest

from aiwb.data import bm25 as B, filters as Fl, search as S, vectors as V
from aiwb.core import InputError, StoreError, connect, load_config
from aiwb.embeddings import EMBEDDING_DIM
from aiwb.data.filters import F, MAX_FILTER_DEPTH, RetrievalWarning, as_filter
from aiwb.data.vectors import vector_index
from aiwb.data.search import MAX_K, MODES, build_indexes, search
from conftest import insert_chunks, run_cli


def fill(con, n=300, seed=0):
    "`n` chunks with random unit vectors, a year and a language; a recorded corpus version (what ingest would write)."
    return insert_chunks(con, n, seed, lambda i: {"year": 2018 + i % 5, "lang": "en" if i % 3 else "de", "tags": ["rag", f"t{i % 4}"]},
                         lambda i: f"d{i // 3}", lambda i: i % 3)


@pytest.fixture
def cfg(home):
    V._INDEX_CACHE.clear(); B._BM25_CACHE.clear()
    yield load_config(env={"AIWB_HOME": str(home)})
    V._INDEX_CACHE.clear(); B._BM25_CACHE.clear()


def snapshot(con) -> dict:
    "Every table of the database file with its row count and a hash of its rows, every index, and corpus_state."
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY ALL").fetchall()
    out = {f"{s}.{t}": con.execute(f'SELECT count(*), sum(hash(t)) FROM "{s}"."{t}" t').fetchone() for s, t in tables}
    out["indexes"] = con.execute("SELECT index_name FROM duckdb_indexes() ORDER BY ALL").fetchall()
    out["state"] = con.execute("SELECT * FROM corpus_state ORDER BY ALL").fetchall()
    return out


def every_mode(con, q):
    return {mode: [(h.chunk_id, round(h.score, 5), h.doc_id, h.text, h.metadata)
                   for h in search(con, "chunk number word3", k=5, mode=mode, query_vector=q)] for mode in MODES}


def test_search_writes_nothing_and_works_read_only(cfg):
    con = connect(config=cfg)
    x = fill(con)
    before = snapshot(con)
    for mode in ("bm25", "hybrid", "hnsw"):  # a missing index is a clear error, never built by the search
        with pytest.raises(StoreError, match="not built") as e:
            search(con, "chunk number", k=3, mode=mode, query_vector=x[3])
        assert "aiwb index" in e.value.hint
    assert snapshot(con) == before
    built = build_indexes(con, hnsw=True)
    assert built == {"fts": True, "hnsw": True, "vectors": True}
    assert build_indexes(con, hnsw=True) == {"fts": False, "hnsw": False, "vectors": True}  # up to date: nothing to do
    indexed = snapshot(con)
    first = every_mode(con, x[3])
    assert snapshot(con) == indexed  # no mode wrote a table, an index or a state row
    con.close()
    V._INDEX_CACHE.clear(); B._BM25_CACHE.clear()
    ro = connect(config=cfg, read_only=True)
    assert every_mode(ro, x[3]) == first  # the same answers from a read-only connection, every mode
    assert snapshot(ro) == indexed
    ro.close()


def test_rows_come_from_the_sidecar_and_match_duckdb(cfg):
    con = connect(config=cfg)
    x = fill(con, n=200)
    build_indexes(con)
    db = {c: (d, t, json.loads(m)) for c, d, t, m in con.execute("SELECT chunk_id, doc_id, text, metadata FROM chunks").fetchall()}
    for mode in ("vector", "ivf", "int8", "binary", "bm25", "hybrid"):
        hits = search(con, "chunk number word3", k=20, mode=mode, query_vector=x[7])
        assert len(hits) == 20
        assert all((h.doc_id, h.text, h.metadata) == db[h.chunk_id] for h in hits), mode
    con.close()


def test_a_row_overwritten_in_the_sidecar_is_caught_and_rebuilt(cfg):
    "Overwrite one vector that the 16-row spot check does not sample: the checksum catches it, the sidecar is rebuilt."
    con = connect(config=cfg)
    x = fill(con, n=3000)
    vi = vector_index(con)
    row = 2345
    sampled = set(np.unique(np.linspace(0, len(vi) - 1, 16).astype(np.int64)).tolist())
    assert row not in sampled
    f = vi.path / "matrix.npy"
    with open(f, "r+b") as fh:
        fh.seek(f.stat().st_size - (len(x) - row) * EMBEDDING_DIM * 4)
        fh.write(x[0].tobytes())  # chunk c02345 now looks exactly like chunk c00000
    V._INDEX_CACHE.clear()
    with pytest.warns(RetrievalWarning, match="checksum"):
        hits = search(con, "q", k=2, mode="vector", query_vector=x[0])
    assert hits[0].chunk_id == "c00000" and hits[1].chunk_id != "c02345"
    assert abs(hits[1].score - 1.0) > 0.05
    # the chunk rows (text shown to a user) are checked the same way
    rows = vector_index(con).path / "rows_text.bin"
    data = bytearray(rows.read_bytes())
    at = data.find(b"chunk number 2345 ")
    data[at:at + 6] = b"CHUNK!"
    rows.write_bytes(bytes(data))
    V._INDEX_CACHE.clear()
    with pytest.warns(RetrievalWarning, match="rows_text.bin does not match its checksum"):
        hit = search(con, "q", k=1, mode="vector", query_vector=x[2345])[0]
    assert hit.chunk_id == "c02345" and hit.text.startswith("chunk number 2345 ")
    con.close()


def test_ivf_cells_and_codes_are_checked_too(cfg):
    con = connect(config=cfg)
    x = fill(con, n=2000)
    vi = vector_index(con, ivf=True, nlist=20)
    vi.quantise("binary")
    path = vi.path
    for name in ("centroids.npy", "perm.npy"):
        f = path / name
        data = bytearray(f.read_bytes()); data[-3] ^= 0xFF; f.write_bytes(bytes(data))
        V._INDEX_CACHE.clear()
        with pytest.warns(RetrievalWarning, match=f"{name} does not match its checksum"):
            vi = vector_index(con, ivf=True, nlist=20)
        path = vi.path
        vi.quantise("binary")
    codes = path / "binary.npy"
    data = bytearray(codes.read_bytes()); data[-8:] = bytes(8); codes.write_bytes(bytes(data))  # a damaged code file
    V._INDEX_CACHE.clear()
    vi = vector_index(con)
    assert V._checksum_ok(codes) is False
    hits = search(con, "q", k=1, mode="binary", query_vector=x[1999])
    assert hits[0].chunk_id == "c01999" and V._checksum_ok(codes)  # made again from the matrix, not read as is
    con.close()


def test_k_is_bounded_in_every_mode(cfg):
    con = connect(config=cfg)
    x = fill(con, n=50)
    build_indexes(con, hnsw=True)
    for mode in MODES:
        with pytest.raises(InputError, match="MAX_K = 1,000"):
            search(con, "chunk", k=10 ** 8, mode=mode, query_vector=x[0])
    assert len(search(con, "chunk", k=MAX_K, mode="ivf", query_vector=x[0])) == 50
    with pytest.raises(InputError, match="HybridParams.depth"):
        search(con, "chunk", k=3, mode="hybrid", query_vector=x[0], hybrid=S.HybridParams(depth=10 ** 7))
    con.close()


def test_filter_nesting_is_bounded():
    deep = F("year") == 2020
    for _ in range(1000): deep = ~deep
    with pytest.raises(InputError, match="MAX_FILTER_DEPTH"):
        as_filter(deep)
    spec = ["year", "=", 2020]
    for _ in range(1000): spec = {"not": spec}
    with pytest.raises(InputError, match="MAX_FILTER_DEPTH"):
        as_filter(spec)
    ok = ["year", "=", 2020]
    for _ in range(MAX_FILTER_DEPTH): ok = {"not": ok}
    assert as_filter(ok) is not None


def test_unknown_fields_are_errors_and_type_mismatches_warn(cfg):
    con = connect(config=cfg)
    x = fill(con, n=60)
    build_indexes(con)
    for mode in ("vector", "bm25"):
        with pytest.raises(InputError, match="did you mean 'year'") as e:
            search(con, "chunk", k=3, mode=mode, filters=F("yaer") >= 2020, query_vector=x[0])
        assert "'lang', 'tags', 'year'" in e.value.hint
    with pytest.warns(RetrievalWarning, match="holds numbers, the value is a string"):
        assert search(con, "chunk", k=3, filters=F("year") >= "twenty", query_vector=x[0]) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fields and kinds that exist: no warning
        assert len(search(con, "chunk", k=3, filters=(F("year") >= 2020) & (F("tags") == "rag"), query_vector=x[0])) == 3
    assert search(con, "chunk", k=3, filters=F("yaer") >= 2020, query_vector=x[0], check_fields=False) == []
    con.close()


@pytest.fixture
def cli_store(home, cfg):
    "A store in this test's AIWB_HOME written by hand: no fts or HNSW index yet."
    con = connect(config=cfg)
    fill(con, n=60)
    con.close()
    return home


def _one_error(r, code):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: "), r.stderr
    return r.stderr


def test_cli_index_command_and_missing_index_errors(cli_store):
    err = _one_error(run_cli("search", "chunk number", "--mode", "bm25", home=cli_store), 5)
    assert "BM25 (fts) index of this store is not built" in err and "run `aiwb index`" in err
    r = run_cli("index", home=cli_store)
    assert r.returncode == 0 and "fts (bm25) index: built" in r.stdout, r.stderr
    r = run_cli("search", "chunk number word3", "--mode", "bm25", "--json", home=cli_store)
    assert r.returncode == 0 and len(json.loads(r.stdout)["results"]) == 5, r.stderr
    r = run_cli("index", "--json", home=cli_store)
    assert json.loads(r.stdout) == {"fts": False, "hnsw": False, "vectors": True}


def test_cli_bounds_and_filter_errors(cli_store):
    run_cli("index", home=cli_store)
    err = _one_error(run_cli("search", "chunk", "--mode", "bm25", "--k", str(10 ** 8), home=cli_store), 4)
    assert "MAX_K" in err
    for depth in (100, 1000):  # json reads 100 levels (the filter check refuses them); 1,000 stop json itself
        nested = '{"not": ' * depth + '["year", "=", 2020]' + "}" * depth
        err = _one_error(run_cli("search", "chunk", "--mode", "bm25", "--filter-json", nested, home=cli_store), 4)
        assert "MAX_FILTER_DEPTH = 32" in err
    err = _one_error(run_cli("search", "chunk", "--mode", "bm25", "--filter", "yaer>=2020", home=cli_store), 4)
    assert "'yaer' is in no chunk's metadata (did you mean 'year'?)" in err and "'lang', 'tags', 'year'" in err
    err = _one_error(run_cli("search", "chunk", "--mode", "bm25", "--filter", "year=>2020", home=cli_store), 4)
    assert "unknown operator '=>'" in err and "did you mean '>='" in err
    r = run_cli("search", "chunk", "--mode", "bm25", "--filter", "year>=twenty", home=cli_store)
    assert r.returncode == 0 and r.stderr.startswith("warning: filter year >= 'twenty'") and "Traceback" not in r.stderr, r.stderr


def test_a_stamped_file_is_still_caught_when_written(cfg):
    "A file that passed in full is stamped (not read again while unchanged); any write changes its ctime and is caught."
    import time
    con = connect(config=cfg)
    fill(con, n=500)
    f = vector_index(con).path / "matrix.npy"
    time.sleep(0.1)  # past the clock tick the file was written in
    assert V._checksum_ok(f) and (f.parent / "matrix.npy.ok").exists()
    assert V._checksum_ok(f)  # from the stamp
    with open(f, "r+b") as fh:
        fh.seek(f.stat().st_size - 1000)
        fh.write(b"\x01\x02\x03\x04")
    assert not V._checksum_ok(f)
    con.close()
