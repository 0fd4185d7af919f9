"""Server CPU per inbound server-to-server login, full and resumed with a
session ticket ([tls] session_tickets): FG_S2S_N (default 300) partner
streams each way, each STARTTLS with the partner's certificate and SASL
EXTERNAL (XEP-0178) to success, then a clean close; the daemon's
user+system CPU read from /proc before and after. Prints figures only.
Run inside tests/e2e/netns.sh with FEDGATE set (make bench)."""
import os
import re
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from fgtest import NS_TLS, Fedgate, Peer  # noqa: E402

N = int(os.environ.get("FG_S2S_N", "300"))
TICK = os.sysconf("SC_CLK_TCK")
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def login(addr, ctx, session):
    """One partner stream from fabrikam.test to SASL EXTERNAL's success."""
    p = Peer(host=addr)
    p.open(frm="fabrikam.test")
    p.features()
    p.send(f"<starttls xmlns='{NS_TLS}'/>")
    assert p.next_element().tag == f"{{{NS_TLS}}}proceed"
    p.sock.settimeout(10)
    p.sock = ctx.wrap_socket(p.sock, server_hostname="contoso.test", session=session)
    p.reset_parser()
    p.open(frm="fabrikam.test")
    p.features()
    p.send(f"<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>=</auth>")
    el = p.next_element()
    assert el.tag == f"{{{NS_SASL}}}success", el
    resumed, s = p.sock.session_reused, p.sock.session
    try:
        p.send("</stream:stream>")
        p.sock.unwrap()
    except (OSError, ssl.SSLError):
        pass
    p.close()
    return resumed, s


def main():
    # fabrikam.test's certificate (self-signed by `fedgate init`) is the
    # trust anchor contoso.test checks it against, as a partner's CA would be.
    partner = Fedgate(domain="fabrikam.test", addr="127.0.0.2")
    fg = Fedgate(extra={"limits": {"connections_per_ip": "100000",
                                   "preauth_streams_per_ip": "100000"}})
    text = re.sub(r"(?m)^ca_file =.*$", f"ca_file = {partner.cert}", open(fg.conf).read())
    with open(fg.conf, "w") as f:
        f.write(text)
    r = fg.cli("partner", "new", "--domain", "fabrikam.test")
    assert r.returncode == 0, r.stderr
    r = fg.cli("gateway", "set", "--connection-limit", "10000")
    assert r.returncode == 0, r.stderr
    fg.start()
    pid = fg.proc.pid
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(partner.cert, partner.cert.replace(".pem", ".key"))
        results = {}
        for kind in ("full", "resumed"):
            session = None
            if kind == "resumed":
                _, session = login(fg.addr, ctx, None)
            t0, c0 = time.time(), cpu_s(pid)
            reused = 0
            for _ in range(N):
                r, s = login(fg.addr, ctx, session)
                reused += r
                if kind == "resumed":
                    session = s
            results[kind] = ((cpu_s(pid) - c0) * 1000 / N, N / (time.time() - t0), reused)
        for kind, (ms, rate, reused) in results.items():
            print(f"s2s logins (STARTTLS + SASL EXTERNAL), {kind:7s}: {ms:.3f} ms server CPU "
                  f"each, {rate:.0f}/s from one partner, {reused} of {N} resumed")
        full, res = results["full"][0], results["resumed"][0]
        if res > 0:
            print(f"a resumed s2s login costs the server {res / full * 100:.0f}% of a full one")
    finally:
        fg.stop()


if __name__ == "__main__":
    main()
