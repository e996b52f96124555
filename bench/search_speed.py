"""Vector search speed at scale: every aiwb mode against numpy float32 brute force, measured in the same run.

    .venv/bin/python bench/search_speed.py [--sizes 100000,1000000] [--queries 50] [--hnsw-max 100000]

Synthetic clustered, embedding-like unit vectors (384 dims; 1,000 clusters, each point ~0.7 cosine from its centre)
are written to a DuckDB store through Arrow — the store of record — and every mode reads them from there. Queries
are fresh draws from the same distribution. recall@10 is against exact top-10. Latency is the median over the
queries (single) and the per-query time of one batch of all queries (batched).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIM = 384


def rss_mb() -> float:
    "Current resident set size in MB (Linux)."
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def clustered(n: int, rng, centres, noise: float = 1.0, block: int = 100_000):
    "n unit vectors around random `centres`, generated in blocks (float32 throughout)."
    import numpy as np
    out = np.empty((n, DIM), np.float32)
    for i in range(0, n, block):
        m = min(block, n - i)
        x = centres[rng.integers(0, len(centres), m)] + rng.standard_normal((m, DIM), dtype=np.float32) * (noise / DIM ** 0.5)
        out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed(fn, reps):
    import numpy as np
    ts = []
    for r in reps:
        t = time.perf_counter(); fn(r); ts.append(time.perf_counter() - t)
    return float(np.median(ts)) * 1000


def recall(found, truth) -> float:
    import numpy as np
    return float(np.mean([len(set(map(int, a)) & set(map(int, b))) / len(b) for a, b in zip(found, truth)]))


SERVE = """
import json, os, resource, sys, time
import numpy as np
from aiwb.core import connect, load_config
from aiwb.retrieval import vector_index
def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e6
con = connect(config=load_config(env={'AIWB_HOME': sys.argv[1]}))
q = np.load(sys.argv[2])
t = time.perf_counter(); vi = vector_index(con); read_s = time.perf_counter() - t; rss_load = rss()
ex = []
for v in q[:10]:
    t = time.perf_counter(); vi.search(v, 10); ex.append(time.perf_counter() - t)
truth = [set(vi.ids[p]) for p in vi.search(q, 10)[0]]
t = time.perf_counter(); vi.build_ivf(nlist=int(2 * len(vi) ** 0.5), iters=6); build_s = time.perf_counter() - t
iv = []
for v in q:
    t = time.perf_counter(); vi.search_ivf(v, 10, nprobe=32); iv.append(time.perf_counter() - t)
rec = float(np.mean([len(set(vi.ids[p]) & tr) / 10 for p, tr in zip(vi.search_ivf(q, 10, nprobe=32)[0], truth)]))
print('RESULT ' + json.dumps(dict(read_s=read_s, rss_load=rss_load, exact_ms=float(np.median(ex)) * 1000, build_s=build_s, rss_ivf=rss(),
                      ivf_ms=float(np.median(iv)) * 1000, ivf_recall=rec, peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3)), flush=True)
"""


def run_size(n: int, nq: int, hnsw_max: int, home: Path) -> list[tuple]:
    import numpy as np
    import pyarrow as pa
    sys.path.insert(0, str(REPO))
    from aiwb.core import connect, load_config
    from aiwb.retrieval import VectorIndex, _topk, hnsw_index, vector_index, search

    rng = np.random.default_rng(n)
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = clustered(n, rng, centres)
    queries = clustered(nq, rng, centres)
    rows = []

    # the store of record: DuckDB, loaded through Arrow
    cfg = load_config(env={"AIWB_HOME": str(home / f"n{n}")})
    con = connect(config=cfg)
    con.execute("SET memory_limit = '2GB'")
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
    del x  # from here on, only what aiwb holds

    rss0 = rss_mb()
    t = time.perf_counter(); vi = vector_index(con); read_s = time.perf_counter() - t
    mapping = {c: i for i, c in enumerate(f"c{i:08d}" for i in range(n))}
    def as_rows(pos): return [[mapping[vi.ids[p]] for p in ps] for ps in np.atleast_2d(pos)]
    # numpy float32 brute force, the baseline, over the very same matrix; timed interleaved with aiwb's exact mode so
    # both see the same machine load (other processes share these 2 cores)
    m = vi.matrix
    def np_one(q):
        s = m @ q; p = np.argpartition(-s, 9)[:10]; return p[np.argsort(-s[p])]
    def np_batch(qs):
        s = qs @ m.T; p = np.argpartition(-s, 9, axis=1)[:, :10]
        return np.take_along_axis(p, np.argsort(-np.take_along_axis(s, p, 1), axis=1), 1)
    t_np, t_ex = [], []
    for i in range(nq):
        t = time.perf_counter(); np_one(queries[i]); t_np.append(time.perf_counter() - t)
        t = time.perf_counter(); vi.search(queries[i], 10); t_ex.append(time.perf_counter() - t)
    b_np, b_ex = [], []
    for _ in range(3):
        t = time.perf_counter(); np_batch(queries); b_np.append(time.perf_counter() - t)
        t = time.perf_counter(); vi.search(queries, 10); b_ex.append(time.perf_counter() - t)
    base1, baseb = float(np.median(t_np)) * 1000, min(b_np) * 1000 / nq
    rows.append((n, "numpy float32 brute force", base1, baseb, 1.0, "same matrix, interleaved with exact"))
    pos, _ = vi.search(queries, 10)
    rows.append((n, "exact (cached matrix)", float(np.median(t_ex)) * 1000, min(b_ex) * 1000 / nq, recall(as_rows(pos), truth),
                 f"Arrow read {read_s:.1f} s, +{rss_mb() - rss0:.0f} MB"))

    t = time.perf_counter(); vi.build_ivf(nlist=int(2 * n ** 0.5), iters=6, sample=min(n, 100_000)); build_s = time.perf_counter() - t
    for nprobe in (16, 32, 64, 128):
        pos, _ = vi.search_ivf(queries, 10, nprobe=nprobe)
        r = recall(as_rows(pos), truth)
        iv1 = timed(lambda i: vi.search_ivf(queries[i], 10, nprobe=nprobe), range(nq))
        t = time.perf_counter(); vi.search_ivf(queries, 10, nprobe=nprobe); ivb = (time.perf_counter() - t) * 1000 / nq
        rows.append((n, f"ivf nprobe={nprobe}/{len(vi.centroids)}", iv1, ivb, r, f"build {build_s:.0f} s" if nprobe == 8 else ""))

    qv = queries[0]
    full = timed(lambda i: search(con, "q", k=10, mode="vector", query_vector=queries[i]), range(min(nq, 20)))
    rows.append((n, "search(mode='vector') end to end", full, None, None, "incl. fetching the 10 rows from DuckDB"))
    from aiwb.retrieval import vector_literal
    sql = "SELECT chunk_id FROM chunks ORDER BY array_cosine_distance(embedding, {}) LIMIT 10"
    nsql = 5 if n > 200_000 else 10
    db1 = timed(lambda i: con.execute(sql.format(vector_literal(queries[i]))).fetchall(), range(nsql))
    rows.append((n, "DuckDB SQL brute force", db1, None, 1.0, f"{nsql} queries"))
    if n <= hnsw_max:
        t = time.perf_counter(); hnsw_index(con, m=16, ef_construction=128); hb = time.perf_counter() - t
        for ef in (64, 256):
            con.execute(f"SET hnsw_ef_search = {ef}")
            found = [[mapping[r[0]] for r in con.execute(sql.format(vector_literal(q))).fetchall()] for q in queries]
            h1 = timed(lambda i: con.execute(sql.format(vector_literal(queries[i]))).fetchall(), range(nq))
            rows.append((n, f"hnsw (DuckDB vss) ef_search={ef}", h1, None, recall(found, truth), f"build {hb:.0f} s" if ef == 64 else ""))
    else:
        rows.append((n, "hnsw (DuckDB vss)", None, None, None, f"not built above {hnsw_max:,} rows (see 100k build time)"))
    rows.append((n, "memory (this bench process)", None, None, None,
                 f"RSS {rss_mb():.0f} MB, peak {peak_mb():.0f} MB: also generated, inserted and kept the data; load {load_s:.0f} s"))
    con.close()
    # a fresh process that only serves queries from the store: its memory is what a user's process costs
    import json, subprocess
    np.save(home / f"q{n}.npy", queries)
    res = subprocess.run([sys.executable, "-c", SERVE, str(home / f"n{n}"), str(home / f"q{n}.npy")], capture_output=True, text=True)
    found = [line[line.index("RESULT ") :] for line in res.stdout.splitlines() if "RESULT " in line]  # after DuckDB's progress bar
    if res.returncode != 0 or not found:
        sys.exit(f"the serving process failed (exit {res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    r = json.loads(found[0][len("RESULT "):])
    rows.append((n, "serving process: exact", r["exact_ms"], None, None,
                 f"RSS {r['rss_load']:.0f} MB after reading the store ({r['read_s']:.1f} s)"))
    rows.append((n, "serving process: ivf nprobe=32", r["ivf_ms"], None, r["ivf_recall"],
                 f"RSS {r['rss_ivf']:.0f} MB after IVF build ({r['build_s']:.0f} s), peak {r['peak']:.0f} MB"))
    base = {r[0]: (r[2], r[3]) for r in rows if r[1].startswith("numpy")}
    return [(r, base) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--hnsw-max", type=int, default=100_000, help="build HNSW only up to this many rows (it is slow)")
    args = ap.parse_args()
    import numpy as np
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i.get('internal_api')} {i.get('architecture', '')} x{i.get('num_threads')}" for i in threadpool_info())
    except ImportError:
        blas = "?"
    print(f"numpy {np.__version__}; BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}")
    print(f"| {'n':>9} | {'mode':38s} | single ms | ×numpy | batched ms/q | ×numpy | recall@10 | notes |")
    print(f"|{'-' * 11}|{'-' * 40}|-----------|--------|--------------|--------|-----------|-------|")
    with tempfile.TemporaryDirectory() as d:
        for n in [int(s) for s in args.sizes.split(",")]:
            for (n_, name, one, bat, rec, note), base in run_size(n, args.queries, args.hnsw_max, Path(d)):
                b1, bb = base[n_]
                f = lambda v, w: (f"{v:9.2f}", f"{v / w:5.2f}×") if v is not None else (" " * 9, " " * 6)
                o, orat = f(one, b1); bt, brat = f(bat, bb)
                print(f"| {n_:9,d} | {name:38s} | {o} | {orat} | {bt:>12} | {brat} | {'' if rec is None else f'{rec:.3f}':>9} | {note} |",
                      flush=True)


if __name__ == "__main__":
    main()
