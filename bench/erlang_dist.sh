#!/bin/sh
# bench/erlang_dist.sh - Erlang's distribution on this machine, for
# comparison with bench_remote: prints RESULT erlang_oneway / erlang_rtt_*
# lines.  Needs Debian's erlang-base (not a build dependency); without it
# it says so and exits 0.  Both Erlang nodes are stopped by their PIDs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v erl >/dev/null 2>&1 || ! command -v erlc >/dev/null 2>&1; then
    echo "SKIP erlang_dist: erlang-base is not installed (apt-get install erlang-base)"
    exit 0
fi
tmp=$(mktemp -d)
pids=""
# Erlang starts the epmd name daemon on demand; stop it again afterwards
# unless it was already running before this script
epmd_was_running=0
epmd -names >/dev/null 2>&1 && epmd_was_running=1
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    [ $epmd_was_running = 1 ] || epmd -kill >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
keep_dump() { [ -f "$tmp/cli.dump" ] && head -3 "$tmp/cli.dump"; }
export ERL_CRASH_DUMP="$tmp/erl_crash.dump"
erlc -o "$tmp" "$here/erlang_dist.erl"
cookie=bench$$
srv="srv$$@127.0.0.1"
HOME="$tmp" erl -name "$srv" -setcookie "$cookie" -noshell -pa "$tmp" -s erlang_dist serve &
pids="$!"
# wait (bounded) until the server node answers
i=0
until HOME="$tmp" erl -name "probe$$@127.0.0.1" -setcookie "$cookie" -noshell \
        -eval "case net_adm:ping('$srv') of pong -> halt(0); _ -> halt(1) end." 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 50 ] && { echo "erlang server node did not start"; exit 1; }
    sleep 0.2
done
HOME="$tmp" ERL_CRASH_DUMP="$tmp/cli.dump" timeout 300 erl -name "cli$$@127.0.0.1" -setcookie "$cookie" -noshell -pa "$tmp" \
    -run erlang_dist run "$srv"
