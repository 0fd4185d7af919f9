"""Nothing exhausted by a recipient that does not read (issue 11, part 1):
a client that binds and never reads while another user floods it. The
sender is held (fedgate stops reading it) instead of fedgate buffering
without end; the stalled recipient is closed with resource-constraint
after [timeouts] stalled_output; what waited for it is stored offline or
bounced, so every message sent ends delivered, offline or bounced; memory
stays bounded and is given back."""
import json
import os
import signal
import socket
import threading
import time

import pytest

from c2sclient import Client
from fgtest import Counter, metrics, rss_kb, sanitized
from conftest import BED_FEDGATE_ADDR

USERS = {"alice": "alice-secret-1", "dave": "dave-secret-22"}
# messages of about 1 KB: 60 MB that old fedgate buffered (`make bench`
# runs the same with FG_FLOOD_N=400000 and the default stalled_output)
N = int(os.environ.get("FG_FLOOD_N", "60000"))
BODY = "x" * 1000
STALL_S = int(os.environ.get("FG_STALL_S", "4"))


def status_row(fg, jid):
    for row in fg.cli_json("status"):
        if row.get("direction") == "c2s" and row.get("remote") == jid:
            return row
    return None


@pytest.fixture
def fg(daemons):
    return daemons.fedgate(extra={"timeouts": {"stalled_output": f"{STALL_S}s"},
                                  "c2s": {"auth_failures": "1000"}},
                           users={f"{u}@contoso.test": pw for u, pw in USERS.items()},
                           admins={"mon": ("viewer", "monitoring password")}).start()


def test_flood_to_a_client_that_never_reads(fg):
    base = rss_kb(fg.proc.pid)
    alice = Client()
    alice_jid = alice.login("alice", USERS["alice"], resource="slow")
    # alice never reads another byte, and shrinks her window so the kernel
    # does not read for her either
    alice.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    dave = Client()
    dave.login("dave", USERS["dave"], resource="flood")
    counter = Counter(dave.sock)

    sent = [0]
    done = threading.Event()

    def flood():
        dave.sock.settimeout(None)
        try:
            for i in range(N):
                dave.sock.sendall(f"<message to='{alice_jid}' type='chat' id='m{i}'>"
                                  f"<body>{BODY}</body></message>".encode())
                sent[0] += 1
        except OSError:
            pass
        done.set()

    threading.Thread(target=flood, daemon=True).start()

    # The sender is held: its count stops growing long before N while
    # alice reads nothing, and status says so.
    peak = base
    deadline = time.time() + STALL_S - 1
    held_row = None
    while time.time() < deadline:
        peak = max(peak, rss_kb(fg.proc.pid))
        row = status_row(fg, "dave@contoso.test")
        if row and row.get("reading") == "held":
            held_row = row
        time.sleep(0.2)
    stalled_at = sent[0]
    assert stalled_at < N / 2, f"the sender was never slowed: {stalled_at} of {N} sent"
    assert held_row is not None, "dave's stream was never shown as held"
    alice_row = status_row(fg, "alice@contoso.test")
    assert alice_row is not None and alice_row["output_pending"] <= 1024 * 1024 + 4096, alice_row

    # alice is closed for not reading; dave goes on, and what waited for
    # alice or came later is kept offline (100) or bounced to dave.
    fg.wait_log(r"stream error <resource-constraint/>: nothing was read for "
                rf"{STALL_S} seconds", timeout=STALL_S + 10)
    assert done.wait(180), f"the flood never finished: {sent[0]} of {N} sent"
    deadline = time.time() + 60
    while time.time() < deadline:
        peak = max(peak, rss_kb(fg.proc.pid))
        m = metrics(fg)
        if m.get("bounced", 0) == counter.errors and \
                m.get("offline", 0) + m.get("bounced", 0) + \
                (m.get("delivered", 0) - counter.errors) >= N:
            break
        time.sleep(0.5)
    m = metrics(fg)
    # every message: written to alice's connection before she stalled,
    # stored offline, or answered to dave; each bounce reached dave
    to_alice = m["delivered"] - counter.errors
    assert counter.errors == m["bounced"], (counter.errors, m)
    assert to_alice + m["offline"] + m["bounced"] == N, m
    assert m["offline"] == 100, m  # [users] offline_limit
    assert m["dropped"] == 0, m
    dave.sock.close()
    alice.sock.close()
    time.sleep(2)
    after = rss_kb(fg.proc.pid)
    print(f"\nRSS before {base} kB, peak {peak} kB, after {after} kB; "
          f"{to_alice} written to alice, {m['offline']} offline, {m['bounced']} bounced")
    # old fedgate: hundreds of MB for this flood, and kept after (the
    # figures are only printed for the ASan build)
    if not sanitized():
        assert peak - base < 40 * 1024, (base, peak)
        assert after - base < 10 * 1024, (base, after)


class Alice(Client):
    """A raw client of the bed's fedgate."""

    def __init__(self):
        super().__init__(host=BED_FEDGATE_ADDR)


def route_row(fg, remote):
    for row in fg.cli_json("status"):
        if row.get("direction") in ("out", "route") and row.get("remote") == remote:
            return row
    return None


def test_partner_that_stops_reading(daemons):
    """A real Prosody stopped (SIGSTOP) while a local user floods one of its
    users: the route's queue stays within output_queue, the sender is held,
    the stream fails after stalled_output with what waited bounced
    (remote-server-timeout), and once Prosody runs again every message has
    been written to it or bounced."""
    n = 20000
    bed = daemons.bed({"fabrikam.test": "127.0.0.12"},
                      srv=[("_xmpp-server._tcp.fabrikam.test", "fabrikam.test", 5269),
                           ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)])
    prosody = daemons.prosody(bed, "fabrikam", "127.0.0.12", ["fabrikam.test"],
                              users={"bob@fabrikam.test": "bobpass"})
    fg = daemons.fedgate(bed=bed, partners=["fabrikam.test"],
                         extra={"timeouts": {"stalled_output": f"{STALL_S}s"},
                                "c2s": {"auth_failures": "1000"}},
                         users={"alice@contoso.test": USERS["alice"]},
                         admins={"mon": ("viewer", "monitoring password")}).start()
    fg.metrics_base = f"http://{BED_FEDGATE_ADDR}:5280"
    alice = Alice()
    alice.login("alice", USERS["alice"], resource="flood")
    alice.send("<message to='bob@fabrikam.test' type='headline' id='first'><body>hi</body>"
               "</message>")
    deadline = time.time() + 20
    while time.time() < deadline:
        row = route_row(fg, "fabrikam.test")
        if row and row.get("state") == "ready":
            break
        time.sleep(0.2)
    assert row and row.get("state") == "ready", row
    counter = Counter(alice.sock)
    base = rss_kb(fg.proc.pid)
    os.kill(prosody.proc.pid, signal.SIGSTOP)
    try:
        sent = [0]
        done = threading.Event()

        def flood():
            alice.sock.settimeout(None)
            for i in range(n):
                alice.sock.sendall(f"<message to='bob@fabrikam.test' type='headline' "
                                   f"id='m{i}'><body>{BODY}</body></message>".encode())
                sent[0] += 1
            done.set()

        threading.Thread(target=flood, daemon=True).start()
        fg.wait_log(r"fabrikam\.test read nothing for \d+ seconds while \d+ bytes waited",
                    timeout=60)
        held = status_row(fg, "alice@contoso.test")
        peak = rss_kb(fg.proc.pid)
        assert sent[0] < n, "the sender was never held"
        assert counter.errors > 0 or fg.read_log().count("undeliverable stanza") > 0
        row = route_row(fg, "fabrikam.test")
        assert "read nothing for" in json.dumps(row), row
    finally:
        os.kill(prosody.proc.pid, signal.SIGCONT)
    assert done.wait(120), f"the flood never finished: {sent[0]} of {n}"
    deadline = time.time() + 90
    while time.time() < deadline:
        m = metrics(fg)
        if m.get("bounced", 0) == counter.errors and \
                m.get("delivered", 0) - counter.errors + m.get("bounced", 0) >= n + 1:
            break
        time.sleep(0.5)
    m = metrics(fg)
    assert counter.errors == m["bounced"], (counter.errors, m)
    assert m["delivered"] - counter.errors + m["bounced"] == n + 1, m
    assert m["dropped"] == 0, m
    assert "remote-server-timeout" in fg.read_log() or counter.timeouts > 0
    print(f"\nheld: {held and held.get('reading')}; RSS before {base} kB, peak {peak} kB; "
          f"{m['bounced']} bounced, {m['delivered'] - counter.errors} written to Prosody")
    if not sanitized():
        assert peak - base < 40 * 1024, (base, peak)


def test_http_client_that_never_reads(fg):
    """The admin listener answers one request at a time per connection and
    writes the next answer only when the last one is gone: a client that
    pipelines 5000 requests for /metrics and never reads costs fedgate one
    answer's worth of memory, and other clients are served meanwhile."""
    import urllib.request
    metrics(fg)  # makes the token
    base = rss_kb(fg.proc.pid)
    s = socket.create_connection(("127.0.0.1", 5280), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = (f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: Bearer {fg.mon_token}\r\n\r\n").encode()
    sent = 0
    s.settimeout(2)
    try:
        for _ in range(5000):
            s.sendall(req)
            sent += 1
    except (socket.timeout, OSError):
        pass
    time.sleep(1)
    peak = rss_kb(fg.proc.pid)
    # another client still gets its answer
    other = urllib.request.Request("http://127.0.0.1:5280/metrics",
                                   headers={"Authorization": f"Bearer {fg.mon_token}"})
    assert urllib.request.urlopen(other, timeout=10).status == 200
    s.close()
    print(f"\n{sent} requests pipelined; RSS before {base} kB, with them {peak} kB")
    if not sanitized():
        assert peak - base < 8 * 1024, (base, peak)
