#!/bin/sh
# Second command of the README: install what is missing, build, and run every test:
# the normal build, then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
# with leak checking.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh --test

echo "== build and test (release-like build) =="
[ -d build ] || meson setup build >/dev/null
meson compile -C build
meson test -C build --print-errorlogs

echo "== build and test under ASan + UBSan (leak checks on) =="
[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug >/dev/null
meson compile -C build-asan
# CK_FORK=no: run Check tests in-process so LeakSanitizer sees every allocation.
# The torch suite is left out here: libtorch is not built with the sanitizers and its
# tests abort under them; it runs in the plain build above.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
CK_FORK=no meson test -C build-asan --print-errorlogs --no-suite torch

echo "== fuzz regressions and a short fuzz run =="
# libFuzzer harnesses (tests/fuzz) built with clang in build-fuzz: every seed and
# regression input must pass, then about 20 s of fuzzing per harness.
scripts/fuzz.sh -t "${BCD_FUZZ_SECONDS:-20}"
