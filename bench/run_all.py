"""Run every benchmark in bench/ in turn (`make bench`). Each one also runs alone: python bench/<name>.py"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [("overhead.py", []), ("faults.py", []), ("semantic_cache.py", []), ("retrieval.py", []),
           ("search_speed.py", []), ("ingest_speed.py", []),
           ("cold_start.py", []), ("browser.py", [])]

if __name__ == "__main__":
    failed = []
    for name, args in BENCHES:
        print(f"\n=== bench/{name} ===", flush=True)
        if subprocess.call([sys.executable, str(HERE / name), *args]) != 0: failed.append(name)
    if failed: sys.exit(f"failed: {', '.join(failed)}")
