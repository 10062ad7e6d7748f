#!/bin/sh
# First command of the README: install what is missing, build, run the main job on the
# embedded local store with the bundled example sessions.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
exec examples/demo.sh build/cli/bcd-cli
