"""aempclient.py - a small AEMP peer for the hostile-peer tests.

It speaks the transport protocol of docs/protocol.md as an attacker (or an
ordinary peer) would: a greeting of its choosing, HMAC-SHA3-512
authentication with the shared secret, and JSON frames both ways.  It also
starts `aemp run` nodes and reads their resource use from /proc, and has
the check/failures/wait_log helpers the Python tests share.
"""
import hashlib
import hmac
import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import time

PROTO = "aemp"


failures = []


def check(cond, what):
    """Print one check's outcome; a failed one is added to failures."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def wait_log(node, text, seconds=8):
    """Wait (at most seconds) until text is in node's log; True if it is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and text not in node.log():
        time.sleep(0.1)
    return text in node.log()


def greeting(nodeid, methods="hmac_sha3_512", framings="json", extra=""):
    """Our two greeting lines (bytes, LF-terminated) and the nonce."""
    nonce = secrets.token_urlsafe(48)
    line1 = "%s;1;%s;%s;%s%s" % (PROTO, nodeid, methods, framings, extra)
    return line1, nonce


class Peer:
    """One TCP connection to a node, speaking as node `nodeid`."""

    def __init__(self, addr, timeout=5.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.dec = json.JSONDecoder()
        self.jbuf = ""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def read_line(self, deadline):
        while b"\n" not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the node")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def greet_raw(self, line1):
        """Send line1 (bytes) and a nonce as our greeting, nothing more."""
        self.send_raw(line1 + b"\n" + secrets.token_urlsafe(48).encode() + b"\n")

    def handshake(self, nodeid, secret, timeout=5.0):
        """Greet as nodeid, authenticate with the secret (HMAC-SHA3-512), and
        read the node's greeting and auth line.  Returns the node's auth
        line."""
        deadline = time.monotonic() + timeout
        l1, l2 = greeting(nodeid)
        self.send_raw("%s\n%s\n" % (l1, l2))
        r1 = self.read_line(deadline)
        r2 = self.read_line(deadline)
        own = "%s\n%s\n%s\n%s\n" % (l1, l2, r1, r2)
        token = hmac.new(secret.encode(), own.encode(), hashlib.sha3_512).hexdigest()
        self.send_raw("hmac_sha3_512;%s;json\n" % token)
        auth = self.read_line(deadline)
        self.jbuf = self.buf.decode("utf-8", "replace")
        self.buf = b""
        return auth

    def send(self, *frame):
        self.send_raw(json.dumps(list(frame), separators=(",", ":")))

    def recv(self, timeout=5.0):
        """The next JSON frame from the node."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.jbuf.lstrip()
            if s:
                try:
                    obj, end = self.dec.raw_decode(s)
                    self.jbuf = s[end:]
                    return obj
                except ValueError:
                    pass
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed by the node")
            self.jbuf += chunk.decode("utf-8", "replace")

    def recv_for(self, port, timeout=5.0):
        """The next frame addressed to our port `port`, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv(max(0.01, deadline - time.monotonic()))
            if f and f[0] == port:
                return f

    def closed_by_node(self, timeout=5.0):
        """True if the node closes the connection within timeout."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False


class Node:
    """An `aemp run` process on 127.0.0.1 with its stderr in a file."""

    def __init__(self, aemp, tmp, nodeid, secret, *args, nofile=None):
        self.nodeid = nodeid
        self.errpath = os.path.join(tmp, nodeid + ".err")
        self.err = open(self.errpath, "wb")
        self.out = open(os.path.join(tmp, nodeid + ".out"), "w+")

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        cmd = [aemp, "run", "nodeid", nodeid, "binds", "127.0.0.1:0", "secret", secret] + list(args)
        env = dict(os.environ, HOME=tmp, PERL_ANYEVENT_MP_RC=os.path.join(tmp, "rc"))
        env.pop("AEMP_WARNLEVEL", None)
        # under AddressSanitizer freed memory waits in a quarantine: the RSS
        # bounds measure the library, not that
        asan = env.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=0"
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, env=env,
                                     preexec_fn=limits, close_fds=True)
        self.addr = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            self.out.seek(0)
            for line in self.out:
                if " listening on " in line:
                    self.addr = line.split(" listening on ")[1].split(",")[0].strip()
            if self.addr:
                break
            time.sleep(0.05)
        if not self.addr:
            self.stop()
            raise RuntimeError("node %s did not start: %s" % (nodeid, self.log()))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.err.close()
        self.out.close()

    def log(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        return os.path.getsize(self.errpath)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_request(addr, secret, nodeid="probe", timeout=5.0):
    """Authenticate as nodeid and ask the node for its time; the reply's
    float, or raise."""
    p = Peer(addr, timeout)
    try:
        p.handshake(nodeid, secret, timeout)
        p.send("", "time", nodeid + "#t")
        f = p.recv_for("t", timeout)
        return f[1]
    finally:
        p.close()


def stats(addr, secret, nodeid="statsprobe", timeout=5.0):
    """The node's counters (the node-port request "stats") as a dict."""
    p = Peer(addr, timeout)
    try:
        p.handshake(nodeid, secret, timeout)
        p.send("", "stats", nodeid + "#s")
        return p.recv_for("s", timeout)[1]
    finally:
        p.close()
