#!/bin/sh
# The main job with bcd-cli on the bundled example: two checks of one (synthetic) person,
# six angles each, stored in the local store, analyzed, and compared.
#   examples/demo.sh [PATH/TO/bcd-cli]
# Uses a fresh data directory under /tmp unless BCD_DATA_DIR is set, the built-in
# embedder unless BCD_MODEL names a TorchScript model, and the user "example-user"
# unless BCD_USER is set.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cli=${1:-bcd-cli}
data="$here/data"
if [ -z "${BCD_DATA_DIR:-}" ]; then
    BCD_DATA_DIR=$(mktemp -d /tmp/bcd-demo-XXXXXX)
    export BCD_DATA_DIR
fi
export BCD_USER="${BCD_USER:-example-user}"

# Pull one field out of a flat JSON answer (the CLI prints JSON with --json).
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

new_check() {
    sid=$("$cli" --json session create | field session_id)
    for angle in front left right up down raised; do
        "$cli" --json image add "$sid" "$angle" "$data/$1/$angle.jpg" >/dev/null
    done
    "$cli" --json session complete "$sid" >/dev/null
    echo "$sid"
}

echo "== libbcd example: data in $BCD_DATA_DIR, user $BCD_USER, model ${BCD_MODEL:-builtin}"
first=$(new_check check1)
second=$(new_check check2)
echo "== check 1 ($first): analyze"
"$cli" analyze "$first"
echo "== check 2 ($second): analyze"
"$cli" analyze "$second"
echo "== compare check 2 with check 1 (change-map overlays in $BCD_DATA_DIR/heatmaps)"
"$cli" compare "$second" "$first" --heatmaps "$BCD_DATA_DIR/heatmaps"
