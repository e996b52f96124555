"""Vector search speed and memory at scale: every aiwb mode against numpy float32 brute force, measured in the same run.

    .venv/bin/python bench/search_speed.py [--sizes 100000,1000000] [--queries 50] [--hnsw-max 100000] [--pg-max 100000]

Synthetic clustered, embedding-like unit vectors (384 dims; 1,000 clusters, each point ~0.7 cosine from its centre)
are written to a DuckDB store through Arrow — the store of record — and every mode reads them from there (through
the memory-mapped sidecar matrix that `aiwb.data.vectors.vector_index` writes once per corpus version). Queries are
fresh draws from the same distribution. recall@10 is against the exact top-10 computed from the generated data.

`search()` end to end is the whole call with the query vector given (as after `embed`): the corpus version check,
the kernel, and the 10 result rows read from the sidecar (`chunk_sources`), beside the DuckDB join that fetched them
before. The pgvector rows (up to `--pg-max` rows) copy the same chunks into a throwaway PostgreSQL 15 + pgvector
server on 127.0.0.1 (started as tests/test_pgvector.py does; `make pgvector` installs the extension) and time
`PgVectorStore.search` exact and through its HNSW index, so the cost of moving past one machine shows per query.

Latency is the median over the queries (single) and the per-query time of one batch of all queries (batched). The
numpy baseline is a plain in-memory float32 copy of the matrix; it is timed interleaved with every mode (query by
query, or batch by batch) because other processes share this machine, and each ×numpy ratio is to the numpy timings
taken beside that mode.

Memory is measured where it matters: in fresh processes that only open the store and serve queries (the bench
process also generated the data, ran numpy and held a copy of everything). "cold" builds the sidecar from DuckDB;
"warm" maps the sidecar that exists; "binary only" serves just the binary mode. RSS = anonymous + file-backed
resident pages (mapped sidecar pages count once they are touched).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIM = 384


def mem() -> dict[str, float]:
    "VmRSS, RssAnon, RssFile and the peak VmHWM of this process, in MB (Linux)."
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"): out[k] = int(v.split()[0]) / 1024
    return out


def clustered(n: int, rng, centres, noise: float = 1.0, block: int = 100_000):
    "n unit vectors around random `centres`, generated in blocks (float32 throughout)."
    import numpy as np
    out = np.empty((n, DIM), np.float32)
    for i in range(0, n, block):
        m = min(block, n - i)
        x = centres[rng.integers(0, len(centres), m)] + rng.standard_normal((m, DIM), dtype=np.float32) * (noise / DIM ** 0.5)
        out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def recall(found, truth) -> float:
    import numpy as np
    return float(np.mean([len(set(map(int, a)) & set(map(int, b))) / len(b) for a, b in zip(found, truth)]))


def id_numbers(vi):
    "The generation index of each row of `vi` (ids are 'c%08d')."
    import numpy as np
    return np.char.replace(np.asarray(vi.ids), "c", "").astype(np.int64)


SERVE = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[5])
from search_speed import id_numbers, mem, recall
from aiwb.core import connect, load_config
from aiwb.data.vectors import vector_index
home, q, truth, modes = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3]), sys.argv[4].split(",")
out = {"start": mem()}
con = connect(config=load_config(env={"AIWB_HOME": home}), read_only=True)
t = time.perf_counter(); vi = vector_index(con); out["open_s"] = time.perf_counter() - t
out["open"], out["layout"] = mem(), (vi.path.name.split("-")[-1] if vi.path else "memory")
num = id_numbers(vi)
runs = {"exact": (lambda v: vi.search(v, 10), 10), "ivf": (lambda v: vi.search_ivf(v, 10, nprobe=32), len(q)),
        "binary": (lambda v: vi.search_quantised(v, 10, kind="binary"), len(q)),
        "int8": (lambda v: vi.search_quantised(v, 10, kind="int8", oversample=4), 10)}
for mode in modes:
    f, nq = runs[mode]
    t = time.perf_counter(); f(q[0]); first = time.perf_counter() - t  # builds codes that are not on disk yet
    ts, found = [], []
    for v in q[:nq]:
        t = time.perf_counter(); p, _ = f(v); ts.append(time.perf_counter() - t); found.append(num[p])
    out[mode] = dict(ms=float(np.median(ts)) * 1000, first_s=first, recall=recall(found, truth[:nq]), mem=mem())
out["end"] = mem()
print("RESULT " + json.dumps(out), flush=True)
"""


def serve(home: Path, n: int, modes: str) -> dict:
    "Run SERVE in a fresh process; its measurements."
    res = subprocess.run([sys.executable, "-c", SERVE, str(home / f"n{n}"), str(home / f"q{n}.npy"), str(home / f"t{n}.npy"),
                          modes, str(Path(__file__).resolve().parent)], capture_output=True, text=True, cwd=REPO)
    found = [line[line.index("RESULT "):] for line in res.stdout.splitlines() if "RESULT " in line]  # after any progress bar
    if res.returncode != 0 or not found:
        sys.exit(f"the serving process failed (exit {res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return json.loads(found[0][len("RESULT "):])


def pgvector_rows(con, n: int, queries, truth, paired) -> list[tuple]:
    "The same chunks in PostgreSQL 15 + pgvector (a throwaway local server, as tests/test_pgvector.py starts): exact and HNSW."
    from aiwb.data.pgvector import PgVectorStore, pg_missing, temporary_postgres
    why = pg_missing()
    if why:
        return [(n, "pgvector", None, None, None, None, None, f"not measured: {why}")]
    out = []
    by_id = lambda hits: [int(h.chunk_id[1:]) for h in hits]
    with temporary_postgres() as dsn, PgVectorStore(dsn) as pg:
        pg.con.execute("SET maintenance_work_mem = '2GB'")  # the HNSW graph is built in memory (default 64 MB: far slower)
        t = time.perf_counter(); pg.sync_from(con); sync_s = time.perf_counter() - t
        for exact, ef, label in ((True, 0, "exact (seq scan)"), (False, 40, "hnsw ef_search=40"), (False, 100, "hnsw ef_search=100")):
            s, _, r = paired(lambda q: pg.search("q", k=10, query_vector=q, exact=exact, ef_search=ef), None,
                             min(len(queries), 20) if exact else len(queries), by_id)
            note = f"sync (COPY + HNSW m=16 build) {sync_s:.0f} s; server defaults, 127.0.0.1" if exact else ""
            out.append((n, f"pgvector {label}", s[0], s[0] / s[1], None, None, r, note))
    return out


def fmt_mem(m: dict) -> str:
    return f"RSS {m['VmRSS']:.0f} MB (anon {m['RssAnon']:.0f}, file {m['RssFile']:.0f})"


def run_size(n: int, nq: int, hnsw_max: int, pg_max: int, home: Path) -> list[tuple]:
    import numpy as np
    import pyarrow as pa
    sys.path.insert(0, str(REPO))
    from aiwb.core import connect, load_config
    from aiwb.data.vectors import _checksum_ok, _file_crcs, vector_index
    from aiwb.data.search import _with_ids, chunk_sources, hnsw_index, search, vector_literal

    rng = np.random.default_rng(n)
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = clustered(n, rng, centres)
    queries = clustered(nq, rng, centres)
    rows = []

    # the store of record: DuckDB, loaded through Arrow
    cfg = load_config(env={"AIWB_HOME": str(home / f"n{n}")})
    con = connect(config=cfg)
    t = time.perf_counter()
    ids = pa.array([f"c{i:08d}" for i in range(n)])
    tbl = pa.table({"chunk_id": ids, "doc_id": ids, "position": pa.array(np.zeros(n, np.int32)),
                    "text": pa.array([""] * n), "n_tokens": pa.array(np.zeros(n, np.int32)),
                    "metadata": pa.array(["{}"] * n),
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)})
    con.register("_bulk", tbl)
    con.execute(f"INSERT INTO chunks SELECT chunk_id, doc_id, position, text, n_tokens, metadata, embedding::FLOAT[{DIM}] FROM _bulk")
    con.unregister("_bulk"); del tbl, ids
    con.execute("INSERT OR REPLACE INTO corpus_state VALUES ('version', ?)", [f"synthetic-{n}"])
    con.execute("CHECKPOINT")
    load_s = time.perf_counter() - t
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    np.save(home / f"q{n}.npy", queries); np.save(home / f"t{n}.npy", truth)
    del x  # from here on, only what aiwb holds
    con.close()

    # a fresh process that opens the store for the first time: it writes the sidecar from DuckDB
    cold = serve(home, n, "exact")

    con = connect(config=cfg)
    t = time.perf_counter(); vi = vector_index(con); open_s = time.perf_counter() - t
    assert vi.path is not None, "the sidecar was not written"
    base = np.array(vi.matrix)  # numpy's own in-memory float32 copy: the baseline, not what aiwb serves from
    num = id_numbers(vi)

    def np_one(q):
        s = base @ q; p = np.argpartition(-s, 9)[:10]; return p[np.argsort(-s[p])]

    def np_batch(qs):
        s = qs @ base.T; p = np.argpartition(-s, 9, axis=1)[:, :10]
        return np.take_along_axis(p, np.argsort(-np.take_along_axis(s, p, 1), axis=1), 1)

    def paired(one, batch=None, nq_=nq, rows_of=None):
        "Median single-query ms of `one` and numpy, interleaved query by query; batched ms/query of both; recall of `one`."
        rows_of = rows_of or (lambda p: num[p])  # positions in the index -> generation indices
        one(queries[0]); np_one(queries[0])  # warm
        t_m, t_np, found = [], [], []
        for i in range(nq_):
            t = time.perf_counter(); p = one(queries[i]); t_m.append(time.perf_counter() - t); found.append(rows_of(p))
            t = time.perf_counter(); np_one(queries[i]); t_np.append(time.perf_counter() - t)
        single = (float(np.median(t_m)) * 1000, float(np.median(t_np)) * 1000)
        bat = None
        if batch is not None:
            b_m, b_np = [], []
            for _ in range(2):
                t = time.perf_counter(); batch(queries); b_m.append(time.perf_counter() - t)
                t = time.perf_counter(); np_batch(queries); b_np.append(time.perf_counter() - t)
            bat = (min(b_m) * 1000 / nq, min(b_np) * 1000 / nq)
        return single, bat, recall(found, truth[:nq_])

    def add(name, single, bat, rec, note=""):
        b1, b2 = (bat[0], bat[0] / bat[1]) if bat else (None, None)
        rows.append((n, name, single[0], single[0] / single[1], b1, b2, rec, note))

    s, b, r = paired(lambda q: vi.search(q, 10)[0], lambda qs: vi.search(qs, 10))
    rows.append((n, "numpy float32 brute force", s[1], 1.0, b[1], 1.0, recall([np_one(q) for q in queries], truth),
                 "in-memory copy; timed beside each mode"))
    add("exact (mapped sidecar matrix)", s, b, r, f"opened in {open_s:.2f} s (sidecar written by the cold process)")
    del base  # the baseline copy is rebuilt after IVF reorders the rows
    import gc; gc.collect()

    t = time.perf_counter(); vi.build_ivf(nlist=int(2 * n ** 0.5), iters=6, sample=min(n, 100_000)); build_s = time.perf_counter() - t
    base = np.array(vi.matrix); num = id_numbers(vi)
    for nprobe in (16, 32, 64, 128):
        s, b, r = paired(lambda q: vi.search_ivf(q, 10, nprobe=nprobe)[0], lambda qs: vi.search_ivf(qs, 10, nprobe=nprobe))
        add(f"ivf nprobe={nprobe}/{len(vi.centroids)}", s, b, r, f"build {build_s:.0f} s, written to the sidecar" if nprobe == 16 else "")

    for kind, overs in (("binary", (20, 50, 100)), ("int8", (2, 4))):
        t = time.perf_counter(); vi.quantise(kind); q_s = time.perf_counter() - t
        for over in overs:
            nq_ = nq if kind == "binary" else min(nq, 20)
            s, b, r = paired(lambda q: vi.search_quantised(q, 10, kind=kind, oversample=over)[0],
                             (lambda qs: vi.search_quantised(qs, 10, kind=kind, oversample=over)) if kind == "binary" else None, nq_)
            mb = vi.memory()[kind] / 1e6
            add(f"{kind} oversample={over} + float32 rescore", s, b, r,
                f"codes {mb:.0f} MB (float32 {vi.memory()['matrix'] / 1e6:.0f} MB), built in {q_s:.1f} s" if over == overs[0] else "")

    by_id = lambda hits: [int(h.chunk_id[1:]) for h in hits]
    e2e = (("vector", {}, "exact"), ("ivf", {"nprobe": 32}, "ivf nprobe=32"), ("binary", {}, "binary oversample=100"),
           ("int8", {"oversample": 4}, "int8 oversample=4"))
    for mode, kw, label in e2e:
        s, _, r = paired(lambda q: search(con, "q", k=10, mode=mode, query_vector=q, **kw), None,
                         nq if mode != "int8" else min(nq, 20), by_id)
        add(f"search() end to end: {label}", s, None, r,
            "query vector given; rows from the sidecar, no DuckDB query when the store is unchanged" if mode == "vector" else "")
    # what fetching the 10 result rows costs: from the sidecar now, by a join in DuckDB before
    ten = [str(i) for i in vi.ids[:10]]
    fetch = lambda: chunk_sources(con, ten, [0.0] * 10)
    join = lambda: _with_ids(con, ten, "SELECT c.chunk_id, c.doc_id, c.text, c.metadata FROM chunks c JOIN _aiwb_ids USING (chunk_id) ORDER BY rank")
    for name, f in (("fetch 10 rows: chunk_sources (sidecar)", fetch), ("fetch 10 rows: DuckDB join (the old path)", join)):
        f(); ts = []
        for _ in range(50):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        rows.append((n, name, float(np.median(ts)) * 1000, None, None, None, None, ""))
    # what checking every sidecar file against its checksum costs (done once per process when a sidecar is opened)
    files = [f for f in vi.path.iterdir() if f.suffix not in (".crc", ".ok") and f.name != "meta.json"]
    size = sum(f.stat().st_size for f in files)
    t = time.perf_counter(); [_file_crcs(f) for f in files]; crc_s = time.perf_counter() - t
    rows.append((n, "sidecar checksums: every byte", crc_s * 1000, None, None, None, None,
                 f"{len(files)} files, {size / 1e9:.2f} GB at {size / crc_s / 1e9:.1f} GB/s (page cache): a file's first check"))
    ok = all(_checksum_ok(f) for f in files)  # stamps the files that pass
    t = time.perf_counter(); ok = ok and all(_checksum_ok(f) for f in files); st_s = time.perf_counter() - t
    rows.append((n, "sidecar checksums: unchanged files", st_s * 1000, None, None, None, None,
                 f"stat against the stamp of the last full check; ok={ok}"))
    sql = "SELECT chunk_id FROM chunks ORDER BY array_cosine_distance(embedding, {}) LIMIT 10"
    def db_one(q): return [int(r[0][1:]) for r in con.execute(sql.format(vector_literal(q))).fetchall()]
    nsql = 5 if n > 200_000 else 10
    s, _, r = paired(db_one, None, nsql, lambda p: p)
    add("DuckDB SQL brute force", s, None, r, f"{nsql} queries")
    if n <= hnsw_max:
        t = time.perf_counter(); hnsw_index(con, m=16, ef_construction=128); hb = time.perf_counter() - t
        for ef in (64, 256):
            con.execute(f"SET hnsw_ef_search = {ef}")
            s, _, r = paired(db_one, None, nq, lambda p: p)
            rows.append((n, f"hnsw (DuckDB vss) ef_search={ef}", s[0], s[0] / s[1], None, None, r, f"build {hb:.0f} s" if ef == 64 else ""))
    else:
        rows.append((n, "hnsw (DuckDB vss)", None, None, None, None, None, f"not built above {hnsw_max:,} rows"))
    if n <= pg_max:
        rows += pgvector_rows(con, n, queries, truth, paired)
    m = mem()
    rows.append((n, "bench process", None, None, None, None, None,
                 f"{fmt_mem(m)}, peak {m['VmHWM']:.0f} MB: generated, inserted, held numpy copies; DuckDB load {load_s:.0f} s"))
    con.close()
    del base, vi

    # fresh processes that only serve queries from the store: their memory is what a user's process costs
    warm = serve(home, n, "exact,ivf,binary,int8")
    only = serve(home, n, "binary")
    rows.append((n, "serving, cold: exact", cold["exact"]["ms"], None, None, None, cold["exact"]["recall"],
                 f"sidecar written from DuckDB in {cold['open_s']:.1f} s; then {fmt_mem(cold['open'])}; "
                 f"after queries {fmt_mem(cold['end'])}; peak {cold['end']['VmHWM']:.0f} MB"))
    rows.append((n, "serving, warm: open", None, None, None, None, None,
                 f"mapped the {warm['layout']} sidecar in {warm['open_s']:.2f} s: {fmt_mem(warm['open'])}"))
    for mode, label in (("exact", "exact"), ("ivf", "ivf nprobe=32"), ("binary", "binary oversample=100"), ("int8", "int8 oversample=4")):
        w = warm[mode]
        rows.append((n, f"serving, warm: {label}", w["ms"], None, None, None, w["recall"], f"after it: {fmt_mem(w['mem'])}"))
    rows.append((n, "serving, warm: all four modes", None, None, None, None, None, f"peak {warm['end']['VmHWM']:.0f} MB"))
    rows.append((n, "serving, binary only", only["binary"]["ms"], None, None, None, only["binary"]["recall"],
                 f"{fmt_mem(only['end'])}, peak {only['end']['VmHWM']:.0f} MB"))
    shutil.rmtree(home / f"n{n}", ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--hnsw-max", type=int, default=100_000, help="build HNSW only up to this many rows (it is slow)")
    ap.add_argument("--pg-max", type=int, default=100_000, help="measure the pgvector store only up to this many rows")
    args = ap.parse_args()
    import numpy as np
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i.get('internal_api')} {i.get('architecture', '')} x{i.get('num_threads')}" for i in threadpool_info())
    except ImportError:
        blas = "?"
    print(f"numpy {np.__version__}; BLAS: {blas}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    print(f"| {'n':>9} | {'mode':38s} | single ms | ×numpy | batched ms/q | ×numpy | recall@10 | notes |")
    print(f"|{'-' * 11}|{'-' * 40}|-----------|--------|--------------|--------|-----------|-------|")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for n in [int(s) for s in args.sizes.split(",")]:
            for n_, name, one, r1, bat, rb, rec, note in run_size(n, args.queries, args.hnsw_max, args.pg_max, Path(d)):
                f = lambda v, spec: " " * len(format(0.0, spec)) if v is None else format(v, spec)
                print(f"| {n_:9,d} | {name:38s} | {f(one, '9.2f')} | {f(r1, '5.2f')}{' ' if r1 is None else '×'} | "
                      f"{f(bat, '12.2f')} | {f(rb, '5.2f')}{' ' if rb is None else '×'} | {f(rec, '9.3f')} | {note} |", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
