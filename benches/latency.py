#!/usr/bin/env python3
"""Request latency of one stagefit build on one library, over HTTP, one request at a time.

    python3 benches/latency.py BINARY LIBRARY.jsonl [PORT]

Imports the library into a temporary SQLite database and index, starts `BINARY serve`
without the response cache and with the rate limits raised, warms up, then prints p50 and
p90 of `recommendations` for 64 audiences (4 stages x 4 roles x no industry, healthcare,
retail; four rounds), without and with the query "payment reconciliation", and of
`nextContent` after 100 seeds (the library's first 2,000 ids, every 20th; two rounds).
Only the standard library; the client runs on the same machine, so a few tenths of a
millisecond of each figure are its own.
"""

import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def main():
    binary, library = sys.argv[1], sys.argv[2]
    port = sys.argv[3] if len(sys.argv) > 3 else "18201"
    storage = tempfile.mkdtemp(prefix="stagefit-latency-")
    env = dict(os.environ,
               STAGEFIT_DATABASE_URL=f"sqlite://{storage}/db?mode=rwc",
               STAGEFIT_INDEX_DIR=f"{storage}/index")
    subprocess.run([binary, "import", library], env=env, capture_output=True, check=True)
    server = subprocess.Popen(
        [binary, "serve", "--addr", f"127.0.0.1:{port}", "--response-cache-mb", "0",
         "--rate-per-key", "1000000", "--rate-per-client", "1000000",
         "--burst-per-client", "1000000"],
        env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/graphql"

    def timed(query, variables):
        body = json.dumps({"query": query, "variables": variables}).encode()
        started = time.perf_counter()
        urllib.request.urlopen(urllib.request.Request(
            url, data=body, headers={"content-type": "application/json"})).read()
        return (time.perf_counter() - started) * 1000

    try:
        for _ in range(100):
            try:
                timed("{ __typename }", {})
                break
            except OSError:
                time.sleep(0.1)
        recommend = ("query($a: AudienceInput!, $t: String) { recommendations(audience: $a, "
                     "first: 10, query: $t) { items { asset { id } } } }")
        audiences = []
        for stage, role, industry in itertools.product(
                ["AWARENESS", "CONSIDERATION", "DECISION", "ADOPTION"],
                ["DECISION_MAKER", "TECHNICAL_INTEGRATOR", "FINANCE", "BUSINESS_USER"],
                [None, "healthcare", "retail"]):
            audience = {"stage": stage, "role": role}
            if industry:
                audience["industry"] = industry
            audiences.append(audience)
        for text in [None, "payment reconciliation"]:
            for a in audiences[:8]:
                timed(recommend, {"a": a, "t": text})
            times = [timed(recommend, {"a": a, "t": text}) for a in audiences * 4]
            report(f"recommendations, {'text' if text else 'no text'}", times)
        with open(library) as lines:
            seeds = [json.loads(line)["id"] for _, line in zip(range(2000), lines)][::20]
        after = ("query($i: ID!) { nextContent(afterAssetId: $i, first: 5) "
                 "{ items { asset { id } } } }")
        for seed in seeds[:10]:
            timed(after, {"i": seed})
        report("nextContent", [timed(after, {"i": s}) for s in seeds * 2])
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(storage, ignore_errors=True)


def report(what, times):
    p90 = statistics.quantiles(times, n=10)[8]
    print(f"{what}: p50 {statistics.median(times):.2f} ms, p90 {p90:.2f} ms")


if __name__ == "__main__":
    main()
