#!/bin/sh
# Install the Debian packages libbcd needs, only those that are missing.
#   scripts/deps.sh                 build + run (library, CLI, examples)
#   scripts/deps.sh --test          also what the test suite needs
#   scripts/deps.sh --list [--test] print the package names and exit
# Runs apt-get as root, through sudo otherwise. Set BCD_NO_INSTALL=1 to only report.
set -eu

BUILD="gcc g++ meson ninja-build pkg-config libjpeg62-turbo-dev libpng-dev zlib1g-dev
libcjson-dev libssl-dev libsqlite3-dev libcurl4-openssl-dev"
TEST="check libsubunit-dev python3 python3-numpy python3-opencv python3-pytest python3-pil
python3-setuptools python3-cryptography python3-psycopg2 postgresql chromium openssl
python3-torch python3-torchvision libtorch-dev clang libclang-rt-14-dev"

list=0 test=0
for a in "$@"; do
    case "$a" in
        --list) list=1 ;;
        --test) test=1 ;;
        *) echo "usage: scripts/deps.sh [--list] [--test]" >&2; exit 2 ;;
    esac
done
want="$BUILD"
[ "$test" = 1 ] && want="$BUILD $TEST"
if [ "$list" = 1 ]; then
    echo $want
    exit 0
fi

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "libbcd: installing missing packages:$missing" >&2
if [ "${BCD_NO_INSTALL:-0}" = 1 ]; then
    echo "libbcd: BCD_NO_INSTALL=1, not installing" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
