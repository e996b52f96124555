"""Shared fixtures: every test gets its own AIWB_HOME and no real provider keys, so no test touches a user's
~/.aiwb or a real API."""
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
    from aiwb.testing import LocalLLMServer
    with LocalLLMServer(api_key=KEY, retry_after=0.3, hang_s=2.0) as s:
        yield s


@pytest.fixture
def server2():
    "A second, independent local provider server (for endpoint fallback)."
    from aiwb.testing import LocalLLMServer
    with LocalLLMServer(api_key=KEY, retry_after=0.3, hang_s=2.0) as s:
        yield s


def run_cli(*args, home=None, env=None, timeout=300, **kw):
    "Run the real `aiwb` console script; return the CompletedProcess."
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    if home is not None:
        e["AIWB_HOME"] = str(home)
    return subprocess.run([str(AIWB), *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout, **kw)
