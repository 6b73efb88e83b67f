#!/usr/bin/env python3
"""Writers recording events at once against a running server: p50 and p99 of
`recordEngagement` and the writes per second, for accounts `acct-NNNNN` of
`stagefit generate-engagement` and assets `s-NNNNNNN` of `stagefit generate`.

    benches/write_burst.py URL WRITERS WRITES_EACH
"""
import json
import sys
import threading
import time
import urllib.request

url, writers, each = sys.argv[1].rstrip("/") + "/graphql", int(sys.argv[2]), int(sys.argv[3])
errors, latencies = [], []


def writer(t):
    for i in range(each):
        n = t * 1000 + i
        account = "acct-%05d" % ((n * 7919) % 10000)
        asset = "s-%07d" % ((n * 104729) % 10000)
        query = 'mutation { recordEngagement(event: { accountId: "%s", assetId: "%s", kind: VIEW }) { recorded } }' % (account, asset)
        started = time.time()
        request = urllib.request.Request(url, json.dumps({"query": query}).encode(), {"content-type": "application/json"})
        answer = json.load(urllib.request.urlopen(request))
        latencies.append(time.time() - started)
        if "errors" in answer:
            errors.append(answer["errors"][0]["message"])


began = time.time()
threads = [threading.Thread(target=writer, args=(t,)) for t in range(writers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - began
latencies.sort()
print(f"{len(latencies)} writes by {writers} writers: p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
      f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, {len(latencies) / elapsed:.0f} writes/s, "
      f"{len(errors)} errors {sorted(set(errors))[:2]}")
