"""The vector query path: the memory-mapped sidecar (written once per corpus version, reopened, pruned, rebuilt when
damaged), IVF persistence, quantised modes with exact rescoring, and filter pushdown into them."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aiwb.core import connect, load_config
from aiwb.embeddings import EMBEDDING_DIM
from aiwb.data import bm25 as B, filters as Fl, search as S, vectors as V
from aiwb.data.filters import F
from aiwb.data.vectors import VectorIndex, vector_index
from aiwb.data.search import search

ROOT = Path(__file__).resolve().parents[1]


def clustered(n, seed=0, clusters=40):
    "`n` unit vectors around the same `clusters` centres (a fixed draw); `seed` picks the points."
    c = np.random.default_rng(12345).normal(size=(clusters, EMBEDDING_DIM)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    x = c[rng.integers(0, clusters, n)] + rng.normal(size=(n, EMBEDDING_DIM)).astype(np.float32) / EMBEDDING_DIM ** 0.5
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(con, x, version="v1", scale=1.0):
    "Replace the chunks with rows of `x` (times `scale`: stored vectors need not be unit length)."
    n = len(x)
    con.execute("DELETE FROM chunks")
    tbl = pa.table({"chunk_id": [f"c{i:05d}" for i in range(n)], "doc_id": [f"d{i % 7}" for i in range(n)],
                    "position": pa.array([0] * n, pa.int32()), "text": [f"text {i}" for i in range(n)],
                    "n_tokens": pa.array([2] * n, pa.int32()),
                    "metadata": [json.dumps({"i": i, "parity": "even" if i % 2 == 0 else "odd"}) for i in range(n)],
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array((x * scale).reshape(-1)), EMBEDDING_DIM)})
    con.register("_t", tbl)
    con.execute(f"INSERT INTO chunks SELECT chunk_id, doc_id, position, text, n_tokens, metadata, embedding::FLOAT[{EMBEDDING_DIM}] FROM _t")
    con.unregister("_t")
    if version is not None:
        con.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', ?)", [version])


@pytest.fixture
def con(tmp_path):
    V._INDEX_CACHE.clear()
    c = connect(config=load_config(env={"AIWB_HOME": str(tmp_path)}))
    yield c
    c.close()
    V._INDEX_CACHE.clear()


def root_of(con):
    return Path(V.db_key(con) + ".vectors")


def test_sidecar_written_once_and_mapped(con):
    x = clustered(500)
    fill(con, x, scale=3.0)  # not unit length in the store: the sidecar holds them normalised
    vi = vector_index(con)
    assert vi.path.parent == root_of(con) and vi.path.name.endswith("-flat")
    assert isinstance(vi.matrix.base, np.memmap) and isinstance(vi.ids.base, np.memmap)
    np.testing.assert_allclose(np.linalg.norm(vi.matrix, axis=1), 1, atol=1e-5)
    order = np.argsort(vi.ids)
    np.testing.assert_allclose(vi.matrix[order], x, atol=1e-6)
    mtime = (vi.path / "matrix.npy").stat().st_mtime_ns
    V._INDEX_CACHE.clear()
    vi2 = vector_index(con)  # a new process's view: maps the same file, does not rewrite it
    assert vi2 is not vi and vi2.path == vi.path and (vi2.path / "matrix.npy").stat().st_mtime_ns == mtime
    assert vector_index(con) is vi2


def test_sidecar_served_to_another_process(con, tmp_path):
    x = clustered(300)
    fill(con, x)
    vi = vector_index(con)
    pos, _ = vi.search(x[:5], k=1)
    expect = [str(vi.ids[p]) for p in pos[:, 0]]
    con.close()
    code = ("import sys, json, numpy as np\nfrom aiwb.core import connect, load_config\nfrom aiwb.data.vectors import vector_index\n"
            "con = connect(config=load_config(env={'AIWB_HOME': sys.argv[1]}), read_only=True)\n"
            "vi = vector_index(con)\nx = np.load(sys.argv[2])\n"
            "print(json.dumps([str(vi.path), [str(vi.ids[p]) for p in vi.search(x, k=1)[0][:, 0]]]))")
    np.save(tmp_path / "x.npy", x[:5])
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "x.npy")],
                         capture_output=True, text=True, check=True).stdout
    path, got = json.loads(out.strip().splitlines()[-1])
    assert path == str(vi.path) and got == expect == ["c00000", "c00001", "c00002", "c00003", "c00004"]


def test_new_version_replaces_sidecar(con):
    fill(con, clustered(200), "v1")
    old = vector_index(con)
    fill(con, clustered(120, seed=1), "v2")
    new = vector_index(con)
    assert len(new) == 120 and new.path != old.path
    assert [p.name for p in root_of(con).iterdir()] == [new.path.name]
    assert len(old) == 200 and np.isfinite(old.matrix).all()  # an index still in use keeps its mapping


def test_damaged_sidecar_is_rebuilt(con):
    x = clustered(200)
    fill(con, x)
    vi = vector_index(con)
    np.save(vi.path / "matrix.npy", np.zeros((3, EMBEDDING_DIM), np.float32))  # wrong shape
    V._INDEX_CACHE.clear()
    vi2 = vector_index(con)
    assert len(vi2) == 200 and vi2.ids[vi2.search(x[7], k=1)[0][0]] == "c00007"
    (vi2.path / "meta.json").write_text("{not json")
    V._INDEX_CACHE.clear()
    vi3 = vector_index(con)
    assert len(vi3) == 200 and json.loads((vi3.path / "meta.json").read_text())["n"] == 200


def test_sidecar_of_other_vectors_is_not_used(con):
    "A store re-created from the same documents but other vectors has the same corpus version: the spot check catches it."
    fill(con, clustered(300), "same")
    old = vector_index(con)
    V._INDEX_CACHE.clear()
    y = clustered(300, seed=9)
    fill(con, y, "same")
    vi = vector_index(con)
    assert vi.path == old.path  # same version, same place: rewritten
    assert vi.ids[vi.search(y[42], k=1)[0][0]] == "c00042"
    np.testing.assert_allclose(vi.matrix[np.argsort(vi.ids)], y, atol=1e-6)


def test_no_sidecar_without_a_recorded_version_or_a_file(con, tmp_path):
    fill(con, clustered(50), version=None)
    vi = vector_index(con)
    assert vi.path is None and not root_of(con).exists()
    mem = connect(":memory:", config=load_config(env={"AIWB_HOME": str(tmp_path / "m")}))
    fill(mem, clustered(50))
    assert vector_index(mem).path is None and len(vector_index(mem)) == 50
    mem.close()


def test_empty_store(con):
    con.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', 'empty')")
    vi = vector_index(con)
    assert len(vi) == 0 and vi.path is None
    assert search(con, "q", k=3, mode="binary", query_vector=np.ones(EMBEDDING_DIM, np.float32)) == []


def test_scan_does_not_keep_duckdb_buffers(con, monkeypatch):
    fill(con, clustered(20_000))  # 30 MB of embeddings
    con.execute("CHECKPOINT")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    monkeypatch.setattr(V, "SCAN_MEMORY_LIMIT", "8MB")
    before = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]  # what the insert left
    vector_index(con)
    held = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]
    assert held < before + 16e6, (before, held)  # the scan of 30 MB of embeddings adds no more than the cap's slack
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == limit
    con.execute("SELECT sum(list_sum(embedding::FLOAT[])) FROM chunks").fetchall()  # the cap is really gone again:
    assert con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0] > 25e6  # the column is cached
    for _ in range(3):  # rebuilding does not creep the limit down
        fill(con, clustered(100), version=f"again{_}")
        vector_index(con)
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == limit


def test_unrounded():
    assert V._unrounded("18.8 GiB") == "18.85 GiB" and V._unrounded("953.6 MiB") == "953.65 MiB"
    assert V._unrounded("0 bytes") == "0 bytes"


def test_scan_cap_too_tight_falls_back(con, monkeypatch):
    x = clustered(20_000)
    fill(con, x)
    con.execute("CHECKPOINT")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    monkeypatch.setattr(V, "SCAN_MEMORY_LIMIT", "1MB")  # DuckDB cannot scan within this: the read is retried uncapped
    vi = vector_index(con)
    assert vi.path is not None and len(vi) == 20_000 and vi.ids[vi.search(x[5], k=1)[0][0]] == "c00005"
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == limit
    assert [p.name for p in root_of(con).iterdir()] == [vi.path.name]  # no temporary directory left behind


def test_ivf_cells_persist_and_match(con):
    x = clustered(3000)
    fill(con, x)
    vi = vector_index(con, ivf=True, nlist=30)
    assert vi.path.name.endswith("-ivf") and [p.name for p in root_of(con).iterdir()] == [vi.path.name]
    assert sorted(map(str, vi.ids)) == [f"c{i:05d}" for i in range(3000)]
    V._INDEX_CACHE.clear()
    vi2 = vector_index(con)
    assert vi2.centroids is not None and vi2.path == vi.path
    np.testing.assert_array_equal(vi2.offsets, vi.offsets)
    for v, i in [(x[11], "c00011"), (x[2999], "c02999")]:
        assert vi2.ids[vi2.search_ivf(v, k=1, nprobe=30)[0][0]] == i
        assert vi2.ids[vi2.search(v, k=1)[0][0]] == i
    # rows follow the ids through the reordering
    for p in (0, 1500, 2999):
        np.testing.assert_allclose(vi2.matrix[p], x[int(str(vi2.ids[p])[1:])], atol=1e-6)


def test_ivf_falls_back_to_memory_when_the_sidecar_cannot_be_written(con, monkeypatch):
    x = clustered(1000)
    fill(con, x)
    def fail(*a, **k): raise PermissionError("read-only")
    monkeypatch.setattr(V, "_relayout", fail)
    vi = vector_index(con, ivf=True, nlist=10)
    assert vi.path is None and vi.centroids is not None
    assert vi.ids[vi.search_ivf(x[3], k=1, nprobe=10)[0][0]] == "c00003"


@pytest.mark.parametrize("kind,over,floor", [("binary", 60, 0.97), ("int8", 4, 0.99)])
def test_quantised_recall_and_exact_scores(kind, over, floor):
    x, q = clustered(20_000), clustered(40, seed=5)
    vi = VectorIndex(np.arange(20_000), x)
    exact, _ = vi.search(q, k=10)
    pos, sc = vi.search_quantised(q, k=10, kind=kind, oversample=over)
    rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(pos, exact)])
    assert rec >= floor, rec
    np.testing.assert_allclose(sc, np.einsum("qkd,qd->qk", x[pos], q), atol=1e-5)
    assert (np.diff(sc, axis=1) <= 1e-7).all()  # best first
    p1, s1 = vi.search_quantised(q[0], k=10, kind=kind, oversample=over)
    np.testing.assert_array_equal(p1, pos[0])


def test_quantised_codes_persist_beside_the_matrix(con):
    x = clustered(1000)
    fill(con, x)
    vi = vector_index(con)
    codes = vi.quantise("binary")
    c8, scale = vi.quantise("int8")
    assert {"binary.npy", "int8.npy", "int8_scale.npy"} <= {p.name for p in vi.path.iterdir()}
    assert codes.shape == (6, 1000) and c8.shape == (1000, EMBEDDING_DIM) and c8.dtype == np.int8
    np.testing.assert_allclose(c8 * scale, vi.matrix, atol=scale.max() / 2 + 1e-7)  # within half a step
    V._INDEX_CACHE.clear()
    vi2 = vector_index(con)
    np.testing.assert_array_equal(vi2.quantise("binary"), codes)
    assert isinstance(vi2.quantise("binary"), np.memmap) or isinstance(vi2.quantise("binary").base, np.memmap)


def test_popcount_fallback_matches_numpy():
    rng = np.random.default_rng(3)
    w = rng.integers(0, 2 ** 63, size=1000, dtype=np.uint64) ^ rng.integers(0, 2, size=1000, dtype=np.uint64) << np.uint64(63)
    ref = np.array([bin(int(v)).count("1") for v in w])
    np.testing.assert_array_equal(V._popcount(w), ref)
    saved, V._POP8 = V._POP8, None
    try:
        bc = np.bitwise_count
        del np.bitwise_count  # the numpy < 2 path: a byte lookup table
        np.testing.assert_array_equal(V._popcount(w), ref)
    finally:
        np.bitwise_count, V._POP8 = bc, saved


def test_hamming_and_smallest():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 100)).astype(np.float32)
    words = V._sign_words(x, 2)
    bits = (x > 0)
    h = V._hamming(np.ascontiguousarray(words.T), words[3])
    np.testing.assert_array_equal(h, (bits != bits[3]).sum(1))
    m = V._smallest(h, 37)
    assert len(m) == 37 and h[m].max() <= np.sort(h)[36]
    assert len(V._smallest(h, 999)) == 500


@pytest.mark.parametrize("mode", ["int8", "binary"])
def test_search_modes_with_filters(con, mode):
    x = clustered(2000)
    fill(con, x)
    q = x[10] + 0.01
    hits = search(con, "q", k=5, mode=mode, query_vector=q)
    assert hits[0].chunk_id == "c00010" and len(hits) == 5
    ref = search(con, "q", k=5, mode="vector", query_vector=q)
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in ref]
    odd = search(con, "q", k=5, mode=mode, query_vector=q, filters=F("parity") == "odd", oversample=400)
    ref_odd = search(con, "q", k=5, mode="vector", query_vector=q, filters=F("parity") == "odd")
    assert all(h.metadata["parity"] == "odd" for h in odd) and len(odd) == 5
    assert [h.chunk_id for h in odd] == [h.chunk_id for h in ref_odd]
    assert search(con, "q", k=5, mode=mode, query_vector=q, filters=F("i") < 3, oversample=2) \
        and {h.chunk_id for h in search(con, "q", k=5, mode=mode, query_vector=q, filters=F("i") < 3)} == {"c00000", "c00001", "c00002"}
    with pytest.raises(Fl.InputError, match="positive integer"):
        search(con, "q", k=5, mode=mode, query_vector=q, oversample=0)


@pytest.mark.slow
def test_search_speed_bench_runs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "search_speed.py"), "--sizes", "20000", "--queries", "10",
                          "--hnsw-max", "0"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "binary oversample=100" in out.stdout and "serving, warm: open" in out.stdout


def test_threads_making_the_same_derived_array_at_once_get_it_whole(con):
    "Eval runs cases in threads: the first searches of a fresh sidecar all make its id lookup at once (a shared temporary file broke one: EOFError)."
    import threading
    x = clustered(20_000, seed=3)
    fill(con, x)
    sidecar = vector_index(con).path
    want = [f"c{i:05d}" for i in range(0, 20_000, 997)]
    errors, got = [], []
    def one(start):
        cur = con.cursor()
        try:
            vi = vector_index(cur)
            start.wait()
            got.append(vi.ids[vi.position_of(want)].tolist())
        except Exception as e:  # the failure under test: collect it, the assert below names it
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            cur.close()
    for _ in range(6):  # a fresh process each round: the sidecar mapped again, its derived arrays not yet made
        V._INDEX_CACHE.clear()
        for f in sidecar.glob("ids_*"): f.unlink()
        start = threading.Barrier(8)
        threads = [threading.Thread(target=one, args=(start,)) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
    assert errors == [] and got == [want] * 48
    assert sorted(p.name for p in sidecar.glob(".*.tmp*")) == []  # no temporary file left behind


def test_document_metadata_is_kept_once_in_the_sidecar(tmp_path):
    "A document's metadata is stored once in DuckDB and once beside the vectors, not copied into each chunk row (a 5 MB field took 3.4 GB)."
    from aiwb.data.store import Document, ingest_documents
    V._INDEX_CACHE.clear()
    cfg = load_config(env={"AIWB_HOME": str(tmp_path)}, max_metadata_bytes=2_000_000)
    con = connect(config=cfg)
    blob = "z" * 500_000
    text = " ".join(f"Sentence {i} is about cache eviction and the retry budget." for i in range(300))
    ingest_documents(con, [Document("big", text, metadata={"blob": blob, "team": "a"}),
                           Document("small", "The breaker opens after five failures.", metadata={"team": "b"})], cfg)
    vi = vector_index(con)
    n_big = con.execute("SELECT count(*) FROM chunks WHERE doc_id = 'big'").fetchone()[0]
    assert n_big > 10
    stored = sum((vi.path / f).stat().st_size for f in ("rows_metadata.bin", "docs_metadata.bin"))
    assert len(blob) < stored < 1.2 * len(blob)  # once, not n_big times
    hits = search(con, "retry budget", k=3, mode="bm25")
    assert {h.doc_id for h in hits} == {"big"}
    for h in hits:  # each chunk reads its document's fields and its own position
        want = con.execute(f"SELECT {V.CHUNK_METADATA} FROM chunks c LEFT JOIN documents d USING (doc_id) WHERE chunk_id = ?",
                           [h.chunk_id]).fetchone()[0]
        assert h.metadata == json.loads(want) and h.metadata["blob"] == blob and isinstance(h.metadata["position"], int)
    assert search(con, "breaker", k=1, mode="bm25", filters=F("team") == "b")[0].metadata["team"] == "b"
    assert Fl.field_kinds(con) == {"blob": ["str"], "doc_id": ["str"], "name": ["str"], "position": ["num"], "source": ["str"],
                                  "team": ["str"], "title": ["str"]}
    con.close()
    V._INDEX_CACHE.clear()
