#!/usr/bin/env python3
"""What the embedding model costs: one stagefit build, one library, over HTTP.

    python3 benches/meaning.py BINARY LIBRARY.jsonl MODEL_DIR [PORT]

Imports the library into a temporary SQLite database and index, then:

1. starts `BINARY serve --embedding-model MODEL_DIR` and times how long the library takes
   to embed (until /readyz says `complete`): assets per second, and the server's RSS then;
2. stops it and starts it again on the same storage: the time to load the stored vectors;
3. sends `search` one request at a time: 200 distinct queries (two to four words of the
   library's titles, each sent once, so each runs the model), the same 200 again (the
   query cache answers), and the 200 with `semanticRatio: 0` (words alone); p50 and p99 of
   each; then `nextContent` and `similarAssets` (unfiltered, and filtered to the library's
   rarest content type) after 100 seeds, with the model and by words (a server started
   without the model), p50 and p99;
4. the RSS of a server on the same library without the model, for comparison.

Only the standard library; the client runs on the same machine.
"""

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, binary, env, port, extra):
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [binary, "serve", "--addr", f"127.0.0.1:{port}", "--response-cache-mb", "0",
             "--rate-per-key", "1000000", "--rate-per-client", "1000000",
             "--burst-per-client", "1000000"] + extra,
            env=env, stderr=subprocess.DEVNULL)

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=5) as r:
                return json.load(r)
        except Exception:
            return {}

    def wait(self, embedded=True, limit=7200):
        start = time.time()
        while time.time() - start < limit:
            r = self.ready()
            if r.get("status") == "ready" and (not embedded or (r.get("embeddings") or {}).get("complete")):
                return time.time() - start, r
            time.sleep(0.05)
        sys.exit("the server never got ready")

    def gql(self, query, variables):
        body = json.dumps({"query": query, "variables": variables}).encode()
        req = urllib.request.Request(self.url + "/graphql", data=body,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            answer = json.load(r)
        if answer.get("errors"):
            raise RuntimeError(answer["errors"])
        return answer["data"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


SEARCH = "query($q: String!, $r: Float) { search(query: $q, first: 10, semanticRatio: $r) { items { asset { id } } } }"
NEXT = "query($id: ID!) { nextContent(afterAssetId: $id, first: 5) { items { asset { id } } } }"
SIMILAR = ("query($id: ID!, $f: AssetFilter) { similarAssets(assetId: $id, first: 10, filter: $f) "
           "{ by items { asset { id } } } }")


def timed(server, query, variables_list):
    times = []
    for v in variables_list:
        t = time.perf_counter()
        server.gql(query, v)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main():
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    binary, library, model = sys.argv[1], sys.argv[2], sys.argv[3]
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 18301
    storage = tempfile.mkdtemp(prefix="stagefit-meaning-")
    env = dict(os.environ,
               STAGEFIT_DATABASE_URL=f"sqlite://{storage}/db?mode=rwc",
               STAGEFIT_INDEX_DIR=f"{storage}/index")
    env.pop("STAGEFIT_LOG", None)
    titles, ids = [], []
    with open(library) as f:
        for line in f:
            a = json.loads(line)
            titles.append(a.get("title", ""))
            ids.append(a["id"])
    assets = len(ids)
    subprocess.run([binary, "import", library], env=env, capture_output=True, check=True)
    rng = random.Random(7)
    words = [w for t in titles[:5000] for w in re.findall(r"[A-Za-z]{4,}", t)]
    queries = []
    seen = set()
    while len(queries) < 200:
        q = " ".join(rng.sample(words, rng.randint(2, 4))).lower()
        if q not in seen:
            seen.add(q)
            queries.append(q)
    seeds = [{"id": ids[i]} for i in range(0, min(assets, 2000), 20)][:100]
    # Chinese assets of the library's rarest content type: a filter that lets few of any
    # seed's nearest through.
    kinds = {}
    with open(library) as f:
        for line in f:
            a = json.loads(line)
            kind = a.get("content_type") or a.get("contentType")
            if kind and a.get("language") == "zh":
                kinds[kind] = kinds.get(kind, 0) + 1
    rare = min(kinds, key=lambda k: (kinds[k], k))
    narrow = [dict(v, f={"contentTypes": [rare], "languages": ["zh"]}) for v in seeds]
    s = None
    try:
        s = Server(binary, env, port, ["--embedding-model", model])
        took, ready = s.wait()
        print(f"library: {assets} assets; embedded in {took:.1f} s = {assets / took:.0f} assets/s "
              f"(computed {ready['embeddings']['computed']}); RSS {rss_mb(s.proc.pid):.0f} MB")
        s.stop()
        s = Server(binary, env, port, ["--embedding-model", model])
        took, ready = s.wait()
        print(f"restart: vectors loaded in {took:.1f} s (computed {ready['embeddings']['computed']}); "
              f"RSS {rss_mb(s.proc.pid):.0f} MB")
        for q in queries[:5]:
            s.gql(SEARCH, {"q": q + " warm", "r": None})
        p = timed(s, SEARCH, [{"q": q, "r": None} for q in queries])
        print(f"search, hybrid, distinct queries: p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        p = timed(s, SEARCH, [{"q": q, "r": None} for q in queries])
        print(f"search, hybrid, repeated queries: p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        p = timed(s, SEARCH, [{"q": q, "r": 0.0} for q in queries])
        print(f"search, words alone (semanticRatio 0): p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        p = timed(s, NEXT, seeds)
        print(f"nextContent with the model: p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        p = timed(s, SIMILAR, [dict(v, f=None) for v in seeds])
        print(f"similarAssets by meaning: p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        p = timed(s, SIMILAR, narrow)
        print(f"similarAssets by meaning, only {rare} in Chinese ({kinds[rare]} assets): "
              f"p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        s.stop()
        s = Server(binary, env, port, [])
        s.wait(embedded=False)
        p = timed(s, NEXT, seeds)
        print(f"nextContent without the model: p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        p = timed(s, SIMILAR, [dict(v, f=None) for v in seeds])
        print(f"similarAssets by words (no model): p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms")
        p = timed(s, SEARCH, [{"q": q, "r": None} for q in queries])
        print(f"search without the model: p50 {p[0]:.2f} ms, p99 {p[1]:.2f} ms; RSS {rss_mb(s.proc.pid):.0f} MB")
        s.stop()
    finally:
        # A server left running would answer the next run on this port.
        if s and s.proc.poll() is None:
            s.stop()
        shutil.rmtree(storage, ignore_errors=True)


if __name__ == "__main__":
    main()
