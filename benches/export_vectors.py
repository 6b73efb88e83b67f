#!/usr/bin/env python3
"""Writes the stored vectors of a stagefit SQLite database as f32 little-endian rows (per
asset its whole-text vector, then its title's), for `STAGEFIT_BENCH_VECTORS` in
`benches/vectors.rs`. Usage: benches/export_vectors.py DATABASE.db OUT.f32"""
import sqlite3
import struct
import sys

db, out = sys.argv[1], sys.argv[2]
rows = sqlite3.connect(db).execute("select vectors from asset_embedding order by asset_id").fetchall()
with open(out, "wb") as f:
    for (blob,) in rows:
        # Two rows of int8 codes, then their two f32 scales (see Vectors::encoded).
        dims = (len(blob) - 8) // 2
        scales = struct.unpack("<2f", blob[2 * dims:])
        for r in range(2):
            codes = struct.unpack(f"<{dims}b", blob[r * dims:(r + 1) * dims])
            f.write(struct.pack(f"<{dims}f", *(c * scales[r] for c in codes)))
print(f"{len(rows)} assets written to {out}")
