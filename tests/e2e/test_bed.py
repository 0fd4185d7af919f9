"""The federation test bed itself: the DNS server answers A and SRV records
for the test domains, and a real Prosody serves fabrikam.test and
corp.fabrikam.test to real XMPP clients (slixmpp) over STARTTLS with
certificates of the bed's CA. Federation tests build on this."""
import asyncio
import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bed"))
from bed import Bed, query_srv  # noqa: E402

import slixmpp  # noqa: E402


@pytest.fixture(scope="module")
def bed():
    b = Bed()
    b.dns.add_a("fabrikam.test", "127.0.0.12")
    b.dns.add_a("corp.fabrikam.test", "127.0.0.12")
    b.dns.add_a("xmpp.fabrikam.test", "127.0.0.12")
    b.dns.add_a("contoso.test", "127.0.0.11")
    b.dns.add_srv("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269, 10, 5)
    b.dns.add_srv("_xmpp-server._tcp.corp.fabrikam.test", "xmpp.fabrikam.test", 5269)
    b.dns.start()
    p = b.prosody("fabrikam", "127.0.0.12", ["fabrikam.test", "corp.fabrikam.test"])
    p.register("bob", "fabrikam.test", "bobpass")
    p.register("carol", "corp.fabrikam.test", "carolpass")
    p.start()
    b.fabrikam = p
    yield b
    b.stop()


def test_dns_serves_the_bed(bed):
    assert socket.gethostbyname("fabrikam.test") == "127.0.0.12"
    assert socket.gethostbyname("contoso.test") == "127.0.0.11"
    assert query_srv("_xmpp-server._tcp.fabrikam.test") == [(10, 5, 5269, "xmpp.fabrikam.test")]
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("elsewhere.test")


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ca_certs = cafile
        self.inbox = asyncio.Queue()
        self.online = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", lambda m: self.inbox.put_nowait(m))

    async def on_start(self, _):
        self.send_presence()
        self.online.set()


def run(coro):
    """Runs a client scenario on a loop of its own and cancels whatever
    slixmpp leaves pending, so one test's clients never leak into the next."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        pending = asyncio.all_tasks(loop)
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def test_real_clients_log_in_and_chat(bed):
    """bob@fabrikam.test and carol@corp.fabrikam.test, both on the bed's
    Prosody, over STARTTLS verified against the bed's CA."""
    async def scenario():
        bob = Client("bob@fabrikam.test/t", "bobpass", bed.ca.cert)
        carol = Client("carol@corp.fabrikam.test/t", "carolpass", bed.ca.cert)
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
