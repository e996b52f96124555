"""Shared fixtures: every test gets its own AIWB_HOME, so no test touches a user's ~/.aiwb."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
AIWB = Path(sys.executable).parent / "aiwb"  # the installed console script


@pytest.fixture
def home(tmp_path, monkeypatch):
    "A fresh AIWB_HOME for this test."
    h = tmp_path / "home"
    monkeypatch.setenv("AIWB_HOME", str(h))
    return h


def run_cli(*args, home=None, env=None, timeout=300, **kw):
    "Run the real `aiwb` console script; return the CompletedProcess."
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    if home is not None:
        e["AIWB_HOME"] = str(home)
    return subprocess.run([str(AIWB), *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout, **kw)
