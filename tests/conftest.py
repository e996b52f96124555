"""Shared fixtures: every test gets its own AIWB_HOME and no real provider keys, so no test touches a user's
~/.aiwb or a real API."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("AIWB_MODELS_DIR", str(Path(sys.prefix) / "aiwb-models"))  # one ONNX export for all test homes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
AIWB = Path(sys.executable).parent / "aiwb"  # the installed console script
KEY = "sk-test-0123456789abcdef-SECRET"  # the fake key the local provider server accepts
# The shared data sets (SciFact, SQuAD, STS-B) live beside the repository, never in it. CI always has them, so a
# test that needs one fails when it is missing; AIWB_SKIP_SHARED=1 says, on purpose, to run without them.
SHARED_DATA = Path(os.environ.get("AIWB_SHARED_DATA", ROOT.parent / "shared" / "data"))
SKIP_SHARED = os.environ.get("AIWB_SKIP_SHARED") == "1"


def shared_data(*parts: str) -> Path:
    "The path `parts` in the shared data folder; missing, the test fails (or is skipped with AIWB_SKIP_SHARED=1)."
    path = SHARED_DATA.joinpath(*parts)
    if path.exists():
        return path
    if SKIP_SHARED:
        pytest.skip(f"AIWB_SKIP_SHARED=1: {path} is not there and the tests that need it are skipped on purpose")
    pytest.fail(f"{path} not found: put the shared data beside the repository (../shared/data) or point "
                "AIWB_SHARED_DATA at it; set AIWB_SKIP_SHARED=1 to skip the tests that need it", pytrace=False)


@pytest.fixture(autouse=True)
def aiwb_home(tmp_path, monkeypatch):
    "Every test gets its own AIWB_HOME and no real provider keys."
    monkeypatch.setenv("AIWB_HOME", str(tmp_path / "home"))
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def home(aiwb_home):
    "This test's AIWB_HOME (the same directory `aiwb_home` set)."
    return aiwb_home


@pytest.fixture
def server():
    "A local provider server speaking the Anthropic and OpenAI wire protocols, on 127.0.0.1."
    from aiwb.providers.fakes import LocalLLMServer
    with LocalLLMServer(api_key=KEY, retry_after=0.3, hang_s=2.0) as s:
        yield s


@pytest.fixture
def server2():
    "A second, independent local provider server (for endpoint fallback)."
    from aiwb.providers.fakes import LocalLLMServer
    with LocalLLMServer(api_key=KEY, retry_after=0.3, hang_s=2.0) as s:
        yield s


def run_cli(*args, home=None, env=None, timeout=300, **kw):
    "Run the real `aiwb` console script; return the CompletedProcess."
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    if home is not None:
        e["AIWB_HOME"] = str(home)
    return subprocess.run([str(AIWB), *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout, **kw)


def insert_chunks(con, n: int, seed: int, metadata, doc_id, position) -> "np.ndarray":
    """Write `n` chunks with random unit vectors straight into `chunks` (no model), `metadata(i)`, `doc_id(i)` and
    `position(i)` giving each row's fields, and record a corpus version as ingest would; return the vectors."""
    import numpy as np
    import pyarrow as pa
    from aiwb.embeddings import EMBEDDING_DIM
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tbl = pa.table({"chunk_id": [f"c{i:05d}" for i in range(n)], "doc_id": [doc_id(i) for i in range(n)],
                    "position": pa.array([position(i) for i in range(n)], pa.int32()),
                    "text": [f"chunk number {i} word{i % 7}" for i in range(n)], "n_tokens": pa.array([5] * n, pa.int32()),
                    "metadata": [json.dumps(metadata(i)) for i in range(n)],
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), EMBEDDING_DIM)})
    con.register("_t", tbl)
    con.execute(f"INSERT INTO chunks SELECT chunk_id, doc_id, position, text, n_tokens, metadata, embedding::FLOAT[{EMBEDDING_DIM}] FROM _t")
    con.unregister("_t")
    con.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', ?)", [f"test{seed}:{n}"])
    return x
