#!/usr/bin/env python3
"""Time from an event recorded on one replica to its popularity seen on another: for
each trial, a new account in its own cohort (industry x stage) reads an asset through
replica A, and replica B is asked `explainRank` for that asset and cohort every 10 ms
until its POPULARITY value is above 0 (trials start at random moments of B's 1 s read).
Both replicas share one PostgreSQL database.

    benches/freshness.py URL_A URL_B KEY TRIALS   (KEY may be "-" without keys)
"""
import graphql_client
import random
import sys
import time

url_a, url_b, key, trials = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def gql(url, query, variables=None):
    return graphql_client.gql(url, key, query, variables)


items = gql(url_a, "{ assets(first: 100) { items { id industries } } }")["assets"]["items"]
assets = [a["id"] for a in items]
stages = ["AWARENESS", "CONSIDERATION", "DECISION", "ADOPTION", "ADVOCACY"]
industries = sorted({i.split("/")[0] for a in items for i in a["industries"]})
cohorts = [(i, s) for i in industries for s in stages]
run = str(int(time.time()))
waits = []
for t in range(min(trials, len(cohorts))):
    industry, stage = cohorts[t]
    asset = assets[t % len(assets)]
    audience = {"industry": industry, "stage": stage, "role": "DECISION_MAKER"}
    explain = """query($a: ID!, $au: AudienceInput) {
        explainRank(assetId: $a, audience: $au) { reasons { factor value } } }"""

    def popularity():
        reasons = gql(url_b, explain, {"a": asset, "au": audience})["explainRank"]["reasons"]
        return next((r["value"] for r in reasons if r["factor"] == "POPULARITY"), 0.0)

    if popularity() > 0:
        continue  # this cohort already has it popular: not a fresh signal
    # A trial ends just after B's read of the best lists: start the next one at a random
    # moment of B's period, not in step with it.
    time.sleep(random.random())
    account = f"fresh-{run}-{t}"
    gql(url_a, """mutation($a: AccountInput!) { upsertAccount(account: $a) { id } }""",
        {"a": {"id": account, "name": account, "industry": industry, "stage": stage}})
    started = time.time()
    gql(url_a, """mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }""",
        {"e": {"accountId": account, "assetId": asset, "kind": "COMPLETE"}})
    while popularity() == 0.0:
        if time.time() - started > 10:
            sys.exit(f"trial {t}: not seen on B after 10 s")
        time.sleep(0.01)
    waits.append(time.time() - started)

waits.sort()
if not waits:
    sys.exit("no cohort without popularity to try")
pct = lambda p: waits[min(len(waits) - 1, int(p * len(waits)))] * 1000
print(f"{len(waits)} trials: event on A to popularity on B p50 {pct(0.5):.0f} ms, "
      f"p90 {pct(0.9):.0f} ms, max {waits[-1] * 1000:.0f} ms")
