import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KEY = "sk-test-0123456789abcdef-SECRET"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: heavy test, skipped unless --runslow")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"): return
    skip = pytest.mark.skip(reason="slow: use --runslow")
    for item in items:
        if "slow" in item.keywords: item.add_marker(skip)


@pytest.fixture(autouse=True)
def aiwb_home(tmp_path, monkeypatch):
    "Every test gets its own AIWB_HOME and no real provider keys."
    monkeypatch.setenv("AIWB_HOME", str(tmp_path / "home"))
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"): monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def server():
    from aiwb.testing import LocalLLMServer
    with LocalLLMServer(api_key=KEY, retry_after=0.3, hang_s=2.0) as s:
        yield s


@pytest.fixture
def server2():
    from aiwb.testing import LocalLLMServer
    with LocalLLMServer(api_key=KEY, retry_after=0.3, hang_s=2.0) as s:
        yield s
