"""Embeddings served by onnxruntime: the one-off export and its cache, parity with sentence-transformers, no torch on
the query path, and the int8 variant kept apart from fp32 everywhere vectors are stored."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, ROOT, SHARED_DATA, SKIP_SHARED, run_cli, shared_data

HEAVY = ("torch", "sentence_transformers", "transformers")


@pytest.fixture(scope="module")
def fresh_models(tmp_path_factory):
    "A model cache of this module's own, exported once from scratch (fp32 and int8)."
    path = tmp_path_factory.mktemp("models")
    old = os.environ.get("AIWB_MODELS_DIR")
    os.environ["AIWB_MODELS_DIR"] = str(path)
    from aiwb.embeddings import ensure_onnx
    try:
        ensure_onnx("fp32"); ensure_onnx("int8")
        yield path
    finally:
        os.environ["AIWB_MODELS_DIR"] = old if old is not None else ""


@pytest.fixture
def models(fresh_models, monkeypatch):
    "This module's model cache, for one test."
    monkeypatch.setenv("AIWB_MODELS_DIR", str(fresh_models))
    return fresh_models


def _python(code: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    "Run `code` in a fresh interpreter of this environment."
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=600, **kw)


def test_export_is_cached_by_weights_hash_with_a_verified_manifest(models):
    from aiwb.embeddings import ensure_onnx, model_path, onnx_file, weights_sha256
    weights = hashlib.sha256((model_path() / "model.safetensors").read_bytes()).hexdigest()
    assert weights_sha256() == weights
    for precision, name in (("fp32", "model.onnx"), ("int8", "model-int8.onnx")):
        path = onnx_file(precision)
        assert path == models / f"all-MiniLM-L6-v2-{weights[:16]}" / name
        man = json.loads(path.with_name(name + ".json").read_text())
        assert man["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert man["weights_sha256"] == weights and man["precision"] == precision and man["max_seq_length"] == 256
        before = path.stat().st_mtime_ns
        assert ensure_onnx(precision) == path and path.stat().st_mtime_ns == before  # cached: not rebuilt
    assert not list(models.rglob("*.tmp"))


def test_weights_hash_follows_the_file(tmp_path, models):
    from aiwb.embeddings import model_path, weights_sha256
    copy = tmp_path / "model.safetensors"
    copy.write_bytes((model_path() / "model.safetensors").read_bytes())
    assert weights_sha256(copy) == weights_sha256()
    with open(copy, "ab") as f:
        f.write(b"\0")  # other weights: another hash, so another export folder
    assert weights_sha256(copy) == hashlib.sha256(copy.read_bytes()).hexdigest() != weights_sha256()


def test_a_corrupted_cached_model_is_detected_and_rebuilt(models, capfd):
    from aiwb.embeddings import embed, ensure_onnx, model_id, onnx_file
    good = embed(["circuit breaker"], model=model_id("int8"))
    path = onnx_file("int8")
    size = path.stat().st_size
    with open(path, "r+b") as f:  # same size, garbage in the middle of the weights
        f.seek(size // 2)
        f.write(os.urandom(4096))
    assert ensure_onnx("int8") == path
    assert "building the all-MiniLM-L6-v2-int8 ONNX model" in capfd.readouterr().err
    man = json.loads(path.with_name(path.name + ".json").read_text())
    assert man["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and man["size"] == size

    from aiwb.embeddings import OnnxEncoder
    np.testing.assert_allclose(OnnxEncoder(path)(["circuit breaker"]), good, atol=1e-6)


def test_a_truncated_model_and_a_killed_build_leave_nothing_broken(models, capfd):
    from aiwb.embeddings import OnnxEncoder, ensure_onnx, onnx_file
    path = onnx_file("fp32")
    stale = path.with_name(f".{path.name}.killed.tmp")
    stale.write_bytes(b"half an export")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # truncated (a torn copy, a full disk)
    assert ensure_onnx("fp32") == path
    assert "building the all-MiniLM-L6-v2 ONNX model" in capfd.readouterr().err
    assert not stale.exists() and path.stat().st_size == len(data)
    assert OnnxEncoder(path)(["DuckDB"]).shape == (1, 384)


def test_a_build_killed_midway_leaves_no_model_and_the_next_call_builds_it(models):
    from aiwb.embeddings import _manifest_ok, RECIPES, ensure_onnx, onnx_file
    path = onnx_file("int8")
    path.unlink(); path.with_name(path.name + ".json").unlink()
    proc = subprocess.Popen([sys.executable, "-c", "from aiwb.embeddings import ensure_onnx; ensure_onnx('int8')"],
                            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(path.parent.glob(f".{path.name}.*.tmp")):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not path.exists() or _manifest_ok(path, RECIPES["int8"])  # never a model without a valid manifest
    assert ensure_onnx("int8") == path and _manifest_ok(path, RECIPES["int8"])


def test_concurrent_first_uses_build_once(models):
    from aiwb.embeddings import RECIPES, _manifest_ok, onnx_file
    path = onnx_file("int8")
    path.unlink()
    code = "from aiwb.embeddings import embed, model_id; print(embed(['retry budget'], model=model_id('int8'))[0][:4])"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({o for o, _ in outs}) == 1  # the same vector in every process
    assert sum("building" in e for _, e in outs) == 1  # one process built it, the others waited for it
    assert _manifest_ok(path, RECIPES["int8"])


def _texts(n: int = 300) -> list[str]:
    """SciFact abstracts from the shared data (missing, the test fails), or the bundled corpus's paragraphs when
    AIWB_SKIP_SHARED=1 says to run without it; plus edge cases."""
    if not (SKIP_SHARED and not (SHARED_DATA / "scifact").is_dir()):
        with open(shared_data("scifact", "corpus.jsonl")) as f:
            rows = [json.loads(line) for line, _ in zip(f, range(n))]
        texts = [f"{r['title']}\n\n{r['text']}" for r in rows]
    else:
        texts = [p for f in sorted((DATA / "corpus").glob("*.md")) for p in f.read_text().split("\n\n") if p.strip()][:n]
    return texts + ["DuckDB", "a", "Circuit breakers stop calls to a failing service. " * 80, "naïve café — 東京"]


def test_onnx_vectors_match_sentence_transformers():
    from aiwb.embeddings import embed, load_model, model_id
    texts = _texts()
    ref = load_model().encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    got = embed(texts)
    assert got.shape == ref.shape and got.dtype == np.float32
    cos = (got * ref).sum(1)
    assert np.abs(got - ref).max() < 1e-5 and cos.min() > 0.99999, (np.abs(got - ref).max(), cos.min())
    q = embed(texts, model=model_id("int8"))
    cos8 = (q * ref).sum(1)
    assert cos8.mean() > 0.99 and cos8.min() > 0.97, (cos8.mean(), cos8.min())


def test_query_and_ingest_paths_import_no_torch(tmp_path):
    code = f"""
import sys
from pathlib import Path
from aiwb.core import connect, load_config
from aiwb.data.store import ingest
from aiwb.data.search import search
from aiwb.orchestration.pipeline import RAGPipeline
from aiwb.embeddings import count_tokens, embed
cfg = load_config(env={{"AIWB_HOME": {str(tmp_path)!r}}})
con = connect(config=cfg)
assert ingest(con, Path({str(DATA / 'corpus')!r}), cfg).chunks_embedded > 0
assert search(con, "what does a circuit breaker do?", k=3)
assert RAGPipeline(con, cfg).ask("How does the retry policy back off?").text
assert count_tokens("half-open") > 0 and embed(["x"]).shape == (1, 384)
print(" ".join(m for m in {HEAVY!r} if m in sys.modules))
"""
    r = _python(code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "", f"imported on the query/ingest path: {r.stdout}"


def test_int8_is_selectable_and_never_mixed_with_fp32(tmp_path):
    from aiwb.core import ConfigError, connect, load_config
    from aiwb.embeddings import embed, model_id, store_model
    from aiwb.data.search import search
    from aiwb.data.store import embed_cached, ingest
    cfg = load_config(env={"AIWB_HOME": str(tmp_path), "AIWB_EMBEDDING_PRECISION": "int8"})
    assert cfg.embedding_precision == "int8"
    con = connect(config=cfg)
    ingest(con, DATA / "corpus", cfg)
    assert store_model(con) == "all-MiniLM-L6-v2-int8"
    assert con.execute("SELECT DISTINCT model FROM embedding_cache").fetchall() == [("all-MiniLM-L6-v2-int8",)]
    # the query is embedded with the store's model: the top hit's score is its int8 cosine, not the fp32 one
    question = "what does a circuit breaker do?"
    hit = search(con, question, k=1)[0]
    stored = np.asarray(con.execute("SELECT embedding FROM chunks WHERE chunk_id = ?", [hit.chunk_id]).fetchone()[0])
    q8, q32 = embed([question], model=model_id("int8"))[0], embed([question])[0]
    assert abs(hit.score - float(stored @ q8)) < 1e-4 and abs(float(stored @ q8) - float(stored @ q32)) > 1e-4
    # the same texts under fp32 are separate cache rows with other vectors
    texts = [t for (t,) in con.execute("SELECT text FROM chunks ORDER BY chunk_id LIMIT 5").fetchall()]
    v8, new8 = embed_cached(con, texts, model=model_id("int8"))
    v32, new32 = embed_cached(con, texts, model=model_id("fp32"))
    assert len(new8) == 0 and len(new32) == 5 and set(new32.column("model").to_pylist()) == {"all-MiniLM-L6-v2"}
    assert not np.allclose(v8, v32, atol=1e-4)
    # fp32 vectors are never added to this int8 store
    with pytest.raises(ConfigError, match="built with all-MiniLM-L6-v2-int8"):
        ingest(con, DATA / "corpus", load_config(env={"AIWB_HOME": str(tmp_path)}))
    con.close()


def test_an_unknown_precision_is_a_config_error(tmp_path):
    r = run_cli("ingest", DATA / "corpus", home=tmp_path, env={"AIWB_EMBEDDING_PRECISION": "fp16"})
    assert r.returncode == 3, r.stderr
    assert "embedding_precision must be one of fp32, int8" in r.stderr and "Traceback" not in r.stderr
