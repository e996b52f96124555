"""The semantic cache's verifier refuses questions that ask for something else (issue 9, item 8)."""
import csv

import pytest

from aiwb.reliability.cache import near_miss_reason

from conftest import ROOT

PAIRS = list(csv.DictReader(open(ROOT / "bench" / "near_miss_pairs.tsv", encoding="utf-8"), delimiter="\t"))


def test_the_pair_file_is_large_and_varied():
    kinds = {r["kind"] for r in PAIRS}
    assert len(PAIRS) >= 80 and {"modifier", "qtype", "quantity", "negation", "direction"} <= kinds


@pytest.mark.parametrize("row", PAIRS, ids=[f"{r['kind']}-{i}" for i, r in enumerate(PAIRS)])
def test_every_near_miss_pair_is_refused(row):
    assert near_miss_reason(row["query"], row["cached"]), (row["cached"], row["query"])


@pytest.mark.parametrize("a, b, reason", [
    ("What happens when the circuit breaker is open?", "What happens when the circuit breaker is half-open?", "modifier"),
    ("How many attempts does the retry policy make?", "How long does the retry policy wait between attempts?",
     "question type"),
    ("How many tokens fit in a chunk?", "How many chunks fit in a document?", "quantity"),
    ("What is the timeout in seconds?", "What is the timeout in milliseconds?", "unit"),
    ("Is the request retried when the server returns 500?", "Is the request retried unless the server returns 500?",
     "negation"),
    ("How do I enable tracing?", "How do I disable tracing?", "direction"),
])
def test_reasons(a, b, reason):
    assert near_miss_reason(a, b) == reason and near_miss_reason(b, a) == reason


@pytest.mark.parametrize("a, b", [
    ("How do I reset my password?", "How can I reset my password?"),
    ("Is the client thread-safe?", "Is the client thread safe?"),
    ("How many retries are allowed?", "How many retry attempts are allowed?"),
    ("When does the nightly job run?", "What time does the nightly job run?"),
    ("How long does a retry take?", "How much time does a retry take?"),
    ("What is the max batch size?", "What is the maximum batch size?"),
    ("What does the circuit breaker do?", "What does the circuit breaker do exactly?"),
])
def test_paraphrases_still_hit(a, b):
    assert near_miss_reason(a, b) == ""
