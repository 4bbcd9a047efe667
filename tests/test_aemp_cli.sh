#!/bin/sh
# test_aemp_cli.sh AEMP - the aemp command-line tool: configuration commands
# and their effect on the rc file, errors and exit codes, help texts, then
# the protocol commands against a node started with `aemp run` on 127.0.0.1.
#
# Everything happens in a temporary directory (HOME and PERL_ANYEVENT_MP_RC
# point into it).  Background processes are stopped by PID; every wait is
# bounded.
set -eu

AEMP=${1:?usage: test_aemp_cli.sh path/to/aemp}
T=$(mktemp -d)
PIDS=""

cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null || true
    done
    for p in $PIDS; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HOME="$T"
export PERL_ANYEVENT_MP_RC="$T/rc"
unset AEMP_WARNLEVEL PERL_ANYEVENT_MP_WARNLEVEL 2>/dev/null || true

# The python3 interpreter itself (not a wrapper script such as pyenv's shim,
# which costs a tenth of a second per call).
PY=$(python3 -c 'import sys; print(sys.executable)')

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
        echo "  rc=$rc" >&2
        echo "  stdout: $out" >&2
        echo "  stderr: $err" >&2
    fi
}

# r ARGS...: run aemp; sets $rc, $out and $err.
r() {
    rc=0
    "$AEMP" "$@" >"$T/out" 2>"$T/err" || rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

# rcr FILE ARGS...: r with the rc file FILE.
rcr() {
    f=$1
    shift
    rc=0
    PERL_ANYEVENT_MP_RC=$f "$AEMP" "$@" >"$T/out" 2>"$T/err" || rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

rc_is() { [ "$rc" -eq "$1" ]; }
out_is() { [ "$out" = "$1" ]; }
out_has() { printf '%s\n' "$out" | grep -F -q -- "$1"; }
err_has() { printf '%s\n' "$err" | grep -F -q -- "$1"; }
err_is() { [ "$err" = "$1" ]; }
no_file() { [ ! -e "$1" ]; }
same_file() { cmp -s "$1" "$2"; }

# j KEY...: the value at that path of the rc file, as compact sorted JSON
# ("null" if absent).
j() {
    "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    d = d.get(k) if isinstance(d, dict) else None
print(json.dumps(d, sort_keys=True, separators=(",", ":")))' "${JRC:-$PERL_ANYEVENT_MP_RC}" "$@"
}

# jis EXPECTED KEY...: the rc file has EXPECTED (compact JSON) at KEY...
jis() {
    want=$1
    shift
    got=$(j "$@")
    [ "$got" = "$want" ] || { echo "  $*: got $got, want $want" >&2; return 1; }
}

# oj KEY: the value of KEY in the JSON object printed on stdout ($out).
oj() {
    printf '%s' "$out" | "$PY" -c '
import json, sys
print(json.dumps(json.load(sys.stdin).get(sys.argv[1]), sort_keys=True, separators=(",", ":")))' "$1"
}

# ojis EXPECTED KEY
ojis() {
    got=$(oj "$2")
    [ "$got" = "$1" ] || { echo "  $2: got $got, want $1" >&2; return 1; }
}

# running PID: the process exists and is not a zombie.
running() {
    if [ -r "/proc/$1/stat" ]; then
        state=$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)
        [ "$state" != Z ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}

# Wait (at most 10 s, polling every 10 ms) until file $1 of process $2
# says "listening on", or the process ends.
wait_listening() {
    n=0
    while ! grep -q "listening on" "$1" && [ $n -lt 1000 ] && running "$2"; do
        sleep 0.01
        n=$((n + 1))
    done
}

# wait_exit PID: wait (at most 10 s) until PID has exited; $wrc = its status.
wait_exit() {
    n=0
    while running "$1"; do
        n=$((n + 1))
        if [ $n -ge 100 ]; then
            wrc=999
            return 1
        fi
        sleep 0.1
    done
    wrc=0
    wait "$1" || wrc=$?
    return 0
}

# listen_count PID: the number of listening TCP sockets PID holds.
listen_count() {
    "$PY" -c '
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir("/proc/%s/fd" % pid):
    try:
        link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
n = 0
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(table).read().splitlines()[1:]
    except OSError:
        continue
    n += sum(1 for row in rows if row.split()[3] == "0A" and row.split()[9] in inodes)
print(n)' "$1" 2>/dev/null || echo -1
}

# --------------------------------------------------------------- usage errors

r
check "no subcommand: exit 2" rc_is 2
check "no subcommand: usage on stderr" err_has "usage: aemp"

r frobnicate
check "unknown command: exit 2" rc_is 2
check "unknown command: message" err_is "aemp: no such aemp command 'frobnicate' (try 'aemp help')"

r setnodeid
check "missing argument: exit 2" rc_is 2
check "missing argument: message" err_is "aemp: setnodeid: missing argument ID"
check "missing argument: no rc file written" no_file "$T/rc"

r setbinds '[1,'
check "bad JSON argument: exit 2" rc_is 2
check "bad JSON argument: message names it" err_has "'[1,' is not valid JSON"
check "bad JSON argument: no rc file written" no_file "$T/rc"

r '["setnodeid"'
check "bad JSON argument list: exit 2" rc_is 2
check "bad JSON argument list: message" err_has "not valid JSON"

r restart 'a#b'
check "restart of a port ID: usage error" rc_is 2
check "restart of a port ID: message" err_has "'a#b' is not a node ID"

# ------------------------------------------------------------ chaining, secret

r gensecret profile xyzzy binds 4040,4041 nodeid anon/
check "chain: exit 0" rc_is 0
check "chain: secret is 86 characters" [ "$(j secret | tr -d '"' | wc -c)" -eq 87 ]
check "chain: binds in profile" jis '["4040","4041"]' profile xyzzy binds
check "chain: nodeid in profile" jis '"anon/"' profile xyzzy nodeid
check "chain: global section untouched" jis null binds

r showprofile xyzzy
check "showprofile: exit 0" rc_is 0
check "showprofile: own values only" [ "$(printf '%s' "$out" | "$PY" -c 'import json,sys; print(sorted(json.load(sys.stdin)))')" = "['binds', 'nodeid']" ]

rcr "$T/new.rc" setnodeid fresh
check "new rc file: exit 0" rc_is 0
check "new rc file gets a random secret" [ "$(JRC="$T/new.rc" j secret | wc -c)" -eq 89 ]
check "new rc file: the value" [ "$(JRC="$T/new.rc" j nodeid)" = '"fresh"' ]
rcr "$T/new2.rc" delsecret setnodeid fresh
check "new rc file with delsecret: no secret" [ "$(JRC="$T/new2.rc" j secret)" = null ]

# ---------------------------------------- setX / X / delX for every simple key

# key value1 json1 value2 json2
for spec in \
    "nodeid n1 \"n1\" n2 \"n2\"" \
    "secret s1 \"s1\" s2 \"s2\"" \
    "monitor_timeout 12 \"12\" 13 \"13\"" \
    "connect_interval 3 \"3\" 4.5 \"4.5\"" \
    "framing_format json,cbor [\"json\",\"cbor\"] json [\"json\"]" \
    "auth_offer hmac_sha3_512 [\"hmac_sha3_512\"] hmac_md6_64_256,hmac_sha3_512 [\"hmac_md6_64_256\",\"hmac_sha3_512\"]" \
    "auth_accept cleartext [\"cleartext\"] hmac_sha3_512,cleartext [\"hmac_sha3_512\",\"cleartext\"]" \
    "autocork 1 \"1\" 0 \"0\"" \
    "nodelay 0 \"0\" 1 \"1\"" \
    "secure 1 \"1\" 0 \"0\"" \
    "dialect 1.30 \"1.30\" 2.02 \"2.02\"" \
    "max_frame 65536 \"65536\" 1048576 \"1048576\"" \
    "seeds a:1,b:2 [\"a:1\",\"b:2\"] c:3 [\"c:3\"]" \
    "binds *:4040 [\"*:4040\"] 1.2.3.4:5,6.7.8.9:10 [\"1.2.3.4:5\",\"6.7.8.9:10\"]" \
    "services A::b,C::d [\"A::b\",\"C::d\"] E::f [\"E::f\"]"; do
    set -f
    set -- $spec
    set +f
    r profile p1 "set$1" "$2"
    check "set$1: exit 0" rc_is 0
    check "set$1: value" jis "$3" profile p1 "$1"
    r profile p1 "$1" "$4"
    check "$1 (alias of set$1): exit 0" rc_is 0
    check "$1 (alias of set$1): value" jis "$5" profile p1 "$1"
    r profile p1 "del$1"
    check "del$1: exit 0" rc_is 0
    check "del$1: removed" jis null profile p1 "$1"
    r "set$1" "$2"
    check "set$1 on the global section" jis "$3" "$1"
    r "del$1"
    check "del$1 on the global section" jis null "$1"
done

r setsecret topsecret
check "setsecret restores a global secret" jis '"topsecret"' secret

r profile p1 setmonitor_timeout abc
check "type error: exit 1" rc_is 1
check "type error: message" err_has "must be a number"
check "type error: not stored" jis null profile p1 monitor_timeout

r profile p1 setdialect 3.0
check "bad dialect: exit 1" rc_is 1

# cert
printf -- '-----BEGIN CERTIFICATE-----\nxyz\n-----END CERTIFICATE-----\n' >"$T/cert.pem"
r profile p1 setcert "$T/cert.pem"
check "setcert: exit 0" rc_is 0
check "setcert: content" jis '"-----BEGIN CERTIFICATE-----\nxyz\n-----END CERTIFICATE-----\n"' profile p1 cert
r profile p1 delcert
check "delcert" jis null profile p1 cert
r profile p1 cert "$T/cert.pem"
check "cert (alias of setcert)" jis '"-----BEGIN CERTIFICATE-----\nxyz\n-----END CERTIFICATE-----\n"' profile p1 cert
r profile p1 setcert "$T/no-such-file"
check "setcert of a missing file: exit 1" rc_is 1
check "setcert of a missing file: message" err_has "cannot read"
r profile p2 gencert
check "gencert: exit 0" rc_is 0
check "gencert: certificate then key" [ "$(j profile p2 cert | "$PY" -c 'import json,sys; c=json.load(sys.stdin); print(0 <= c.find("BEGIN CERTIFICATE") < c.find("PRIVATE KEY"))')" = True ]

# ----------------------------------------------------------------- JSON args

r profile p3 setbinds '["*:4040","10.0.0.1:1"]'
check "JSON array argument" jis '["*:4040","10.0.0.1:1"]' profile p3 binds
r '["profile","p3","set","max_frame",70000]'
check "single JSON array replaces the argument list" jis 70000 profile p3 max_frame
r profile p3 setnodeid '"quoted"'
check "JSON string argument" jis '"quoted"' profile p3 nodeid
r profile p3 addservice '["Foo::bar",1,{"a":2}]'
check "JSON service spec" jis '[["Foo::bar",1,{"a":2}]]' profile p3 services

# ------------------------------------------------- list items: add/del

r profile p4 setseeds a:1,b:2 addseed a:1 addseed c:3
check "addseed de-duplicates (moves to the end)" jis '["b:2","a:1","c:3"]' profile p4 seeds
r profile p4 addseed c:3
check "addseed of the last one keeps one copy" jis '["b:2","a:1","c:3"]' profile p4 seeds
r profile p4 delseed b:2
check "delseed" jis '["a:1","c:3"]' profile p4 seeds
r profile p4 delseed zz:9
check "delseed of a missing entry: exit 0" rc_is 0
r profile p4 addbind x:1 addbind y:2 addbind x:1 delbind y:2
check "addbind/delbind" jis '["x:1"]' profile p4 binds
r profile p4 addservice S::a addservice S::a addservice S::b delservice S::a
check "addservice keeps duplicates, delservice removes the first" jis '["S::a","S::b"]' profile p4 services

# -------------------------------------------------------- generic set / del

r profile p4 set frobkey 17
check "set of an unknown key: exit 0" rc_is 0
check "set of an unknown key: warning" err_has "warning"
check "set of an unknown key: stored" jis '"17"' profile p4 frobkey
r profile p4 del frobkey
check "del of an unknown key" jis null profile p4 frobkey
r profile p4 set connect_interval 9 set seeds q:1,r:2
check "set of known keys" jis '["q:1","r:2"]' profile p4 seeds
r set version 2
check "set of a reserved key: exit 1" rc_is 1

# one validation path (the rc-file code's) for the command line, the rc
# file and configure, with the same messages
r profile p4 set nodid x
check "set of a typo key: the suggestion" err_is "aemp: set: warning: 'nodid' is not a configuration key libaemp knows (did you mean 'nodeid'?); storing it anyway"
r profile p4 set module_path /opt/a:/opt/b
check "set module_path: a known key, no warning" err_is ""
check "set module_path: stored" jis '"/opt/a:/opt/b"' profile p4 module_path
r profile p4 setnodelay maybe
check "setnodelay maybe: exit 1" rc_is 1
check "setnodelay maybe: message" err_is "aemp: setnodelay: key 'nodelay' must be a boolean (true/false, 1/0, yes/no, on/off), got \"maybe\""
r profile p4 setnodelay off
check "setnodelay off: stored" jis '"off"' profile p4 nodelay
r profile p4 showconfig p4
check "nodelay off is false" ojis false nodelay
r profile p4 setbinds 127.0.0.1:99999
check "setbinds with a bad port: exit 1" rc_is 1
check "setbinds with a bad port: message" err_has "aemp: setbinds: key 'binds' element 1: bad endpoint '127.0.0.1:99999'"
r profile p4 addseed 'a:b:c'
check "addseed of a bad endpoint: exit 1" rc_is 1
check "addseed of a bad endpoint: message" err_has "bad endpoint 'a:b:c'"
r run nodeid x binds
check "run with a value missing: exit 2" rc_is 2
check "run with a value missing: message" err_has "aemp: run: 'nodeid' is a configuration key, not a profile name: is the value of a KEY VALUE pair missing?"
r run nodeid x binds 127.0.0.1:70000
check "run with a bad bind: exit 1" rc_is 1
check "run with a bad bind: the same message" err_has "aemp: run: configure argument: key 'binds' element 1: bad endpoint '127.0.0.1:70000'"

# ------------------------------------------ profiles, parents, showconfig

export PERL_ANYEVENT_MP_RC="$T/chain.rc"
r setsecret g setmonitor_timeout 10 setnodeid globalnode \
    profile base setmonitor_timeout 20 setconnect_interval 5 setseeds b:1 \
    profile child setparent base setconnect_interval 7
check "parent chain set-up: exit 0" rc_is 0
check "setparent" jis '"base"' profile child parent

r showconfig child
check "showconfig: exit 0" rc_is 0
check "showconfig: profile wins over parent" ojis 7 connect_interval
check "showconfig: parent wins over global" ojis 20 monitor_timeout
check "showconfig: global section" ojis '"globalnode"' nodeid
check "showconfig: inherited seeds" ojis '["b:1"]' seeds
check "showconfig: built-in default" ojis '["cbor","json"]' framing_format
check "showconfig: no parent key" ojis null parent

r showconfig child monitor_timeout 99 nodelay 0
check "showconfig args: rc file wins" ojis 20 monitor_timeout
check "showconfig args: fill missing keys" ojis false nodelay
r showconfig child monitor_timeout 99 force 1
check "showconfig args with force win" ojis 99 monitor_timeout
r showconfig nosuchprofile
check "showconfig of a missing profile: global values" ojis 10 monitor_timeout

r showprofile child
check "showprofile child: own values" [ "$(printf '%s' "$out" | "$PY" -c 'import json,sys; print(sorted(json.load(sys.stdin).items()))')" = "[('connect_interval', '7'), ('parent', 'base')]" ]
r showprofile nosuchprofile
check "showprofile of a missing profile: exit 1" rc_is 1

cp "$T/chain.rc" "$T/chain.before"
r profile base setparent child
check "parent loop: exit 1" rc_is 1
check "parent loop: message" err_has "loop"
check "parent loop: rc file untouched" same_file "$T/chain.rc" "$T/chain.before"
r profile base parent base
check "self parent: exit 1" rc_is 1
r setparent base
check "setparent on the global section: exit 1" rc_is 1

r profile child delparent
check "delparent" jis null profile child parent
r showconfig child
check "showconfig without parent" ojis 10 monitor_timeout

r delprofile base
check "delprofile: exit 0" rc_is 0
check "delprofile: gone" jis null profile base
r delprofile nosuch
check "delprofile of a missing profile: exit 1" rc_is 1

r _resolve '127.0.0.1:5,[::1]:6'
check "_resolve" out_is "127.0.0.1:5
[::1]:6"
r _resolve '["127.0.0.1","10.1.2.3:*"]'
check "_resolve JSON list" out_is "127.0.0.1:0
10.1.2.3:0"

r profile aemp setseeds 127.0.0.1:4040,127.0.0.2:4041
r seeds
check "seeds prints profile aemp's resolved seeds" out_is "127.0.0.1:4040
127.0.0.2:4041"

cp "$T/chain.rc" "$T/chain.before"
r setnodeid --help
check "--help: exit 0" rc_is 0
check "--help: help text" out_has "usage: aemp setnodeid"
check "--help: nothing changed" same_file "$T/chain.rc" "$T/chain.before"
r setnodeid ok setsecret
check "error in a chain: exit 2" rc_is 2
check "error in a chain: nothing saved" same_file "$T/chain.rc" "$T/chain.before"

# ---------------------------------------------- malformed / unwritable rc

printf '{\n   "version": 1,\n   "secret": oops\n}\n' >"$T/bad.rc"
cp "$T/bad.rc" "$T/bad.before"
rcr "$T/bad.rc" setnodeid x
check "malformed rc: exit 1" rc_is 1
check "malformed rc: file:line:col" err_has "$T/bad.rc:3:"
check "malformed rc: file untouched" same_file "$T/bad.rc" "$T/bad.before"
rcr "$T/bad.rc" showconfig
check "malformed rc, showconfig: exit 1" rc_is 1
rcr "$T/bad.rc" run nodeid x binds 127.0.0.1:0
check "malformed rc, run: exit 1" rc_is 1
check "malformed rc, run: file:line:col" err_has "bad.rc:3:"

rcr /nonexistent-dir/x setnodeid x
check "unwritable rc location: exit 1" rc_is 1
check "unwritable rc location: message" err_has "cannot write"

# -------------------------------------------------------------------- help

r --version
check "--version: exit 0" rc_is 0
check "--version: tool and library" [ -n "$(printf '%s\n' "$out" | grep -E '^aemp [0-9]+\.[0-9]+\.[0-9]+ \(libaemp [0-9]+\.[0-9]+\.[0-9]+\)$')" ]
check "--version: the module directory" out_has "module directory: /"

r help
check "help: exit 0" rc_is 0
check "help: --version" out_has "--version"
check "help: exit codes" out_has "Exit codes:"
check "help: exit code 3" out_has "3  not supported"
cmds=$(printf '%s\n' "$out" | sed -n 's/^  \([a-z_][a-z_0-9]*\).*/\1/p' | sort -u)
for want in setnodeid nodeid delnodeid gensecret setsecret secret delsecret gencert \
    setcert cert delcert setseeds seeds delseeds addseed delseed setbinds binds \
    delbinds addbind delbind setservices services delservices addservice delservice \
    profile delprofile setparent parent delparent showprofile showconfig \
    setmonitor_timeout monitor_timeout delmonitor_timeout setconnect_interval \
    connect_interval delconnect_interval setframing_format framing_format \
    delframing_format setauth_offer auth_offer delauth_offer setauth_accept \
    auth_accept delauth_accept setautocork autocork delautocork setnodelay nodelay \
    delnodelay setsecure secure delsecure setdialect dialect deldialect \
    setmax_frame max_frame delmax_frame set del _resolve run snd cal mon trace nodes db \
    eval shell restart help; do
    check "help lists $want" [ -n "$(printf '%s\n' "$cmds" | grep -x -- "$want")" ]
done
for c in $cmds; do
    r help "$c"
    check "help $c: exit 0" rc_is 0
    check "help $c: usage line" out_has "usage: aemp $c"
    r "$c" --help
    check "$c --help" out_has "usage: aemp $c"
done
r help nosuchcommand
check "help of an unknown command: exit 2" rc_is 2

# ------------------------------------------------------------------ network

export PERL_ANYEVENT_MP_RC="$T/net.rc"
r setsecret s3cret
check "network rc: exit 0" rc_is 0

r run nodeid seedX binds 127.0.0.1:0 dialect 3.0
check "run with a bad configuration: exit 1" rc_is 1
check "run with a bad configuration: message" err_has "aemp: run:"

# a command-line value the rc file overrides, and a typo key: warnings
cp "$PERL_ANYEVENT_MP_RC" "$T/ovr.rc"
rcr "$T/ovr.rc" setbinds 127.0.0.1:0
PERL_ANYEVENT_MP_RC="$T/ovr.rc" "$AEMP" run nodeid ovr nodid typo binds 127.0.0.2:0 >"$T/ovr.out" 2>"$T/ovr.err" &
OVR=$!
PIDS="$PIDS $OVR"
wait_listening "$T/ovr.out" "$OVR"
kill -TERM "$OVR" 2>/dev/null || true
wait_exit "$OVR" || true
rc=$wrc out=$(cat "$T/ovr.out") err=$(cat "$T/ovr.err")
check "overridden argument: the rc file's binds win (Perl's precedence)" out_has "ovr listening on 127.0.0.1:"
check "overridden argument: a warning names the value, the section and force" \
    err_has "configure argument binds [\"127.0.0.2:0\"] is overridden by the global section of $T/ovr.rc ([\"127.0.0.1:0\"]); the rc file wins unless the argument force is true"
check "typo key in run: a warning with the suggestion" \
    err_has "configure argument: 'nodid' is not a configuration key libaemp knows (did you mean 'nodeid'?)"

"$AEMP" run nodeid seedA binds 127.0.0.1:0 secret s3cret >"$T/seed.out" 2>"$T/seed.err" &
SEED=$!
PIDS="$PIDS $SEED"
n=0
ADDR=""
while [ -z "$ADDR" ] && [ $n -lt 100 ] && running "$SEED"; do
    ADDR=$(sed -n 's/^seedA listening on \([^,]*\).*/\1/p' "$T/seed.out")
    [ -n "$ADDR" ] || sleep 0.1
    n=$((n + 1))
done
rc=0 out=$(cat "$T/seed.out") err=$(cat "$T/seed.err")
check "run prints its listening line" [ -n "$ADDR" ]
# a node without TLS does not map OpenSSL (libssl is loaded for TLS only)
check "run without TLS: libssl and libcrypto not mapped" \
    sh -c "! grep -qE 'libssl|libcrypto' /proc/$SEED/maps"

if [ -n "$ADDR" ]; then
    r profile aemp setseeds "$ADDR"
    check "client profile: exit 0" rc_is 0

    r seeds
    check "seeds" out_is "$ADDR"

    r cal seedA#echo hello 1
    check "cal echo: exit 0" rc_is 0
    check "cal echo: reply (arguments are strings)" out_is '"hello","1"'

    r '["cal","seedA#echo","hello",1]'
    check "cal echo, JSON argument list: exit 0" rc_is 0
    check "cal echo, JSON argument list: reply" out_is '"hello",1'

    r cal seedA#echo '{"a":[1,2]}' '"x"'
    check "cal echo, JSON arguments" out_is '{"a":[1,2]},"x"'

    # integers keep their exact value over the whole 64-bit ranges
    r '["cal","seedA#echo",18446744073709551615,-9223372036854775808,9223372036854775808]'
    check "cal echo, 64-bit integers: exit 0" rc_is 0
    check "cal echo, 64-bit integers arrive intact" \
        out_is '18446744073709551615,-9223372036854775808,9223372036854775808'

    r cal seedA time
    check "cal node port time: exit 0" rc_is 0
    check "cal node port time: a number" [ -n "$(printf '%s' "$out" | grep -E '^[0-9]+(\.[0-9]+)?$')" ]

    # looking into the running node
    r stats seedA
    check "stats: exit 0" rc_is 0
    check "stats: counters" out_has "messages_in"
    check "stats: ports gauge" out_has "ports"
    check "stats: the client's connection is listed" out_has " in   "
    r top seedA 0.2 2
    check "top: exit 0 after COUNT refreshes" rc_is 0
    check "top: rates on the second refresh" out_has "messages in "
    check "top: per-node lines" out_has "msgs in"
    r top seedA 0
    check "top: a bad interval is a usage error" rc_is 2
    r loglevel seedA 7
    check "loglevel: exit 0" rc_is 0
    check "loglevel: new and old level" out_is "seedA: log level 7 (was 5)"
    r stats seedA
    check "stats: shows the new level" out_has "log_level                    7"
    r loglevel seedA 5
    r loglevel seedA 12
    check "loglevel: out of range is a usage error" rc_is 2
    check "loglevel: out of range message" err_has "LEVEL must be 0..9, got '12'"
    r stats seedA#echo
    check "stats: a port ID is refused" rc_is 2

    # eval/shell: the node evaluates; a libaemp node says it cannot
    r eval seedA 1 + 1
    check "eval on a libaemp node: exit 1" rc_is 1
    check "eval on a libaemp node: the node's answer" err_has "aemp: eval: seedA: cannot evaluate: this node is libaemp, not Perl"
    check "eval: nothing on stdout" out_is ""
    rc=0
    out=$(printf '1\n\n2\n' | "$AEMP" shell seedA 2>"$T/err") || rc=$?
    err=$(cat "$T/err")
    check "shell from a pipe: exit 0 at the end of input" rc_is 0
    check "shell: one answer per non-empty line" [ "$(printf '%s\n' "$err" | grep -c 'cannot evaluate')" -eq 2 ]
    r eval seedA
    check "eval without EXPR: usage error" rc_is 2
    r restart seedA
    check "restart of a node without watchdog: exit 1" rc_is 1
    check "restart of a node without watchdog: why" err_has "cannot restart: this node does not run under the watchdog"

    r snd seedA#echo hello
    check "snd: exit 0" rc_is 0
    check "snd: confirmation" out_is "message sent successfully"

    r snd seedA#nosuchport hello
    check "snd to a missing port: exit 1" rc_is 1
    check "snd to a missing port: the reason on stderr" err_has "aemp: snd: seedA#nosuchport died: no_such_port"
    check "snd to a missing port: no confirmation, nothing on stdout" out_is ""

    r cal seedA#nosuchport hello
    check "cal of a missing port: exit 1" rc_is 1

    r mon seedA#nosuchport
    check "mon of a missing port: exit 1" rc_is 1
    check "mon of a missing port: reason" out_has "no_such_port cannot monitor nonexistent port seedA#nosuchport"

    # spawn through the node port: ["", "AnyEvent::MP::_spawn", name, func, args...]
    r snd seedA AnyEvent::MP::_spawn sink1 aemp::sink
    check "spawn aemp::sink: exit 0" rc_is 0
    r snd seedA#sink1 a
    r snd seedA#sink1 b
    r cal seedA#sink1 count
    check "aemp::sink counts" out_is 2

    r snd seedA AnyEvent::MP::_spawn echo2 aemp::echo
    r cal seedA#echo2 x '[true]'
    check "aemp::echo" out_is '"x",[true]'

    r snd seedA AnyEvent::MP::_spawn dead1 aemp::die
    r cal seedA#dead1 x
    check "aemp::die: the port is gone" rc_is 1

    # mon: abnormal death
    "$AEMP" mon seedA#sink1 >"$T/mon1.out" 2>"$T/mon1.err" &
    MON1=$!
    PIDS="$PIDS $MON1"
    sleep 1
    # a client command listens nowhere (it reaches others through its seeds),
    # also when the global section has binds, unless profile aemp has some
    check "the seed listens (the socket count works)" [ "$(listen_count "$SEED")" -ge 1 ]
    check "a client command opens no listener" [ "$(listen_count "$MON1")" = 0 ]
    cp "$PERL_ANYEVENT_MP_RC" "$T/gbinds.rc"
    rcr "$T/gbinds.rc" setbinds 127.0.0.1:0
    PERL_ANYEVENT_MP_RC="$T/gbinds.rc" "$AEMP" mon seedA#sink1 >"$T/mon4.out" 2>"$T/mon4.err" &
    MON4=$!
    PIDS="$PIDS $MON4"
    cp "$PERL_ANYEVENT_MP_RC" "$T/pbinds.rc"
    rcr "$T/pbinds.rc" profile aemp setbinds 127.0.0.1:0
    PERL_ANYEVENT_MP_RC="$T/pbinds.rc" "$AEMP" mon seedA#sink1 >"$T/mon5.out" 2>"$T/mon5.err" &
    MON5=$!
    PIDS="$PIDS $MON5"
    sleep 1
    check "global binds: a client command still opens no listener" [ "$(listen_count "$MON4")" = 0 ]
    check "binds of profile aemp: the client listens there" [ "$(listen_count "$MON5")" = 1 ]
    rcr "$T/gbinds.rc" cal seedA#echo nolisten
    check "a listener-less client calls through its seed" out_is '"nolisten"'
    r snd seedA kil1 sink1 custom_error bye
    check "kil1 through snd: exit 0" rc_is 0
    wrc=999
    wait_exit "$MON1" || true
    rc=$wrc out=$(cat "$T/mon1.out") err=$(cat "$T/mon1.err")
    check "mon, abnormal death: exit 1" rc_is 1
    check "mon, abnormal death: reason" out_is "custom_error bye"
    wait_exit "$MON4" || true
    rc=$wrc out=$(cat "$T/mon4.out") err=$(cat "$T/mon4.err")
    check "mon of a listener-less client sees the death" out_is "custom_error bye"
    wait_exit "$MON5" || true

    # snd: a 64-bit integer arrives intact (seen in the kill reason)
    r snd seedA AnyEvent::MP::_spawn sink2 aemp::sink
    "$AEMP" mon seedA#sink2 >"$T/mon3.out" 2>"$T/mon3.err" &
    MON3=$!
    PIDS="$PIDS $MON3"
    sleep 1
    r '["snd","seedA","kil1","sink2","big",18446744073709551615]'
    check "snd of a 64-bit integer: exit 0" rc_is 0
    wrc=999
    wait_exit "$MON3" || true
    rc=$wrc out=$(cat "$T/mon3.out") err=$(cat "$T/mon3.err")
    check "snd of a 64-bit integer: it arrives intact" out_is "big 18446744073709551615"

    # mon: normal death
    "$AEMP" mon seedA#echo2 >"$T/mon2.out" 2>"$T/mon2.err" &
    MON2=$!
    PIDS="$PIDS $MON2"
    sleep 1
    r snd seedA kil1 echo2
    wrc=999
    wait_exit "$MON2" || true
    rc=$wrc out=$(cat "$T/mon2.out") err=$(cat "$T/mon2.err")
    check "mon, normal death: exit 0" rc_is 0

    r trace seedA
    check "trace: exit 0" rc_is 0
    check "trace: seed line first" [ "$(printf '%s\n' "$out" | head -n 1)" = "seed seedA" ]
    check "trace: the seed answered" [ "$(printf '%s\n' "$out" | sed -n 2p | cut -d' ' -f1)" = "seedA" ]

    r nodes
    check "nodes: exit 0" rc_is 0
    check "nodes: the seed" out_is "seedA"

    # --dot: the same as a Graphviz graph (seeds boxes, global nodes doubled)
    r trace seedA --dot
    check "trace --dot: exit 0" rc_is 0
    check "trace --dot: a graph" [ "$(printf '%s\n' "$out" | head -n 1)" = "graph aemp {" ]
    check "trace --dot: the seed is a box and global" out_has '  "seedA" [shape=box, peripheries=2];'
    check "trace --dot: closed" [ "$(printf '%s\n' "$out" | tail -n 1)" = "}" ]
    r trace --dot seedA
    check "trace --dot before NODE" out_has '"seedA" [shape=box, peripheries=2];'
    r trace seedA extra
    check "trace with an extra argument: exit 2" rc_is 2
    r nodes --dot
    check "nodes --dot: exit 0" rc_is 0
    check "nodes --dot: the seed" out_has '  "seedA" [shape=box, peripheries=2];'
    check "nodes --dot: the client's connection to it" [ -n "$(printf '%s\n' "$out" | grep -E '^  "aemp/[^"]*" -- "seedA";$')" ]
    if command -v dot >/dev/null 2>&1; then
        check "nodes --dot: Graphviz reads it" sh -c 'printf "%s\n" "$1" | dot -Tsvg >/dev/null' sh "$out"
    fi

    # db [--keys] FAMILY: the global database, asked of the client's master
    r db --keys "'g"
    check "db --keys 'g: exit 0" rc_is 0
    check "db --keys 'g: the seed is a global node" out_is "seedA"
    r db "'g"
    check "db 'g: the key, then its value" [ "$(printf '%s\n' "$out" | cut -d' ' -f1)" = "seedA" ]
    r snd seedA AnyEvent::MP::_spawn member1 aemp::grp_echo clitest
    r snd seedA AnyEvent::MP::_spawn member2 aemp::grp_echo clitest
    r db --keys clitest
    check "db --keys GROUP: exit 0" rc_is 0
    check "db --keys GROUP: the members, sorted" out_is "$(printf 'seedA#member1\nseedA#member2')"
    r snd seedA kil1 member1
    r db --keys clitest
    check "db --keys GROUP: a killed member is gone" out_is "seedA#member2"
    r '["snd","seedA","aemp::db_set","clicfg","limit",42]'
    r '["snd","seedA","aemp::db_set","clicfg","name",{"a":[1,"x"]}]'
    r db clicfg
    check "db FAMILY: exit 0" rc_is 0
    check "db FAMILY: keys and values (JSON), sorted by key" out_is "$(printf 'limit 42\nname {"a":[1,"x"]}')"
    r db no_such_family
    check "db of an unknown family: exit 0" rc_is 0
    check "db of an unknown family: no output" out_is ""
    r db
    check "db without FAMILY: exit 2" rc_is 2
    rcr "$T/noseeds.rc" db clitest
    check "db without seeds: exit 1" rc_is 1
    check "db without seeds: message" err_has "no seeds configured"

    r profile aemp setsecret wrong
    r cal seedA#echo hello
    check "wrong secret: cal fails with exit 1" rc_is 1
    r profile aemp delsecret
    r cal seedA#echo again
    check "right secret again" out_is '"again"'

    kill -HUP "$SEED"
    n=0
    while ! grep -q "SIGHUP received" "$T/seed.err" && [ $n -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    rc=0 out="" err=$(cat "$T/seed.err")
    check "SIGHUP: logged" err_has "SIGHUP received and ignored (stop the node with SIGTERM or SIGINT)"
    check "SIGHUP: the node keeps running" running "$SEED"
    r cal seedA#echo after_hup
    check "SIGHUP: the node still answers" out_is '"after_hup"'

    kill -TERM "$SEED"
    wrc=999
    wait_exit "$SEED" || true
    rc=$wrc out=$(cat "$T/seed.out") err=$(cat "$T/seed.err")
    check "run exits 0 on SIGTERM" rc_is 0
fi

# a seed whose seeds list its own address (the documented set-up) does not
# connect to itself, and is a global node at once: a client asking right
# after "listening on" finds it in 'g (the client can make it global by
# asking it to be its master, and the answer must have the seed's own
# entry); four times, since the client only sometimes comes that early
for attempt in 1 2 3 4; do
    SP=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$AEMP" run nodeid selfseed binds "127.0.0.1:$SP" seeds "127.0.0.1:$SP" secret s3cret >"$T/self.out" 2>"$T/self.err" &
    SELF=$!
    PIDS="$PIDS $SELF"
    wait_listening "$T/self.out" "$SELF"
    r profile aemp setseeds "127.0.0.1:$SP"
    r db --keys "'g"
    check "a seed of itself: global (attempt $attempt)" out_is "selfseed"
    [ "$attempt" -lt 4 ] || sleep 1
    kill -TERM "$SELF" 2>/dev/null || true
    wait_exit "$SELF" || true
done
rc=$wrc out=$(cat "$T/self.out") err=$(cat "$T/self.err")
check "a seed of itself: no connection to itself (no warning)" err_is ""

r profile aemp setseeds 127.0.0.1:1
r nodes
check "nodes without a reachable seed: exit 1" rc_is 1
r db clitest
check "db without a reachable seed: exit 1" rc_is 1
check "db without a reachable seed: timeout" err_has "timeout after 5 s"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
