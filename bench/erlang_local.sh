#!/bin/sh
# bench/erlang_local.sh [messages] - Erlang's local message passing with one
# scheduler (erl +S 1), for comparison with bench_local: prints RESULT
# erlang_local_oneway / erlang_local_pingpong lines (default 10,000,000
# messages, a quarter as many round trips, as bench_local).  Needs Debian's
# erlang-base (not a build dependency); without it it says so and exits 0.
# The VM is not distributed (no epmd is started); it runs under `timeout`,
# which stops it by its PID after 300 s at most.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-10000000}
if ! command -v erl >/dev/null 2>&1 || ! command -v erlc >/dev/null 2>&1; then
    echo "SKIP erlang_local: erlang-base is not installed (apt-get install erlang-base)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
erlc -o "$tmp" "$here/erlang_local.erl"
HOME="$tmp" ERL_CRASH_DUMP="$tmp/erl_crash.dump" timeout 300 erl +S 1 -noshell -pa "$tmp" \
    -run erlang_local run "$n"
