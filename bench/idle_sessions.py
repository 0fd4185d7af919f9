"""Memory per idle authenticated TLS client session, and memory returned
after they close: opens FG_IDLE_N (default 2000) c2s sessions to a real
fedgate (STARTTLS, PLAIN, bind), lets them sit, reads the daemon's RSS,
closes them and reads it again. Prints figures only; asserts nothing
about them. Run inside tests/e2e/netns.sh with FEDGATE set (make bench)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from c2sclient import Client  # noqa: E402
from fgtest import Fedgate, metrics  # noqa: E402

N = int(os.environ.get("FG_IDLE_N", "2000"))
# FG_IDLE_SM=1: each session also enables XEP-0198 stream management with
# resumption (and closes with </stream:stream>, so nothing hibernates).
SM = os.environ.get("FG_IDLE_SM") == "1"
PASSWORD = "alice's long password"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid, seconds=2.0):
    time.sleep(seconds)
    return rss_kib(pid)


def main():
    fg = Fedgate(extra={"limits": {"connections_per_ip": "100000",
                                   "preauth_streams_per_ip": "100000",
                                   "preauth_streams": "100000"}})
    r = fg.cli("user", "add", "alice@contoso.test", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = fg.cli("admin", "add", "mon", "--role", "viewer", input="mon's long password\n")
    assert r.returncode == 0, r.stderr
    fg.start()
    pid = fg.proc.pid
    try:
        base = settle(pid, 1.0)
        clients = []
        t0 = time.time()
        for i in range(N):
            c = Client()
            c.login("alice", PASSWORD, resource=f"idle{i}")
            if SM:
                c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
                assert c.next_element().tag == "{urn:xmpp:sm:3}enabled"
            clients.append(c)
        opened = time.time() - t0
        busy = settle(pid)
        # Streams silent for a whole doze period (10 s) free their XML
        # parsers at the next one: give them two.
        peak = settle(pid, float(os.environ.get("FG_DOZE_WAIT", "22")))
        per = (peak - base) / N
        dozed = metrics(fg).get("dozed", 0)
        for c in clients:
            if SM:
                c.send("</stream:stream>")
            c.close()
        clients.clear()
        # memtrim.c looks every 10 s: give it one look.
        after = settle(pid, float(os.environ.get("FG_SETTLE", "12")))
        print(f"idle TLS c2s sessions{' with stream management' if SM else ''}: "
              f"{N} opened in {opened:.1f} s")
        print(f"fedgate RSS: {base} KiB at start, {peak} KiB with {N} sessions, "
              f"{after} KiB after they closed")
        print(f"RSS per session just after login: {(busy - base) / N:.1f} KiB")
        print(f"RSS per idle session: {per:.1f} KiB ({dozed} streams gave their parser back)")
        grown = (after - base) / base * 100 if base else 0.0
        print(f"RSS after closing: {grown:+.0f}% of the start "
              f"({(after - base) / max(peak - base, 1) * 100:.0f}% of what the sessions took "
              f"still held)")
    finally:
        fg.stop()


if __name__ == "__main__":
    main()
