#!/usr/bin/env python3
"""test_watchdog.py AEMP - `aemp run` under its watchdog.

The process started as `aemp run` supervises the node in a child: a node
killed with SIGKILL comes back (same ID and bind) and answers again;
`aemp restart NODE` restarts it at once; SIGTERM to the supervisor stops
both, exit 0, no restart; a node that fails to start is not restarted in a
loop.  Every process is stopped by PID, every wait bounded.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile"))
from aempclient import check, failures, time_request  # noqa: E402

AEMP = sys.argv[1]
SECRET = "watched"


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def wait_until(fn, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def answers(addr):
    try:
        return isinstance(time_request(addr, SECRET, "probe", 2), float)
    except Exception:  # noqa: BLE001
        return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


with tempfile.TemporaryDirectory() as tmp:
    env = dict(os.environ, HOME=tmp, PERL_ANYEVENT_MP_RC=os.path.join(tmp, "rc"))
    env.pop("AEMP_WATCHDOG", None)   # the suite runs nodes without it
    addr = "127.0.0.1:%d" % free_port()
    err = open(os.path.join(tmp, "wd.err"), "w+")
    sup = subprocess.Popen([AEMP, "run", "nodeid", "wd", "binds", addr, "secret", SECRET],
                           stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        first = wait_until(lambda: children(sup.pid), 5)
        check(len(first) == 1, "the node runs in a child of the supervisor (%r)" % first)
        check(wait_until(lambda: answers(addr), 5), "the node answers")
        os.kill(first[0], signal.SIGKILL)
        second = wait_until(lambda: [c for c in children(sup.pid) if c not in first], 5)
        check(bool(second), "a node killed with SIGKILL is started again (%r)" % second)
        check(wait_until(lambda: answers(addr), 5), "the restarted node answers")
        # aemp restart: a client configured with the node as its seed
        subprocess.run([AEMP, "setsecret", SECRET], env=env, capture_output=True, timeout=10)
        subprocess.run([AEMP, "profile", "aemp", "setseeds", addr], env=env, capture_output=True, timeout=10)
        r = subprocess.run([AEMP, "restart", "wd"], env=env, capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and r.stdout.strip() == "wd: restarting",
              "aemp restart: exit 0, 'wd: restarting' (%d %r %r)" % (r.returncode, r.stdout, r.stderr))
        third = wait_until(lambda: [c for c in children(sup.pid) if c not in first + second], 5)
        check(bool(third), "aemp restart starts a new node process (%r)" % third)
        check(wait_until(lambda: answers(addr), 5), "the node answers after aemp restart")
        err.seek(0)
        log = err.read()
        check("restarting the node" in log and "as asked" in log, "the restart is logged")
        check("killed by signal 9" in log, "the crash is logged with its signal")
        sup.send_signal(signal.SIGTERM)
        try:
            code = sup.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        check(code == 0, "SIGTERM stops supervisor and node, exit 0 (%r)" % code)
        check(wait_until(lambda: not os.path.exists("/proc/%d" % third[0]) if third else True, 5),
              "no node process is left behind")
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(5)
    # a node that cannot start (its bind is taken) is not restarted in a loop
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = "127.0.0.1:%d" % holder.getsockname()[1]
    t0 = time.monotonic()
    r = subprocess.run([AEMP, "run", "nodeid", "wd2", "binds", taken, "secret", SECRET], env=env,
                       capture_output=True, text=True, timeout=20)
    holder.close()
    check(r.returncode == 1 and time.monotonic() - t0 < 5 and "failed to start" in r.stderr
          and r.stderr.count("failed to start") == 1,
          "a node that fails to start: one message, exit 1, no restart loop (%d, %r)" % (r.returncode, r.stderr))
    if failures:
        sys.exit(1)
    print("watchdog checks passed")
