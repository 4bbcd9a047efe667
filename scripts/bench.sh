#!/bin/sh
# Run every benchmark program; each prints "RESULT <name> <value> <unit>".
# bench/erlang_dist.sh and bench/erlang_local.sh measure Erlang (when
# Debian's erlang-base is installed), bench_zmq_oneway ZeroMQ and
# bench_tcp_ceiling bare TCP, the same way and in the same run; the ratios
# of libaemp to each peer are printed at the end as RESULT ratio_* lines
# (a ratio from one run holds on a noisy machine, an absolute number not).
set -eu
build=${1:-build}
here=$(dirname "$0")
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM
{
    for b in "$build"/bench/bench_*; do
        [ -x "$b" ] || continue
        echo "== $(basename "$b")"
        "$b"
    done
    echo "== erlang_dist"
    sh "$here/../bench/erlang_dist.sh" 2>/dev/null || true
    echo "== erlang_local"
    sh "$here/../bench/erlang_local.sh" 2>/dev/null || true
} | tee "$out"
echo "== ratios"
awk '
$1 == "RESULT" { v[$2] = $3 }
function ratio(name, a, b) {
    if ((a in v) && (b in v) && v[b] > 0)
        printf "RESULT %s %.2f x\n", name, v[a] / v[b]
}
END {
    ratio("ratio_local_oneway_vs_erlang", "local_oneway_fresh", "erlang_local_oneway")
    ratio("ratio_local_pingpong_vs_erlang", "local_pingpong", "erlang_local_pingpong")
    ratio("ratio_remote_oneway_vs_zmq", "remote_oneway_cbor", "zmq_oneway")
    ratio("ratio_remote_oneway_vs_erlang", "remote_oneway_cbor", "erlang_oneway")
    ratio("ratio_remote_oneway_vs_tcp_ceiling", "remote_oneway_cbor", "tcp_ceiling")
    ratio("ratio_remote_rtt_vs_tcp", "remote_rtt_median_cbor", "tcp_rtt_median")
    ratio("ratio_remote_spawn_vs_erlang", "remote_spawn_cbor", "erlang_spawn")
}' "$out"
