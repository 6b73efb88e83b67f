#!/usr/bin/env python3
"""Search latency of costly query shapes, over HTTP, against a running server.

    python3 benches/hostile_search.py PORT

The server must serve the reference library (`../shared/bench/reference_library.py
100000`, imported) without a key, e.g. `stagefit serve --addr 127.0.0.1:PORT
--response-cache-mb 0`. Prints the median of seven requests for each query: the
library's 32 commonest words plain, the same words as 16 hyphenated pairs (each pair a
phrase candidate), four pairs, two ordinary queries and one hyphenated pair.
"""

import json
import statistics
import sys
import time
import urllib.request

COMMON = [
    "payment", "settlement", "reconciliation", "invoice", "integration", "api", "sdk",
    "security", "signature", "compliance", "roi", "cost", "pricing", "trial", "demo",
    "onboarding", "adoption", "training", "analytics", "dashboard", "automation",
    "procurement", "workflow", "risk", "finance", "audit", "governance", "cloud",
    "migration", "data", "privacy", "webhook",
]


def timed(port, text):
    body = json.dumps({
        "query": "query($q: String!) { search(query: $q, first: 5) { noGoodMatch items { asset { id } } } }",
        "variables": {"q": text},
    }).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", body, {"content-type": "application/json"})
    start = time.perf_counter()
    urllib.request.urlopen(request).read()
    return (time.perf_counter() - start) * 1000


def main():
    port = sys.argv[1]
    pairs = [f"{COMMON[i]}-{COMMON[i + 1]}" for i in range(0, 32, 2)]
    queries = [
        " ".join(COMMON),
        " ".join(pairs),
        " ".join(pairs[:4]),
        "payment reconciliation",
        "out-of-order payment",
        "payment-settlement",
    ]
    for text in queries:
        median = statistics.median(timed(port, text) for _ in range(7))
        print(f"{median:8.2f} ms  {text[:70]}")


if __name__ == "__main__":
    main()
