#!/usr/bin/env python3
"""nextContent latency on a library, one request at a time, with and without links.

Imports LIBRARY.jsonl (optionally with --add-links N: N links to random assets of the
library added to every asset, seed 7) into a fresh temporary SQLite database and index,
serves it on 127.0.0.1:7399 (response cache off), asks nextContent after 300 random seeds
(20 warm-up requests first) and prints p50/p90/p99 and how many shown items carry a
"links to it" reason. With --import-only it prints the import's wall time instead.

Usage: python3 benches/next_links.py BINARY LIBRARY.jsonl [--add-links N] [--import-only]
e.g.   head -20000 reference-100k.jsonl > ref20k.jsonl
       python3 benches/next_links.py target/release/stagefit ref20k.jsonl
       python3 benches/next_links.py target/release/stagefit ref20k.jsonl --add-links 10
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request

QUERY = "query($id: ID!){nextContent(afterAssetId:$id, first:5){items{asset{id} reasons{detail}}}}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary")
    p.add_argument("library")
    p.add_argument("--add-links", type=int, default=0)
    p.add_argument("--import-only", action="store_true")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="stagefit-next-links-")
    try:
        lines = open(args.library, encoding="utf-8").read().splitlines()
        assets = [json.loads(line) for line in lines if line.strip()]
        library = args.library
        if args.add_links:
            rng = random.Random(7)
            urls = [a["url"] for a in assets if a.get("url")]
            for a in assets:
                a["links"] = [rng.choice(urls) for _ in range(args.add_links)]
            library = os.path.join(work, "linked.jsonl")
            with open(library, "w", encoding="utf-8") as f:
                for a in assets:
                    f.write(json.dumps(a, ensure_ascii=False) + "\n")
        env = dict(os.environ, STAGEFIT_DATABASE_URL=f"sqlite://{work}/s.db?mode=rwc",
                   STAGEFIT_INDEX_DIR=f"{work}/index")
        env.pop("STAGEFIT_LOG", None)
        started = time.perf_counter()
        subprocess.run([args.binary, "import", library], env=env, check=True, capture_output=True)
        if args.import_only:
            print(f"import of {len(assets)} assets ({args.add_links} links each): "
                  f"{time.perf_counter() - started:.2f} s")
            return
        server = subprocess.Popen([args.binary, "serve", "--addr", "127.0.0.1:7399", "--response-cache-mb", "0"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ask = lambda seed: json.load(urllib.request.urlopen(urllib.request.Request(
                "http://127.0.0.1:7399/graphql",
                data=json.dumps({"query": QUERY, "variables": {"id": seed}}).encode(),
                headers={"content-type": "application/json"})))
            for _ in range(100):
                try:
                    ask(assets[0]["id"])
                    break
                except OSError:
                    time.sleep(0.1)
            seeds = random.Random(3).sample([a["id"] for a in assets], 300)
            for seed in seeds[:20]:
                ask(seed)
            latencies, linked = [], 0
            for seed in seeds:
                t = time.perf_counter()
                answer = ask(seed)
                latencies.append((time.perf_counter() - t) * 1000)
                linked += sum(1 for item in answer["data"]["nextContent"]["items"]
                              for r in item["reasons"] if "links to it" in r["detail"])
            latencies.sort()
            pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))]
            print(f"{len(assets)} assets, {args.add_links} links each: p50 {pick(0.5):.2f} ms, "
                  f"p90 {pick(0.9):.2f} ms, p99 {pick(0.99):.2f} ms; items shown with a link reason {linked}")
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
