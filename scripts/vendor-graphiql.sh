#!/usr/bin/env bash
# Refreshes the GraphiQL page's JavaScript and CSS in assets/graphiql/ from their npm packages,
# with their licences. The server embeds these files, so GraphiQL works with no internet.
# Usage: scripts/vendor-graphiql.sh   (needs npm; change the versions below to upgrade)
set -euo pipefail
GRAPHIQL=3.8.3
REACT=18.3.1
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/assets/graphiql"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for pkg in graphiql-$GRAPHIQL react-$REACT react-dom-$REACT; do
  mkdir -p "$pkg" && tar xzf "$pkg.tgz" -C "$pkg"
done
mkdir -p "$out"
cp "graphiql-$GRAPHIQL/package/graphiql.min.js" "$out/graphiql.min.js"
cp "graphiql-$GRAPHIQL/package/graphiql.min.css" "$out/graphiql.min.css"
cp "react-$REACT/package/umd/react.production.min.js" "$out/react.production.min.js"
cp "react-dom-$REACT/package/umd/react-dom.production.min.js" "$out/react-dom.production.min.js"
{
  echo "Vendored by scripts/vendor-graphiql.sh: graphiql $GRAPHIQL, react $REACT, react-dom $REACT."
  for pkg in graphiql-$GRAPHIQL react-$REACT react-dom-$REACT; do
    printf '\n==== %s ====\n' "$pkg"
    cat "$pkg/package/LICENSE"
  done
} > "$out/LICENSES.txt"
echo "vendored into $out"
