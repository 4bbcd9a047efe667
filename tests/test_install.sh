#!/bin/sh
# test_install.sh SOURCE_DIR BUILD_DIR - the installation: `cmake --install`
# staged with DESTDIR puts every file under the prefix (programs, libraries,
# headers, pkg-config and CMake packages, the module directory, man pages,
# documents and examples), the program and the library with full RELRO;
# the installed aemp reports the version and the
# module directory of that prefix; programs build against the staged
# prefix with pkg-config and with find_package(libaemp CONFIG) and run;
# an install into a prefix the build was not configured for is refused.
set -eu

SRC=${1:?usage: test_install.sh SOURCE_DIR BUILD_DIR}
BUILD=${2:?usage: test_install.sh SOURCE_DIR BUILD_DIR}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

pass=0
fail=0
# check DESCRIPTION COMMAND...: count COMMAND's success as a pass.
check() {
    desc=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $desc" >&2
    fi
}
has() { printf '%s\n' "$1" | grep -F -q -- "$2"; }
# flat: stdin with every run of blanks and newlines as one space
flat() { tr -s ' \n' '  '; }
# man PAGE: the page rendered as plain text, flat; warnings in $T/groff.err
man_text() { groff -man -Tascii -ww "$1" 2>"$T/groff.err" | col -bx | flat; }

cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
PREFIX=$(cache CMAKE_INSTALL_PREFIX)
LIBDIR=$(cache CMAKE_INSTALL_LIBDIR)
VERSION=$(sed -n 's/^#define AEMP_VERSION "\(.*\)"/\1/p' "$SRC/include/aemp.h")
STAGE=$T/stage
P=$STAGE$PREFIX

# ---------------------------------------------------------------- layout
rc=0
DESTDIR=$STAGE cmake --install "$BUILD" >"$T/install.out" 2>&1 || rc=$?
check "cmake --install with DESTDIR: exit 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$T/install.out" >&2
for f in bin/aemp "$LIBDIR/libaemp.so" "$LIBDIR/libaemp.so.0" "$LIBDIR/libaemp.a" \
    include/aemp.h include/aemp_msg.h include/aemp_module.h include/aemp_fiber.h include/aemp_json.h \
    "$LIBDIR/pkgconfig/libaemp.pc" "$LIBDIR/cmake/libaemp/libaemp-config.cmake" \
    "$LIBDIR/cmake/libaemp/libaemp-config-version.cmake" "$LIBDIR/cmake/libaemp/libaemp-targets.cmake" \
    "$LIBDIR/cmake/libaemp/aemp_module.cmake" share/man/man1/aemp.1 share/man/man3/libaemp.3 \
    share/doc/libaemp/README.md share/doc/libaemp/aemp.md share/doc/libaemp/tutorial.md \
    share/doc/libaemp/examples/CMakeLists.txt share/doc/libaemp/examples/ping_pong.c \
    share/doc/libaemp/examples/chat_server.c share/doc/libaemp/examples/chat_client.c \
    share/doc/libaemp/examples/ioserver.c share/doc/libaemp/examples/bin/ping_pong \
    share/doc/libaemp/examples/bin/chat_server.so; do
    check "installed: $f" [ -f "$P/$f" ]
done
check "installed: the module directory" [ -d "$P/$LIBDIR/aemp/modules" ]
# full RELRO: symbols bound at load, relocated data read-only afterwards
for f in bin/aemp "$LIBDIR/libaemp.so"; do
    check "$f: BIND_NOW" has "$(readelf -d "$P/$f")" BIND_NOW
    check "$f: GNU_RELRO" has "$(readelf -l "$P/$f")" GNU_RELRO
done
check "nothing installed outside the prefix" [ -z "$(cd "$STAGE" && find . -type f | grep -v "^.$PREFIX/")" ]

# ------------------------------------------------- the installed programs
out=$("$P/bin/aemp" --version || true)
check "aemp --version: versions" has "$out" "aemp $VERSION (libaemp $VERSION)"
check "aemp --version: the prefix's module directory" has "$out" "module directory: $PREFIX/$LIBDIR/aemp/modules"
out=$("$P/share/doc/libaemp/examples/bin/ping_pong" 3 || true)
check "installed example ping_pong runs" has "$out" "pong 3"

# --------------------------------------------------------------- man pages
out=$(man_text "$P/share/man/man1/aemp.1")
check "aemp(1) renders" has "$out" "aemp - configure, run and talk to AnyEvent::MP nodes"
check "aemp(1) names the module directory" has "$out" "$PREFIX/$LIBDIR/aemp/modules"
check "aemp(1): no groff warnings" [ ! -s "$T/groff.err" ]
out=$(man_text "$P/share/man/man3/libaemp.3")
check "libaemp(3) renders" has "$out" "libaemp - Erlang-style distributed message passing"
check "libaemp(3): version" has "$out" "libaemp $VERSION"
check "libaemp(3): no groff warnings" [ ! -s "$T/groff.err" ]

# ---------------------------------------------- a program via pkg-config
cat >"$T/v.c" <<'C'
#include <aemp.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    printf("header %s library %s\n", AEMP_VERSION, aemp_version());
    return strcmp(AEMP_VERSION, aemp_version()) != 0;
}
C
export PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig"
# a sanitizer build's library needs programs built with the same runtime
SAN=""
if ldd "$P/$LIBDIR/libaemp.so" | grep -q libasan; then
    SAN="-fsanitize=address,undefined"
fi
check "pkg-config: version" [ "$(pkg-config --modversion libaemp)" = "$VERSION" ]
check "pkg-config: moduledir" [ "$(pkg-config --variable=moduledir libaemp)" -ef "$P/$LIBDIR/aemp/modules" ]
rc=0
# shellcheck disable=SC2046
cc $SAN -o "$T/v" "$T/v.c" $(pkg-config --cflags --libs libaemp) 2>"$T/cc.err" || rc=$?
check "pkg-config: a program compiles and links" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || cat "$T/cc.err" >&2
out=$(LD_LIBRARY_PATH="$P/$LIBDIR" "$T/v" || true)
check "pkg-config program with LD_LIBRARY_PATH: the library's version at run time" \
    [ "$out" = "header $VERSION library $VERSION" ]
rc=0
# shellcheck disable=SC2046
cc $SAN -o "$T/vr" "$T/v.c" $(pkg-config --cflags --libs libaemp) \
    -Wl,-rpath,"$(pkg-config --variable=libdir libaemp)" 2>"$T/cc.err" || rc=$?
out=$(env -u LD_LIBRARY_PATH "$T/vr" || true)
check "pkg-config program with an rpath runs without LD_LIBRARY_PATH" \
    [ "$out" = "header $VERSION library $VERSION" ]

# -------------------------- the examples via find_package(libaemp CONFIG)
rc=0
cmake -S "$P/share/doc/libaemp/examples" -B "$T/ex" -DCMAKE_PREFIX_PATH="$P" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" >"$T/ex.out" 2>&1 \
    && cmake --build "$T/ex" -j 2 >>"$T/ex.out" 2>&1 || rc=$?
check "find_package(libaemp CONFIG): the installed examples build" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || tail -30 "$T/ex.out" >&2
if [ "$rc" -eq 0 ]; then
    out=$("$T/ex/ping_pong" 3 || true)
    check "example built against the package runs (build-tree rpath)" has "$out" "pong 3"
    check "aemp_add_module from the package: chat_server.so" [ -f "$T/ex/chat_server.so" ]
    check "libaemp::aemp is the shared library" \
        [ -n "$(ldd "$T/ex/ping_pong" | grep -F "$P/$LIBDIR/libaemp.so")" ]
fi

# ------------------------------------------- another prefix is refused
rc=0
cmake --install "$BUILD" --prefix "$T/other" >"$T/other.out" 2>&1 || rc=$?
out=$(flat <"$T/other.out")
check "install into another prefix: refused" [ "$rc" -ne 0 ]
check "install into another prefix: says why" has "$out" "configured for the prefix $PREFIX"
check "install into another prefix: says how" has "$out" "make install PREFIX=$T/other"
check "install into another prefix: nothing installed" [ -z "$(find "$T/other" -type f 2>/dev/null)" ]

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
