#!/usr/bin/env python3
"""Checks ALSO_READ against the journeys `stagefit generate-engagement --journeys-out`
planted: for every seed with one planted next asset, asks a running server for
`nextContent` ranked by ALSO_READ alone (a profile with every other weight 0) and counts
the seeds whose planted next asset is in the top 5.

    benches/also_read_quality.py URL KEY JOURNEYS.json   (KEY may be "-" without keys)
"""
import graphql_client
import json
import sys

url, key, path = sys.argv[1], sys.argv[2], sys.argv[3]


def gql(query, variables=None):
    return graphql_client.gql(url, key, query, variables)


paths = json.load(open(path))["paths"]
seen = {}
for p in paths:
    for a in p:
        seen[a] = seen.get(a, 0) + 1
pairs = [(p[i], p[i + 1]) for p in paths for i in range(len(p) - 1) if seen[p[i]] == 1]

factors = ["stage", "role", "industry", "text", "concern", "freshness", "popularity",
           "language", "sequel"]
weights = ", ".join(f"{f}: 0" for f in factors) + ", alsoRead: 1"
gql(f'mutation {{ upsertRankingProfile(name: "also-read-only", weights: {{ {weights} }}) {{ name }} }}')

found = 0
for seed, planted in pairs:
    data = gql(
        """query($seed: ID!) { nextContent(afterAssetId: $seed, profile: "also-read-only", first: 5) {
             items { asset { id } } } }""",
        {"seed": seed},
    )
    top = [i["asset"]["id"] for i in data["nextContent"]["items"]]
    found += planted in top
print(f"planted next asset in the top 5 for {found} of {len(pairs)} seeds ({100.0 * found / max(1, len(pairs)):.1f}%)")
