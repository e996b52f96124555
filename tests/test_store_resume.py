"""An ingest killed mid-way (SIGKILL, a real process) leaves a consistent store, and the next run resumes."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from aiwb.core import connect, load_config
from aiwb.data.store import corpus_version, ingest

WORKER = textwrap.dedent("""
    import sys, aiwb.data.store as store
    from aiwb.core import connect, load_config
    real = store._write_batch
    def announced(*a, **kw):
        out = real(*a, **kw)
        print("committed", flush=True)
        return out
    store._write_batch = announced
    cfg = load_config(env={"AIWB_HOME": sys.argv[1]})
    con = connect(config=cfg)
    store.ingest(con, sys.argv[2], cfg, commit_every=2)
    print("done", flush=True)
""")


def consistent(con):
    "Every chunk has its document, every document its chunks, and the recorded version is the real one."
    orphans = con.execute("SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)").fetchone()[0]
    empty = con.execute("SELECT count(*) FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM chunks)").fetchone()[0]
    recorded = con.execute("SELECT value FROM corpus_state WHERE key = 'version'").fetchone()
    cached = con.execute("SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM embedding_cache e "
                         "WHERE e.embedding = c.embedding)").fetchone()[0]
    return orphans == 0 and empty == 0 and cached == 0 and (recorded is None or recorded[0] == corpus_version(con))


def test_killed_ingest_resumes(tmp_path):
    docs = tmp_path / "docs"; docs.mkdir()
    for i in range(60):
        (docs / f"n{i:03d}.md").write_text(f"# Note {i}\nNote {i} is about topic {i % 7}. It has a second sentence {i}.")
    home = tmp_path / "home"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    p = subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(docs)], stdout=subprocess.PIPE, text=True, env=env)
    seen, deadline = 0, time.time() + 120
    while seen < 3 and time.time() < deadline:
        line = p.stdout.readline()
        if not line: break
        seen += line.strip() == "committed"
    p.send_signal(signal.SIGKILL); p.wait()
    assert seen == 3, "the worker never committed three batches"

    cfg = load_config(env={"AIWB_HOME": str(home)})
    con = connect(config=cfg)
    stored = con.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert 6 <= stored < 60 and consistent(con)
    report = ingest(con, docs, cfg)
    assert len(report.unchanged) == stored and len(report.added) == 60 - stored
    assert report.chunks_embedded == report.chunks_written  # nothing committed is embedded again
    assert consistent(con) and con.execute("SELECT count(*) FROM documents").fetchone()[0] == 60
    resumed = con.execute("SELECT doc_id, position, text FROM chunks ORDER BY ALL").fetchall()
    con.close()

    fresh_cfg = load_config(env={"AIWB_HOME": str(tmp_path / "fresh")})
    fresh = connect(config=fresh_cfg)
    ingest(fresh, docs, fresh_cfg)
    assert fresh.execute("SELECT doc_id, position, text FROM chunks ORDER BY ALL").fetchall() == resumed
    fresh.close()
