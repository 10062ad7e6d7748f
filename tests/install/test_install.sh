#!/bin/sh
# Install the build into a temporary DESTDIR, as a distribution package would, and use the
# installed copy like a user: every C program in examples/ is built with nothing but
# `pkg-config --cflags --libs bcd` and run; each public header compiles alone as C11 and
# C++17; the shared library exports only bcd_* symbols and has the soname libbcd.so.0.
#
#   test_install.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR INCLUDEDIR BINDIR MANDIR DATADIR
#
# The directories are meson's options (LIBDIR etc. relative to PREFIX or absolute).
# Nothing is written outside a temporary directory; `meson install --no-rebuild` only
# copies what the build made.
set -eu

build=$1 src=$2 prefix=$3
abs() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
libdir=$(abs "$4") includedir=$(abs "$5") bindir=$(abs "$6") mandir=$(abs "$7") datadir=$(abs "$8")
CC=${CC:-cc}
CXX=${CXX:-c++}
MESON=${MESON:-meson}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bcd-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

echo "== meson install --destdir $dest (prefix $prefix)"
"$MESON" install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }

L=$dest$libdir I=$dest$includedir

echo "== installed files"
for f in "$L/libbcd.so.0.1.0" "$L/libbcd.a" "$L/pkgconfig/bcd.pc" "$I/bcd.h" "$I/bcd/version.h" \
         "$dest$bindir/bcd-cli" "$dest$mandir/man1/bcd-cli.1" \
         "$dest$datadir/bash-completion/completions/bcd-cli"; do
    if [ -f "$f" ]; then ok "${f#"$dest"}"; else fail "missing ${f#"$dest"}"; fi
done
for h in "$src"/include/bcd/*.h; do
    n=$(basename "$h")
    [ -f "$I/bcd/$n" ] || fail "header bcd/$n not installed"
done
[ "$(readlink "$L/libbcd.so.0")" = libbcd.so.0.1.0 ] && ok "libbcd.so.0 -> libbcd.so.0.1.0" ||
    fail "libbcd.so.0 is not a link to libbcd.so.0.1.0"
[ "$(readlink "$L/libbcd.so")" = libbcd.so.0 ] && ok "libbcd.so -> libbcd.so.0" ||
    fail "libbcd.so is not a link to libbcd.so.0"

echo "== ELF: soname, exported symbols, no build-tree run paths"
soname=$(readelf -d "$L/libbcd.so.0.1.0" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = libbcd.so.0 ] && ok "SONAME $soname" || fail "SONAME is '$soname', not libbcd.so.0"
# Defined dynamic symbols: every function and object must be bcd_*; the only other
# entries allowed are the version nodes of lib/bcd.sym (absolute symbols named BCD_*).
nm -D --defined-only "$L/libbcd.so.0.1.0" >"$tmp/nm.txt"
awk '{ name = $NF; sub(/@.*/, "", name); type = $(NF-1)
       if (type == "A" && name ~ /^BCD_[0-9A-Z_.]*$/) next
       if (name !~ /^bcd_[a-z0-9_]+$/ || name ~ /^bcd__/) print }' "$tmp/nm.txt" >"$tmp/bad-symbols.txt"
if [ -s "$tmp/bad-symbols.txt" ]; then
    fail "exports outside bcd_*:"; sed 's/^/    /' "$tmp/bad-symbols.txt"
else
    ok "$(grep -c ' bcd_' "$tmp/nm.txt") bcd_* symbols exported, nothing else ($(awk '$(NF-1)=="A"{print $NF}' "$tmp/nm.txt" | tr '\n' ' '))"
fi
grep -q ' bcd_version_number@@' "$tmp/nm.txt" && ok "symbols carry a version node" || fail "no symbol version node"
for elf in "$L/libbcd.so.0.1.0" "$dest$bindir/bcd-cli"; do
    if readelf -d "$elf" | grep -E '\((RPATH|RUNPATH)\)' | grep -q "$build"; then
        fail "$(basename "$elf") keeps a run path into the build tree"
    fi
done

echo "== pkg-config"
PKG_CONFIG_PATH=$L/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
pkg-config --exists --print-errors bcd || { fail "pkg-config bcd"; exit 1; }
ver=$(pkg-config --modversion bcd)
cflags=$(pkg-config --cflags bcd)
libs=$(pkg-config --libs bcd)
static_libs=$(pkg-config --static --libs bcd)
echo "   version $ver"
echo "   --cflags --libs: $cflags $libs"
echo "   --static --libs: $static_libs"
[ "$ver" = "$(sed -n 's/^#define BCD_VERSION_STRING "\(.*\)"/\1/p' "$I/bcd/version.h")" ] &&
    ok "bcd.pc version matches bcd/version.h" || fail "bcd.pc version $ver differs from bcd/version.h"

run_env() { LD_LIBRARY_PATH=$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} HOME=$tmp "$@"; }

echo "== examples built against the installed copy"
found=0
for c in "$src"/examples/*.c; do
    [ -f "$c" ] || continue
    found=$((found + 1))
    name=$(basename "$c" .c)
    # shellcheck disable=SC2086 # word splitting of pkg-config output is intended
    if ! $CC -std=c11 -Wall -Wextra -Werror -o "$tmp/$name" "$c" $cflags $libs 2>"$tmp/$name.log"; then
        fail "build examples/$name.c with pkg-config"; sed 's/^/    /' "$tmp/$name.log"; continue
    fi
    resolved=$(run_env ldd "$tmp/$name" | sed -n 's/.*libbcd\.so\.0 => \([^ ]*\).*/\1/p')
    [ "$resolved" = "$L/libbcd.so.0" ] || fail "examples/$name resolves libbcd.so.0 to '$resolved'"
    case $name in
    flow) set -- "$tmp/flow-data" "$src/examples/data" ;;
    embed_one) set -- "$src/examples/data/check1/front.jpg" builtin ;;
    *) set -- ;;
    esac
    if run_env env -u BCD_STORE -u BCD_DATA_DIR -u BCD_MODEL "$tmp/$name" "$@" >"$tmp/$name.out" 2>&1; then
        ok "examples/$name.c built with pkg-config and ran: $(tail -n 1 "$tmp/$name.out" | cut -c1-100)"
    else
        fail "examples/$name exited with $?"; sed 's/^/    /' "$tmp/$name.out"
    fi
done
[ "$found" -gt 0 ] || fail "no C program in examples/"
if grep -q '"comparison_method"' "$tmp/flow.out" 2>/dev/null; then ok "flow printed the comparison"; else
    fail "flow printed no comparison"; fi

echo "== static linking: libbcd.a plus what bcd.pc declares private (system libraries shared)"
# `pkg-config --static` would also expand the private requirements of libcurl & co.,
# whose static archives a system need not have; what is checked here is that bcd.pc's
# own Libs.private and Requires.private are complete for libbcd.a.
priv_requires=$(pkg-config --print-requires-private bcd | awk '{print $1}' | tr '\n' ' ')
priv_libs=$(sed -n 's/^Libs.private: *//p' "$L/pkgconfig/bcd.pc")
# shellcheck disable=SC2086
static_deps="$(echo " $libs " | sed 's/ -lbcd / -l:libbcd.a /') $priv_libs $(pkg-config --libs $priv_requires)"
echo "   $static_deps"
if $CC -std=c11 -o "$tmp/flow-static" "$src/examples/flow.c" $cflags $static_deps 2>"$tmp/static.log"; then
    if ldd "$tmp/flow-static" | grep -q libbcd; then
        fail "flow-static still needs libbcd.so"
    elif env -u BCD_STORE -u BCD_DATA_DIR -u BCD_MODEL HOME=$tmp "$tmp/flow-static" "$tmp/flow-static-data" \
            "$src/examples/data" >"$tmp/static.out" 2>&1; then
        ok "flow linked statically from Libs.private/Requires.private and ran"
    else
        fail "static flow exited non-zero"; sed 's/^/    /' "$tmp/static.out"
    fi
else
    fail "static link with pkg-config --static --libs bcd"; sed 's/^/    /' "$tmp/static.log"
fi

echo "== every public header alone, C11 and C++17"
for h in "$I/bcd.h" "$I"/bcd/*.h; do
    rel=${h#"$I/"}
    printf '#include <%s>\nint bcd_header_test_dummy;\n' "$rel" >"$tmp/tu.c"
    # shellcheck disable=SC2086
    if $CC -std=c11 -pedantic -Werror -Wall -Wextra $cflags -c "$tmp/tu.c" -o "$tmp/tu.o" 2>"$tmp/h.log"; then
        ok "C11   $rel"
    else
        fail "C11 $rel"; sed 's/^/    /' "$tmp/h.log"
    fi
    cp "$tmp/tu.c" "$tmp/tu.cpp"
    # shellcheck disable=SC2086
    if $CXX -std=c++17 -pedantic -Werror -Wall -Wextra $cflags -c "$tmp/tu.cpp" -o "$tmp/tu.o" 2>"$tmp/h.log"; then
        ok "C++17 $rel"
    else
        fail "C++17 $rel"; sed 's/^/    /' "$tmp/h.log"
    fi
done

echo "== bcd-cli finds the installed libbcd (run path outside /usr)"
runpath=$(readelf -d "$dest$bindir/bcd-cli" | sed -n 's/.*(\(RPATH\|RUNPATH\)).*\[\(.*\)\]/\2/p')
if [ "$prefix" = /usr ]; then
    if [ -z "$runpath" ]; then ok "no run path under /usr"; else fail "run path under /usr: $runpath"; fi
elif [ "$runpath" = "$libdir" ]; then ok "run path $runpath"
else fail "bcd-cli's run path is '$runpath', not $libdir"; fi

echo "== installed bcd-cli"
if out=$(run_env "$dest$bindir/bcd-cli" --version 2>&1); then ok "bcd-cli --version: $out"; else
    fail "installed bcd-cli --version: $out"; fi

echo "== Python package against the installed library (system loader, no BCD_LIBRARY)"
if [ -x /usr/bin/python3 ] && [ -d "$src/bindings/python/bcd" ]; then
    if run_env env -u BCD_LIBRARY -u BCD_STORE -u BCD_DATA_DIR -u BCD_MODEL PYTHONPATH="$src/bindings/python" \
            PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c '
import bcd, sys
lib = bcd.load_library()
print(lib.path, bcd.library_version())
' >"$tmp/py.out" 2>&1 && grep -q "$ver" "$tmp/py.out"; then
        ok "bcd (Python) found $(head -n 1 "$tmp/py.out")"
    else
        fail "Python binding could not load the installed library"; sed 's/^/    /' "$tmp/py.out"
    fi
    if /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
        cp -r "$src/bindings/python" "$tmp/pysrc"
        if /usr/bin/python3 -m pip install --quiet --no-build-isolation --no-index --no-deps \
                --target "$tmp/site" "$tmp/pysrc" >"$tmp/pip.log" 2>&1 && [ -f "$tmp/site/bcd/__init__.py" ]; then
            ok "pip install --no-build-isolation --no-index ./bindings/python (offline)"
        else
            fail "pip install of bindings/python"; sed 's/^/    /' "$tmp/pip.log"
        fi
    else
        echo "skip: pip not available"
    fi
fi

echo
if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all install checks passed"
