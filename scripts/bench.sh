#!/bin/sh
# Run every benchmark program; each prints "RESULT <name> <value> <unit>".
# bench/erlang_dist.sh and bench/erlang_local.sh measure Erlang (when
# Debian's erlang-base is installed), bench_zmq_oneway ZeroMQ and
# bench_tcp_ceiling bare TCP, the same way and in the same run; the ratios
# of libaemp to each peer are printed at the end as RESULT ratio_* lines
# (a ratio from one run holds on a noisy machine, an absolute number not).
# Remote one-way and ZeroMQ, whose rate swings most with the scheduler,
# run PAIRS more times one right after the other; a ratio is taken between
# the medians of all the runs of its two names.
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
    i=0
    while [ "$i" -lt "${PAIRS:-2}" ] && [ -x "$build/bench/bench_zmq_oneway" ]; do
        echo "== pair $((i + 1)): remote one-way, ZeroMQ"
        "$build/bench/bench_remote" oneway
        "$build/bench/bench_zmq_oneway"
        i=$((i + 1))
    done
} | tee "$out"
echo "== ratios"
awk '
$1 == "RESULT" { n[$2]++; s[$2, n[$2]] = $3 + 0 }
# median of the runs of one name (insertion sort; a handful of values)
function median(k,    i, j, t, c, a) {
    c = n[k]
    for (i = 1; i <= c; i++) a[i] = s[k, i]
    for (i = 2; i <= c; i++)
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
}
function ratio(name, a, b) {
    if ((a in n) && (b in n) && median(b) > 0)
        printf "RESULT %s %.2f x\n", name, median(a) / median(b)
}
END {
    ratio("ratio_local_oneway_vs_erlang", "local_oneway_fresh", "erlang_local_oneway")
    ratio("ratio_local_pingpong_vs_erlang", "local_pingpong", "erlang_local_pingpong")
    ratio("ratio_remote_oneway_vs_zmq", "remote_oneway_cbor", "zmq_oneway")
    ratio("ratio_remote_oneway_vs_erlang", "remote_oneway_cbor", "erlang_oneway")
    ratio("ratio_remote_oneway_vs_tcp_ceiling", "remote_oneway_cbor", "tcp_ceiling")
    ratio("ratio_remote_rtt_vs_tcp", "remote_rtt_median_cbor", "tcp_rtt_median")
    ratio("ratio_remote_rtt_vs_tcp_1cpu", "remote_rtt_median_cbor_1cpu", "tcp_rtt_median_1cpu")
    ratio("ratio_remote_spawn_vs_erlang", "remote_spawn_cbor", "erlang_spawn")
    ratio("ratio_cbor_nested_levels_vs_builder_4096", "frame_cbor_nested_4096", "frame_cbor_nested_builder_4096")
    # the machine CPU of a join storm against the same storm in bare TCP
    # (lower is better; bench_mesh scale 4096 for the large one)
    ratio("ratio_scale_cpu_vs_bare_tcp_256", "scale_machine_cpu_256", "scale_ceiling_machine_cpu_256")
    # and the page faults of a watcher until it agrees, against those of a
    # bare worker (steadier than CPU on a noisy machine; no apostrophes in
    # here: this program is quoted for the shell)
    ratio("ratio_scale_worker_faults_vs_bare_tcp_256", "scale_worker_faults_agree_256", "scale_ceiling_worker_faults_agree_256")
}' "$out"
