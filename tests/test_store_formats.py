"""A folder of mixed formats ingests into one store; bad files are reported, not fatal; user metadata reaches filters."""
import json

from aiwb.core import connect, load_config
from aiwb.data.filters import F
from aiwb.data.search import search
from aiwb.data.store import ingest
from tiny_pdf import tiny_pdf


def test_mixed_folder(tmp_path):
    docs = tmp_path / "docs"; (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Retries\nRetries back off exponentially with jitter.")
    (docs / "b.html").write_text("<html><head><title>Breakers</title></head><body><p>A circuit breaker opens after failures.</p></body></html>")
    tiny_pdf(docs / "sub" / "c.pdf", ["Bulkheads isolate pools of resources."], title="Bulkheads")
    (docs / "d.jsonl").write_text(json.dumps({"_id": "x1", "title": "Queues", "text": "Queues absorb bursts.", "year": 2020}) + "\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    (docs / ".hidden.md").write_text("# Hidden\nnot ingested")
    cfg = load_config(env={"AIWB_HOME": str(tmp_path / "home")})
    con = connect(config=cfg)
    r = ingest(con, docs, cfg, metadata={"team": "sre"})
    assert sorted(r.added) == ["a.md", "b.html", "d.jsonl#x1", "sub/c.pdf"]
    assert len(r.errors) == 1 and "broken.pdf" in r.errors[0][0] and "not a readable PDF" in r.errors[0][1]
    titles = dict(con.execute("SELECT metadata->>'name', title FROM documents").fetchall())
    assert titles == {"a.md": "Retries", "b.html": "Breakers", "sub/c.pdf": "Bulkheads", "d.jsonl#x1": "Queues"}
    hits = search(con, "what isolates resource pools?", k=1)
    assert hits[0].doc_id == str((docs / "sub" / "c.pdf").resolve()) and hits[0].metadata["team"] == "sre"
    assert hits[0].metadata["name"] == "sub/c.pdf"
    hits = search(con, "bursts", k=4, mode="bm25", filters=(F("year") >= 2020) & (F("team") == "sre"))
    assert [h.metadata["name"] for h in hits] == ["d.jsonl#x1"]
    con.close()
