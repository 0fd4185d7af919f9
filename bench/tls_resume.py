"""Server CPU per client TLS handshake, full and resumed with a session
ticket ([tls] session_tickets): FG_TLS_N (default 500) STARTTLS
handshakes on client streams each way, the daemon's user+system CPU read
from /proc before and after; then bench/s2s_resume.py, the same for
partner streams. Prints figures only. Run inside
tests/e2e/netns.sh with FEDGATE set (make bench)."""
import os
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from c2sclient import Client  # noqa: E402
from fgtest import Fedgate  # noqa: E402

N = int(os.environ.get("FG_TLS_N", "500"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def handshake(ctx, session):
    c = Client()
    c.begin_with(ctx, session)  # the ticket comes with the records after Finished
    resumed, s = c.sock.session_reused, c.sock.session
    try:
        c.sock.unwrap()
    except (OSError, ssl.SSLError):
        pass
    c.close()
    return resumed, s


def main():
    fg = Fedgate(extra={"limits": {"connections_per_ip": "100000",
                                   "preauth_streams_per_ip": "100000"}})
    fg.start()
    pid = fg.proc.pid
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(fg.cert)
        results = {}
        for kind in ("full", "resumed"):
            session = None
            if kind == "resumed":
                _, session = handshake(ctx, None)
            t0, c0 = time.time(), cpu_s(pid)
            reused = 0
            for _ in range(N):
                r, s = handshake(ctx, session)
                reused += r
                if kind == "resumed":
                    session = s
            results[kind] = ((cpu_s(pid) - c0) * 1000 / N, N / (time.time() - t0), reused)
        for kind, (ms, rate, reused) in results.items():
            print(f"TLS handshakes, {kind:7s}: {ms:.3f} ms server CPU each, {rate:.0f}/s "
                  f"from one client, {reused} of {N} resumed")
        full, res = results["full"][0], results["resumed"][0]
        if res > 0:
            print(f"a resumed handshake costs the server {res / full * 100:.0f}% of a full one")
    finally:
        fg.stop()


if __name__ == "__main__":
    main()
    # The same for partner streams (STARTTLS + SASL EXTERNAL).
    import s2s_resume  # noqa: E402
    s2s_resume.main()
