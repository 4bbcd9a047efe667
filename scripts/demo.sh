#!/bin/sh
# The demo that `make demo` runs after building: a seed node started by
# `aemp run` from a profile, a client talking to it, and the local
# ping-pong example.  Everything runs on 127.0.0.1 with a throw-away rc
# file; every process started here is stopped by its PID.
set -eu
build=${1:-build}
aemp="$build/tools/aemp"
tmp=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
export PERL_ANYEVENT_MP_RC="$tmp/rc"
export AEMP_WARNLEVEL=2

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "a shared secret and a profile for the seed (written to $PERL_ANYEVENT_MP_RC)"
run "$aemp" gensecret profile seed nodeid seed binds 127.0.0.1:0
run "$aemp" showprofile seed

say "start the seed node: aemp run profile seed"
"$aemp" run profile seed > "$tmp/seed.out" &
pids="$pids $!"
i=0
while ! grep -q "listening on" "$tmp/seed.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "seed did not start"; exit 1; }
    sleep 0.1
done
cat "$tmp/seed.out"
addr=$(sed -n 's/.* listening on \([^,]*\).*/\1/p' "$tmp/seed.out")

say "client nodes find the seed through the global seeds list"
run "$aemp" seeds "$addr"

say "a request with a reply (cal) to the seed's echo port"
run "$aemp" cal seed#echo hello '{"from":"demo"}' 42
say "the seed's clock (node-port request 'time')"
run "$aemp" cal seed time
say "a one-way message, confirmed by a relay through the seed's node port"
run "$aemp" snd seed#echo fire-and-forget
say "spawn a port on the seed, then monitor it while it is killed"
run "$aemp" snd seed AnyEvent::MP::_spawn demo1 aemp::sink
run "$aemp" snd seed#demo1 one
run "$aemp" snd seed#demo1 two
run "$aemp" cal seed#demo1 count
"$aemp" mon seed#demo1 > "$tmp/mon.out" &
monpid=$!
pids="$pids $monpid"
sleep 0.5
run "$aemp" snd seed kil1 demo1 custom_error bye
i=0
while ! [ -s "$tmp/mon.out" ]; do
    i=$((i + 1)); [ $i -gt 100 ] && break
    sleep 0.1
done
printf 'monitor saw: %s\n' "$(cat "$tmp/mon.out")"

say "who is connected to the seed"
run "$aemp" trace seed

say "local ports: ping-pong, then a kill seen by a monitor"
run "$build/examples/ping_pong" 3
