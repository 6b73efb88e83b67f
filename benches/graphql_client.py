"""The GraphQL call the Python probes in benches/ share: POST to URL/graphql with an
optional bearer key ("-" for none); exits with the errors when the answer has any."""
import json
import sys
import urllib.request


def gql(url, key, query, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"content-type": "application/json"}
    if key != "-":
        headers["authorization"] = "Bearer " + key
    req = urllib.request.Request(url.rstrip("/") + "/graphql", body, headers)
    with urllib.request.urlopen(req) as r:
        answer = json.load(r)
    if answer.get("errors"):
        sys.exit(f"errors: {answer['errors']}")
    return answer["data"]
