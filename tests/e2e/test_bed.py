"""The federation test bed itself: the DNS server answers A and SRV records
for the test domains, and a real Prosody serves fabrikam.test and
corp.fabrikam.test to real XMPP clients (slixmpp) over STARTTLS with
certificates of the bed's CA; a second Prosody, litware.test, federates
with it through the bed's DNS server. Federation tests build on this."""
import asyncio
import socket

import pytest

from bed import query_srv
from clients import User, run


@pytest.fixture(scope="module")
def bed(module_daemons):
    b = module_daemons.bed(
        {"fabrikam.test": "127.0.0.12", "corp.fabrikam.test": "127.0.0.12",
         "xmpp.fabrikam.test": "127.0.0.12",
         "litware.test": "127.0.0.13"},  # no SRV: the A fallback
        srv=[("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269, 10, 5),
             ("_xmpp-server._tcp.corp.fabrikam.test", "xmpp.fabrikam.test", 5269)])
    b.fabrikam = module_daemons.prosody(
        b, "fabrikam", "127.0.0.12", ["fabrikam.test", "corp.fabrikam.test"],
        users={"bob@fabrikam.test": "bobpass", "carol@corp.fabrikam.test": "carolpass"})
    b.litware = module_daemons.prosody(
        b, "litware", "127.0.0.13", ["litware.test"], users={"dave@litware.test": "davepass"})
    return b


def test_dns_serves_the_bed(bed):
    assert socket.gethostbyname("fabrikam.test") == "127.0.0.12"
    assert socket.gethostbyname("contoso.test") == "127.0.0.11"
    assert query_srv("_xmpp-server._tcp.fabrikam.test") == [(10, 5, 5269, "xmpp.fabrikam.test")]
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("elsewhere.test")


def test_real_clients_log_in_and_chat(bed):
    """bob@fabrikam.test and carol@corp.fabrikam.test, both on the bed's
    Prosody, over STARTTLS verified against the bed's CA."""
    async def scenario():
        bob = User("bob@fabrikam.test/t", "bobpass", bed.ca.cert)
        carol = User("carol@corp.fabrikam.test/t", "carolpass", bed.ca.cert)
        for c in (bob, carol):
            c.connect(("127.0.0.12", 5222))
        await asyncio.wait_for(asyncio.gather(bob.online.wait(), carol.online.wait()), 20)
        bob.send_message(mto="carol@corp.fabrikam.test", mbody="hello from bob", mtype="chat")
        msg = await asyncio.wait_for(carol.inbox.get(), 10)
        for c in (bob, carol):
            c.disconnect()
            await asyncio.wait_for(c.disconnected, 5)
        return msg

    msg = run(scenario())
    assert msg["body"] == "hello from bob"
    assert str(msg["from"].bare) == "bob@fabrikam.test"


def test_prosody_federates_with_prosody_through_the_beds_dns(bed):
    """Two Prosody servers of the bed find each other through its DNS
    server, whichever resolver they use: fabrikam.test looks up
    litware.test (A record only), litware.test looks up fabrikam.test
    (SRV, then the target's A record). libunbound, Prosody's resolver when
    lua-unbound is installed, answers NXDOMAIN for .test unless the bed's
    configuration says otherwise."""
    async def scenario():
        bob = User("bob@fabrikam.test/t", "bobpass", bed.ca.cert)
        dave = User("dave@litware.test/t", "davepass", bed.ca.cert)
        bob.connect(("127.0.0.12", 5222))
        dave.connect(("127.0.0.13", 5222))
        await asyncio.wait_for(asyncio.gather(bob.online.wait(), dave.online.wait()), 20)
        bob.send_message(mto="dave@litware.test", mbody="hello dave", mtype="chat")
        there = asyncio.ensure_future(dave.inbox.get())
        bounced = asyncio.ensure_future(bob.errors.get())
        done, _ = await asyncio.wait({there, bounced}, timeout=20,
                                     return_when=asyncio.FIRST_COMPLETED)
        got = there.result() if there in done else None
        error = bounced.result() if bounced in done else None
        back = None
        if got is not None:
            dave.send_message(mto="bob@fabrikam.test", mbody="hello bob", mtype="chat")
            back = await asyncio.wait_for(bob.inbox.get(), 20)
        for c in (bob, dave):
            c.disconnect()
            await asyncio.wait_for(c.disconnected, 5)
        return got, error, back

    got, error, back = run(scenario())
    how = (f"fabrikam resolves with {bed.fabrikam.resolver()}, "
           f"litware with {bed.litware.resolver()}")
    assert error is None, f"{how}: {error}"
    assert got is not None and got["body"] == "hello dave", how
    assert str(got["from"].bare) == "bob@fabrikam.test"
    assert back["body"] == "hello bob", how
    assert str(back["from"].bare) == "dave@litware.test"
    # Each server looked the other up; the bed's DNS server answered.
    queries = open(bed.dns.log).read()
    assert "query[A] litware.test from" in queries, how
    assert "query[A] xmpp.fabrikam.test from" in queries, how
