"""Issue 9, the ingest side: identities that never collide, removal confined to the ingested root, duplicates that
outlive their twin, torn reads, chunking keyed by its parameters, size limits, hostile JSONL, NUL bytes, symlinks,
front matter, HTML boilerplate, --meta and the skipped-files report. Each test fails on the main branch of 2026-12-02."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli


def _store(home):
    from aiwb.core import connect, load_config
    return connect(config=load_config(env={"AIWB_HOME": str(home)}))


def _rows(home, sql):
    con = _store(home)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _ingest(home, *args):
    r = run_cli("ingest", *args, "--json", home=home)
    assert r.stdout, r.stderr
    return r, json.loads(r.stdout)


def _tree(tmp_path):
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    for i in range(7):
        (top / "sub" / f"s{i}.md").write_text(f"# Sub {i}\nSub document {i} is about a queue depth of {i * 10}.")
    (top / "intro.md").write_text("# Intro\nThe top level introduces the tree.")
    (top / "records.jsonl").write_text("".join(json.dumps({"_id": f"r{i}", "text": f"Record {i} talks about retry {i}."}) + "\n"
                                               for i in range(3)))
    return top


def test_subfolder_and_single_file_ingest_keep_every_document(home, tmp_path):
    top = _tree(tmp_path)
    r, first = _ingest(home, top)
    assert r.returncode == 0 and len(first["added"]) == 11
    r, sub = _ingest(home, top / "sub")
    assert r.returncode == 0 and sub["removed"] == [] and sorted(sub["unchanged"]) == [f"s{i}.md" for i in range(7)]
    r, rec = _ingest(home, top / "records.jsonl")
    assert r.returncode == 0 and rec["removed"] == [] and sorted(rec["unchanged"]) == [f"records.jsonl#r{i}" for i in range(3)]
    assert _rows(home, "SELECT count(*) FROM documents")[0][0] == 11
    assert _rows(home, "SELECT count(DISTINCT doc_id) FROM chunks")[0][0] == 11


def test_same_name_in_two_folders_are_two_documents(home, tmp_path):
    for team in ("teamA", "teamB"):
        (tmp_path / team).mkdir()
        (tmp_path / team / "notes.md").write_text(f"# Notes\n{team} owns the payment service.")
        r, out = _ingest(home, tmp_path / team)
        assert r.returncode == 0 and out["added"] == ["notes.md"] and out["replaced"] == []
    ids = {d for (d,) in _rows(home, "SELECT doc_id FROM documents")}
    assert ids == {str((tmp_path / t / "notes.md").resolve()) for t in ("teamA", "teamB")}


def test_removal_is_confined_to_the_ingested_root(home, tmp_path):
    top = _tree(tmp_path)
    _ingest(home, top)
    (top / "sub" / "s0.md").unlink()
    (top / "intro.md").unlink()
    r, out = _ingest(home, top / "sub")  # intro.md is gone too, but it is not under sub/
    assert out["removed"] == ["s0.md"]
    assert _rows(home, "SELECT count(*) FROM documents")[0][0] == 10
    (top / "records.jsonl").write_text(json.dumps({"_id": "r1", "text": "Record 1 talks about retry 1."}) + "\n")
    r, out = _ingest(home, top / "records.jsonl")
    assert sorted(out["removed"]) == ["records.jsonl#r0", "records.jsonl#r2"]
    r, out = _ingest(home, top)
    assert out["removed"] == ["intro.md"]


def test_a_duplicate_outlives_its_twin(tmp_path):
    from aiwb.core import connect, load_config
    from aiwb.data.store import ingest
    from aiwb.data.search import search
    docs = tmp_path / "docs"; docs.mkdir()
    text = "# Twins\nThe bulkhead pattern isolates the thread pools of each dependency."
    (docs / "a.md").write_text(text); (docs / "b.md").write_text(text)
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    con = connect(config=cfg)
    r = ingest(con, docs, cfg)
    assert r.added == ["a.md"] and r.duplicates == ["b.md (same content as a.md)"]
    assert con.execute("SELECT count(*) FROM chunks").fetchone()[0] == 1  # indexed once
    (docs / "a.md").unlink()
    r = ingest(con, docs, cfg)
    assert r.removed == ["a.md"] and r.chunks_embedded == 0
    hits = search(con, "bulkhead thread pools", k=3, mode="bm25")
    assert [h.metadata["name"] for h in hits] == ["b.md"] and "isolates the thread pools" in hits[0].text
    (docs / "b.md").write_text(text.replace("bulkhead", "bulkhead (changed)"))  # the survivor can change and be replaced
    assert ingest(con, docs, cfg).replaced == ["b.md"]
    con.close()


def test_duplicate_promoted_when_its_twin_changes(tmp_path):
    from aiwb.core import connect, load_config
    from aiwb.data.store import ingest
    docs = tmp_path / "docs"; docs.mkdir()
    text = "# Same\nRate limits protect the upstream service."
    (docs / "a.md").write_text(text); (docs / "b.md").write_text(text)
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    con = connect(config=cfg)
    ingest(con, docs, cfg)
    (docs / "a.md").write_text("# Different\nNow a.md says something else entirely.")
    r = ingest(con, docs, cfg)
    assert r.replaced == ["a.md"] and r.unchanged == ["b.md"]
    texts = dict(con.execute("SELECT d.metadata->>'name', string_agg(c.text, ' ') FROM documents d JOIN chunks c USING (doc_id) "
                             "GROUP BY 1").fetchall())
    assert texts == {"a.md": "Different. Now a.md says something else entirely.", "b.md": "Same. Rate limits protect the upstream service."}
    con.close()


WRITER = r"""
import sys, time
path, n = sys.argv[1], int(sys.argv[2])
end = time.time() + float(sys.argv[3])
v = 0
while time.time() < end:
    v = 1 - v
    with open(path, "w") as f:                  # truncate, then write in pieces: a reader can see any prefix
        for i in range(n):
            f.write(("AAAA " if v else "BBBB ") * 200 + "\n"); f.flush()
"""


def test_a_file_rewritten_during_ingest_is_never_stored_torn(tmp_path):
    from aiwb.core import connect, load_config
    from aiwb.data.store import ingest
    docs = tmp_path / "docs"; docs.mkdir()
    target = docs / "hot.txt"
    target.write_text(("AAAA " * 200 + "\n") * 200)
    (docs / "calm.md").write_text("# Calm\nThis file does not change.")
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "200", "30"])
    try:
        time.sleep(0.3)
        outcomes = []
        for _ in range(4):
            con = connect(config=cfg)
            r = ingest(con, docs, cfg, chunk=False)
            row = con.execute("SELECT n_chars FROM documents WHERE metadata->>'name' = 'hot.txt'").fetchall()
            con.close()
            errors = [m for p, m in r.errors if "hot.txt" in p]
            outcomes.append((errors, row))
            assert not errors or "changed while it was being read" in errors[0]
    finally:
        writer.kill(); writer.wait()
    full = len(("AAAA " * 200 + "\n") * 200)
    for errors, row in outcomes:  # stored whole (the writer paused at a full version) or not at all
        assert row == [] or row[0][0] == full, (row, full)
    assert any(errors for errors, _ in outcomes)  # a file that never stops changing is reported


def test_changed_chunk_size_rechunks(home, tmp_path):
    docs = tmp_path / "docs"; docs.mkdir()
    (docs / "long.md").write_text("# Long\n" + " ".join(f"Fact {i} holds for the retry budget." for i in range(60)))
    _ingest(home, docs)
    before = _rows(home, "SELECT count(*), max(n_tokens) FROM chunks")[0]
    r = run_cli("ingest", docs, "--json", home=home, env={"AIWB_CHUNK_TOKENS": "48", "AIWB_CHUNK_OVERLAP": "8"})
    out = json.loads(r.stdout)
    assert out["replaced"] == ["long.md"]
    after = _rows(home, "SELECT count(*), max(n_tokens) FROM chunks")[0]
    assert after[0] > before[0] and after[1] <= 48


def test_over_limit_files_and_lines_are_refused_and_the_rest_ingests(home, tmp_path):
    docs = tmp_path / "docs"; docs.mkdir()
    (docs / "good.md").write_text("# Good\nThe breaker opens after five failures.")
    (docs / "huge.txt").write_bytes(b"word " * 2_000_000)  # 10 MB, over max_document_bytes
    (docs / "oneline.md").write_bytes(b"x" * 1_500_000)  # one 1.5 MB line
    (docs / "big.jsonl").write_bytes(json.dumps({"_id": "b", "text": "y" * 2_000_000}).encode() + b"\n")
    (docs / "meta.jsonl").write_text(json.dumps({"_id": "m", "text": "ok", "blob": "z" * 100_000}) + "\n")
    t0 = time.time()
    r, out = _ingest(home, docs)
    assert time.time() - t0 < 60
    assert r.returncode == 4 and out["added"] == ["good.md"]
    assert "config key max_document_bytes" in r.stderr and "huge.txt" in r.stderr
    assert "oneline.md:1: line 1 is 1,500,000 bytes, over the limit of 1,000,000 bytes (config key max_line_bytes)" in r.stderr
    assert "big.jsonl:1" in r.stderr and "config key max_metadata_bytes" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("error: ") == 4 and r.stderr.count("hint: ") == 4
    r = run_cli("ingest", docs / "oneline.md", home=home, env={"AIWB_MAX_LINE_BYTES": "2000000"})
    assert r.returncode == 0, r.stderr


def test_metadata_is_stored_once(tmp_path):
    from aiwb.core import connect, load_config
    from aiwb.data.store import ingest
    from aiwb.data.search import search
    docs = tmp_path / "docs"; docs.mkdir()
    body = " ".join(f"Sentence {i} is about the cache eviction policy." for i in range(200))
    (docs / "d.jsonl").write_text(json.dumps({"_id": "d", "text": body, "team": "sre", "note": "n" * 30_000}) + "\n")
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    con = connect(config=cfg)
    ingest(con, docs, cfg)
    n, meta = con.execute("SELECT count(*), sum(strlen(coalesce(metadata::VARCHAR, ''))) FROM chunks").fetchone()
    assert n > 10 and meta == 0
    assert con.execute("SELECT strlen(metadata::VARCHAR) FROM documents").fetchone()[0] > 30_000
    hits = search(con, "cache eviction", k=2, filters={"team": "sre"})
    assert len(hits) == 2 and hits[0].metadata["team"] == "sre" and "position" in hits[0].metadata
    assert search(con, "cache eviction", k=2, filters={"team": "dev"}) == []
    con.close()


def test_deep_jsonl_is_one_error_line_and_other_files_ingest(home, tmp_path):
    docs = tmp_path / "docs"; docs.mkdir()
    (docs / "deep.jsonl").write_text('{"_id": "x", "text": "t", "m": ' + "[" * 5000 + "]" * 5000 + "}\n")
    (docs / "good.md").write_text("# Good\nQueues absorb bursts.")
    r, out = _ingest(home, docs)
    assert r.returncode == 4 and out["added"] == ["good.md"] and "Traceback" not in r.stderr
    assert "deep.jsonl:1: nests deeper than 32 levels" in r.stderr and "hint:" in r.stderr


def test_nul_byte_anywhere_marks_a_file_binary(home, tmp_path):
    docs = tmp_path / "docs"; docs.mkdir()
    (docs / "late.txt").write_bytes(b"plain words " * 2000 + b"\x00tail")
    (docs / "good.md").write_text("# Good\nQueues absorb bursts.")
    r, out = _ingest(home, docs)
    assert r.returncode == 4 and "late.txt: looks binary (a NUL byte at offset 24000)" in r.stderr
    assert out["added"] == ["good.md"]


def test_symlinks_outside_are_skipped_unless_asked(home, tmp_path):
    docs = tmp_path / "docs"; docs.mkdir()
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\nThe admin password is hunter2.")
    (docs / "link.md").symlink_to(secret)
    (docs / "good.md").write_text("# Good\nQueues absorb bursts.")
    r, out = _ingest(home, docs)
    assert r.returncode == 0 and out["added"] == ["good.md"]
    assert [Path(p).name for p, _ in out["skipped"]] == ["link.md"] and "outside" in out["skipped"][0][1]
    text = run_cli("ingest", docs, home=home)
    assert "skipped: " in text.stdout and "link.md" in text.stdout and "--follow-symlinks" in text.stdout
    r, out = _ingest(home, docs, "--follow-symlinks")
    assert out["added"] == ["link.md"]


def test_front_matter_html_boilerplate_meta_and_skipped_report(home, tmp_path):
    docs = tmp_path / "docs"; docs.mkdir()
    (docs / "fm.md").write_text("---\nteam: sre\nyear: 2024\n---\n# Runbook\nRestart the worker pool.")
    (docs / "page.html").write_text("<html><body><nav>Home | About | Pricing</nav><header>ACME portal</header>"
                                    "<p>The cache TTL is one hour.</p><footer>Copyright ACME</footer></body></html>")
    (docs / "slides.pptx").write_bytes(b"PK")
    (docs / ".draft.md").write_text("# Draft\nnot ready")
    r, out = _ingest(home, docs, "--meta", "owner=ops", "--meta", "tier=1")
    assert r.returncode == 0, r.stderr
    assert sorted((Path(p).name, why.split(" ")[0]) for p, why in out["skipped"]) == [(".draft.md", "hidden"), ("slides.pptx", "unsupported")]
    texts = " ".join(t for (t,) in _rows(home, "SELECT text FROM chunks"))
    assert "team: sre" not in texts and "Restart the worker pool" in texts
    assert "Pricing" not in texts and "ACME" not in texts and "cache TTL" in texts
    meta = {n: json.loads(m) for n, m in _rows(home, "SELECT metadata->>'name', metadata FROM documents")}
    assert meta["fm.md"]["team"] == "sre" and meta["fm.md"]["year"] == 2024 and meta["fm.md"]["owner"] == "ops"
    assert meta["page.html"]["tier"] == 1
    hits = json.loads(run_cli("search", "restart", "--mode", "bm25", "--filter", "team=sre", "--json", home=home).stdout)["results"]
    assert [h["name"] for h in hits] == ["fm.md"]
    bad = run_cli("ingest", docs, "--meta", "novalue", home=home)
    assert bad.returncode == 4 and "--meta 'novalue' is not key=value" in bad.stderr
