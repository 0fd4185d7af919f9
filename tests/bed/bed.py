"""The federation test bed: a private CA, a DNS server with A and SRV records,
and real Prosody servers, all on loopback inside the network namespace the
test runs in (tests/e2e/netns.sh), each domain on its own 127.0.0.x address.

Everything is started by recorded PID and stopped by that PID.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

DNS_ADDR = "127.0.0.53"  # netns.sh points resolv.conf here

# Prosody resolves with its own DNS code (net.dns) unless lua-unbound is
# installed (Debian's prosody recommends it): then net.unbound hands this
# table to libunbound, which by itself answers NXDOMAIN for .test, one of
# the special-use names (RFC 6761) among its default local zones.
# "transparent" lets .test queries through to the forwarder, which
# `resolvconf = true` makes resolv.conf's nameserver: the bed's dnsmasq.
# A lua-unbound built with the IANA root trust anchor would then find the
# bed's unsigned answers bogus (Prosody drops those): "domain-insecure"
# waives validation below test. Prosody's built-in resolver ignores all this.
PROSODY_UNBOUND = ('unbound = { resolvconf = true; hoststxt = false; options = {\n'
                   '    ["local-zone:"] = "test. transparent";\n'
                   '    ["domain-insecure:"] = "test.";\n'
                   '} }')


# Prosody 0.12's modules for today's clients (carbons, the archive, PEP for
# OMEMO, stream management, blocking), for Prosody(modules=MODERN).
MODERN = ("carbons", "mam", "pep", "smacks", "blocklist")


def _run(*args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {r.stderr}")
    return r


def stop_process(proc):
    """SIGTERM, then SIGKILL after 10 s; a process already gone is fine."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_port(addr, port, timeout=15, proc=None, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.05)
    detail = open(log).read() if log and os.path.exists(log) else ""
    raise RuntimeError(f"nothing listens on {addr}:{port}\n{detail}")


class CA:
    """A private CA made with the openssl CLI; one certificate per domain
    with DNS subjectAltNames and serverAuth+clientAuth (a server shows the
    same certificate as a TLS client on outbound s2s)."""

    def __init__(self, root, name="ca"):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30",
             "-subj", f"/CN=fedgate test {name}")

    def issue_expired(self, name, sans):
        """A leaf whose validity ended in 2020 (openssl ca can set past dates)."""
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        cert = os.path.join(self.dir, f"{name}.pem")
        conf = os.path.join(self.dir, f"{name}.cnf")
        db = os.path.join(self.dir, f"{name}.index")
        open(db, "w").close()
        with open(conf, "w") as f:
            f.write(f"""[ca]
default_ca = d
[d]
database = {db}
new_certs_dir = {self.dir}
serial = {self.dir}/{name}.serial
default_md = sha256
policy = p
copy_extensions = none
x509_extensions = ext
[p]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = {",".join(f"DNS:{s}" for s in sans)}
""")
        with open(os.path.join(self.dir, f"{name}.serial"), "w") as f:
            f.write("1000\n")
        _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={sans[0]}")
        _run("openssl", "ca", "-batch", "-config", conf, "-cert", self.cert, "-keyfile",
             self.key, "-in", csr, "-out", cert, "-startdate", "20200101000000Z",
             "-enddate", "20200201000000Z", "-notext")
        return cert, key

    def issue(self, name, sans, days=30, eku="serverAuth,clientAuth"):
        """Returns (cert, key) paths for a leaf naming every DNS name in sans,
        with extendedKeyUsage eku (public CAs issue "serverAuth" alone
        since 2026)."""
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        cert = os.path.join(self.dir, f"{name}.pem")
        ext = os.path.join(self.dir, f"{name}.ext")
        _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={sans[0]}")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    f"extendedKeyUsage={eku}\n"
                    "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans) + "\n")
        # OpenSSL 3's x509 -req copies no extensions from the request.
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
             "-CAcreateserial", "-out", cert, "-days", str(days), "-extfile", ext)
        return cert, key


class DNS:
    """dnsmasq on 127.0.0.53:53 answering only from its own records."""

    def __init__(self, root):
        self.dir = os.path.join(root, "dns")
        os.makedirs(self.dir)
        self.a = {}
        self.srv = []
        self.proc = None
        self.log = os.path.join(self.dir, "dnsmasq.log")

    def add_a(self, name, addr):
        self.a.setdefault(name, []).append(addr)

    def add_srv(self, service, target, port, priority=0, weight=0):
        self.srv.append((service, target, port, priority, weight))

    def start(self):
        conf = os.path.join(self.dir, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write("no-resolv\nno-hosts\nno-poll\nbind-interfaces\n"
                    f"listen-address={DNS_ADDR}\nport=53\nlog-queries\n"
                    f"log-facility={self.log}\nuser=root\n"
                    # Names of the bed only; everything else is NXDOMAIN,
                    # never forwarded anywhere.
                    "local=/test/\n")
            for name, addrs in self.a.items():
                for addr in addrs:
                    f.write(f"host-record={name},{addr}\n")
            for service, target, port, prio, weight in self.srv:
                f.write(f"srv-host={service},{target},{port},{prio},{weight}\n")
        self.proc = subprocess.Popen(["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}",
                                      f"--pid-file={os.path.join(self.dir, 'pid')}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: " + self.proc.stderr.read().decode())
            if os.path.exists(self.log) and "started" in open(self.log).read():
                return self
            time.sleep(0.05)
        raise RuntimeError("dnsmasq did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)


def query_srv(name, server=DNS_ADDR):
    """A minimal DNS client: the SRV records of name as (prio, weight, port,
    target), so tests can check what the bed serves without other tools."""
    qid = os.getpid() & 0xFFFF
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 33, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (server, 53))
    data, _ = s.recvfrom(4096)
    s.close()

    def read_name(off):
        labels = []
        while True:
            n = data[off]
            if n & 0xC0 == 0xC0:
                ptr = struct.unpack(">H", data[off:off + 2])[0] & 0x3FFF
                labels.append(read_name(ptr)[0])
                return ".".join(x for x in labels if x), off + 2
            off += 1
            if n == 0:
                return ".".join(labels), off
            labels.append(data[off:off + n].decode())
            off += n

    ancount = struct.unpack(">H", data[6:8])[0]
    off = read_name(12)[1] + 4
    out = []
    for _ in range(ancount):
        off = read_name(off)[1]
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        off += 10
        if rtype == 33:
            prio, weight, port = struct.unpack(">HHH", data[off:off + 6])
            out.append((prio, weight, port, read_name(off + 6)[0]))
        off += rdlen
    return sorted(out)


class Prosody:
    """A real Prosody (Debian's) serving `hosts` on `addr`, run as the
    prosody user with its files in a folder of its own."""

    def __init__(self, root, name, addr, hosts, ca, cert, key, extra="", tls=True, bidi=False,
                 modules=()):
        self.dir = os.path.join(root, f"prosody-{name}")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.addr = addr
        self.hosts = hosts
        self.log = os.path.join(self.dir, "prosody.log")
        self.conf = os.path.join(self.dir, "prosody.cfg.lua")
        shutil.copy(cert, os.path.join(self.dir, "cert.pem"))
        shutil.copy(key, os.path.join(self.dir, "key.pem"))
        shutil.copy(ca, os.path.join(self.dir, "ca.pem"))
        vhosts = "".join(f'VirtualHost "{h}"\n' for h in hosts)
        # Each option once: Prosody 0.12 reports a repeated one with the
        # line it is on, and fails to find that line when the file's path
        # is long (its "Duplicate option" warning then crashes the config
        # reader). So tls=False and extra ("name = value" lines) replace
        # options instead of adding lines after them.
        options = {
            "daemonize": "false",
            "pidfile": f'"{self.dir}/prosody.pid"',
            "data_path": f'"{self.data}"',
            "log": f'{{ debug = "{self.log}" }}',
            "interfaces": f'{{ "{addr}" }}',
            "c2s_ports": "{ 5222 }",
            "s2s_ports": "{ 5269 }",
            "c2s_direct_tls_ports": "{ }",
            "s2s_direct_tls_ports": "{ }",
            "http_ports": "{ }",
            "https_ports": "{ }",
            "admin_socket": f'"{self.dir}/admin.sock"',
            "modules_enabled": '{ "roster", "saslauth", "tls", "dialback", "disco", "ping", '
                               '"presence", "message", "iq", "posix", "s2s_auth_certs" }',
            "modules_disabled": '{ "s2s_bidi" }',
            "authentication": '"internal_hashed"',
            "storage": '"internal"',
            "c2s_require_encryption": "true",
            "s2s_require_encryption": "true",
            "s2s_secure_auth": "true",
        }
        if tls:
            options["ssl"] = (f'{{ certificate = "{self.dir}/cert.pem"; key = "{self.dir}/key.pem"; '
                              f'cafile = "{self.dir}/ca.pem"; capath = false }}')
        else:
            # No certificate at all: Prosody offers no STARTTLS anywhere.
            options.update({"certificates": '"/nonexistent"', "c2s_require_encryption": "false",
                            "s2s_require_encryption": "false", "s2s_secure_auth": "false",
                            "modules_disabled": '{ "s2s_bidi", "tls" }'})
        if bidi:
            # XEP-0288: Prosody's mod_s2s_bidi offers and asks for
            # bidirectional streams (after TLS, as s2s_require_encryption says).
            options["modules_enabled"] = options["modules_enabled"][:-1] + ', "s2s_bidi" }'
            options["modules_disabled"] = "{ }"
        if modules:
            # Opt-in modules (MODERN for today's clients): the other tests
            # keep the small set above and so their behaviour.
            options["modules_enabled"] = (options["modules_enabled"][:-1] +
                                          "".join(f', "{m}"' for m in modules) + " }")
        for line in extra.splitlines():
            if line.strip():
                name, value = line.split("=", 1)
                options[name.strip()] = value.strip()
        # Direct TLS (XEP-0368): extra may set s2s_direct_tls_ports = { N };
        # start() then waits for those ports too. Publish them with
        # DNS.add_srv("_xmpps-server._tcp.DOMAIN", host, N) so that peers
        # (fedgate, and Prosody itself for its outbound streams) find them.
        self.direct_tls_ports = [int(x) for x in
                                 re.findall(r"\d+", options["s2s_direct_tls_ports"])]
        # extra may move the s2s port too (a bed with several servers on
        # one address, such as ::1).
        self.s2s_port = int(re.findall(r"\d+", options["s2s_ports"])[0])
        body = "".join(f"{k} = {v}\n" for k, v in options.items())
        with open(self.conf, "w") as f:
            f.write(f"{body}{PROSODY_UNBOUND}\n{vhosts}")
        pw = pwd.getpwnam("prosody")
        for dirpath, dirnames, filenames in os.walk(self.dir):
            for n in [dirpath] + [os.path.join(dirpath, x) for x in filenames]:
                os.chown(n, pw.pw_uid, pw.pw_gid)
        os.chown(root, 0, 0)
        os.chmod(root, 0o755)
        self.proc = None

    def _as_prosody(self):
        return ["setpriv", "--reuid=prosody", "--regid=prosody", "--init-groups"]

    def register(self, user, host, password):
        _run(*self._as_prosody(), "prosodyctl", "--config", self.conf, "register", user, host,
             password)

    def start(self):
        self.proc = subprocess.Popen(self._as_prosody() + ["prosody", "--config", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.addr, 5222, proc=self.proc, log=self.log)
        wait_port(self.addr, self.s2s_port, proc=self.proc, log=self.log)
        for port in self.direct_tls_ports:
            wait_port(self.addr, port, proc=self.proc, log=self.log)
        return self

    def read_log(self):
        return open(self.log).read() if os.path.exists(self.log) else ""

    def resolver(self):
        """Which DNS code this Prosody resolves with, as its debug log
        tells: "libunbound" (lua-unbound installed), "net.dns" (its
        built-in one), or "unknown" before it looked anything up."""
        log = self.read_log()
        # net.unbound logs as "unbound" and "unbound.queryID".
        if re.search(r" unbound(\.query\S*)?\t", log):
            return "libunbound"
        if "Using legacy DNS API" in log:
            return "net.dns"
        return "unknown"

    def stop(self):
        stop_process(self.proc)


class Bed:
    """One namespace's worth of federation: CA, DNS, servers."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="fgbed-")
        os.chmod(self.root, 0o755)
        self.ca = CA(self.root)
        self.dns = DNS(self.root)
        self.servers = []

    def prosody(self, name, addr, hosts, extra="", tls=True, ca=None, eku="serverAuth,clientAuth",
                bidi=False, modules=()):
        """ca: the CA that issues this server's certificate (default the
        bed's), with extendedKeyUsage eku; the server always trusts the
        bed's CA. bidi: with mod_s2s_bidi (XEP-0288) enabled. modules:
        more Prosody modules to enable (MODERN: what today's clients use)."""
        cert, key = (ca or self.ca).issue(name, hosts, eku=eku)
        p = Prosody(self.root, name, addr, hosts, self.ca.cert, cert, key, extra, tls, bidi,
                    modules)
        self.servers.append(p)
        return p

    def stop(self):
        for s in reversed(self.servers):
            s.stop()
        self.dns.stop()


class SignedDNS:
    """unbound on its own address answering zones of its own from
    auth-zone, signed with ldns-signzone or not, and forwarding every other
    name to the bed's dnsmasq: the DNSSEC path DANE needs. A validating
    client (fedgate with [dns] trust_anchor = self.anchors) trusts the
    signed zones through the DS records in that file; the unsigned ones
    are insecure, being under no trust anchor. The server itself does not
    validate (iterator only): it serves what it has, RRSIGs included."""

    def __init__(self, root, addr="127.0.0.54"):
        self.dir = os.path.join(root, "unbound")
        os.makedirs(self.dir)
        self.addr = addr
        self.zones = {}  # name: (records, signed)
        self.anchors = os.path.join(self.dir, "anchors.ds")
        self.resolv_conf = os.path.join(self.dir, "resolv.conf")
        self.log = os.path.join(self.dir, "unbound.log")
        self.proc = None

    def add_zone(self, name, records, signed=True, bogus=False):
        """records: zone-file lines relative to the zone ("xmpp IN A ...").
        bogus: signed, but the trust anchor file gets the DS of another key,
        so that a validating client finds every answer bogus."""
        self.zones[name] = (list(records), "bogus" if bogus else signed)

    def _write_zone(self, name, records, signed):
        path = os.path.join(self.dir, f"{name}.zone")
        with open(path, "w") as f:
            f.write(f"$ORIGIN {name}.\n$TTL 60\n"
                    f"@ IN SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 60\n"
                    f"@ IN NS ns.{name}.\n"
                    f"ns IN A {self.addr}\n")
            for r in records:
                f.write(r + "\n")
        if not signed:
            return path
        # One key as both KSK and ZSK (a CSK); ldns-keygen names its files
        # K<zone>+013+<tag> and prints that base name.
        base = _run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name, cwd=self.dir)
        base = os.path.join(self.dir, base.stdout.strip())
        _run("ldns-signzone", "-f", path + ".signed", path, base, cwd=self.dir)
        if signed == "bogus":
            other = _run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name, cwd=self.dir)
            base = os.path.join(self.dir, other.stdout.strip())
        with open(base + ".ds") as ds, open(self.anchors, "a") as out:
            out.write(ds.read())
        return path + ".signed"

    def start(self):
        open(self.anchors, "a").close()
        conf = os.path.join(self.dir, "unbound.conf")
        with open(conf, "w") as f:
            f.write("server:\n"
                    f"  interface: {self.addr}\n  port: 53\n"
                    "  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n"
                    f"  directory: \"{self.dir}\"\n  pidfile: \"{self.dir}/unbound.pid\"\n"
                    f"  use-syslog: no\n  logfile: \"{self.log}\"\n  verbosity: 1\n"
                    "  log-queries: yes\n"
                    "  access-control: 127.0.0.0/8 allow\n"
                    "  do-not-query-localhost: no\n"
                    "  module-config: \"iterator\"\n"
                    "  local-zone: \"test.\" transparent\n"
                    "  do-ip6: no\n")
            for name, (records, signed) in self.zones.items():
                path = self._write_zone(name, records, signed)
                f.write(f"auth-zone:\n  name: \"{name}.\"\n  zonefile: \"{path}\"\n"
                        "  for-downstream: yes\n  for-upstream: yes\n"
                        "  fallback-enabled: no\n")
            # Everything else (contoso.test, the bed's other names) from
            # dnsmasq, as before.
            f.write(f"forward-zone:\n  name: \".\"\n  forward-addr: {DNS_ADDR}\n")
        with open(self.resolv_conf, "w") as f:
            f.write(f"nameserver {self.addr}\n")
        _run("unbound-checkconf", conf)
        self.proc = subprocess.Popen(["unbound", "-d", "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("unbound exited: " + self.proc.stderr.read().decode()
                                   + (open(self.log).read() if os.path.exists(self.log) else ""))
            try:
                query_srv("_probe._tcp.invalid", server=self.addr)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("unbound did not start")

    def stop(self):
        stop_process(self.proc)


def spki_sha256(cert):
    """The SHA-256 of a certificate's SubjectPublicKeyInfo, hex: the data
    of a "3 1 1" TLSA record."""
    import hashlib
    pem = _run("openssl", "x509", "-in", cert, "-pubkey", "-noout").stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem.encode(),
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()
