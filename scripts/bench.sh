#!/bin/sh
# Run every benchmark program; each prints "RESULT <name> <value> <unit>".
# bench/erlang_dist.sh measures Erlang's distribution the same way as
# bench_remote, for comparison, when Debian's erlang-base is installed.
set -eu
build=${1:-build}
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b"
done
echo "== erlang_dist"
sh "$(dirname "$0")/../bench/erlang_dist.sh" 2>/dev/null
echo "== erlang_local"
sh "$(dirname "$0")/../bench/erlang_local.sh" 2>/dev/null
