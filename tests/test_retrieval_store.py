"""Search over a real DuckDB store without the embedding model: HNSW persistence, filter pushdown, injection via metadata."""
import json

import numpy as np
import pyarrow as pa
import pytest

from aiwb.core import InputError, StoreError, connect, load_config
from aiwb.embeddings import EMBEDDING_DIM
from conftest import insert_chunks
from aiwb.data.filters import F
from aiwb.data.vectors import vector_index
from aiwb.data.bm25 import bm25_index
from aiwb.data.search import build_indexes, hnsw_index, search


def fill(con, n=300, seed=0):
    "Insert `n` chunks with random unit vectors and hostile metadata keys, through Arrow."
    return insert_chunks(con, n, seed, lambda i: {"i": i, "parity": "even" if i % 2 == 0 else "odd", "'; DROP TABLE chunks; --": i % 3, "doc_id": f"d{i}"},
                         lambda i: f"d{i}", lambda i: 0)


@pytest.fixture
def cfg(tmp_path):
    return load_config(env={"AIWB_HOME": str(tmp_path)})


def test_hnsw_index_survives_reopen(cfg):
    con = connect(config=cfg)
    x = fill(con)
    assert hnsw_index(con) is True and hnsw_index(con) is False
    q = x[7] + 0.05
    before = [h.chunk_id for h in search(con, "q", k=10, mode="hnsw", query_vector=q)]
    con.close()
    con = connect(config=cfg)
    assert con.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'chunks_hnsw'").fetchone()[0] == 1
    plan = "".join(r[1] for r in con.execute(
        f"EXPLAIN SELECT chunk_id FROM chunks ORDER BY array_cosine_distance(embedding, ?::FLOAT[{EMBEDDING_DIM}]) LIMIT 10",
        [q.tolist()]).fetchall())
    assert "HNSW_INDEX_SCAN" in plan
    after = [h.chunk_id for h in search(con, "q", k=10, mode="hnsw", query_vector=q)]
    assert after == before and after[0] == "c00007"
    exact = [h.chunk_id for h in search(con, "q", k=10, mode="vector", query_vector=q)]
    assert len(set(after) & set(exact)) >= 9
    con.close()


@pytest.mark.parametrize("mode", ["vector", "ivf", "hnsw", "bm25", "hybrid"])
def test_filters_are_pushed_into_every_mode(cfg, mode):
    con = connect(config=cfg)
    x = fill(con)
    build_indexes(con, hnsw=(mode == "hnsw"))  # chunks written by hand: build what ingest would have built
    q = x[10]
    flt = (F("parity") == "odd") & (F("i") < 200)
    hits = search(con, "chunk number word3", k=10, mode=mode, filters=flt, query_vector=q)
    assert len(hits) == 10  # the best 10 *matching*, not the matching few among the best 10
    assert all(h.metadata["parity"] == "odd" and h.metadata["i"] < 200 for h in hits)
    if mode in ("vector", "hnsw", "ivf"):
        allowed = [i for i in range(len(x)) if i % 2 == 1 and i < 200]
        best = sorted(allowed, key=lambda i: -float(x[i] @ q))[:10]
        assert [h.chunk_id for h in hits][:5] == [f"c{i:05d}" for i in best][:5]
    con.close()


def test_injection_through_metadata_keys_and_values(cfg):
    con = connect(config=cfg)
    fill(con, n=60)
    build_indexes(con)
    hits = search(con, "q", k=60, mode="vector", query_vector=np.ones(EMBEDDING_DIM, np.float32) / EMBEDDING_DIM ** 0.5,
                  filters={"'; DROP TABLE chunks; --": 0})
    assert len(hits) == 20 and all(h.metadata["i"] % 3 == 0 for h in hits)
    for evil in ["x' OR 1=1 --", "') OR true; --", "%"]:
        assert search(con, "chunk", k=5, mode="bm25", filters={"parity": evil}) == []
        assert search(con, "chunk", k=5, mode="bm25", filters=F(evil) == "even", check_fields=False) == []  # through the SQL
    assert con.execute("SELECT count(*) FROM chunks").fetchone()[0] == 60
    with pytest.raises(InputError, match="not a plain name"):
        bm25_index(con, stemmer="porter'); DROP TABLE chunks; --", force=True)
    assert con.execute("SELECT count(*) FROM chunks").fetchone()[0] == 60
    con.close()


def test_bm25_index_follows_the_corpus(cfg):
    con = connect(config=cfg)
    fill(con, n=20)
    assert bm25_index(con) is True and bm25_index(con) is False
    con.execute("DELETE FROM chunks WHERE chunk_id = 'c00003'")
    con.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', 'changed')")
    with pytest.raises(StoreError, match="stale") as e:  # a search never rebuilds it: it says how
        search(con, "number 3", k=3, mode="bm25")
    assert "aiwb index" in e.value.hint
    assert build_indexes(con)["fts"] is True
    assert [h.chunk_id for h in search(con, "number 3", k=3, mode="bm25")][0] != "c00003"
    con.close()


def test_vector_index_is_cached_per_version(cfg):
    con = connect(config=cfg)
    fill(con, n=50)
    a = vector_index(con)
    assert vector_index(con) is a and len(a) == 50
    con.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', 'other')")
    assert vector_index(con) is not a
    con.close()


def test_bad_search_arguments(cfg):
    con = connect(config=cfg)
    with pytest.raises(InputError, match="unknown search mode"):
        search(con, "q", mode="magic")
    with pytest.raises(InputError, match="positive integer"):
        search(con, "q", k=0, mode="bm25")
    con.close()
