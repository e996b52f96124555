"""The store survives interruption and upgrades: transactions per batch, resumable ingest, append-only migrations."""
import json
import os
import signal
import subprocess
import time

from conftest import AIWB


def _consistency(home):
    from aiwb.core import connect, load_config
    con = connect(config=load_config(env={"AIWB_HOME": str(home)}))
    try:
        docs = con.execute("SELECT count(*) FROM documents").fetchone()[0]
        orphans = con.execute("SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)").fetchone()[0]
        empty = con.execute("SELECT count(*) FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM chunks)").fetchone()[0]
        dup = con.execute("SELECT count(*) - count(DISTINCT (doc_id, position)) FROM chunks").fetchone()[0]
        return docs, orphans, empty, dup
    finally:
        con.close()


def test_ingest_killed_midway_leaves_a_consistent_store_and_resumes(home, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(60):
        body = " ".join(f"Fact {j} of document {i}: the limit is {i * j} requests per minute." for j in range(12))
        (docs / f"doc{i:03}.md").write_text(f"# Document {i}\n{body}")
    env = {**os.environ, "AIWB_HOME": str(home), "AIWB_BATCH_SIZE": "4", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(AIWB), "ingest", str(docs)], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    # Wait until the progress bar shows some files done, then kill -9: no chance to clean up.
    seen = ""
    deadline = time.time() + 240
    while time.time() < deadline:
        ch = proc.stderr.read(1)
        if not ch:
            break
        seen += ch
        if "ingest:  2" in seen or "| 15/60" in seen or "| 20/60" in seen:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    docs_after_kill, orphans, empty, dup = _consistency(home)
    assert (orphans, empty, dup) == (0, 0, 0)
    assert 0 < docs_after_kill < 60, f"kill landed outside the ingest ({docs_after_kill} docs stored)"
    # Resume: only the rest is embedded, and the result equals a full ingest.
    r = subprocess.run([str(AIWB), "ingest", str(docs), "--json"], env=env, capture_output=True, text=True, timeout=600)
    report = json.loads(r.stdout)
    assert r.returncode == 0 and len(report["unchanged"]) == docs_after_kill
    assert len(report["added"]) == 60 - docs_after_kill
    assert _consistency(home) == (60, 0, 0, 0)


def test_migrations_upgrade_an_old_store_without_losing_rows(tmp_path):
    import duckdb
    from aiwb.core import MIGRATIONS, connect, load_config, migrate
    cfg = load_config(env={"AIWB_HOME": str(tmp_path)})
    old = duckdb.connect(str(cfg.database))
    assert migrate(old, MIGRATIONS[:1]) == ["m001_documents_chunks"]  # a store from before m002
    old.execute("INSERT INTO documents (doc_id, source, content_hash, n_chars) VALUES ('a.md', '/a.md', 'h', 1)")
    old.close()
    con = connect(config=cfg)
    names = [r[0] for r in con.execute("SELECT name FROM _aiwb_migrations ORDER BY applied_at, name").fetchall()]
    assert names == [m[0] for m in MIGRATIONS]
    assert con.execute("SELECT doc_id FROM documents").fetchall() == [("a.md",)]
    con.close()


def test_extensions_load_offline_into_aiwb_home_only(tmp_path, monkeypatch):
    from aiwb.core import connect, load_config
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    con = connect(config=cfg)
    loaded = {r[0] for r in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    con.execute("SELECT array_cosine_similarity([1.0, 0.0]::FLOAT[2], [1.0, 0.0]::FLOAT[2])").fetchall()
    con.close()
    assert {"vss", "fts"} <= loaded
    assert not (tmp_path / "user" / ".duckdb").exists()


def test_duckdb_draws_no_progress_bar_on_stdout(tmp_path):
    "DuckDB prints a progress bar to stdout for a query over 2 s (seen on a loaded machine in a `--json` output): aiwb's connections turn it off."
    from aiwb.core import connect, load_config
    cfg = load_config(env={"AIWB_HOME": str(tmp_path)})
    con = connect(config=cfg)
    con.close()
    for c in (connect(config=cfg, read_only=True), connect(":memory:", config=cfg)):
        assert c.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
        assert c.cursor().execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
        c.close()
