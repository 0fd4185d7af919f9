"""The federation test bed itself: the DNS server answers A and SRV records
for the test domains, and a real Prosody serves fabrikam.test and
corp.fabrikam.test to real XMPP clients (slixmpp) over STARTTLS with
certificates of the bed's CA. Federation tests build on this."""
import asyncio
import socket

import pytest

from bed import query_srv
from clients import User, run


@pytest.fixture(scope="module")
def bed(module_daemons):
    b = module_daemons.bed(
        {"fabrikam.test": "127.0.0.12", "corp.fabrikam.test": "127.0.0.12",
         "xmpp.fabrikam.test": "127.0.0.12"},
        srv=[("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269, 10, 5),
             ("_xmpp-server._tcp.corp.fabrikam.test", "xmpp.fabrikam.test", 5269)])
    b.fabrikam = module_daemons.prosody(
        b, "fabrikam", "127.0.0.12", ["fabrikam.test", "corp.fabrikam.test"],
        users={"bob@fabrikam.test": "bobpass", "carol@corp.fabrikam.test": "carolpass"})
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
