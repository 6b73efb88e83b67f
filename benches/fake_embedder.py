#!/usr/bin/env python3
"""An OpenAI-compatible embeddings service answering a deterministic unit vector per text
(seeded by the text), for measuring what meaning costs stagefit at 100k and 1M assets
without an hour of model runs: the scan, the fusion and the lookups cost the same whatever
the vectors say. Not a model: relevance measured against it means nothing.

Needs numpy (`pip install numpy`).

Usage: benches/fake_embedder.py PORT [DIMS]   (then --embedder-url http://127.0.0.1:PORT/v1
--embedder-model fake)"""
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DIMS = int(sys.argv[2]) if len(sys.argv) > 2 else 384


def vector(text):
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(DIMS)
    return (v / np.linalg.norm(v)).round(6).tolist()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        answer = json.dumps({
            "object": "list",
            "model": body.get("model", "fake"),
            "data": [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
