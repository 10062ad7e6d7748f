#!/bin/sh
# The main job on the bundled example: two checks of six angles each, embedded with the
# built-in embedder (or BCD_MODEL), compared angle by angle.
#   examples/demo.sh [PATH/TO/bcd-cli]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cli=${1:-bcd-cli}
data="$here/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "libbcd example: comparing check1 and check2 of the bundled synthetic person"
for angle in front left right up down raised; do
    "$cli" embed "$data/check1/$angle.jpg" > "$tmp/a.json"
    "$cli" embed "$data/check2/$angle.jpg" > "$tmp/b.json"
    printf '  %-7s ' "$angle"
    "$cli" distance "$tmp/a.json" "$tmp/b.json"
done
