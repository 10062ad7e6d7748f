#!/bin/sh
# First command of the README: install what is missing, build, and run the main job on
# the embedded local store: two example checks are stored, analyzed and compared.
# Uses a TorchScript model when BCD_MODEL names one (built with -Dtorch=enabled).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
exec examples/demo.sh "$PWD/build/cli/bcd-cli"
