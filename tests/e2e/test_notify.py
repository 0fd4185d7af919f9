"""The systemd notification protocol (issue 12), over a socket the test
makes, since systemd is not PID 1 here: the daemon started with
NOTIFY_SOCKET sends READY=1 (with a STATUS= line of stream counts) once it
serves, RELOADING=1 with MONOTONIC_USEC= then READY=1 around a reload,
STOPPING=1 when it shuts down, and WATCHDOG=1 every half of WATCHDOG_USEC;
a watchdog meant for another process (WATCHDOG_PID) is ignored."""
import os
import signal
import socket
import subprocess
import tempfile
import time

from fgtest import FEDGATE, Fedgate, Peer


class Manager:
    """The service manager's end: a datagram socket, by path or abstract."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"fgtest-notify-{os.getpid()}-{time.time_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="fgtest-notify-")
            self.address = os.path.join(self.dir, "notify.sock")
            self.sock.bind(self.address)
        self.messages = []

    def next(self, timeout=10):
        """The next message as a dict of its assignments."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        assert data.endswith("\n"), repr(data)
        fields = dict(line.split("=", 1) for line in data.splitlines())
        self.messages.append(fields)
        return fields

    def until(self, key, timeout=10):
        """Skips messages (status ticks) until one carries key."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.next(deadline - time.time())
            if key in m:
                return m
        raise AssertionError(f"no {key} in {self.messages}")


def serve(fg, extra_env):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.update(extra_env)
    fg.log = open(fg.log_path, "w")
    fg.proc = subprocess.Popen([FEDGATE, "serve", "-c", fg.conf], stdout=fg.log,
                               stderr=subprocess.STDOUT, env=env)
    return fg


def test_ready_reloading_stopping_and_the_watchdog():
    mgr = Manager()
    fg = serve(Fedgate("contoso.test"), {"NOTIFY_SOCKET": mgr.address,
                                         "WATCHDOG_USEC": "600000"})
    try:
        m = mgr.next()
        # READY only once the daemon serves: the port answers at once.
        assert m.get("READY") == "1", m
        assert "ready: serving" in fg.read_log()
        assert "STATUS" in m and "0 client" in m["STATUS"], m
        p = Peer()
        p.open(to="contoso.test")
        assert p.wait_header() is not None
        # The keep-alive comes every half of the watchdog period or sooner,
        # and the status it carries counts the open stream.
        t0 = time.time()
        w = mgr.until("WATCHDOG")
        assert w["WATCHDOG"] == "1"
        w2 = mgr.until("WATCHDOG")
        assert time.time() - t0 < 1.5, time.time() - t0
        assert "1 inbound s2s" in w2.get("STATUS", ""), w2
        # A reload: RELOADING=1 with the monotonic clock, then READY=1.
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        fg.proc.send_signal(signal.SIGHUP)
        r = mgr.until("RELOADING")
        assert r["RELOADING"] == "1"
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert before <= int(r["MONOTONIC_USEC"]) <= after, (before, r, after)
        m = mgr.until("READY")
        assert m["READY"] == "1" and "reloaded" in m.get("STATUS", ""), m
        # A reload refused for errors still ends with READY=1 (the daemon
        # serves on), and its STATUS says so.
        with open(fg.conf, "a") as f:
            f.write("\n[limits]\nno_such_key = 1\n")
        fg.proc.send_signal(signal.SIGHUP)
        mgr.until("RELOADING")
        m = mgr.until("READY")
        assert "refused" in m.get("STATUS", ""), m
        # Stopping.
        fg.proc.send_signal(signal.SIGTERM)
        m = mgr.until("STOPPING")
        assert m["STOPPING"] == "1", m
        assert fg.proc.wait(timeout=15) == 0
        fg.proc = None
        fg.log.close()
        p.close()
    finally:
        fg.stop()


def test_abstract_socket_and_a_watchdog_for_another_pid():
    mgr = Manager(abstract=True)
    fg = serve(Fedgate("contoso.test"), {"NOTIFY_SOCKET": mgr.address,
                                         "WATCHDOG_USEC": "200000",
                                         "WATCHDOG_PID": "1"})
    try:
        assert mgr.next().get("READY") == "1"
        # No keep-alive: the watchdog was meant for pid 1. (Status ticks
        # come every 10 s, so none arrives in this second either.)
        mgr.sock.settimeout(1.0)
        try:
            data = mgr.sock.recv(4096).decode()
        except socket.timeout:
            data = ""
        assert "WATCHDOG" not in data, data
        # `fedgate stop` sends STOPPING=1 too.
        r = fg.cli("stop")
        assert r.returncode == 0, r.stderr
        assert mgr.until("STOPPING")["STOPPING"] == "1"
        fg.proc.wait(timeout=15)
        assert fg.proc.returncode == 0
        fg.proc = None
        fg.log.close()
    finally:
        fg.stop()


def test_without_a_manager_nothing_changes():
    """No NOTIFY_SOCKET (a plain start, as in every other test): the daemon
    serves and logs no notification warning."""
    fg = Fedgate("contoso.test").start()
    try:
        assert "notify" not in fg.read_log(), fg.read_log()
    finally:
        fg.stop()
