#!/usr/bin/env python3
"""Deletes a SQLite database's oldest events in batches, as the retention pass does, with
SQLite's automatic checkpoint on or off, and prints how long each batch's transaction
took (p50, p90, p99, max). Run it on a copy: it deletes.

    benches/checkpoint_batches.py DB.sqlite AUTOCHECKPOINT_PAGES [BATCHES] [ROWS]
"""
import sqlite3
import sys
import time

path, pages = sys.argv[1], int(sys.argv[2])
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 600
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 120
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("PRAGMA wal_autocheckpoint=%d" % pages)
cut = int(time.time()) - 90 * 86400
start = -(2**62)
took = []
for _ in range(batches):
    began = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    deleted = db.execute(
        "DELETE FROM engagement WHERE rowid IN (SELECT rowid FROM engagement "
        "WHERE occurred_at >= ? AND occurred_at < ? ORDER BY occurred_at LIMIT ?) RETURNING occurred_at",
        (start, cut, rows),
    ).fetchall()
    db.execute("COMMIT")
    took.append((time.perf_counter() - began) * 1000)
    if not deleted:
        break
    start = max(r[0] for r in deleted)
took.sort()
n = len(took)
print(
    "wal_autocheckpoint %d: %d batches, p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f"
    % (pages, n, took[n // 2], took[int(n * 0.9)], took[int(n * 0.99)], took[-1])
)
