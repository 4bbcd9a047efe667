#!/bin/sh
# Run the libFuzzer targets built in BUILD (configured with -DAEMP_FUZZ=ON,
# as `make fuzz` does) for SECONDS each, and print one line per target with
# its executions, coverage (libFuzzer's cov: and ft: at the end) and
# result.  Exit status 1 if any target failed (a crash, leak, timeout or
# violated property: the input is saved under BUILD/fuzz/artifacts/).
#
#   sh fuzz/run.sh BUILD SECONDS [TARGET...]      (default: every target)
#
# Each target starts from its seeds (fuzz/corpus/TARGET, never written) and
# keeps what it finds in BUILD/fuzz/work/TARGET, so later runs go on from
# there.  FUZZ_JOBS=N runs N targets at once (default 1); the full log of a
# run is BUILD/fuzz/logs/TARGET.log.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD SECONDS [TARGET...]}
seconds=${2:?usage: run.sh BUILD SECONDS [TARGET...]}
shift 2
targets=${*:-"fuzz_frame_cbor fuzz_frame_json fuzz_proto fuzz_auth fuzz_endpoint fuzz_config"}
jobs=${FUZZ_JOBS:-1}
out=$build/fuzz
mkdir -p "$out/logs" "$out/artifacts"

# run_one TARGET: fuzz it, then write its summary line to logs/TARGET.result
run_one() {
    t=$1
    log=$out/logs/$t.log
    mkdir -p "$out/work/$t"
    "$out/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/$t-" "$out/work/$t" "$here/corpus/$t" > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc; $(grep -m1 -E 'ERROR|violated|runtime error' "$log" ||
                 echo "see $log"))"
    fi
    printf 'RESULT %s: %s executions in %s s, cov %s, ft %s, corpus %s: %s\n' "$t" \
        "${execs:-?}" "$seconds" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result" \
        > "$out/logs/$t.result"
}

running=0
for t in $targets; do
    if [ ! -x "$out/$t" ]; then
        echo "run.sh: $out/$t is missing (build the target fuzz_targets with AEMP_FUZZ=ON)" >&2
        exit 1
    fi
    rm -f "$out/logs/$t.result"
    echo "fuzzing $t for $seconds s"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

status=0
for t in $targets; do
    if [ -f "$out/logs/$t.result" ]; then
        cat "$out/logs/$t.result"
        grep -q ': ok$' "$out/logs/$t.result" || status=1
    else
        echo "RESULT $t: no result (see $out/logs/$t.log)"
        status=1
    fi
done
exit $status
