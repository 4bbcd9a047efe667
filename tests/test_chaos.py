#!/usr/bin/env python3
"""test_chaos.py CHAOS_NODE - the chaos test of libaemp's transport.

Starts CHAOS_NODES (6) chaos_node processes on 127.0.0.1 (node "chaos<i>",
every other node a seed; see tests/chaos_node.c), each sending sequence-
numbered messages to every other node's sink port under a monitor.  For
CHAOS_SECONDS (15) a schedule drawn from random.Random(CHAOS_SEED) SIGKILLs
nodes (and restarts them, same node ID and port, a new incarnation) and
SIGSTOPs/SIGCONTs them; at most a third of the nodes is disturbed at a time
and at least two are never killed.  Then every node runs undisturbed for
the settle time, is asked to stop (SIGTERM), and the invariants are checked
from the nodes' event logs:

  order     per sending node, (incarnation, epoch, seq) only grows at each
            sink: no duplicate, no reordering, no corrupt message;
  no holes  every gap in a stream (and every stream that does not begin
            with seq 0) comes after the sender's monitor of that epoch
            fired (its firing time <= the time the message arrived);
  monitors  no monitor fires twice; every firing is a transport_error that
            names the monitored node; a sink killed while it received an
            epoch makes that epoch's monitor fire, within CHAOS_FIRE_S (5)
            seconds of the sender's running time;
  memory    survivors (never killed) stay below CHAOS_RSS_MB (64) and grow
            by at most CHAOS_GROWTH_MB (16) after the warm-up;
  rejoin    whenever two incarnations both run undisturbed for
            CHAOS_REJOIN_S (5) seconds, each receives the other's traffic
            within that window (so every restarted node rejoined), and at
            the end every sink's last message from each other node's final
            incarnation is at most a second old;
  exit      every node still running at the end exits with status 0 on
            SIGTERM (under AddressSanitizer: no leak report).

Every process is started by this script, tracked by PID and stopped by PID
(and dies with it: PR_SET_PDEATHSIG); every wait is bounded.  CHAOS_KEEP=DIR
keeps the logs; after a failure they are kept in a temporary directory,
which is named.  CHAOS_RATE (messages/s per pair) is passed to the nodes.
"""
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def env_num(name, default):
    v = os.environ.get(name, "")
    return type(default)(v) if v else default


NODE_BIN = sys.argv[1] if len(sys.argv) > 1 else sys.exit("usage: test_chaos.py CHAOS_NODE")
NODES = env_num("CHAOS_NODES", 6)
SECONDS = env_num("CHAOS_SECONDS", 15.0)
SEED = env_num("CHAOS_SEED", 1)
FIRE_S = env_num("CHAOS_FIRE_S", 5.0)
REJOIN_S = env_num("CHAOS_REJOIN_S", 5.0)
RSS_MB = env_num("CHAOS_RSS_MB", 64.0)
GROWTH_MB = env_num("CHAOS_GROWTH_MB", 16.0)
WARMUP = 3.0                      # seconds before the first disturbance
SETTLE = REJOIN_S + 3.0           # undisturbed seconds at the end
MAX_DISTURBED = max(1, NODES // 3)
PROTECTED = 2                     # at least this many nodes are never killed
SECRET = "chaos-test-secret"

libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def say(msg):
    """Print a line with the time since the start (also to driver.log)."""
    line = f"[{time.monotonic() - T0:6.2f} s] {msg}"
    print(line, flush=True)
    if DRIVER_LOG:
        DRIVER_LOG.write(line + "\n")
        DRIVER_LOG.flush()


def free_ports(n):
    """n consecutive free TCP ports on 127.0.0.1 below the ephemeral range
    (a restarted node must get its port back)."""
    rnd = random.Random(os.getpid())
    for _ in range(200):
        base = rnd.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return list(range(base, base + n))
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    sys.exit("no free ports found")


class Incarnation:
    """One process of one node: its times, stops and event log."""

    def __init__(self, node, inc, log):
        self.node, self.inc, self.log = node, inc, log
        self.proc = None
        self.start = self.end = None
        self.stops = []          # [t_stop, t_cont] (t_cont None while stopped)
        self.killed = False
        self.status = None

    def running(self):
        """Intervals in which this process ran (alive, not stopped)."""
        out, t = [], self.start
        for a, b in self.stops:
            if a > t:
                out.append((t, a))
            t = max(t, b if b is not None else self.end)
        if self.end > t:
            out.append((t, self.end))
        return out

    def ran(self, t0, t1):
        """Seconds it ran between t0 and t1."""
        return sum(max(0.0, min(b, t1) - max(a, t0)) for a, b in self.running())

    def running_deadline(self, t0, seconds):
        """The time at which it has run `seconds` after t0, or None if it
        ended before."""
        left = seconds
        for a, b in self.running():
            a = max(a, t0)
            if b <= a:
                continue
            if b - a >= left:
                return a + left
            left -= b - a
        return None


class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        self.addrs = [f"127.0.0.1:{p}" for p in free_ports(NODES)]
        self.incs = []                       # every incarnation that got ready
        self.cur = [None] * NODES            # the node's live incarnation
        self.next_inc = [0] * NODES
        self.never_killed = set(range(NODES))
        self.kills = self.stopcount = 0

    def spawn(self, node):
        """Start node; wait (bounded) until it is ready.  A start that fails
        (its port still taken, say) is retried a few times."""
        for attempt in range(10):
            inc = self.next_inc[node]
            self.next_inc[node] += 1
            log = os.path.join(self.tmp, f"n{node}.{inc}.log")
            err = open(os.path.join(self.tmp, f"n{node}.{inc}.err"), "w")
            x = Incarnation(node, inc, log)
            x.start = time.monotonic()
            x.proc = subprocess.Popen([NODE_BIN, str(node), str(inc), log, SECRET] + self.addrs,
                                      stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                      env=NODE_ENV, preexec_fn=die_with_parent)
            err.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if os.path.exists(log) and " ready\n" in open(log).read():
                    self.incs.append(x)
                    self.cur[node] = x
                    return x
                if x.proc.poll() is not None:
                    break
                time.sleep(0.01)
            if x.proc.poll() is None:
                x.proc.kill()
            x.proc.wait(5)
            say(f"chaos{node}.{inc} did not start (attempt {attempt + 1}): "
                f"{open(log[:-4] + '.err').read().strip()[-300:]}")
            time.sleep(0.3)
        raise SystemExit(f"FAIL: chaos{node} cannot be started")

    def kill(self, node):
        x = self.cur[node]
        x.end = time.monotonic()
        x.proc.kill()
        x.proc.wait(5)
        if x.stops and x.stops[-1][1] is None:
            x.stops[-1][1] = x.end
        x.killed = True
        self.cur[node] = None
        self.never_killed.discard(node)
        self.kills += 1

    def stop(self, node):
        x = self.cur[node]
        x.stops.append([time.monotonic(), None])
        x.proc.send_signal(signal.SIGSTOP)
        self.stopcount += 1

    def cont(self, node):
        x = self.cur[node]
        x.proc.send_signal(signal.SIGCONT)
        x.stops[-1][1] = time.monotonic()

    def is_stopped(self, node):
        x = self.cur[node]
        return x is not None and bool(x.stops) and x.stops[-1][1] is None

    def disturbed(self):
        return sum(1 for n in range(NODES) if self.cur[n] is None or self.is_stopped(n))

    def rss_kb(self, x):
        try:
            for line in open(f"/proc/{x.proc.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop_all(self):
        """SIGTERM every live node by PID, bounded; SIGKILL what is left."""
        for x in self.cur:
            if x is not None:
                x.end = time.monotonic()
                x.proc.terminate()
        for x in self.cur:
            if x is None:
                continue
            try:
                x.status = x.proc.wait(10)
            except subprocess.TimeoutExpired:
                x.proc.kill()
                x.proc.wait(5)
                x.status = "no exit within 10 s of SIGTERM"

    def kill_everything(self):
        for x in self.incs:
            if x.proc.poll() is None:
                x.proc.kill()
                x.proc.wait(5)


def run_schedule(c):
    """The seeded chaos schedule; returns when CHAOS_SECONDS are over and
    every node runs again."""
    rnd = random.Random(SEED)
    pending = []                     # (time, action, node)
    t_end = time.monotonic() + SECONDS
    next_at = time.monotonic()
    while True:
        now = time.monotonic()
        for item in sorted(p for p in pending if p[0] <= now):
            pending.remove(item)
            _, action, node = item
            if action == "restart":
                x = c.spawn(node)
                say(f"restarted chaos{node} as incarnation {x.inc}")
            elif action == "cont" and c.is_stopped(node):
                c.cont(node)
                say(f"SIGCONT chaos{node}")
        if now >= t_end:
            break
        if now >= next_at and c.disturbed() < MAX_DISTURBED:
            alive = [n for n in range(NODES) if c.cur[n] is not None]
            killable = [n for n in alive if n not in c.never_killed or len(c.never_killed) > PROTECTED]
            stoppable = [n for n in alive if not c.is_stopped(n)]
            if killable and (not stoppable or rnd.random() < 0.45):
                node = rnd.choice(killable)
                was_stopped = c.is_stopped(node)
                c.kill(node)
                pending = [p for p in pending if p[2] != node]
                delay = rnd.uniform(0.1, 2.0)
                pending.append((time.monotonic() + delay, "restart", node))
                say(f"SIGKILL chaos{node}{' (stopped)' if was_stopped else ''}, restart in {delay:.1f} s")
            elif stoppable:
                node = rnd.choice(stoppable)
                c.stop(node)
                length = rnd.uniform(0.2, 4.0)
                pending.append((time.monotonic() + length, "cont", node))
                say(f"SIGSTOP chaos{node} for {length:.1f} s")
            next_at = time.monotonic() + rnd.uniform(0.3, 1.2)
        time.sleep(0.01)
    for _, action, node in sorted(pending):
        if action == "restart":
            c.spawn(node)
        elif c.is_stopped(node):
            c.cont(node)
    say("chaos over: every node runs again")


# ------------------------------------------------------------------ checking

def parse(x):
    """The events of one incarnation's log, as lists of split lines."""
    ev = {}
    for line in open(x.log):
        line = line.rstrip("\n")
        kind = line.split(" ", 2)[1:2]
        if not kind:
            continue
        # the free text (a reason) of these kinds is their last field
        parts = line.split(" ", TEXT_FIELD.get(kind[0], -1))
        ev.setdefault(kind[0], []).append([float(parts[0])] + parts[2:])
    return ev


TEXT_FIELD = {"fire": 5, "dupfire": 4, "down": 3, "bad": 2}


def reason_of(text):
    try:
        return json.loads(text)
    except ValueError:
        return [text]


def check(c):
    fails = []
    ev = {(x.node, x.inc): parse(x) for x in c.incs}
    by_key = {(x.node, x.inc): x for x in c.incs}

    def fired(node, inc, peer, epoch):
        """Time of the sender's firing of that epoch's monitor, or None."""
        for e in ev[(node, inc)].get("fire", []):
            if int(e[1]) == peer and int(e[2]) == epoch:
                return e[0]
        return None

    # order
    for (n, i), e in ev.items():
        for o in e.get("order", []):
            fails.append(f"order: chaos{n}.{i} got seq {o[4]} of chaos{o[1]}.{o[2]} epoch {o[3]} "
                         f"after incarnation {o[5]} epoch {o[6]} seq {o[7] if len(o) > 7 else '?'}")
        for b in e.get("bad", []):
            fails.append(f"bad message at chaos{n}.{i}: {' '.join(b[1:])}")

    # no holes
    gaps = holes_checked = 0
    for (n, i), e in ev.items():
        starts = [(s[0], int(s[1]), int(s[2]), int(s[3]), 0, int(s[4])) for s in e.get("stream", [])
                  if int(s[4]) != 0]
        inner = [(g[0], int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5])) for g in e.get("gap", [])]
        gaps += len(inner)
        for t, sender, sinc, epoch, want, got in starts + inner:
            holes_checked += 1
            if (sender, sinc) not in ev:
                fails.append(f"hole: chaos{n}.{i} got seq {got} of unknown chaos{sender}.{sinc}")
                continue
            tf = fired(sender, sinc, n, epoch)
            if tf is None or tf > t:
                fails.append(f"hole: chaos{n}.{i} got seq {got} (expected {want}) of chaos{sender}.{sinc} "
                             f"epoch {epoch} at {t - T0:.3f} s; the sender's monitor "
                             + ("never fired" if tf is None else f"fired only at {tf - T0:.3f} s"))

    # monitors
    fires = 0
    for (n, i), e in ev.items():
        fires += len(e.get("fire", []))
        for d in e.get("dupfire", []):
            fails.append(f"monitor fired twice: chaos{n}.{i} -> chaos{d[1]} epoch {d[2]}: {' '.join(d[3:])}")
        for f in e.get("fire", []):
            r = reason_of(f[4] if len(f) > 4 else "")
            if not (isinstance(r, list) and len(r) >= 2 and r[0] == "transport_error"
                    and r[1] == f"chaos{f[1]}"):
                fails.append(f"unexpected monitor reason: chaos{n}.{i} -> chaos{f[1]} epoch {f[2]}: {f[4:]}")
    fire_lat = []
    for b in c.incs:
        if not b.killed:
            continue
        for s in ev[(b.node, b.inc)].get("stream", []):
            sender, sinc, epoch = int(s[1]), int(s[2]), int(s[3])
            a = by_key.get((sender, sinc))
            if a is None or a.start > b.end:
                continue
            due = a.running_deadline(b.end, FIRE_S)
            tf = fired(sender, sinc, b.node, epoch)
            if tf is not None and tf > b.end:
                fire_lat.append(a.ran(b.end, tf))
            if due is not None and (tf is None or tf > due):
                fails.append(f"monitor: chaos{sender}.{sinc}'s monitor of chaos{b.node}#sink epoch {epoch} "
                             f"did not fire within {FIRE_S} s (running) of the kill of chaos{b.node}.{b.inc} "
                             f"at {b.end - T0:.3f} s" + ("" if tf is None else f"; it fired at {tf - T0:.3f} s"))

    # memory
    rss_note = []
    for x in c.incs:
        if x.inc != 0 or x.killed:
            continue
        samples = [(r[0], int(r[1])) for r in ev[(x.node, 0)].get("rss", [])]
        base = [kb for t, kb in samples if t >= x.start + WARMUP] or [kb for _, kb in samples]
        if not base:
            fails.append(f"memory: chaos{x.node} reported no RSS")
            continue
        peak = max(kb for _, kb in samples)
        final = max(samples[-1][1], getattr(x, "final_rss", 0))
        rss_note.append(f"chaos{x.node} {base[0] / 1024:.1f}->{final / 1024:.1f} MB (peak {peak / 1024:.1f})")
        if peak > RSS_MB * 1024:
            fails.append(f"memory: survivor chaos{x.node} peaked at {peak / 1024:.1f} MB > {RSS_MB} MB")
        if final - base[0] > GROWTH_MB * 1024:
            fails.append(f"memory: survivor chaos{x.node} grew {base[0] / 1024:.1f} -> {final / 1024:.1f} MB "
                         f"(> {GROWTH_MB} MB)")
    if not rss_note:
        fails.append("memory: no survivor")

    # rejoin
    rejoin_lat, windows = [], 0
    for b in c.incs:
        for a in c.incs:
            if a.node == b.node:
                continue
            w = first_window(a.running(), b.running(), REJOIN_S)
            if w is None:
                continue
            windows += 1
            # a "seen" line in [w + 1, w + REJOIN_S] counts messages that
            # arrived within the window
            tag = f"{a.node}:{a.inc}:"
            flowing = [s[0] for s in ev[(b.node, b.inc)].get("seen", [])
                       if w + 1 <= s[0] <= w + REJOIN_S and any(f.startswith(tag) for f in s[1:])]
            if not flowing:
                fails.append(f"rejoin: chaos{b.node}.{b.inc} got nothing from chaos{a.node}.{a.inc} "
                             f"while both ran undisturbed from {w - T0:.3f} to {w + REJOIN_S - T0:.3f} s")
            got = [s[0] for s in ev[(b.node, b.inc)].get("stream", [])
                   if int(s[1]) == a.node and int(s[2]) == a.inc]
            if got and (b.inc > 0 or a.inc > 0):
                rejoin_lat.append((max(0.0, min(got) - w), f"chaos{a.node}.{a.inc}->chaos{b.node}.{b.inc}"))

    # at the end every pair talks: each sink's last message from every
    # other node's final incarnation is at most a second old
    for b in c.cur:
        sums = {int(s[1]): s for s in ev[(b.node, b.inc)].get("sum", [])}
        for a in c.cur:
            if a.node == b.node:
                continue
            s = sums.get(a.node)
            if s is None or int(s[2]) != a.inc or float(s[6]) < b.end - 1.0:
                fails.append(f"final: chaos{b.node}.{b.inc} is not receiving from chaos{a.node}.{a.inc} "
                             f"at the end ({'nothing' if s is None else 'last: incarnation %s at %.3f s' % (s[2], float(s[6]) - T0)})")

    # exit
    for x in c.cur:
        if x is not None and (x.status != 0 or "exit" not in ev[(x.node, x.inc)]):
            fails.append(f"exit: chaos{x.node}.{x.inc} ended with status {x.status} "
                         f"({'no' if 'exit' not in ev[(x.node, x.inc)] else 'an'} exit line); stderr: "
                         f"{open(x.log[:-4] + '.err').read().strip()[-600:]}")

    received = sum(int(e["rss"][-1][2]) for e in ev.values() if e.get("rss"))
    restarted = sorted({x.node for x in c.incs if x.inc > 0})
    say(f"{len(c.incs)} incarnations, {c.kills} kills, {c.stopcount} stops, {received} messages received, "
        f"{fires} monitor firings, {gaps} gaps and {holes_checked} gaps/late starts checked, "
        f"{windows} rejoin windows checked; restarted: {', '.join(f'chaos{n}' for n in restarted) or 'none'}")
    say("survivors: " + "; ".join(rss_note))
    print(f"RESULT chaos_messages_received {received} messages")
    if fire_lat:
        print(f"RESULT chaos_max_fire_after_kill {max(fire_lat):.3f} s (sender running)")
    if rejoin_lat:
        worst = max(rejoin_lat)
        say(f"slowest rejoin: {worst[1]}, {worst[0]:.3f} s after both ran")
        print(f"RESULT chaos_max_rejoin {worst[0]:.3f} s")
    if c.kills < 1 or c.stopcount < 1:
        fails.append(f"the schedule did too little ({c.kills} kills, {c.stopcount} stops)")
    if received < 1000:
        fails.append(f"too little traffic ({received} messages)")
    return fails


def first_window(ra, rb, length):
    """Start of the first interval of at least `length` seconds in which
    both interval lists run, or None."""
    for a0, a1 in ra:
        for b0, b1 in rb:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi - lo >= length:
                return lo
    return None


def node_environment():
    """The nodes' environment: under AddressSanitizer the quarantine of
    freed memory (256 MB by default) is kept small, so that the RSS bound
    measures the library and not the sanitizer."""
    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=4"
    return env


def main():
    global T0, DRIVER_LOG
    T0 = time.monotonic()
    keep = os.environ.get("CHAOS_KEEP")
    tmp = tempfile.mkdtemp(prefix="aemp-chaos-")
    DRIVER_LOG = open(os.path.join(tmp, "driver.log"), "w")
    c = Cluster(tmp)
    ok = False
    try:
        say(f"{NODES} nodes on {c.addrs[0]}..{c.addrs[-1].split(':')[1]}, {SECONDS} s of chaos, "
            f"seed {SEED}, logs in {tmp}")
        for n in range(NODES):
            c.spawn(n)
        time.sleep(WARMUP)
        run_schedule(c)
        time.sleep(SETTLE)
        for x in c.cur:
            x.final_rss = c.rss_kb(x)
        c.stop_all()
        fails = check(c)
        for f in fails[:40]:
            print("FAIL:", f)
        if len(fails) > 40:
            print(f"... and {len(fails) - 40} more")
        ok = not fails
        print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    finally:
        c.kill_everything()
        if keep:
            shutil.copytree(tmp, keep, dirs_exist_ok=True)
        if ok or keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}")
    return 0 if ok else 1


T0 = 0.0
DRIVER_LOG = None
NODE_ENV = node_environment()
if __name__ == "__main__":
    sys.exit(main())
