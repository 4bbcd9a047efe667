#!/bin/sh
# test_partition.sh AEMP - a network partition heals and the global
# database converges again.
#
# Two network namespaces made by this test, joined by a veth pair
# (10.213.1.1/24 and 10.213.1.2/24; nothing else is routed anywhere).
# Side A (first namespace): seed1 and workers a1, a2; side B (second): seed2
# and workers b1, b2.  All nodes list both seeds.  Each worker registers an
# echo port in group "part" (aemp::grp_echo); both sides see all four.
#
# The partition: the veth end of side A goes down.  The kernel's TCP
# settings stay at their defaults: libaemp itself notices a silent peer
# within about monitor_timeout (keepalive frames on idle connections, TCP
# keepalive and TCP_USER_TIMEOUT set per socket), so each side soon sees
# only its own members, and half-open connections are reset after the
# partition heals.  During
# the partition side A registers a new member on a2 and kills a1's, side B
# starts a new node b3 with a new member and kills b2's.  The link comes up
# again; both seeds must then report exactly a2#old a2#new b1#old b3#new,
# nothing stale, and each side must reach the other side's new member.
#
# Each side is observed with `aemp db --keys part` run inside its namespace by a
# client whose only seed is that side's seed.  Every process is stopped by
# its PID, every wait is bounded.  Needs root: otherwise (or when
# `ip netns add` fails) it prints "SKIPPED: ..." and exits 77.
#
# AEMP_WARNLEVEL sets the nodes' log level (default 5); PARTITION_LOGS=DIR
# keeps their logs.
set -u

AEMP=${1:?usage: test_partition.sh path/to/aemp}

skip() {
    echo "SKIPPED: needs root and ip netns ($1)"
    exit 77
}

[ "$(id -u)" -eq 0 ] || skip "not running as root"
command -v ip >/dev/null 2>&1 || skip "no ip command"

NS1=aemp-p1-$$
NS2=aemp-p2-$$
VA=aempa$$     # side A's end of the veth pair (in NS1)
VB=aempb$$     # side B's end (in NS2)
IP1=10.213.1.1
IP2=10.213.1.2
PORT=4040
SEEDS=$IP1:$PORT,$IP2:$PORT
SECRET=partition-test-secret
GROUP=part
T=$(mktemp -d)
PIDS=""
MADE_NS=""

cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null || true
    done
    for p in $PIDS; do
        wait "$p" 2>/dev/null || true
    done
    for ns in $MADE_NS; do
        ip netns del "$ns" 2>/dev/null || true   # takes the veth pair with it
    done
    if [ -n "${PARTITION_LOGS:-}" ]; then   # keep the node logs (investigation)
        mkdir -p "$PARTITION_LOGS" && cp "$T"/*.log "$T"/*.out "$PARTITION_LOGS"/ 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS1" 2>"$T/ns.err" || skip "ip netns add failed: $(cat "$T/ns.err")"
MADE_NS=$NS1
ip netns add "$NS2" 2>"$T/ns.err" || skip "ip netns add failed: $(cat "$T/ns.err")"
MADE_NS="$NS1 $NS2"
# the pair is created directly inside the two namespaces
ip link add "$VA" netns "$NS1" type veth peer name "$VB" netns "$NS2" 2>"$T/ns.err" ||
    skip "cannot create a veth pair: $(cat "$T/ns.err")"
for ns in $NS1 $NS2; do
    ip -n "$ns" link set lo up || skip "cannot bring up lo in $ns"
done
ip -n "$NS1" addr add $IP1/24 dev "$VA" && ip -n "$NS2" addr add $IP2/24 dev "$VB" &&
    ip -n "$NS1" link set "$VA" up && ip -n "$NS2" link set "$VB" up ||
    skip "cannot configure the veth pair"

export PERL_ANYEVENT_MP_RC="$T/nodes.rc"   # the nodes get everything on the command line
unset PERL_ANYEVENT_MP_WARNLEVEL 2>/dev/null || true
LOGLEVEL=${AEMP_WARNLEVEL:-5}

# the observers' rc files: side 1 asks only seed1, side 2 only seed2
for s in 1 2; do
    eval "ip=\$IP$s"
    PERL_ANYEVENT_MP_RC="$T/rc$s" "$AEMP" profile aemp setseeds "$ip:$PORT" setsecret $SECRET \
        setconnect_interval 1 setmonitor_timeout 3 >/dev/null || { echo "cannot write $T/rc$s"; exit 1; }
done

pass=0
fail=0
START=$(date +%s.%N)
# every wait also ends at this deadline, which keeps a failing run well
# inside ctest's 180 s (a killed run could not clean up)
HARD_END=$(($(date +%s) + 140))

# elapsed seconds since the start (one decimal)
now() { awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }
say() { echo "[$(now) s] $*"; }

# check DESCRIPTION COMMAND...
check() {
    desc=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
        say "ok: $desc"
    else
        fail=$((fail + 1))
        say "FAIL: $desc"
    fi
}

# side N ARGS...: run aemp ARGS as a client on side N (seeded by seedN only)
side() {
    s=$1
    shift
    eval "ns=\$NS$s"
    PERL_ANYEVENT_MP_RC="$T/rc$s" AEMP_WARNLEVEL=1 ip netns exec "$ns" "$AEMP" "$@"
}

# start NAME SIDE: an `aemp run` node in SIDE's namespace
start() {
    name=$1
    s=$2
    eval "ns=\$NS$s ip=\$IP$s"
    case $name in seed*) bind=$ip:$PORT ;; *) bind=$ip:0 ;; esac
    AEMP_WARNLEVEL=$LOGLEVEL ip netns exec "$ns" "$AEMP" run nodeid "$name" binds "$bind" \
        seeds "$SEEDS" secret $SECRET connect_interval 1 monitor_timeout 3 \
        >"$T/$name.out" 2>"$T/$name.log" &
    PIDS="$PIDS $!"
    n=0
    while ! grep -q "listening on" "$T/$name.out" 2>/dev/null; do
        n=$((n + 1))
        if [ $n -gt 50 ] || ! kill -0 $! 2>/dev/null; then
            say "node $name did not start"
            return 1
        fi
        sleep 0.1
    done
}

# spawn SIDE NODE NAME: a member of GROUP, NODE#NAME
spawn() {
    side "$1" snd "$2" AnyEvent::MP::_spawn "$3" aemp::grp_echo $GROUP >/dev/null
}

# members SIDE: the members of GROUP that SIDE's seed reports, on one line
members() {
    side "$1" db --keys $GROUP 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}

# wait_view SIDE "SORTED MEMBERS" SECONDS: until SIDE's seed reports exactly
# those members
wait_view() {
    want=$2
    end=$(($(date +%s) + $3))
    n=0
    while :; do
        got=$(members "$1")
        [ "$got" = "$want" ] && return 0
        n=$((n + 1))
        t=$(date +%s)
        if [ "$t" -ge $end ] || [ "$t" -ge $HARD_END ] || [ $n -gt 1000 ]; then
            say "side $1 sees [$got], want [$want]"
            return 1
        fi
        sleep 0.2
    done
}

# both_see "MEMBERS" SECONDS
both_see() {
    wait_view 1 "$1" "$2" && wait_view 2 "$1" "$2"
}

# global_view SIDE "NODES": the global nodes ('g family) SIDE's seed reports
global_view() {
    [ "$(side "$1" db --keys "'g" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')" = "$2" ]
}
globals_are() { global_view 1 "$1" && global_view 2 "$1"; }
globals_split() { global_view 1 seed1 && global_view 2 seed2; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds
wait_for() {
    end=$(($(date +%s) + $1))
    shift
    n=0
    until "$@"; do
        n=$((n + 1))
        t=$(date +%s)
        [ "$t" -lt $end ] && [ "$t" -lt $HARD_END ] && [ $n -lt 1000 ] || return 1
        sleep 0.2
    done
}
views_are() { [ "$(members 1)" = "$1" ] && [ "$(members 2)" = "$1" ]; }

dump_logs() {
    for f in "$T"/*.log; do
        echo "---- $(basename "$f") (last 40 lines)"
        tail -n 40 "$f"
    done
}

# ------------------------------------------------------------------ start

ok=1
start seed1 1 && start seed2 2 || ok=0
for w in a1:1 a2:1 b1:2 b2:2; do
    [ $ok -eq 1 ] && { start "${w%:*}" "${w#*:}" || ok=0; }
done
check "seeds and workers start in two namespaces" [ $ok -eq 1 ]
if [ $ok -eq 0 ]; then
    dump_logs
    echo "$pass passed, $fail failed"
    exit 1
fi

for w in a1:1 a2:1 b1:2 b2:2; do
    spawn "${w#*:}" "${w%:*}" old
done
ALL="a1#old a2#old b1#old b2#old"
check "both sides see all four members" both_see "$ALL" 20
check "both seeds are global on both sides" globals_are "seed1 seed2"

# -------------------------------------------------------------- partition

say "partition: $VA down in $NS1"
ip -n "$NS1" link set "$VA" down
T0=$(date +%s)
check "side A sees only its members (partition noticed)" wait_view 1 "a1#old a2#old" 30
check "side B sees only its members (partition noticed)" wait_view 2 "b1#old b2#old" 30
check "each seed has dropped the other" wait_for 30 globals_split
say "partition noticed after $(($(date +%s) - T0)) s"

spawn 1 a2 new
side 1 snd a1 kil1 old >/dev/null
start b3 2 || true
spawn 2 b3 new
side 2 snd b2 kil1 old >/dev/null
check "side A sees its changes" wait_view 1 "a2#new a2#old" 15
check "side B sees its changes" wait_view 2 "b1#old b3#new" 15
check "the seeds are still apart" globals_split

# ------------------------------------------------------------------- heal

say "heal: $VA up in $NS1"
ip -n "$NS1" link set "$VA" up
T0=$(date +%s)
FINAL="a2#new a2#old b1#old b3#new"
check "both sides converge to the same members after healing" both_see "$FINAL" 60
say "converged $(($(date +%s) - T0)) s after healing"
check "both seeds are global again" wait_for 10 globals_are "seed1 seed2"
sleep 2
check "still converged 2 s later, nothing stale" views_are "$FINAL"
check "side A reaches the node side B started during the partition" \
    [ "$(side 1 cal b3#new hello 2>&1)" = '"hello"' ]
check "side B reaches side A's new member" [ "$(side 2 cal a2#new hi 2>&1)" = '"hi"' ]

[ $fail -eq 0 ] || dump_logs
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
