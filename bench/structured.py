"""Structured output under faults: 300 requests for a pydantic object through the real Anthropic and OpenAI SDKs
against the local wire-protocol server, which breaks the JSON answers on a seeded schedule (truncated JSON, a
missing field, an extra field, a wrong type, JSON wrapped in prose, a refusal).

Two configurations see the same schedule (fresh servers, same seed):

  * no repair (baseline)  `complete_structured(..., max_repairs=0)`: parse leniently, validate, no second chance
  * repair (default)      up to 2 repair turns: the model sees its output and pydantic's errors

Target (issue 11): 100 % schema-valid or a typed error (`StructuredOutputError`), nothing else.

    python bench/structured.py            # 300 requests, seed 0
    python bench/structured.py --n 1000 --seed 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel, ConfigDict  # noqa: E402

from aiwb.orchestration.structured import StructuredOutputError, complete_structured  # noqa: E402
from aiwb.providers.anthropic import AnthropicProvider  # noqa: E402
from aiwb.providers.fakes import STRUCTURED_FAULTS, FaultSchedule, LocalLLMServer  # noqa: E402
from aiwb.providers.openai import OpenAIProvider  # noqa: E402

KEY = "sk-bench-structured-key"
RATES = {f: 0.08 for f in STRUCTURED_FAULTS}  # 48 % of answers broken, 8 % of them each way


class Finding(BaseModel):
    "The object asked for: strict, so an extra field is an error too."
    model_config = ConfigDict(extra="forbid")
    answer: str
    confidence: float
    sources: list[str]


def run(n: int, seed: int, max_repairs: int) -> dict:
    "Send `n` requests, alternating protocols; count valid objects, typed errors, anything else, attempts, repairs."
    servers = [LocalLLMServer(FaultSchedule(seed + k, RATES), api_key=KEY).start() for k in range(2)]
    providers = [AnthropicProvider(api_key=KEY, base_url=servers[0].url, timeout=5),
                 OpenAIProvider(api_key=KEY, base_url=servers[1].url + "/v1", timeout=5)]
    out = {"valid": 0, "typed": 0, "other": 0, "attempts": [], "repairs": 0, "ms": [], "kinds": {}}
    for i in range(n):
        t0 = time.perf_counter()
        try:
            r = complete_structured(providers[i % 2], Finding, f"What does finding {i} say?", max_repairs=max_repairs)
            assert isinstance(r.value, Finding)
            out["valid"] += 1
            out["attempts"].append(r.attempts)
            out["repairs"] += r.repairs
        except StructuredOutputError as e:
            out["typed"] += 1
            out["attempts"].append(e.attempts)
            out["repairs"] += e.attempts - 1
            out["kinds"][e.kind] = out["kinds"].get(e.kind, 0) + 1
        except Exception:
            out["other"] += 1
        out["ms"].append((time.perf_counter() - t0) * 1000)
    out["calls"] = sum(len(s.log) for s in servers)
    for s in servers:
        s.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = [("no repair (baseline)", run(args.n, args.seed, 0)), ("repair, max_repairs=2", run(args.n, args.seed, 2))]
    print(f"\n{args.n} requests per configuration (Anthropic and OpenAI alternating), seed {args.seed}; faults per "
          "answer: " + ", ".join(f"{k} {v:.0%}" for k, v in RATES.items()) + "\n")
    head = (f"{'configuration':<24}{'valid':>8}{'typed err':>10}{'other':>7}{'sum':>7}{'attempts/req':>13}"
            f"{'repairs':>9}{'calls':>7}{'p50 ms':>8}  typed errors by kind")
    print(head)
    print("-" * len(head))
    base = rows[0][1]["valid"] or 1
    for name, r in rows:
        n = args.n
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items()))
        print(f"{name:<24}{r['valid'] / n:>8.1%}{r['typed'] / n:>10.1%}{r['other'] / n:>7.1%}"
              f"{(r['valid'] + r['typed']) / n:>7.0%}{statistics.mean(r['attempts']):>13.2f}{r['repairs']:>9}"
              f"{r['calls']:>7}{statistics.median(r['ms']):>8.1f}  {kinds}")
    print(f"\nvalid objects, repair vs no repair: {rows[1][1]['valid'] / base:.2f}x")
    ok = all(r["other"] == 0 and r["valid"] + r["typed"] == args.n for _, r in rows)
    print(("met   " if ok else "MISSED") + " 100 % schema-valid or a typed error, in both configurations")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
