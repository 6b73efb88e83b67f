#!/usr/bin/env python3
"""What a hostile request of 1 to 4 KB costs a running server: each class of the attack
that issue 20 reports, sent one at a time over one keep-alive connection, 50 times (5 for
shapes that take seconds). Prints, per class, its size, the answer's status and code, and
the median and slowest time to answer: on loopback with one client, that is the
server's time plus about 0.1 ms.

    benches/hostile.py http://127.0.0.1:8080 [KEY] [--skip 1,2]

A class whose request stops the server prints "no answer" and ends the run; --skip leaves
out classes by their number in the table (from 1), to measure the rest on a build that
such a class stops.
"""

import http.client
import json
import sys
import time
import urllib.parse


def fan_out(levels):
    text = "{ ...F0 }"
    for i in range(levels):
        text += f" fragment F{i} on QueryRoot {{ ...F{i + 1} ...F{i + 1} }}"
    return text + f" fragment F{levels} on QueryRoot {{ __typename }}"


SEARCH = "query($q: String!) { search(query: $q) { totalCount items { score } } }"
RECOMMEND = "query($q: String) { recommendations(audience: { stage: DECISION }, query: $q) { items { score asset { id title } } } }"

CLASSES = [
    ("1,000 nested parentheses in a search text",
     {"query": SEARCH, "variables": {"q": "(" * 1000 + "pricing" + ")" * 1000}}),
    ("a list nested 2,000 deep in an argument",
     {"query": "{ search(query: " + "[" * 2000 + "\"x\"" + "]" * 2000 + ") { totalCount } }"}),
    ("fragment fan-out, 24 levels",
     {"query": fan_out(24)}),
    ("fragment fan-out, 9 levels (512 leaves, within the limit)",
     {"query": fan_out(9)}),
    ("300 distinct words in a search text",
     {"query": SEARCH, "variables": {"q": " ".join(f"w{i}" for i in range(300))}}),
    ("300 distinct words in a recommendation text",
     {"query": RECOMMEND, "variables": {"q": " ".join(f"w{i}" for i in range(300))}}),
    ("32 words, parentheses 8 deep (the most a text may have)",
     {"query": SEARCH, "variables": {"q": "(" * 8 + " OR ".join(f"pay{i}" for i in range(16)) + ")" * 8}}),
    ("a 2 KB field name",
     {"query": "{ " + "n" * 2000 + " }"}),
    ("170 aliases of __typename (2 KB)",
     {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(170)) + " }"}),
    ("40 aliases of a counted text search (2 KB)",
     {"query": "{ " + " ".join(f"s{i}: search(query: \"pricing\") {{ totalCount }}" for i in range(40)) + " }"}),
    ("4 counted text searches (12 units of work, the most)",
     {"query": "{ " + " ".join(f"s{i}: search(query: \"{w} payments\") {{ totalCount }}" for i, w in enumerate(["security", "pricing", "integration", "compliance"])) + " }"}),
    ("3 text searches with facets (12 units)",
     {"query": "{ " + " ".join(f"s{i}: search(query: \"{w} platform\") {{ facets {{ field values {{ value count }} }} }}" for i, w in enumerate(["security", "pricing", "integration"])) + " }"}),
    ("12 text recommendations of 10 (12 units)",
     {"query": "{ " + " ".join(f"r{i}: recommendations(audience: {{ stage: DECISION }}, query: \"pricing compliance {i}\") {{ items {{ score asset {{ id }} reasons {{ factor }} }} }}" for i in range(12)) + " }"}),
    ("a search of 100 with count, facets and highlights, and a recommendation (12 units)",
     {"query": "{ s: search(query: \"payment reconciliation\", first: 100) { totalCount facets { field values { value } } items { highlights { html } } } " + " ".join(f"r{i}: recommendations(audience: {{ stage: DECISION }}, query: \"api {i}\") {{ items {{ score }} }}" for i in range(1)) + " }"}),
    ("4 searches of 100 with facets and highlights (1 KB, 44 units)",
     {"query": "{ " + " ".join(f"s{i}: search(query: \"payment {i}\", first: 100) {{ totalCount facets {{ field }} items {{ highlights {{ html }} }} }}" for i in range(4)) + " }"}),
    ("140 operations sharing a fragment of 60 undefined variables (4 KB)",
     {"query": " ".join(f"query o{i} {{ ...F }}" for i in range(140)) + " fragment F on QueryRoot { asset(id: [" + ",".join(f"$v{i}" for i in range(60)) + "]) { id } }", "operationName": "o0"}),
    ("60 aliases of the taxonomy's industries, spread 11 times (2 KB)",
     {"query": "{ " + "...F " * 11 + "} fragment F on QueryRoot { " + " ".join(f"t{i}: taxonomy {{ industries {{ slug }} }}" for i in range(60)) + " }"}),
    ("12 recommendations of 100 (750 bytes)",
     {"query": "{ " + " ".join(f"r{i}: recommendations(audience: {{}}, first: 100) {{ items {{ score }} }}" for i in range(12)) + " }"}),
    ("2 recommendations of 100 (10 units)",
     {"query": "{ " + " ".join(f"r{i}: recommendations(audience: {{ stage: DECISION }}, first: 100) {{ items {{ score }} }}" for i in range(2)) + " }"}),
    ("a page of 100 assets 99,900 deep in id order (60 bytes)",
     {"query": "{ assets(first: 100, after: \"bzo5OTkwMA\") { items { id } } }"}),
    ("60 lookups by id, spread 16 times (2 KB)",
     {"query": "{ " + "...F " * 16 + "} fragment F on QueryRoot { " + " ".join(f"a{i}: asset(id: \"p{i}\") {{ id }}" for i in range(60)) + " }"}),
    ("a 2 KB operationName",
     {"query": "query Q { __typename }", "operationName": "Q" * 2000}),
    ("variables nested 1,000 deep",
     None),
    ("a recommendation (for comparison)",
     {"query": RECOMMEND, "variables": {"q": None}}),
]


def body_of(name, request):
    if request is not None:
        return json.dumps(request).encode()
    nested = "[" * 1000 + "\"x\"" + "]" * 1000
    return ('{"query":"query($q: String!) { search(query: $q) { totalCount } }","variables":{"q":%s}}'
            % nested).encode()


def main():
    args = sys.argv[1:]
    skip = set()
    if "--skip" in args:
        at = args.index("--skip")
        skip = {int(n) for n in args[at + 1].split(",")}
        del args[at:at + 2]
    url = urllib.parse.urlparse(args[0])
    key = args[1] if len(args) > 1 else None
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = "Bearer " + key
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    print(f"| request | bytes | answer | median ms | slowest ms |")
    print(f"|---|---|---|---|---|")
    for number, (name, request) in enumerate(CLASSES, start=1):
        if number in skip:
            print(f"| {name} | | skipped | | |")
            continue
        body = body_of(name, request)
        times = []
        answer = ""
        for n in range(50):
            started = time.perf_counter()
            try:
                connection.request("POST", "/graphql", body, headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as err:
                print(f"| {name} | {len(body):,} | no answer ({err}) | | |")
                return 1
            times.append((time.perf_counter() - started) * 1000)
            try:
                parsed = json.loads(data)
                errors = parsed.get("errors") or []
                code = errors[0].get("extensions", {}).get("code") if errors else "data"
            except ValueError:
                code = "not JSON"
            answer = f"{response.status} {code}"
            if times[-1] > 1000 and n >= 4:
                break
        times.sort()
        print(f"| {name} | {len(body):,} | {answer} | {times[len(times) // 2]:.2f} | {times[-1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
