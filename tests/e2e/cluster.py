"""The cluster bed (issue 17): one domain, contoso.test, served by several
fedgate nodes that share a PostgreSQL store and talk through Redis, both
started by the test, with the federation bed's DNS and Prosody around them.

  PostgreSQL   initdb into a temporary folder as the `postgres` OS user
               (initdb refuses root), trust authentication, listening on
               PG_ADDR:5432 and on a unix socket in that folder; database
               "fedgate". stop()/start() for a test that takes it away.
               The nodes' dsn names it host=PG_NAME (the bed's DNS), as
               the README's dsn does, so each (re)connect looks it up.
  Redis        redis-server on REDIS_ADDR:6379 without persistence;
               stop()/start() again on the same port.
  DNS          n1.contoso.test .. nN.contoso.test on NODE_ADDRS, and
               _xmpp-client/_xmpp-server SRV records for contoso.test
               pointing at every node; fabrikam.test at BED_PROSODY_ADDR.
  nodes        fedgate n1..nN, each on its own address, [store] backend =
               postgresql and [cluster] node/redis set, all showing the
               same certificate for contoso.test (from the bed's CA).
  Prosody      fabrikam.test, a partner of contoso.test.

Everything runs on loopback inside the test's network namespace
(tests/e2e/netns.sh) and is stopped by the Daemons that made it, the last
made first, even when the test fails.

    c = ClusterBed(daemons, users={"alice@contoso.test": "pw"},
                   remote_users={"bob@fabrikam.test": "pw"}).start()
    c.nodes[0].cli("status")  # n1
"""
import glob
import os
import shutil
import subprocess
import tempfile
import time

from bed import Bed, stop_process, wait_port
from conftest import BED_PROSODY_ADDR
from fgtest import Fedgate

# Each node of contoso.test listens on its own loopback address.
NODE_ADDRS = ("127.0.0.21", "127.0.0.22", "127.0.0.23")
PG_ADDR = "127.0.0.31"
PG_NAME = "db.contoso.test"
PG_PORT = 5432
REDIS_ADDR = "127.0.0.32"
REDIS_PORT = 6379


def pg_bin():
    """The newest installed PostgreSQL's server programs (Debian keeps them
    out of PATH, in /usr/lib/postgresql/VERSION/bin)."""
    dirs = glob.glob("/usr/lib/postgresql/*/bin")
    if not dirs:
        raise RuntimeError("no /usr/lib/postgresql/*/bin: install Debian's postgresql")
    return max(dirs, key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)


def _as_postgres(*args):
    r = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


class _Server:
    """A server the test started in a folder of its own (root, its log at
    log): removed with that folder, whatever stop() finds."""

    def remove(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def read_log(self):
        return open(self.log).read() if os.path.exists(self.log) else ""


class Postgres(_Server):
    """A throwaway PostgreSQL cluster; dsn is what a node's [store] dsn
    takes (no password: trust authentication on loopback)."""

    def __init__(self, addr=PG_ADDR, port=PG_PORT, dbname="fedgate"):
        self.addr, self.port, self.dbname = addr, port, dbname
        self.bin = pg_bin()
        self.root = tempfile.mkdtemp(prefix="fgpg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "postgresql.log")
        shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)
        self.dsn = f"host={addr} port={port} dbname={dbname} user=postgres connect_timeout=5"
        # The same by a DNS name the test serves (PG_NAME on PG_ADDR).
        self.dsn_named = self.dsn.replace(f"host={addr} ", f"host={PG_NAME} ")
        self.running = False
        self.made = False

    def start(self):
        if not self.made:
            _as_postgres(os.path.join(self.bin, "initdb"), "-D", self.data, "--auth=trust",
                         "-U", "postgres", "-E", "UTF8", "--no-sync")
            self.made = True
        # fsync off: a test's database need not survive the machine.
        opts = (f"-c listen_addresses={self.addr} -p {self.port} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-w",
                     "-t", "60", "-o", opts, "start")
        self.running = True
        wait_port(self.addr, self.port, log=self.log)
        if not getattr(self, "db_made", False):
            _as_postgres(os.path.join(self.bin, "createdb"), "-h", self.root, "-p",
                         str(self.port), self.dbname)
            self.db_made = True
        return self

    def psql(self, sql):
        """Runs sql with psql over the unix socket; returns its stdout
        (unaligned, tuples only)."""
        return _as_postgres("psql", "-h", self.root, "-p", str(self.port), "-d", self.dbname,
                            "-v", "ON_ERROR_STOP=1", "-At", "-c", sql).stdout

    def stop(self, mode="fast"):
        """Stops the server (mode: smart, fast or immediate); the data
        stays for start() until remove()."""
        if self.running:
            self.running = False
            _as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", mode, "-w",
                         "stop")


class Redis(_Server):
    """redis-server on addr:port, nothing persisted; stop() and start()
    again keep the port, so nodes reconnect to the same address."""

    def __init__(self, addr=REDIS_ADDR, port=REDIS_PORT):
        self.addr, self.port = addr, port
        self.root = tempfile.mkdtemp(prefix="fgredis-")
        self.log = os.path.join(self.root, "redis.log")
        self.proc = None

    @property
    def target(self):
        """What a node's [cluster] redis takes."""
        return f"{self.addr}:{self.port}"

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "redis already running"
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", self.addr, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.root, "--logfile", self.log,
             "--daemonize", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.addr, self.port, proc=self.proc, log=self.log)
        return self

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-h", self.addr, "-p", str(self.port), *args],
                           capture_output=True, text=True, timeout=30)
        return r.stdout

    def stop(self):
        stop_process(self.proc)


class _Removed:
    """Puts remove() where Daemons.stop() calls stop()."""

    def __init__(self, thing):
        self.thing = thing

    def stop(self):
        self.thing.remove()


class ClusterBed:
    """PostgreSQL, Redis, DNS, Prosody (fabrikam.test) and the nodes of
    contoso.test, made with daemons (conftest.Daemons), which stops them.

    users {jid: password}, admins {name: (role, password)} and partners
    (as Daemons.fedgate takes them, default fabrikam.test) are created once through n1's CLI: the store is
    shared. extra {section: {key: value}} goes into every node's
    configuration; node_extra[i] into node i's only. Nothing runs before
    start()."""

    def __init__(self, daemons, users=None, remote_users=None, partners=("fabrikam.test",),
                 gateway=(), admins=None, nodes=3, extra=None, node_extra=None, prosody=True,
                 prosody_kw=None):
        assert 1 <= nodes <= len(NODE_ADDRS)
        self.daemons = daemons
        self.users = users or {}
        self.admins = admins or {}
        self.remote_users = remote_users or {}
        self.partners = partners
        self.gateway = gateway
        self.addrs = NODE_ADDRS[:nodes]
        self.names = [f"n{i + 1}" for i in range(nodes)]
        self.pg = Postgres()
        self.redis = Redis()
        self.bed = Bed()
        self.prosody = None
        self.nodes = []
        # Daemons stops the last made first: nodes, then Prosody and DNS,
        # then Redis, then PostgreSQL (a node's store may still be closing).
        daemons.made.append(_Removed(self.pg))
        daemons.made.append(_Removed(self.redis))
        daemons.made.append(self.bed)
        dns = self.bed.dns
        dns.add_a("fabrikam.test", BED_PROSODY_ADDR)
        dns.add_srv("_xmpp-server._tcp.fabrikam.test", "fabrikam.test", 5269)
        dns.add_a(PG_NAME, self.pg.addr)
        for name, addr in zip(self.names, self.addrs):
            host = f"{name}.contoso.test"
            dns.add_a(host, addr)
            dns.add_srv("_xmpp-server._tcp.contoso.test", host, 5269)
            dns.add_srv("_xmpp-client._tcp.contoso.test", host, 5222)
        self.want_prosody = prosody
        self.prosody_kw = prosody_kw or {}
        # One certificate for contoso.test, shown by every node.
        self.cert, self.key = self.bed.ca.issue("contoso.test", ["contoso.test"])
        for i, (name, addr) in enumerate(zip(self.names, self.addrs)):
            conf = {"store": {"backend": "postgresql", "dsn": self.pg.dsn_named},
                    "cluster": {"node": name, "redis": self.redis.target}}
            for more in (extra or {}), (node_extra or {}).get(i, {}):
                for section, lines in more.items():
                    conf.setdefault(section, {}).update(lines)
            fg = Fedgate(addr=addr, extra=conf)
            fg.name = name
            fg.metrics_base = f"http://{addr}:5280"
            shutil.copy(self.cert, fg.cert)
            shutil.copy(self.key, os.path.join(fg.dir, "certs", "contoso.test.key"))
            text = open(fg.conf).read().replace("\nca_file =\n",
                                                f"\nca_file = {self.bed.ca.cert}\n")
            with open(fg.conf, "w") as f:
                f.write(text)
            self.nodes.append(fg)
            daemons.made.append(fg)

    def start(self, nodes=True):
        """Starts PostgreSQL, Redis, DNS, Prosody; creates users and
        partners through n1's CLI; starts every node (nodes=False: none)."""
        self.pg.start()
        self.redis.start()
        self.bed.dns.start()
        if self.want_prosody:
            self.prosody = self.bed.prosody("fabrikam", BED_PROSODY_ADDR, ["fabrikam.test"],
                                            **self.prosody_kw)
            for jid, password in self.remote_users.items():
                user, host = jid.split("@")
                self.prosody.register(user, host, password)
            self.prosody.start()
        n1 = self.nodes[0]
        for jid, password in self.users.items():
            self.check(n1.cli("user", "add", jid, input=password + "\n"))
        for name, (role, password) in self.admins.items():
            self.check(n1.cli("admin", "add", name, "--role", role, input=password + "\n"))
        for partner in self.partners:
            domain, *args = (partner,) if isinstance(partner, str) else partner
            self.check(n1.cli("partner", "new", "--domain", domain, *args))
        if self.gateway:
            self.check(n1.cli("gateway", "set", *self.gateway))
        if nodes:
            for fg in self.nodes:
                fg.start()
        return self

    @staticmethod
    def check(r):
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    def node(self, name):
        return self.nodes[self.names.index(name)]

    def kill(self, fg):
        """kill -9 of one node; its log stays readable."""
        fg.proc.kill()
        fg.proc.wait(timeout=10)
        fg.proc = None
        fg.log.close()

    def logs(self):
        """Every node's log, for an assertion message."""
        return "\n".join(f"==== {fg.name} ====\n{fg.read_log()}" for fg in self.nodes)


def wait_until(pred, timeout=10, step=0.05):
    """Polls pred() until it returns something true; returns it (or the
    last false value after timeout). Not a timed assertion: the caller
    asserts on what happened, the timeout only bounds the wait."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)
