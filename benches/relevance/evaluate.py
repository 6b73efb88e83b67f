#!/usr/bin/env python3
"""Relevance of stagefit on real public libraries, imported untagged and judged by hand.

For each library directory below this one that holds a judgments.json (and its
assets.jsonl), it imports the library into a fresh temporary database and index with
`stagefit import`, starts `stagefit serve --addr 127.0.0.1:0` on them (no key: an open
server on loopback), and asks over GraphQL:

  stage / role   top-1 accuracy of suggestTags(assetId:) against the judged tags (no
                 suggestion counts as wrong); baseline: the first of the content type's
                 default stages
  next           NDCG@5 of nextContent(afterAssetId:) against the judged grades, the
                 audience left to the server (taken from the seed)
  audience       NDCG@5 of recommendations(audience: {stage, role, industry})
  search         NDCG@5 of search(query:), over the queries that have a judged answer;
                 the queries judged to have none are counted apart (hits returned)

NDCG@5: DCG = sum over the first five results of grade / log2(rank + 1), grades 0/1/2
(unjudged = 0), divided by the DCG of the judged grades in their best order. The seed of a
read-next case is removed from the answer before the cut (the server should never return
it anyway).

Usage: evaluate.py [--bin PATH] [--runs N] [--json] [--verbose] [--declared] [LIBRARY...]
  --declared imports the 30 judged assets of each library with their judged stage and
  role declared, so the stage and role rows measure suggestions in a partly tagged
  library: an asset's suggestion never reads its own tags (the server leaves the asset
  out of its neighbours and of what it learns), the other 29 vote.
  --runs N repeats each library on fresh storage and prints the mean of each figure and
  its range (equal scores are ordered differently from one index to the next, which moves
  the audience and read-next figures); --verbose prints the cases of the last run.
  --bin defaults to target/release/stagefit, else target/debug/stagefit (from the
  repository root). Standard library only.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
K = 5


def find_binary(given):
    if given:
        return os.path.abspath(given)
    for kind in ("release", "debug"):
        path = os.path.join(ROOT, "target", kind, "stagefit")
        if os.path.exists(path):
            return path
    sys.exit("no stagefit binary: build one or pass --bin")


def wait_for_binary(path, seconds=120):
    """The binary may be rebuilt under us: wait for it to be back."""
    deadline = time.time() + seconds
    while not os.access(path, os.X_OK):
        if time.time() > deadline:
            sys.exit(f"{path} is not there")
        time.sleep(2)


class Server:
    def __init__(self, binary, library, extra=(), declared=None):
        self.binary = binary
        self.extra = list(extra)
        # With `declared` ({asset id: (stage, role)}), those assets are imported with the
        # tags declared: a partly tagged library.
        self.declared = declared or {}
        self.dir = tempfile.mkdtemp(prefix="stagefit-relevance-")
        self.env = dict(os.environ)
        self.env.pop("STAGEFIT_LOG", None)
        self.env.pop("STAGEFIT_WEIGHTS", None)
        self.env["STAGEFIT_DATABASE_URL"] = f"sqlite://{self.dir}/stagefit.db?mode=rwc"
        self.env["STAGEFIT_INDEX_DIR"] = os.path.join(self.dir, "index")
        self.library = library
        self.proc = None
        self.url = None

    def start(self):
        wait_for_binary(self.binary)
        assets = os.path.join(self.library, "assets.jsonl")
        if self.declared:
            tagged = os.path.join(self.dir, "assets.jsonl")
            with open(assets, encoding="utf-8") as src, open(tagged, "w", encoding="utf-8") as out:
                for line in src:
                    a = json.loads(line)
                    if a["id"] in self.declared:
                        stage, role = self.declared[a["id"]]
                        a["stages"], a["roles"] = [stage], [role]
                    out.write(json.dumps(a, ensure_ascii=False) + "\n")
            assets = tagged
        out = subprocess.run(
            [self.binary, "import", assets],
            env=self.env, capture_output=True, text=True,
        )
        if out.returncode != 0:
            sys.exit(f"import of {self.library} failed:\n{out.stdout}{out.stderr}")
        wait_for_binary(self.binary)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--addr", "127.0.0.1:0", "--response-cache-mb", "0"] + self.extra,
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        found = {}
        done = threading.Event()

        def read():
            for line in self.proc.stderr:  # keep draining so the pipe never fills
                if "addr" not in found:
                    m = re.search(r'addr=(\S+)|"addr"\s*:\s*"([^"]+)"', line)
                    if m:
                        found["addr"] = m.group(1) or m.group(2)
                        done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        if not done.wait(60) or "addr" not in found:
            self.stop()
            sys.exit("the server did not print its address")
        self.url = f"http://{found['addr']}/graphql"
        # With an embedding model, ask only once every asset has its vector.
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://{found['addr']}/readyz", timeout=10) as r:
                    ready = json.load(r)
            except (urllib.error.URLError, ValueError):
                ready = {}
            embeddings = ready.get("embeddings")
            if ready.get("status") == "ready" and (embeddings is None or embeddings.get("complete")):
                break
            time.sleep(0.2)
        return self

    def query(self, text, variables=None):
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        for attempt in range(20):
            req = urllib.request.Request(self.url, data=body, headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    answer = json.load(r)
            except urllib.error.HTTPError as e:
                if e.code in (429, 503):
                    time.sleep(0.2 * (attempt + 1))
                    continue
                answer = json.load(e)
            if answer.get("errors"):
                raise RuntimeError(json.dumps(answer["errors"])[:500])
            return answer["data"]
        raise RuntimeError("rate limited too long")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def ndcg(ranked, grades, k=K):
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg == 0:
        return None
    dcg = sum(grades.get(a, 0) / math.log2(i + 2) for i, a in enumerate(ranked[:k]))
    return dcg / idcg


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


SUGGEST = """query($id: ID!) { suggestTags(assetId: $id) { stages { stage confidence } roles { role confidence } }
  asset(id: $id) { contentType stages } }"""
NEXT = """query($id: ID!, $first: Int) { nextContent(afterAssetId: $id, first: $first) {
  audience { stage role industry } items { score asset { id } } } }"""
RECS = """query($a: AudienceInput!, $first: Int) { recommendations(audience: $a, first: $first) {
  items { score asset { id } } } }"""
SEARCH = """query($q: String!, $first: Int) { search(query: $q, first: $first) { items { score asset { id } } } }"""
SIMILAR = """query($id: ID!, $first: Int) { similarAssets(assetId: $id, first: $first) {
  by items { similarity asset { id } } } }"""


def items(answer):
    return [(i["asset"]["id"], i["score"]) for i in answer["items"]]


def ties(pairs):
    scores = [round(s, 6) for _, s in pairs[:K]]
    return len(scores) - len(set(scores))


# The first default stage of each content type (ContentType::default_stages): the
# baseline a suggester must beat. Read from this table rather than from the asset's own
# stages, which are read from its text when nothing is declared.
TYPE_DEFAULT_STAGE = {
    "EBOOK": "AWARENESS", "BLOG_POST": "AWARENESS", "RESEARCH_REPORT": "AWARENESS",
    "INFOGRAPHIC": "AWARENESS", "VIDEO": "AWARENESS", "NEWSLETTER": "AWARENESS",
    "WHITEPAPER": "AWARENESS", "WEBINAR": "AWARENESS", "BUYER_GUIDE": "CONSIDERATION",
    "COMPARISON_GUIDE": "CONSIDERATION", "ROI_CALCULATOR": "CONSIDERATION",
    "ANALYST_REPORT": "CONSIDERATION", "SECURITY_WHITEPAPER": "CONSIDERATION",
    "CASE_STUDY": "CONSIDERATION", "DEMO": "DECISION", "FREE_TRIAL": "DECISION",
    "PRICING_SHEET": "DECISION", "IMPLEMENTATION_GUIDE": "DECISION", "API_DOCS": "ADOPTION",
    "TRAINING": "ADOPTION", "RELEASE_NOTES": "ADOPTION", "DOCUMENTATION": "ADOPTION",
}


def evaluate(server, judgments):
    cases = {"tags": [], "next": [], "similar": [], "audiences": [], "search": [], "no_match": []}
    for t in judgments["tags"]:
        d = server.query(SUGGEST, {"id": t["asset"]})
        s = d["suggestTags"]
        top_stage = s["stages"][0]["stage"] if s["stages"] else None
        top_role = s["roles"][0]["role"] if s["roles"] else None
        default = TYPE_DEFAULT_STAGE.get(d["asset"]["contentType"])
        cases["tags"].append({
            "asset": t["asset"], "content_type": d["asset"]["contentType"],
            "judged": [t["stage"], t["role"]], "suggested": [top_stage, top_role],
            "stage_ok": top_stage == t["stage"], "role_ok": top_role == t["role"],
            "default_stage": default, "default_ok": default == t["stage"],
            "stages": [(x["stage"], round(x["confidence"], 3)) for x in s["stages"]],
            "roles": [(x["role"], round(x["confidence"], 3)) for x in s["roles"]],
        })
    for n in judgments["next"]:
        d = server.query(NEXT, {"id": n["seed"], "first": K + 1})["nextContent"]
        got = [p for p in items(d) if p[0] != n["seed"]]
        ranked = [a for a, _ in got]
        cases["next"].append({"seed": n["seed"], "ndcg": ndcg(ranked, n["grades"]), "top": got[:K],
                              "grades": n["grades"], "ties": ties(got), "audience": d["audience"]})
        # The same judgments for `similarAssets`: what is on the seed's subject, whatever
        # the stage (a read-next judgment also weighs the stage, so this is indicative).
        d = server.query(SIMILAR, {"id": n["seed"], "first": K})["similarAssets"]
        got = [(i["asset"]["id"], i["similarity"]) for i in d["items"]]
        cases["similar"].append({"seed": n["seed"], "ndcg": ndcg([a for a, _ in got], n["grades"]),
                                 "top": got, "grades": n["grades"], "by": d["by"]})
    for a in judgments["audiences"]:
        audience = {"stage": a["stage"], "role": a["role"]}
        if a.get("industry"):
            audience["industry"] = a["industry"]
        got = items(server.query(RECS, {"a": audience, "first": K})["recommendations"])
        ranked = [x for x, _ in got]
        cases["audiences"].append({"audience": audience, "ndcg": ndcg(ranked, a["grades"]), "top": got[:K],
                                   "grades": a["grades"], "ties": ties(got)})
    for s in judgments["search"]:
        got = items(server.query(SEARCH, {"q": s["query"], "first": K})["search"])
        ranked = [x for x, _ in got]
        case = {"query": s["query"], "top": got[:K], "grades": s["grades"], "ties": ties(got)}
        if any(g > 0 for g in s["grades"].values()):
            case["ndcg"] = ndcg(ranked, s["grades"])
            cases["search"].append(case)
        else:
            case["hits"] = len(got)
            cases["no_match"].append(case)
    tags = cases["tags"]
    summary = {
        "assets": sum(1 for _ in open(os.path.join(server.library, "assets.jsonl"))),
        "stage_accuracy": mean([1.0 if c["stage_ok"] else 0.0 for c in tags]),
        "role_accuracy": mean([1.0 if c["role_ok"] else 0.0 for c in tags]),
        "default_stage_accuracy": mean([1.0 if c["default_ok"] else 0.0 for c in tags]),
        "stage_suggested": sum(1 for c in tags if c["suggested"][0]),
        "role_suggested": sum(1 for c in tags if c["suggested"][1]),
        "tags": len(tags),
        "next_ndcg5": mean([c["ndcg"] for c in cases["next"]]),
        "similar_ndcg5": mean([c["ndcg"] for c in cases["similar"]]),
        "audience_ndcg5": mean([c["ndcg"] for c in cases["audiences"]]),
        "search_ndcg5": mean([c["ndcg"] for c in cases["search"]]),
        "no_match_queries": len(cases["no_match"]),
        "no_match_hits": [c["hits"] for c in cases["no_match"]],
    }
    return summary, cases


def fmt(x):
    return "  -  " if x is None else f"{x:.3f}"


ROWS = [
    ("stage top-1 (suggestTags)", "stage_accuracy"),
    ("role top-1 (suggestTags)", "role_accuracy"),
    ("stage baseline (type default)", "default_stage_accuracy"),
    ("next NDCG@5 (nextContent)", "next_ndcg5"),
    ("similar NDCG@5 (similarAssets)", "similar_ndcg5"),
    ("audience NDCG@5 (recommendations)", "audience_ndcg5"),
    ("search NDCG@5 (search)", "search_ndcg5"),
]


def print_table(results):
    names = list(results)
    head = f"{'':36}" + "".join(f"{n:>10}" for n in names) + f"{'mean':>10}"
    print(head)
    print("-" * len(head))
    for label, key in ROWS:
        vals = [results[n][key] for n in names]
        print(f"{label:36}" + "".join(f"{fmt(v):>10}" for v in vals) + f"{fmt(mean(vals)):>10}")
    print()
    for n in names:
        r = results[n]
        spread = "; ".join(f"{key.split('_')[0]} {r[key + '_range'][0]:.3f}-{r[key + '_range'][1]:.3f}"
                           for _, key in ROWS if r.get(key + "_range") and r[key + "_range"][0] != r[key + "_range"][1])
        if r["runs"] > 1:
            print(f"{n}: {r['runs']} runs; ranges over the runs: {spread or 'none'}")
        print(f"{n}: {r['assets']} assets, {r['tags']} judged tags ({r['stage_suggested']} with a stage suggestion, "
              f"{r['role_suggested']} with a role suggestion); queries judged to have no answer: "
              f"{r['no_match_queries']}, hits returned {r['no_match_hits']}")


def graded(pairs, grades):
    return ", ".join(f"{a}[{grades.get(a, 0)}]({s:.3f})" for a, s in pairs)


def print_verbose(name, cases):
    print(f"\n== {name}: tags (judged -> suggested; default stage)")
    for c in cases["tags"]:
        mark = ("S" if c["stage_ok"] else "s") + ("R" if c["role_ok"] else "r")
        print(f"  {mark} {c['asset']} [{c['content_type']}] judged {c['judged'][0]}/{c['judged'][1]}"
              f" -> {c['suggested'][0]}/{c['suggested'][1]}; default {c['default_stage']}"
              f"; stages {c['stages'][:3]} roles {c['roles'][:3]}")
    for kind, key in (("next", "seed"), ("similar", "seed"), ("audiences", "audience"), ("search", "query"), ("no_match", "query")):
        print(f"\n== {name}: {kind} (id[grade](score))")
        for c in cases[kind]:
            figure = f"NDCG@5 {fmt(c['ndcg'])}" if "ndcg" in c else f"{c['hits']} hits"
            extra = f" ties {c['ties']}" if c.get("ties") else ""
            aud = f" audience {c['audience']}" if kind == "next" else ""
            print(f"  {figure}{extra} {c[key]}{aud}\n      {graded(c['top'], c['grades'])}")


def main():
    p = argparse.ArgumentParser(description="stagefit relevance on real libraries judged by hand")
    p.add_argument("--bin", help="stagefit binary (default target/release/stagefit, else target/debug)")
    p.add_argument("--json", action="store_true", help="print the figures (and cases) as JSON")
    p.add_argument("--verbose", action="store_true", help="print every case")
    p.add_argument("--runs", type=int, default=1,
                   help="import and query each library N times on fresh storage; figures are the means "
                        "(ties among equal scores are not ordered the same way from one index to the next)")
    p.add_argument("--embedding-model", metavar="DIR",
                   help="serve with this sentence-embedding model (scripts/fetch-model.sh fetches one)")
    p.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for `stagefit serve` (repeat), e.g. --serve-arg=--semantic-ratio=0.7")
    p.add_argument("--declared", action="store_true",
                   help="import the judged assets with their judged stage and role declared (a partly tagged "
                        "library); each asset's own tags are left out of its suggestion (leave one out)")
    p.add_argument("libraries", nargs="*", help="library directories (default: every one with judgments.json)")
    args = p.parse_args()
    binary = find_binary(args.bin)
    libs = args.libraries or sorted(
        os.path.join(HERE, d) for d in os.listdir(HERE)
        if os.path.isfile(os.path.join(HERE, d, "judgments.json"))
    )
    results, all_cases = {}, {}
    started = time.time()
    for lib in libs:
        name = os.path.basename(os.path.normpath(lib))
        with open(os.path.join(lib, "judgments.json"), encoding="utf-8") as f:
            judgments = json.load(f)
        runs = []
        for _ in range(max(1, args.runs)):
            extra = list(args.serve_arg)
            if args.embedding_model:
                extra += ["--embedding-model", args.embedding_model]
            declared = {t["asset"]: (t["stage"], t["role"]) for t in judgments["tags"]} if args.declared else None
            server = Server(binary, lib, extra, declared)
            try:
                server.start()
                runs.append(evaluate(server, judgments))
            finally:
                server.stop()
        summary, all_cases[name] = runs[-1]
        for _, key in ROWS:
            values = [r[0][key] for r in runs if r[0][key] is not None]
            summary[key] = mean(values)
            summary[key + "_range"] = [min(values), max(values)] if values else None
        summary["runs"] = len(runs)
        results[name] = summary
    if args.json:
        out = {"binary": binary, "results": results,
               "mean": {key: mean([r[key] for r in results.values()]) for _, key in ROWS}}
        if args.verbose:
            out["cases"] = all_cases
        print(json.dumps(out, indent=1))
        return
    print(f"binary {binary}; {time.time() - started:.0f} s\n")
    print_table(results)
    if args.verbose:
        for name, cases in all_cases.items():
            print_verbose(name, cases)


if __name__ == "__main__":
    main()
