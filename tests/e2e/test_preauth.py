"""Streams that never authenticate cannot use up the limits (issue 11,
part 2). A partner's connection limit and the gateway's count
authenticated streams only; streams not authenticated yet have their own
caps per address ([limits] preauth_streams_per_ip) and in all
([limits] preauth_streams), where a newcomer makes the oldest make room.
The real partner is a Prosody of the bed; its user (slixmpp) and a local
user (a raw client) must still reach each other while the flood holds."""
import asyncio
import resource
import socket
import time

import pytest

from c2sclient import Client
from clients import User, run
from conftest import BED_FEDGATE_ADDR as FG

PROSODY = "127.0.0.12"
ALICE_PW = "alice-secret-1"


def world(daemons, **limits):
    bed = daemons.bed({"fabrikam.test": PROSODY},
                      srv=[("_xmpp-server._tcp.fabrikam.test", "fabrikam.test", 5269),
                           ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)])
    daemons.prosody(bed, "fabrikam", PROSODY, ["fabrikam.test"],
                    users={"bob@fabrikam.test": "bobpass"})
    fg = daemons.fedgate(bed=bed, partners=[("fabrikam.test", "--partner-type", "federated")],
                         users={"alice@contoso.test": ALICE_PW},
                         extra={"limits": limits} if limits else None).start()
    return bed, fg


def header_only(src, port, frm=None, ns="jabber:server"):
    """A connection from src that sends a stream header and nothing more."""
    s = socket.create_connection((FG, port), timeout=10, source_address=(src, 0))
    attr = f" from='{frm}'" if frm else ""
    s.sendall(f"<?xml version='1.0'?><stream:stream xmlns='{ns}' "
              "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"
              f" to='contoso.test'{attr} version='1.0'>".encode())
    return s


def exchange(bed, alice, alice_first=False):
    """bob (on Prosody) writes to alice and alice to bob (in that order,
    or alice first); returns what each received, or None."""

    async def from_bob(bob):
        bob.send_message(mto="alice@contoso.test/raw", mbody="from bob", mtype="chat")
        deadline = time.time() + 15
        while time.time() < deadline:
            el = await asyncio.get_running_loop().run_in_executor(None, alice.next_element, 1)
            if el is not None and el != "close" and el.tag.endswith("message"):
                return el
        return None

    async def from_alice(bob):
        alice.send("<message to='bob@fabrikam.test' type='chat' id='a1'>"
                   "<body>from alice</body></message>")
        try:
            return await asyncio.wait_for(bob.inbox.get(), 15)
        except asyncio.TimeoutError:
            return None

    async def scenario():
        bob = User("bob@fabrikam.test/desk", "bobpass", bed.ca.cert)
        bob.connect((PROSODY, 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        if alice_first:
            back = await from_alice(bob)
            got = await from_bob(bob)
        else:
            got = await from_bob(bob)
            back = await from_alice(bob)
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return got, back

    return run(scenario())


def body(el):
    b = el.find("{jabber:client}body") if el is not None else None
    return b.text if b is not None else None


def test_header_only_streams_do_not_use_up_a_partners_limit(daemons):
    """19 streams that only name fabrikam.test in their header used to
    leave the real fabrikam.test (20 streams allowed) with
    policy-violation."""
    bed, fg = world(daemons, preauth_streams_per_ip="64")
    fakes = [header_only("127.0.0.21", 5269, frm="fabrikam.test") for _ in range(19)]
    alice = Client(host=FG)
    alice.login("alice", ALICE_PW)
    got, back = exchange(bed, alice)
    log = fg.read_log()
    for s in fakes:
        s.close()
    assert "the limit of streams with partner fabrikam.test" not in log
    assert body(got) == "from bob", log
    assert back is not None and back["body"] == "from alice"


@pytest.mark.parametrize("which, command, words", [
    ("partner", ("partner", "set", "fabrikam.test", "--connection-limit", "1"),
     r"the limit of streams with partner fabrikam\.test \(1\) is reached"),
    ("gateway", ("gateway", "set", "--connection-limit", "1", "--partner-connection-limit", "1"),
     r"this gateway's limit of server-to-server streams \(1\) is reached"),
])
def test_limits_count_authenticated_streams(daemons, which, command, words):
    """With a partner's limit, or the gateway's, at 1, fedgate's own
    outbound stream to fabrikam.test uses it up, so Prosody's inbound
    stream is refused once it authenticates."""
    bed, fg = world(daemons)
    alice = Client(host=FG)
    alice.login("alice", ALICE_PW)
    assert fg.cli(*command).returncode == 0
    got, back = exchange(bed, alice, alice_first=True)
    assert back is not None and back["body"] == "from alice"  # ours went out
    fg.wait_log(r"sending stream error <policy-violation/>: " + words, timeout=20)
    assert got is None  # Prosody's stream was refused


def test_a_flood_of_idle_streams_keeps_no_one_out(daemons):
    """1000 header-only streams from 20 addresses, each under
    connections_per_ip: they used to fill the gateway-wide limit so that
    the real partner was refused and a local user's message got no
    answer. Now each address gets preauth_streams_per_ip of them and the
    oldest make room for newcomers past preauth_streams."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    bed, fg = world(daemons, preauth_streams="100")
    fakes, refused = [], 0
    for i in range(1000):
        try:
            fakes.append(header_only(f"127.5.0.{1 + i % 20}", 5269))
        except OSError:
            refused += 1
    # the same against client streams
    for i in range(200):
        fakes.append(header_only(f"127.6.0.{1 + i % 20}", 5222, ns="jabber:client"))
    alice = Client(host=FG)
    alice.login("alice", ALICE_PW)
    got, back = exchange(bed, alice)
    log = fg.read_log()
    rows = fg.cli_json("status")
    for s in fakes:
        s.close()
    assert body(got) == "from bob"
    assert back is not None and back["body"] == "from alice"
    assert "closed to make room: too many streams are not authenticated yet" in log
    assert "limit of server-to-server streams" not in log
    assert "limit of server-to-server streams" not in log
    waiting = [r for r in rows if r["state"] != "ready" and r["direction"] in ("in", "c2s")]
    assert len(waiting) <= 2 * 100 + 2, len(waiting)


def test_unauthenticated_streams_per_address(daemons):
    """One address gets preauth_streams_per_ip streams that have not
    authenticated; the next is refused, another address is not."""
    bed, fg = world(daemons, preauth_streams_per_ip="4")
    held = [header_only("127.7.0.1", 5269) for _ in range(4)]
    extra = header_only("127.7.0.1", 5269)
    other = header_only("127.7.0.2", 5269)
    extra.settimeout(5)
    data = b""
    while b"</stream:stream>" not in data:
        chunk = extra.recv(4096)
        if not chunk:
            break
        data += chunk
    assert b"<policy-violation" in data and b"not authenticated yet" in data, data
    fg.wait_log(r"127\.7\.0\.2:\d+: connected")
    assert "127.7.0.2" not in "".join(
        line for line in fg.read_log().splitlines() if "policy-violation" in line)
    for s in held + [extra, other]:
        s.close()
