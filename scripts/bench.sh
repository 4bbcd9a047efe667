#!/bin/sh
# Run every benchmark program; each prints "RESULT <name> <value> <unit>".
set -eu
build=${1:-build}
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b"
done
