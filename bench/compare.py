#!/usr/bin/python3
"""fedgate side by side with Prosody and ejabberd from Debian, under the same
load from the same C client (bench/load.c, build/bench_load), in a network
namespace of its own on loopback only: c2s and s2s messages/s with server
CPU per 100k messages, latency at a fixed rate, logins/s with CPU per login,
and RSS per idle TLS session. Medians of interleaved runs; prints figures
and the table, asserts nothing about them (docs/benchmarks.md).

  bench/compare.py [--fedgate NAME=BINARY]... [--runs N] [--metrics LIST] [--quick]

Run as root: it installs Prosody, ejabberd and dnsmasq when missing, then
runs itself again inside tests/e2e/netns.sh."""
import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "bed"))
import bed  # noqa: E402

METRICS = ["idle", "logins", "latency", "c2s", "s2s"]
PASSWORD = "bench-password-1"
DOMAIN_A, DOMAIN_B = "a.bench.test", "b.bench.test"
ADDR_A, ADDR_B, ADDR_SINK = "127.0.0.21", "127.0.0.22", "127.0.0.30"
PACKAGES = ["prosody", "ejabberd", "dnsmasq-base", "openssl"]
TICK = os.sysconf("SC_CLK_TCK")
ACCOUNTS = [100]  # idle0..idle99 on server A (--accounts)
ARCHIVE = [False]  # fedgate archives messages (--archive)


def users(domain):
    """Two for messages; on A also the accounts that idle sessions and
    logins take in turn (thousands of sessions of one account would
    measure a server's per-account bookkeeping, not its sessions)."""
    extra = [f"idle{i}" for i in range(ACCOUNTS[0])] if domain == DOMAIN_A else []
    return ["sender", "receiver"] + extra


def log(msg):
    print(msg, flush=True)


# ---- the server's process tree: CPU and memory ----

def tree(pid):
    """pid and every process below it (ejabberdctl -> su -> beam.smp ...)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_s(pids):
    """utime+stime of each process of each tree, summed, in seconds."""
    total = 0
    for root in pids:
        for p in tree(root):
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
    return total / TICK


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total


def run(*args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def stop_proc(proc, pids_first=None, timeout=20):
    if proc is None or proc.poll() is not None:
        return
    victims = tree(proc.pid) if pids_first is None else pids_first
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        proc.wait()


# ---- the three servers ----

class Server:
    """One instance serving one domain on one address; made once, started
    and stopped for every run (accounts stay)."""
    kind = "?"

    def pid(self):
        return self.proc.pid


class Fedgate(Server):
    kind = "fedgate"

    def __init__(self, root, name, binary, domain, addr, peer, pki):
        self.binary, self.domain, self.addr = binary, domain, addr
        self.dir = os.path.join(root, f"{name}-{domain}")
        run(binary, "init", "--domain", domain, "--dir", self.dir)
        self.conf = os.path.join(self.dir, "fedgate.conf")
        text = open(self.conf).read()
        text = re.sub(r"(?m)^s2s = .*$", f"s2s = {addr}:5269", text)
        text = re.sub(r"(?m)^c2s = .*$", f"c2s = {addr}:5222", text)
        text = re.sub(r"(?m)^admin = .*$", f"admin = {addr}:5280", text)
        text = re.sub(r"(?m)^ca_file =.*$", f"ca_file = {pki.ca.cert}", text)
        text = re.sub(r"(?m)^level = .*$", "level = warning", text)
        # The per-address caps would refuse 10,000 sessions from one address.
        limits = ("connections_per_ip = 100000\npreauth_streams_per_ip = 100000\n"
                  "preauth_streams = 100000\n")
        text = text.replace("[limits]\n", "[limits]\n" + limits, 1) if "[limits]\n" in text \
            else text + "\n[limits]\n" + limits
        # The peers run Debian's configurations, whose message archive
        # (mod_mam) is off: fedgate routes alike unless --archive.
        if not ARCHIVE[0]:
            text += "\n[archive]\nenabled = no\n"
        open(self.conf, "w").write(text)
        cert, key = pki.certs[domain]
        shutil.copy(cert, os.path.join(self.dir, "certs", f"{domain}.pem"))
        shutil.copy(key, os.path.join(self.dir, "certs", f"{domain}.key"))
        for user in users(domain):
            run(binary, "user", "add", f"{user}@{domain}", "-c", self.conf,
                input=PASSWORD + "\n")
        run(binary, "partner", "new", "--domain", peer, "--partner-type", "federated",
            "-c", self.conf)
        # Its own user, like the others: nobody, when it can reach the binary.
        self.user = None
        if subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           "test", "-x", binary]).returncode == 0:
            self.user = "nobody"
            for dirpath, _, files in os.walk(self.dir):
                for n in [dirpath] + [os.path.join(dirpath, f) for f in files]:
                    shutil.chown(n, "nobody", "nogroup")
        self.log = os.path.join(self.dir, "fedgate.log")
        self.proc = None

    def start(self):
        pre = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] \
            if self.user else []
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(pre + [self.binary, "serve", "-c", self.conf],
                                         stdout=out, stderr=subprocess.STDOUT)
        # Warnings only, like the others, so no "ready" line: the ports.
        bed.wait_port(self.addr, 5222, proc=self.proc, log=self.log)
        bed.wait_port(self.addr, 5269, proc=self.proc, log=self.log)

    def stop(self):
        stop_proc(self.proc)


class Prosody(Server):
    kind = "prosody"

    def __init__(self, root, name, domain, addr, pki):
        self.addr = addr
        cert, key = pki.certs[domain]
        logfile = os.path.join(root, f"{name}-{domain}.log")
        # The bed logs at debug level, which would cost Prosody most of its
        # CPU here: warnings only, as a production setup would.
        self.p = bed.Prosody(root, f"{name}-{domain}", addr, [domain], pki.ca.cert, cert, key,
                             extra=f'log = {{ warn = "{logfile}" }}')
        open(logfile, "w").close()
        shutil.chown(logfile, "prosody", "prosody")
        for user in users(domain):
            self.p.register(user, domain, PASSWORD)

    def start(self):
        self.p.start()
        self.proc = self.p.proc

    def stop(self):
        self.p.stop()


class Ejabberd(Server):
    """Debian's ejabberd run by its own ejabberdctl with a configuration,
    spool, node name and cookie of its own; ERL_DIST_PORT keeps epmd out."""
    kind = "ejabberd"
    ports = iter(range(4371, 4400))

    def __init__(self, root, name, domain, addr, pki):
        self.addr, self.domain = addr, domain
        self.dir = os.path.join(root, f"{name}-{domain}")
        self.spool = os.path.join(self.dir, "spool")
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.spool)
        os.makedirs(self.logs)
        cert, key = pki.certs[domain]
        node = f"bench{next(self.ports)}"
        port = node[5:]
        self.ctlcfg = os.path.join(self.dir, "ejabberdctl.cfg")
        cookie = os.urandom(12).hex()
        with open(self.ctlcfg, "w") as f:
            f.write(f'ERLANG_NODE={node}@localhost\nERL_DIST_PORT={port}\n'
                    f'ERL_OPTIONS="-setcookie {cookie} -env ERL_CRASH_DUMP_BYTES 0"\n'
                    f'EJABBERD_PID_PATH={self.dir}/ejabberd.pid\n'
                    f'CONTRIB_MODULES_CONF_DIR={self.dir}/modules.d\n')
        os.makedirs(os.path.join(self.dir, "modules.d"))
        with open(os.path.join(self.dir, "inetrc"), "w") as f:
            f.write('{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n'
                    '{file, resolv, "/etc/resolv.conf"}.\n')
        # Debian's file with what the bench needs: these hosts and
        # listeners, STARTTLS required, stored SCRAM keys, and no shapers
        # (Debian's c2s shaper allows 3000 B/s per client, and 10 sessions
        # per account).
        with open(os.path.join(self.dir, "ejabberd.yml"), "w") as f:
            f.write(f"""hosts:
  - {domain}
loglevel: warning
certfiles:
  - {cert}
  - {key}
ca_file: {pki.ca.cert}
listen:
  -
    port: 5222
    ip: "{addr}"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
  -
    port: 5269
    ip: "{addr}"
    module: ejabberd_s2s_in
    max_stanza_size: 524288
s2s_use_starttls: required
auth_method: internal
auth_password_format: scram
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    deny: all
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_s2s_dialback: {{}}
""")
        for dirpath, _, files in os.walk(self.dir):
            for n in [dirpath] + [os.path.join(dirpath, x) for x in files]:
                shutil.chown(n, "ejabberd", "ejabberd")
        self.registered = False
        self.proc = None

    def command(self, *args):
        # As ejabberd from the start: ejabberdctl run by root switches with
        # su, whose PAM session sets the open files limit back to 1024.
        return ["setpriv", "--reuid=ejabberd", "--regid=ejabberd", "--init-groups",
                "env", f"HOME={self.dir}", "ejabberdctl", "--config-dir", self.dir,
                "--ctl-config", self.ctlcfg, "--spool", self.spool, "--logs", self.logs, *args]

    def ctl(self, *args, **kw):
        return run(*self.command(*args), **kw)

    def start(self):
        self.out = open(os.path.join(self.dir, "console.log"), "w")
        self.proc = subprocess.Popen(self.command("foreground"), stdout=self.out,
                                     stderr=subprocess.STDOUT)
        log_path = os.path.join(self.logs, "ejabberd.log")
        bed.wait_port(self.addr, 5222, timeout=60, proc=self.proc, log=log_path)
        bed.wait_port(self.addr, 5269, timeout=30, proc=self.proc, log=log_path)
        if not self.registered:
            # Each ejabberdctl starts an Erlang VM (a second or so): a few
            # at a time.
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda u: self.ctl("register", u, self.domain, PASSWORD,
                                                 timeout=120), users(self.domain)))
            self.registered = True

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        pids = tree(self.proc.pid)
        try:
            self.ctl("stop", timeout=30)
            self.proc.wait(timeout=30)
        except (RuntimeError, subprocess.TimeoutExpired):
            stop_proc(self.proc, pids)
        for p in pids:  # epmd-less, but the VM's helpers must not outlive it
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.out.close()


class PKI:
    """The private CA and one ECDSA P-256 certificate per domain."""

    def __init__(self, root):
        self.ca = bed.CA(root)
        self.certs = {d: self.ca.issue(d, [d]) for d in (DOMAIN_A, DOMAIN_B, "sink")}
        os.chmod(self.ca.dir, 0o755)
        for path in [self.ca.cert] + [p for pair in self.certs.values() for p in pair]:
            os.chmod(path, 0o644)  # read by the servers' own users


class Column:
    """One column of the table: a server kind with its two instances."""

    def __init__(self, name, make):
        self.name = name
        self.make = make
        self.a = self.b = None
        self.results = {}

    def add(self, metric, value):
        self.results.setdefault(metric, []).append(value)


# ---- measurements ----

def spec(addr, domain, user):
    return f"{addr}:5222,{domain},{user},{PASSWORD}"


def load(args, *cmd, stdin=None):
    r = subprocess.run([args.load, *cmd], capture_output=True, text=True, timeout=900,
                       input=stdin)
    if r.returncode != 0:
        raise RuntimeError(f"bench_load {cmd[0]} failed: {r.stdout}{r.stderr[-2000:]}")
    return r.stdout


def number(pattern, text):
    m = re.search(pattern, text)
    if not m:
        raise RuntimeError(f"no {pattern!r} in {text!r}")
    return float(m.group(1))


def measure_msgs(args, col, metric):
    a, b = col.a, (col.b if metric == "s2s" else col.a)
    frm = spec(a.addr, DOMAIN_A, "sender")
    to = spec(b.addr, DOMAIN_A if b is a else DOMAIN_B, "receiver")
    # The first messages open the s2s stream (DNS, TLS, authentication):
    # a short warm-up keeps that out of the figure.
    load(args, "msgs", "--from", frm, "--to", to, "-n", "2000")
    pids = [a.pid()] + ([b.pid()] if b is not a else [])
    c0 = cpu_s(pids)
    out = load(args, "msgs", "--from", frm, "--to", to, "-n", str(args.messages))
    cpu = cpu_s(pids) - c0
    rate = number(r"([\d.]+) msg/s", out)
    got = number(r"(\d+) received", out)
    col.add(metric, rate)
    col.add(metric + "_cpu", cpu * 1e5 / got)
    log(f"  {col.name:10} {metric}: {rate:,.0f} msg/s, server CPU {cpu * 1e5 / got:.2f} s "
        f"per 100k")


def measure_latency(args, col):
    out = load(args, "latency", "--from", spec(col.a.addr, DOMAIN_A, "sender"),
               "--to", spec(col.a.addr, DOMAIN_A, "receiver"), "--rate", str(args.rate),
               "--seconds", str(args.latency_seconds))
    p50, p99 = number(r"p50 ([\d.]+) ms", out), number(r"p99 ([\d.]+) ms", out)
    col.add("p50", p50)
    col.add("p99", p99)
    log(f"  {col.name:10} latency at {args.rate}/s: p50 {p50:.3f} ms, p99 {p99:.3f} ms")


def measure_logins(args, col):
    c0 = cpu_s([col.a.pid()])
    out = load(args, "logins", "--login", spec(col.a.addr, DOMAIN_A, "idle"),
               "--accounts", str(args.accounts), "--conns", str(args.conns),
               "--seconds", str(args.login_seconds), "--sources", "127.0.2.1:8")
    cpu = cpu_s([col.a.pid()]) - c0
    rate, n = number(r"([\d.]+) logins/s", out), number(r"logins: (\d+)", out)
    col.add("logins", rate)
    col.add("login_cpu", cpu * 1e3 / n)
    log(f"  {col.name:10} logins: {rate:,.0f}/s, server CPU {cpu * 1e3 / n:.2f} ms per login")


def measure_idle(args, col):
    pid = col.a.pid()
    time.sleep(1)
    base = rss_kib(pid)
    proc = subprocess.Popen([args.load, "idle", "--login", spec(col.a.addr, DOMAIN_A, "idle"),
                             "--accounts", str(args.accounts),
                             "-n", str(args.idle[-1]),
                             "--checkpoints", ",".join(map(str, args.idle)),
                             "--sources", "127.0.1.1:8", "--conns", str(args.idle_conns)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        figures = []
        for line in proc.stdout:
            m = re.match(r"idle: (\d+) open", line)
            if m:
                n = int(m.group(1))
                time.sleep(args.settle)
                rss = rss_kib(pid)
                figures.append(f"{n}: {(rss - base) / n:.1f} KiB")
                col.add(f"idle{n}", (rss - base) / n)
                proc.stdin.write("\n")
                proc.stdin.flush()
            elif line.startswith("idle: closed"):
                break
        if proc.wait(timeout=300) != 0:
            raise RuntimeError("bench_load idle failed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(args.settle)
    after = rss_kib(pid)
    log(f"  {col.name:10} idle: RSS {base} KiB at start, per session {', '.join(figures)}; "
        f"{after} KiB after closing")


def ceiling(args, pki):
    """The client against bench_load sink: what it can do at most here."""
    cert, key = pki.certs["sink"]
    sink = subprocess.Popen([args.load, "sink", "--listen", f"{ADDR_SINK}:5222", "--cert", cert,
                             "--key", key], stdout=subprocess.DEVNULL)
    try:
        bed.wait_port(ADDR_SINK, 5222, proc=sink)
        s1, s2 = spec(ADDR_SINK, "sink", "sender"), spec(ADDR_SINK, "sink", "receiver")
        out, t = {}, ""
        if "c2s" in args.metrics or "s2s" in args.metrics:
            t = load(args, "msgs", "--from", s1, "--to", s2, "-n", str(args.messages))
            out["c2s"] = number(r"([\d.]+) msg/s", t)
            out["c2s_cpu"] = number(r"client CPU ([\d.]+) s", t)
        if "latency" in args.metrics:
            t = load(args, "latency", "--from", s1, "--to", s2, "--rate", str(args.rate),
                     "--seconds", str(args.latency_seconds))
            out["p50"], out["p99"] = number(r"p50 ([\d.]+)", t), number(r"p99 ([\d.]+)", t)
        if "logins" in args.metrics:
            t = load(args, "logins", "--login", s1, "--conns", str(args.conns), "--seconds",
                     str(args.login_seconds), "--sources", "127.0.2.1:8")
            out["logins"] = number(r"([\d.]+) logins/s", t)
            out["login_cpu"] = number(r"client CPU ([\d.]+) ms", t)
        tls = re.search(r"tls: (.*)", t)
        log(f"client ceiling against bench_load sink ({tls.group(1) if tls else '?'}): " +
            ", ".join(f"{k} {v:,.3f}" for k, v in out.items()))
        return out
    finally:
        sink.terminate()
        sink.wait()


# ---- the table ----

ROWS = [  # key, label, higher is better, format
    ("c2s", "c2s→c2s messages/s", True, "{:,.0f}"),
    ("c2s_cpu", "  server CPU s per 100k messages", False, "{:.2f}"),
    ("s2s", "s2s messages/s (A→B over TLS)", True, "{:,.0f}"),
    ("s2s_cpu", "  server CPU s per 100k (A+B)", False, "{:.2f}"),
    ("p50", "latency p50 at {rate}/s, ms", False, "{:.3f}"),
    ("p99", "latency p99 at {rate}/s, ms", False, "{:.3f}"),
    ("logins", "logins/s (TLS+SCRAM-SHA-1+bind)", True, "{:,.0f}"),
    ("login_cpu", "  server CPU ms per login", False, "{:.2f}"),
]


def table(args, columns, sink):
    rows = list(ROWS) + [(f"idle{n}", f"RSS KiB per idle TLS session at {n:,}", False, "{:.1f}")
                         for n in args.idle]
    peers = [c for c in columns if c.kind != "fedgate"]
    head = ["metric"] + [c.name for c in columns] + ["client ceiling"]
    lines = []
    for key, label, higher, fmt in rows:
        if not any(key in c.results for c in columns):
            continue
        label = label.format(rate=args.rate)
        cells = [label]
        med = {c.name: statistics.median(c.results[key]) for c in columns if key in c.results}
        peer_vals = [med[c.name] for c in peers if c.name in med]
        best = (max if higher else min)(peer_vals) if peer_vals else None
        for c in columns:
            if c.name not in med:
                cells.append("-")
                continue
            v = med[c.name]
            cell = fmt.format(v)
            if best:
                cell += f" ({v / best:.2f}×)"
            cells.append(cell)
        cell = fmt.format(sink[key]) if key in sink else ""
        # The sink is a server on the same cores: what the client alone
        # could do on one core, from its own CPU, goes beside it.
        if key == "c2s" and "c2s_cpu" in sink:
            cell += f" (client alone {1e5 / sink['c2s_cpu']:,.0f})"
        elif key == "logins" and "login_cpu" in sink:
            cell += f" (client alone {1e3 / sink['login_cpu']:,.0f})"
        cells.append(cell)
        lines.append(cells)
    widths = [max(len(r[i]) for r in [head] + lines) for i in range(len(head))]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in lines:
        out.append("| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |")
    return "\n".join(out)


def versions(args):
    lines = []
    for name, binary in args.fedgate:
        v = subprocess.run([binary, "version"], capture_output=True, text=True).stdout
        v = v.splitlines()[0] if v else "?"
        src = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
        commit = subprocess.run(["git", "-C", src, "log", "-1", "--format=%h %cd",
                                 "--date=short"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "-uno"],
                               capture_output=True, text=True).stdout.strip()
        lines.append(f"{name}: {binary}: {v}; commit {commit or '?'}"
                     f"{' (with uncommitted changes)' if dirty else ''}")
    for pkg in ("prosody", "ejabberd", "openssl"):
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                           text=True).stdout
        lines.append(f"{pkg}: {v} (Debian)")
    model = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    lines.append(f"machine: {model}, {os.cpu_count()} cores, Linux {platform.release()}, "
                 f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB")
    lines.append("date: " + datetime.datetime.now(datetime.timezone.utc)
                 .strftime("%Y-%m-%d %H:%M UTC"))
    return lines


# ---- setup outside and inside the namespace ----

def install():
    """Installs what is missing; Debian's postinst may start the services:
    stop them and leave them disabled, since the bench starts its own."""
    missing = [p for p in PACKAGES if "install ok installed" not in subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout]
    if not missing:
        return
    log("compare: installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env)
    for svc in ("prosody", "ejabberd"):
        if svc not in missing:
            continue
        if os.path.exists(f"/etc/init.d/{svc}"):
            subprocess.run([f"/etc/init.d/{svc}", "stop"], capture_output=True)
        if os.path.isdir("/run/systemd/system"):
            subprocess.run(["systemctl", "disable", "--now", svc], capture_output=True)
        else:
            subprocess.run(["update-rc.d", svc, "disable"], capture_output=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fedgate", action="append", default=[], metavar="NAME=BINARY",
                    help="a fedgate binary, one column each (default fedgate=build/fedgate)")
    ap.add_argument("--load", default=os.path.join(TOP, "build", "bench_load"))
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs (median)")
    ap.add_argument("--metrics", default=",".join(METRICS),
                    help="comma-separated: " + ",".join(METRICS))
    ap.add_argument("--peers", default="prosody,ejabberd", help="prosody,ejabberd or fewer")
    ap.add_argument("--quick", action="store_true",
                    help="one run, fewer messages and sessions (development, CI)")
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--latency-seconds", type=int, default=10)
    ap.add_argument("--login-seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=32, help="parallel connections for logins")
    ap.add_argument("--idle", default="1000,10000", help="idle session checkpoints")
    ap.add_argument("--idle-conns", type=int, default=10,
                    help="logins in flight while opening idle sessions (ejabberd 23.01 "
                         "closes new connections with 100 in flight)")
    ap.add_argument("--accounts", type=int, default=100,
                    help="accounts that idle sessions and logins spread over")
    # Idle sessions are read idle: fedgate's streams free their XML parsers
    # after a silent doze period (up to 20 s); every server gets the wait.
    ap.add_argument("--settle", type=float, default=22.0,
                    help="seconds before reading RSS at a checkpoint and after closing")
    ap.add_argument("--archive", action="store_true",
                    help="fedgate archives every message (XEP-0313), which the peers do not")
    args = ap.parse_args()
    ARCHIVE[0] = args.archive
    if args.quick:
        args.runs = 1
        args.messages = 20000
        args.latency_seconds = 3
        args.login_seconds = 3
        if args.idle == "1000,10000":
            args.idle = "200,1000"
        args.settle = 1.0
        args.accounts = min(args.accounts, 20)
    args.idle = [int(x) for x in args.idle.split(",")]
    wanted = [m for m in args.metrics.split(",") if m]
    for m in wanted:
        if m not in METRICS:
            ap.error(f"unknown metric {m}")
    args.metrics = [m for m in METRICS if m in wanted]  # idle first: on a fresh server
    args.peers = [p for p in args.peers.split(",") if p]
    ACCOUNTS[0] = args.accounts
    fgs = []
    for item in args.fedgate or ["fedgate=" + os.path.join(TOP, "build", "fedgate")]:
        name, _, binary = item.partition("=")
        if not binary:
            name, binary = "fedgate", name
        fgs.append((name, os.path.abspath(binary)))
    args.fedgate = fgs
    return args


def main():
    args = parse_args()
    # Stopped with SIGTERM: stop the servers and remove the files too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.environ.get("FG_COMPARE_INSIDE") != "1":
        if os.geteuid() != 0:
            sys.exit("compare: run as root (apt-get, network namespace, servers' own users)")
        for _, binary in args.fedgate:
            if not os.access(binary, os.X_OK):
                sys.exit(f"compare: {binary} is not an executable")
        if not os.access(args.load, os.X_OK):
            sys.exit(f"compare: {args.load} missing (cmake --build build --target bench_load)")
        install()
        env = dict(os.environ, FG_COMPARE_INSIDE="1")
        os.execve(os.path.join(TOP, "tests", "e2e", "netns.sh"),
                  [os.path.join(TOP, "tests", "e2e", "netns.sh"), "/usr/bin/python3",
                   os.path.abspath(__file__)] + sys.argv[1:], env)

    t_start = time.time()
    for line in versions(args):
        log(line)
    # Not under netns.sh's TMPDIR: other runs' clean-ups may remove
    # /tmp/fgrun-* folders while this long run still needs its files.
    root = tempfile.mkdtemp(prefix="fgcompare-", dir="/tmp")
    os.chmod(root, 0o755)
    dns = bed.DNS(root)
    columns = []
    ok = False
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        pki = PKI(root)
        for d, addr in ((DOMAIN_A, ADDR_A), (DOMAIN_B, ADDR_B)):
            dns.add_a(d, addr)
            dns.add_srv(f"_xmpp-server._tcp.{d}", d, 5269)
            dns.add_srv(f"_xmpp-client._tcp.{d}", d, 5222)
        dns.start()
        for name, binary in args.fedgate:
            col = Column(name, lambda d, addr, peer, n=name, b=binary:
                         Fedgate(root, n, b, d, addr, peer, pki))
            col.kind = "fedgate"
            columns.append(col)
        if "prosody" in args.peers:
            col = Column("Prosody", lambda d, addr, peer: Prosody(root, "prosody", d, addr, pki))
            col.kind = "prosody"
            columns.append(col)
        if "ejabberd" in args.peers:
            col = Column("ejabberd", lambda d, addr, peer: Ejabberd(root, "ejabberd", d, addr,
                                                                    pki))
            col.kind = "ejabberd"
            columns.append(col)
        sink = ceiling(args, pki)
        s2s = "s2s" in args.metrics
        for col in columns:
            col.a = col.make(DOMAIN_A, ADDR_A, DOMAIN_B)
            if s2s:
                col.b = col.make(DOMAIN_B, ADDR_B, DOMAIN_A)
        rest = [m for m in args.metrics if m != "idle"]
        for i in range(args.runs):
            for col in columns:
                log(f"run {i + 1}/{args.runs}: {col.name}")
                # Each part on freshly started servers: a heap grown by
                # 10,000 sessions slows some servers down long after
                # (Prosody's message rate fell to a sixth).
                if "idle" in args.metrics:
                    col.a.start()
                    try:
                        measure_idle(args, col)
                    finally:
                        col.a.stop()
                if not rest:
                    continue
                col.a.start()
                try:
                    if s2s:
                        col.b.start()
                    for m in rest:
                        if m == "logins":
                            measure_logins(args, col)
                        elif m == "latency":
                            measure_latency(args, col)
                        else:
                            measure_msgs(args, col, m)
                finally:
                    if col.b:
                        col.b.stop()
                    col.a.stop()
        log("")
        log(f"medians of {args.runs} interleaved run(s); (×) = ratio to the best peer "
            f"({'/'.join(c.name for c in columns if c.kind != 'fedgate')}); "
            f"TLS 1.3 TLS_AES_256_GCM_SHA384, ECDSA P-256, SCRAM-SHA-1, STARTTLS required")
        log(table(args, columns, sink))
        log(f"compare: {time.time() - t_start:.0f} s")
        ok = True
    finally:
        for col in columns:
            for s in (col.a, col.b):
                if s is not None:
                    s.stop()
        dns.stop()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"compare: the run failed; its files are kept in {root}")


if __name__ == "__main__":
    main()
