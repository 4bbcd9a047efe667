#!/usr/bin/env python3
"""test_logcatcher.py AEMP - AnyEvent::MP::LogCatcher between `aemp run` nodes.

A catcher node runs the service AnyEvent::MP::LogCatcher::catch at level 5;
workers of each dialect seed from it.  A garbage connection makes each
worker log a warning, which must appear on the catcher's stderr with the
worker's node ID and level; a line above the level must not; a worker that
stops is forgotten (its later lines cannot arrive) and the catcher keeps
running.
"""
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile"))
from aempclient import Node, check, failures, wait_log  # noqa: E402

AEMP = sys.argv[1]
SECRET = "catch-me"


def garbage(addr, line):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(line.encode() + b"\n")
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()


with tempfile.TemporaryDirectory() as tmp:
    catcher = Node(AEMP, tmp, "catcher", SECRET, "services", '[["AnyEvent::MP::LogCatcher::catch",5]]')
    workers = []
    try:
        for dialect in ("1.30", "2.02"):
            w = Node(AEMP, tmp, "worker" + dialect.replace(".", ""), SECRET, "dialect", dialect,
                     "seeds", catcher.addr)
            workers.append(w)
            time.sleep(1.0)   # connected and asked for its lines
            garbage(w.addr, "HELLO-%s" % dialect)
            want = "[%s] 2 connection " % w.nodeid
            ok = wait_log(catcher, want) and wait_log(catcher, "got 'HELLO-%s'" % dialect)
            check(ok, "dialect %s: the worker's warning reaches the catcher with node and level" % dialect)
        # level 7 (info) lines of the workers are above the catcher's level 5
        check("] 7 " not in catcher.log(), "lines above the catch level are not sent")
        workers[0].stop()
        time.sleep(0.5)
        check(catcher.alive(), "the catcher survives a worker going away")
        garbage(workers[1].addr, "AFTER")
        check(wait_log(catcher, "got 'AFTER'"), "the other worker still sends")
    finally:
        for w in workers:
            w.stop()
        catcher.stop()
    if failures:
        print(catcher.log())
        sys.exit(1)
    print("log catcher checks passed")
