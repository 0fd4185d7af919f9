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

from clients import User, run  # noqa: E402


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
