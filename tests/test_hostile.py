#!/usr/bin/env python3
"""test_hostile.py AEMP - hostile and unlucky peers against `aemp run` nodes.

Each check starts its own node on 127.0.0.1 (stopped by PID at the end) and
plays an attacker who can reach the port, with or without the secret:
descriptor exhaustion, floods of unauthenticated greetings, a fake greeting
against a pending connection, oversized queues for unreachable nodes, a
peer that never reads, bad peer node IDs, more handshakes than
max_unauthenticated allows, and a seed that accepts but never greets.
Every wait is bounded.
"""
import os
import random
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile"))
from aempclient import Node, Peer, check, failures, greeting, stats, time_request, wait_log  # noqa: E402

AEMP = sys.argv[1] if len(sys.argv) > 1 else "aemp"
SECRET = "s3cret-hostile"


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def emfile(tmp):
    """100 idle connections against nofile 64: no busy loop, bounded log,
    and a legitimate client is served meanwhile."""
    n = Node(AEMP, tmp, "emfile", SECRET, nofile=64)
    try:
        socks = []
        for _ in range(100):
            try:
                socks.append(connect(n.addr))
            except OSError:
                break
        time.sleep(0.3)
        cpu0, log0 = n.cpu_seconds(), n.log_size()
        time.sleep(2.0)
        cpu = n.cpu_seconds() - cpu0
        grown = n.log_size() - log0
        check(cpu < 0.5, "EMFILE: node CPU over 2 s is %.2f s (< 0.5)" % cpu)
        check(grown < 64 * 1024, "EMFILE: log grew %d bytes in 2 s (< 64 KiB)" % grown)
        t0 = time.monotonic()
        try:
            t = time_request(n.addr, SECRET, "legit", 5)
            ok = isinstance(t, float)
        except Exception as e:  # noqa: BLE001
            ok, t = False, e
        check(ok, "EMFILE: an authenticated client is answered while 100 idle ones hold the descriptors "
              "(%.2f s, %r)" % (time.monotonic() - t0, t))
        check("making room" in n.log() or "Too many open files" in n.log(),
              "EMFILE: the shortage is logged")
        for s in socks:
            s.close()
        check(n.alive(), "EMFILE: node still running")
    finally:
        n.stop()


def greetings(tmp):
    """20,000 unauthenticated greetings with made-up node IDs: RSS comes back,
    known_nodes lists none of them."""
    n = Node(AEMP, tmp, "greeted", SECRET)
    try:
        def flood(count, tag):
            pending = []
            for i in range(count):
                try:
                    s = connect(n.addr)
                    l1, l2 = greeting("fake-%s-%d" % (tag, i))
                    s.sendall(("%s\n%s\n" % (l1, l2)).encode())
                    pending.append(s)
                except OSError:
                    pass
                if len(pending) >= 100:
                    for s in pending:
                        s.close()
                    pending = []
            for s in pending:
                s.close()

        flood(1000, "warm")
        time.sleep(0.5)
        rss0 = n.rss_kib()
        t0 = time.monotonic()
        flood(20000, "x")
        took = time.monotonic() - t0
        time.sleep(0.5)
        rss = n.rss_kib()
        check(rss - rss0 < 4096, "greetings: RSS after 20,000 greetings grew %d KiB (< 4 MiB; %.1f s)"
              % (rss - rss0, took))
        p = Peer(n.addr)
        try:
            p.handshake("probe", SECRET)
            p.send("", "known_nodes", "probe#k")
            f = p.recv_for("k")
            fakes = [x for x in f[1:] if str(x).startswith("fake-")]
            check(not fakes, "greetings: known_nodes lists %d of the fake IDs (none expected)" % len(fakes))
        finally:
            p.close()
    finally:
        n.stop()


def fake_greeting(tmp):
    """A pending real connection survives a fake greeting that claims to be
    the same node (the tie-break runs after authentication)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    xaddr = "127.0.0.1:%d" % lsock.getsockname()[1]
    n = Node(AEMP, tmp, "zeta", SECRET, "seeds", xaddr, "monitor_timeout", "3")
    real = fake = None
    try:
        lsock.settimeout(10)
        conn, _ = lsock.accept()
        real = Peer.__new__(Peer)
        real.sock, real.buf, real.jbuf = conn, b"", ""
        import json
        real.dec = json.JSONDecoder()
        deadline = time.monotonic() + 5
        r1, r2 = real.read_line(deadline), real.read_line(deadline)   # zeta's greeting
        fake = Peer(n.addr)
        l1, l2 = greeting("alpha")
        fake.send_raw("%s\n%s\n" % (l1, l2))   # claims alpha, never authenticates
        time.sleep(0.3)
        # now the real alpha answers the pending connection
        import hashlib
        import hmac
        m1, m2 = greeting("alpha")
        real.send_raw("%s\n%s\n" % (m1, m2))
        own = "%s\n%s\n%s\n%s\n" % (m1, m2, r1, r2)
        real.send_raw("hmac_sha3_512;%s;json\n" % hmac.new(SECRET.encode(), own.encode(),
                                                            hashlib.sha3_512).hexdigest())
        auth = real.read_line(deadline)
        check(auth.startswith("hmac_sha3_512;"), "fake greeting: the real connection authenticates")
        real.jbuf = real.buf.decode()
        real.buf = b""
        real.send("", "time", "alpha#t")
        try:
            f = real.recv_for("t", 6)
            ok = isinstance(f[1], float)
        except Exception as e:  # noqa: BLE001
            ok, f = False, e
        check(ok, "fake greeting: the pending real connection survives and answers (%r)" % (f,))
        check(fake.closed_by_node(6), "fake greeting: the unauthenticated claimant is closed (handshake timeout)")
    finally:
        for p in (real, fake):
            if p:
                p.close()
        lsock.close()
        n.stop()


def queues(tmp):
    """Relays to unreachable nodes are capped in bytes, per node and in total."""
    n = Node(AEMP, tmp, "queues", SECRET, "max_connect_queue", "1048576",
             "max_connect_queue_total", "4194304")
    try:
        p = Peer(n.addr)
        p.handshake("flooder", SECRET)
        rss0 = n.rss_kib()
        blob = "x" * (512 * 1024)
        for i in range(50):
            p.send("", "snd", "ghost#p", i, blob)
        for i in range(50):
            p.send("", "snd", "ghost%d#p" % i, i, blob)
        p.send("", "time", "flooder#t")
        f = p.recv_for("t", 10)
        check(isinstance(f[1], float), "queues: node answers after 100 relays of 512 KiB to unreachable nodes")
        rss = n.rss_kib()
        st = stats(n.addr, SECRET)
        check(st.get("dropped_connect_queue", 0) >= 49 and st.get("dropped_connect_queue_total", 0) >= 1,
              "queues: drops counted (%r, %r)" % (st.get("dropped_connect_queue"),
                                                 st.get("dropped_connect_queue_total")))
        check(rss - rss0 < 24 * 1024, "queues: RSS grew %d KiB for 50 MB of relays (< 24 MiB)" % (rss - rss0))
        log = n.log()
        check("max_connect_queue (1048576 bytes)" in log, "queues: the per-node limit is named in the log")
        check("max_connect_queue_total (4194304 bytes)" in log, "queues: the total limit is named in the log")
        p.close()
    finally:
        n.stop()


def nonreader(tmp):
    """A peer that never reads: its connection is closed at max_send_queue."""
    n = Node(AEMP, tmp, "relayer", SECRET, "max_send_queue", "1048576")
    try:
        p = Peer(n.addr)
        p.handshake("sink", SECRET)
        p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        blob = "y" * 65536
        closed = False
        try:
            for i in range(800):   # 50 MB relayed back to us, never read
                p.send("", "snd", "sink#q", i, blob)
        except OSError:
            closed = True
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "max_send_queue" not in n.log():
            time.sleep(0.05)
        check("max_send_queue (1048576)" in n.log(), "non-reader: closed naming max_send_queue%s"
              % (" (send failed)" if closed else ""))
        p.close()
        check(isinstance(time_request(n.addr, SECRET), float), "non-reader: node still answers")
    finally:
        n.stop()


def bad_ids(tmp):
    """Peer node IDs are checked like ours."""
    n = Node(AEMP, tmp, "strict", SECRET)
    try:
        cases = [(b"", "must not be empty"), (b"a#b", "must not contain '#'"),
                 (b"n3#echo", "must not contain '#'"), (b"ctl\x01x", "control character"),
                 (b"\xff\xfebad", "not valid UTF-8"), (b"L" * 2000, "at most 1024 allowed")]
        for nid, why in cases:
            p = Peer(n.addr)
            p.greet_raw(b"aemp;1;" + nid + b";hmac_sha3_512;json")
            refused = p.closed_by_node(5)
            p.close()
            check(refused, "bad IDs: %r refused" % nid[:20])
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and why not in n.log():
                time.sleep(0.05)
            check(why in n.log(), "bad IDs: log says %r" % why)
        check(isinstance(time_request(n.addr, SECRET), float), "bad IDs: node still answers")
    finally:
        n.stop()


def unauth_cap(tmp):
    """At most max_unauthenticated handshakes at once; the oldest are shed."""
    n = Node(AEMP, tmp, "capped", SECRET, "max_unauthenticated", "20")
    try:
        socks = [Peer(n.addr) for _ in range(50)]
        time.sleep(0.5)
        closed = 0
        for p in socks[:30]:
            if p.closed_by_node(0.5):
                closed += 1
        check(closed == 30, "unauth cap: the 30 oldest of 50 idle connections were shed (%d)" % closed)
        check(isinstance(time_request(n.addr, SECRET), float), "unauth cap: a new client is served")
        check("max_unauthenticated (20)" in n.log(), "unauth cap: logged with the limit's name")
        st = stats(n.addr, SECRET)
        check(st.get("unauthenticated_shed", 0) >= 30, "unauth cap: counted (%r)" % st.get("unauthenticated_shed"))
        for p in socks:
            p.close()
    finally:
        n.stop()


def explained(tmp):
    """Failures explain themselves at the default log level: a wrong secret
    (address, node, method, what to check) and a seed nobody listens on."""
    a = Node(AEMP, tmp, "explainA", SECRET)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    deadaddr = "127.0.0.1:%d" % dead.getsockname()[1]
    dead.close()   # nothing listens there now
    b = Node(AEMP, tmp, "explainB", "another-secret", "seeds", "%s,%s" % (a.addr, deadaddr))
    try:
        deadline = time.monotonic() + 8
        want_a = "from explainB: authentication failure/shared secret mismatch (auth hmac_sha3_512); " \
                 "check that both nodes have the same secret"
        want_b = "seed %s: Connection refused (retrying" % deadaddr
        while time.monotonic() < deadline and (want_a not in a.log() or want_b not in b.log()):
            time.sleep(0.1)
        check(want_a in a.log(), "explained: wrong secret logged with peer, method and hint")
        check(want_b in b.log(), "explained: refused seed logged with the address")
        time.sleep(2.5)   # the seed is retried at 0.3, 0.6, 1.2 s ...
        check(b.log().count(want_b) == 1, "explained: a seed's repeated failure is logged once (%d)"
              % b.log().count(want_b))
        # a second node with an ID that is already connected to the seed
        d1 = Node(AEMP, tmp, "dupnode", SECRET, "seeds", a.addr)
        time.sleep(0.8)
        d2dir = os.path.join(tmp, "second")   # its own files: same node ID
        os.makedirs(d2dir, exist_ok=True)
        d2 = Node(AEMP, d2dir, "dupnode", SECRET, "seeds", a.addr)
        try:
            check(wait_log(d2, "another node with our ID already connected to it", 6),
                  "explained: a duplicate node ID is named as the likely cause")
        finally:
            d2.stop()
            d1.stop()
    finally:
        b.stop()
        a.stop()


def observable(tmp):
    """Counters through the stats request and the Prometheus endpoint; the
    log level changed at run time; level 9 traces frames; a slow or bad
    scraper does not block the node."""
    import urllib.request
    n = Node(AEMP, tmp, "observed", SECRET, "metrics", "127.0.0.1:0")
    try:
        maddr = None
        deadline = time.monotonic() + 5
        while not maddr and time.monotonic() < deadline:
            for line in n.log().splitlines():
                if "/metrics" in line:
                    maddr = line.split("http://")[1].split("/")[0]
            time.sleep(0.05)
        check(maddr is not None, "observable: the metrics endpoint is announced")
        slow = connect(maddr)   # sends nothing: must not block anybody
        p = Peer(n.addr)
        p.handshake("watcher", SECRET)
        for i in range(100):
            p.send("", "devnull", i)
        p.send("", "loglevel", 9, "watcher#l")
        f = p.recv_for("l")
        check(f[1] == "" and f[2] == 5, "observable: loglevel answers the old level (%r)" % (f,))
        p.send("", "devnull", "traced")
        p.send("", "stats", "watcher#s")
        st = p.recv_for("s")[1]
        check(st["log_level"] == 9, "observable: stats shows the new log level")
        check(st["messages_in"] >= 102, "observable: messages_in counts (%r)" % st["messages_in"])
        peer = st["peers"].get("watcher", {})
        check(peer.get("messages_in", 0) >= 102 and peer.get("direction") == "in",
              "observable: per-peer counters (%r)" % peer)
        check('frame < from watcher: "" ["devnull","traced"]' in n.log(), "observable: level 9 traces frames")
        p.send("", "loglevel", 12, "watcher#l")
        check(p.recv_for("l")[1] != "", "observable: a bad level is refused")
        body = urllib.request.urlopen("http://%s/metrics" % maddr, timeout=5).read().decode()
        check("# TYPE aemp_messages_in_total counter" in body, "observable: Prometheus counter family")
        check('aemp_peer_messages_in_total{node="watcher"}' in body, "observable: Prometheus per-peer series")
        slow.close()
        p.close()
    finally:
        n.stop()


def silent_seed(tmp):
    """A seed that accepts but never greets: one connection waits in its
    handshake and the seed's retries do not open more while it does."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.settimeout(0.2)
    addr = "127.0.0.1:%d" % lsock.getsockname()[1]
    held, stop = [], threading.Event()

    def accept_all():
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept_all)
    t.start()
    n = Node(AEMP, tmp, "silentseed", SECRET, "seeds", addr, "monitor_timeout", "20")
    try:
        time.sleep(3.0)   # the seed is retried at about 0.3, 0.6, 1.2, 2.4 s
        check(len(held) == 1, "silent seed: one connection in its handshake, no retry beside it (%d)"
              % len(held))
        check(n.alive(), "silent seed: node still running")
    finally:
        n.stop()
        stop.set()
        t.join(5)
        for c in held:
            c.close()
        lsock.close()


CHECKS = [emfile, greetings, fake_greeting, queues, nonreader, bad_ids, unauth_cap, explained, observable,
          silent_seed]

if __name__ == "__main__":
    random.seed(1)
    only = sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        for c in CHECKS:
            if only and c.__name__ not in only:
                continue
            t0 = time.monotonic()
            try:
                c(tmp)
            except Exception as e:  # noqa: BLE001
                check(False, "%s raised %r" % (c.__name__, e))
            print("     (%s: %.1f s)" % (c.__name__, time.monotonic() - t0), flush=True)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all hostile-peer checks passed")
