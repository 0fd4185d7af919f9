"""Helpers for end-to-end tests: a real fedgate daemon and a raw XMPP peer.

Tests run inside a network namespace of their own (tests/e2e/netns.sh), so
the daemon binds the real XMPP ports on 127.0.0.1 and nothing else is
reachable.
"""
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"

FEDGATE = os.environ.get("FEDGATE", "fedgate")


class Fedgate:
    """A fedgate made with `fedgate init` and run with `fedgate serve`."""

    def __init__(self, domain="contoso.test", extra=None, addr="127.0.0.1"):
        self.addr = addr
        self.dir = tempfile.mkdtemp(prefix="fgtest-")
        self.domain = domain
        out = subprocess.run([FEDGATE, "init", "--domain", domain, "--dir", self.dir],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        self.conf = os.path.join(self.dir, "fedgate.conf")
        text = open(self.conf).read()
        text = re.sub(r"(?m)^s2s = .*$", f"s2s = {addr}:5269", text)
        text = re.sub(r"(?m)^c2s = .*$", f"c2s = {addr}:5222", text)
        text = re.sub(r"(?m)^admin = .*$", f"admin = {addr}:5280", text)
        extra = dict(extra or {})
        pg = os.environ.get("FG_TEST_PG")
        if pg and "store" not in extra:
            # Under tests/unit/pg_run.sh: the daemon keeps its store in a
            # database of its own on that throwaway server, with a pool.
            Fedgate.pg_count = getattr(Fedgate, "pg_count", 0) + 1
            db = f"fge2e_{os.getpid()}_{Fedgate.pg_count}"
            out = subprocess.run(["psql", f"{pg} dbname=postgres", "-qAtc",
                                  f"CREATE DATABASE {db}"], capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            extra["store"] = {"backend": "postgresql", "dsn": f"{pg} dbname={db}",
                              "pool_size": "4"}
        for section, lines in extra.items():
            block = "".join(f"{k} = {v}\n" for k, v in lines.items())
            if f"[{section}]\n" not in text:
                text += f"\n[{section}]\n"
            text = text.replace(f"[{section}]\n", f"[{section}]\n{block}", 1)
        open(self.conf, "w").write(text)
        self.cert = os.path.join(self.dir, "certs", f"{domain}.pem")
        self.log_path = os.path.join(self.dir, "fedgate.log")
        self.proc = None

    def use_bed_certificate(self, bed, eku="serverAuth,clientAuth"):
        """Shows a certificate of the bed's CA for this domain (with
        extendedKeyUsage eku) and trusts that CA for peers, as an admin
        would configure a real deployment."""
        import shutil
        cert, key = bed.ca.issue(self.domain, [self.domain], eku=eku)
        shutil.copy(cert, os.path.join(self.dir, "certs", f"{self.domain}.pem"))
        shutil.copy(key, os.path.join(self.dir, "certs", f"{self.domain}.key"))
        text = re.sub(r"(?m)^ca_file =.*$", f"ca_file = {bed.ca.cert}", open(self.conf).read())
        with open(self.conf, "w") as f:
            f.write(text)
        return self

    def cli(self, *args, input=None):
        """Runs `fedgate ARGS -c CONF`; returns the CompletedProcess."""
        return subprocess.run([FEDGATE, *args, "-c", self.conf], capture_output=True,
                              text=True, input=input, timeout=60)

    def cli_json(self, *args):
        import json
        r = self.cli(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def export(self):
        r = self.cli("partner", "export")
        assert r.returncode == 0, r.stderr
        return r.stdout

    def start(self):
        self.log = open(self.log_path, "w")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen([FEDGATE, "serve", "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if "ready: serving" in self.read_log():
                return self
            if self.proc.poll() is not None:
                raise AssertionError("fedgate exited at start:\n" + self.read_log())
            time.sleep(0.05)
        raise AssertionError("fedgate did not become ready:\n" + self.read_log())

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, pattern, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.read_log()):
                return
            time.sleep(0.05)
        raise AssertionError(f"log never matched {pattern!r}:\n{self.read_log()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then checks the daemon exited cleanly: status 0 and no
        sanitizer report (ASan and LeakSanitizer make the status non-zero)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("fedgate did not stop on SIGTERM:\n" + self.read_log())
        self.proc = None
        self.log.close()
        log = self.read_log()
        assert "Sanitizer" not in log and "runtime error" not in log, log
        assert rc == 0, f"fedgate exited with {rc}:\n{log}"


class Peer:
    """A raw XMPP peer: sends exactly the bytes a test gives it and parses
    what comes back as a stream."""

    def __init__(self, port=5269, host="127.0.0.1", source=None):
        """source: the local address to connect from (any 127.x.y.z is
        loopback, so one test can play several client addresses)."""
        self.sock = socket.create_connection((host, port), timeout=10,
                                             source_address=(source, 0) if source else None)
        self.reset_parser()
        self.closed = False

    def reset_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.header = None
        self.elements = []

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _pump(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                if self.depth == 0:
                    self.header = el
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.elements.append(el)
                elif self.depth == 0:
                    self.elements.append("close")
        return True

    def next_element(self, timeout=5):
        deadline = time.time() + timeout
        while not self.elements:
            left = deadline - time.time()
            if left <= 0 or self.closed:
                return None
            self._pump(left)
        return self.elements.pop(0)

    def wait_header(self, timeout=5):
        deadline = time.time() + timeout
        while self.header is None and not self.closed and time.time() < deadline:
            self._pump(deadline - time.time())
        return self.header

    def open(self, to="contoso.test", ns="jabber:server", version="1.0", frm=None,
             decl=True):
        attrs = f" to='{to}'" if to is not None else ""
        if frm:
            attrs += f" from='{frm}'"
        if version is not None:
            attrs += f" version='{version}'"
        self.send(("<?xml version='1.0'?>" if decl else "") +
                  f"<stream:stream xmlns='{ns}' xmlns:stream='{NS_STREAM}' "
                  f"xmlns:db='jabber:server:dialback'{attrs}>")

    def features(self):
        el = self.next_element()
        assert el is not None and el != "close" and el.tag == f"{{{NS_STREAM}}}features", el
        return el

    def stream_error(self, timeout=5):
        """Returns (condition, text) of the stream error that must come
        next, and checks the stream and the connection are then closed."""
        el = self.next_element(timeout)
        assert el is not None and el != "close", "expected a stream error, got nothing"
        assert el.tag == f"{{{NS_STREAM}}}error", ET.tostring(el)
        cond = [c.tag.split("}")[1] for c in el
                if c.tag.startswith("{" + NS_STREAMS_ERR) and not c.tag.endswith("}text")]
        text = el.findtext(f"{{{NS_STREAMS_ERR}}}text") or ""
        assert len(cond) == 1, ET.tostring(el)
        assert self.next_element() == "close", "no </stream:stream> after the error"
        self.wait_closed()
        return cond[0], text

    def wait_closed(self, timeout=5):
        deadline = time.time() + timeout
        while not self.closed and time.time() < deadline:
            self._pump(deadline - time.time())
        assert self.closed, "the server did not close the connection"

    def starttls(self, cafile=None, server_hostname="contoso.test"):
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        el = self.next_element()
        assert el is not None and el != "close" and el.tag == f"{{{NS_TLS}}}proceed", el
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile:
            ctx.load_verify_locations(cafile)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(10)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.reset_parser()
        return self.sock

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- load tests: memory, outcome counters, counting bounces ----

def sanitized():
    """Whether FEDGATE is the ASan build: its quarantine keeps freed
    memory, so resident size says nothing about fedgate's own use."""
    with open(FEDGATE if os.path.isabs(FEDGATE) else
              subprocess.run(["which", FEDGATE], capture_output=True,
                             text=True).stdout.strip(), "rb") as f:
        return b"AddressSanitizer" in f.read()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def metrics(fg):
    """The stanza outcome counters from /metrics, as the viewer "mon"."""
    import urllib.request
    if not hasattr(fg, "mon_token"):
        r = fg.cli("admin", "token", "mon")
        assert r.returncode == 0, r.stderr
        fg.mon_token = r.stdout.strip()
    base = getattr(fg, "metrics_base", "http://127.0.0.1:5280")
    req = urllib.request.Request(base + "/metrics",
                                 headers={"Authorization": f"Bearer {fg.mon_token}"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    out = {}
    for m in re.finditer(r'^fedgate_stanza_outcomes_total\{outcome="(\w+)"\} (\d+)$', text, re.M):
        out[m.group(1)] = int(m.group(2))
    for m in re.finditer(r'^fedgate_stanzas_dropped_total\{reason="([\w-]+)"\} (\d+)$', text, re.M):
        out["dropped:" + m.group(1)] = int(m.group(2))
    m = re.search(r'^fedgate_streams_dozed_total (\d+)$', text, re.M)
    if m:
        out["dozed"] = int(m.group(1))
    return out


class Counter:
    """Reads a socket to its end, counting error messages (bounces) in
    the raw bytes, whatever the chunking; keep=True also keeps the bytes."""

    def __init__(self, sock, keep=False):
        self.sock = sock
        self.errors = 0
        self.timeouts = 0
        self.raw = bytearray() if keep else None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        # One tail per pattern, one byte shorter than it: what it starts
        # is counted with the next chunk, never twice. (A single tail as
        # long as the longest pattern counted an "<error " that ended
        # within its last 21 bytes again with the next chunk.)
        pats = {b"<error ": "errors", b"<remote-server-timeout": "timeouts"}
        tails = {p: b"" for p in pats}
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            if self.raw is not None:
                self.raw += data
            for pat, attr in pats.items():
                buf = tails[pat] + data
                setattr(self, attr, getattr(self, attr) + buf.count(pat))
                tails[pat] = buf[-(len(pat) - 1):]
