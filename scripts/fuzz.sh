#!/bin/sh
# Build the libFuzzer harnesses of tests/fuzz with clang (ASan + UBSan) in their own
# build folder, replay every seed and regression input once (must pass), then fuzz each
# harness for a short while and print one summary line per harness.
#   scripts/fuzz.sh [-t SECONDS] [-n RUNS] [HARNESS...]
#     -t  fuzzing time per harness (default 20; 0: replay only)
#     -n  stop a harness after this many executions too (default: no limit)
#   BCD_FUZZ_BUILD   build folder (default build-fuzz)
#   BCD_TESTDATA_DIR third-party test data (default ../shared/testdata)
# No input may make one allocation over 512 MB (-malloc_limit_mb).
# New corpus entries go to BCD_FUZZ_BUILD/fuzz-corpus/<harness>, crashes to
# BCD_FUZZ_BUILD/fuzz-artifacts/<harness>/; tests/fuzz/README.md says how to keep one
# as a regression input.
set -eu
cd "$(dirname "$0")/.."

secs=20 runs=-1
while getopts t:n: o; do
    case "$o" in
        t) secs=$OPTARG ;;
        n) runs=$OPTARG ;;
        *) echo "usage: scripts/fuzz.sh [-t SECONDS] [-n RUNS] [HARNESS...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
all="image_decode exif feature_map png_encode preprocess dotenv supabase jwks jwt cli_args store"
harnesses=${*:-$all}

build=${BCD_FUZZ_BUILD:-build-fuzz}
testdata=${BCD_TESTDATA_DIR:-../shared/testdata}
fz=tests/fuzz

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang is not installed (scripts/deps.sh --test)" >&2
    exit 1
fi
[ -d "$build" ] || CC=clang CXX=clang++ meson setup "$build" -Dfuzz=true -Dtests=disabled -Dtorch=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
targets=""
for h in $harnesses; do targets="$targets tests/fuzz/fuzz_$h"; done
# shellcheck disable=SC2086
ninja -C "$build" $targets >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# seed folders of a harness: the committed corpus, then third-party files
seeds() {
    [ -d "$fz/corpus/$1" ] && echo "$fz/corpus/$1"
    case "$1" in
        image_decode)
            for d in images/jpeg images/pngsuite images/exif-orientation; do
                [ -d "$testdata/$d" ] && echo "$testdata/$d"
            done ;;
    esac
    return 0
}
dict() {
    case "$1" in
        image_decode | exif | feature_map) echo "$fz/dict/image.dict" ;;
        supabase | jwks | jwt) echo "$fz/dict/json.dict" ;;
        dotenv) echo "$fz/dict/dotenv.dict" ;;
        cli_args) echo "$fz/dict/cli.dict" ;;
    esac
}
# the CLI parser prints usage errors: keep them out of the log
extra() {
    case "$1" in
        cli_args) echo "-close_fd_mask=2" ;;
        image_decode) echo "-max_len=131072" ;;
        store) echo "-max_len=32768" ;; # a store of one session (512-byte pages) is 17 kB
        *) echo "-max_len=8192" ;;
    esac
}
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

status=0
for h in $harnesses; do
    exe="$build/tests/fuzz/fuzz_$h"
    log="$build/fuzz-$h.log"
    dirs=$(seeds "$h")
    [ -d "$fz/regressions/$h" ] && dirs="$dirs $fz/regressions/$h"
    # 1. every seed and regression input once
    # shellcheck disable=SC2086
    if ! "$exe" -runs=0 -malloc_limit_mb=512 $(extra "$h" | grep close_fd || true) $dirs >"$log" 2>&1; then
        echo "fuzz: $h: a seed or regression input fails, see $log" >&2
        tail -n 30 "$log" >&2
        status=1
        continue
    fi
    # shellcheck disable=SC2086
    replayed=$(find $dirs -type f | wc -l)
    if [ "$secs" = 0 ]; then
        echo "fuzz $h: replayed $replayed inputs, ok"
        continue
    fi
    # 2. a time-boxed run from the seeds and what earlier runs found
    work="$build/fuzz-corpus/$h"
    art="$build/fuzz-artifacts/$h/"
    mkdir -p "$work" "$art"
    d=$(dict "$h")
    # shellcheck disable=SC2046,SC2086
    if ! "$exe" -max_total_time="$secs" -runs="$runs" -timeout=25 -malloc_limit_mb=512 -print_final_stats=1 \
        ${d:+-dict="$d"} -artifact_prefix="$art" $(extra "$h") "$work" $dirs >"$log" 2>&1; then
        echo "fuzz $h: FAILED, reproducer in $art (log: $log)" >&2
        grep -E "ERROR|SUMMARY|check failed|Test unit written" "$log" | head -n 10 >&2
        status=1
        continue
    fi
    last=$(grep -E "^#[0-9]+" "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    echo "fuzz $h: replayed $replayed inputs ok; $(stat number_of_executed_units "$log") execs in ${took}s" \
        "($(stat average_exec_per_sec "$log")/s), cov $cov ft $ft, corpus $corp, new $(stat new_units_added "$log")," \
        "peak rss $(stat peak_rss_mb "$log") MB, no crash"
done
exit $status
