#!/bin/bash
# The analytics queries of BENCHMARKS.md against two running servers (an old and a new
# build, each on its own copy of a database), alternated, with curl's total time per run
# and whether the two answers were the same.
#
#   benches/analytics_ab.sh URL_OLD URL_NEW [RUNS]
set -u
A=$1; B=$2; R=${3:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
queries=(
"{ assetPerformance(first: 20, sinceDays: 90) { totalCount items { asset { id } impressions clicks } } }"
"{ assetPerformance(first: 20, sinceDays: 30) { totalCount items { asset { id } impressions clicks } } }"
"{ assetPerformance(first: 20, sinceDays: 7) { totalCount items { asset { id } impressions clicks } } }"
"{ assetPerformance(first: 20) { totalCount items { asset { id } impressions clicks } } }"
"{ cellPerformance(sinceDays: 90) { stage role assets impressions } }"
"{ coverage(by: [STAGE, ROLE], idsPerCell: 0) { cells { count recentEngagements } } }"
)
timed() {
  curl -s -w '%{time_total}' -o "$2" "$1/graphql" -H 'content-type: application/json' \
    -d "{\"query\":\"$3\"}"
}
for q in "${queries[@]}"; do
  a=""; b=""
  for _ in $(seq 1 "$R"); do
    a="$a $(timed "$A" "$out/a.json" "$q")"
    b="$b $(timed "$B" "$out/b.json" "$q")"
  done
  same=$(cmp -s "$out/a.json" "$out/b.json" && echo same || echo DIFFERENT)
  echo "$q"
  echo "   old:$a"
  echo "   new:$b   ($same)"
done
