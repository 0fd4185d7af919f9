"""fedgate (contoso.test) federating with a real Prosody (fabrikam.test):
the outbound stream found through DNS SRV, secured with STARTTLS, the
partner's certificate checked (RFC 6125), authenticated with SASL EXTERNAL,
and a test message delivered to a real user (slixmpp). Failures are reported
in words an admin can act on."""
import asyncio
import os
import re
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bed"))
from bed import Bed  # noqa: E402
from fgtest import FEDGATE, Fedgate  # noqa: E402

import slixmpp  # noqa: E402


@pytest.fixture(scope="module")
def world():
    bed = Bed()
    for name, addr in (("fabrikam.test", "127.0.0.12"), ("xmpp.fabrikam.test", "127.0.0.12"),
                       ("corp.fabrikam.test", "127.0.0.12"), ("wrong.test", "127.0.0.12"),
                       ("contoso.test", "127.0.0.11")):
        bed.dns.add_a(name, addr)
    bed.dns.add_srv("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269)
    bed.dns.add_srv("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)
    bed.dns.start()
    prosody = bed.prosody("fabrikam", "127.0.0.12", ["fabrikam.test", "corp.fabrikam.test"])
    prosody.register("bob", "fabrikam.test", "bobpass")
    prosody.start()

    fg = Fedgate(domain="contoso.test", addr="127.0.0.11")
    cert, key = bed.ca.issue("contoso", ["contoso.test"])
    shutil.copy(cert, os.path.join(fg.dir, "certs", "contoso.test.pem"))
    shutil.copy(key, os.path.join(fg.dir, "certs", "contoso.test.key"))
    text = open(fg.conf).read()
    text = re.sub(r"(?m)^ca_file =.*$", f"ca_file = {bed.ca.cert}", text)
    open(fg.conf, "w").write(text)
    for args in (("--domain", "fabrikam.test"),
                 ("--domain", "wrong.test"),
                 ("--domain", "closed.test", "--proxy-fqdn", "127.0.0.12:5999")):
        r = fg.cli("partner", "new", *args)
        assert r.returncode == 0, r.stderr
    fg.start()
    yield bed, prosody, fg
    fg.stop()
    bed.stop()


class User(slixmpp.ClientXMPP):
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


async def cli(fg, *args):
    proc = await asyncio.create_subprocess_exec(
        FEDGATE, *args, "-c", fg.conf, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode, out.decode(), err.decode()


def test_test_im_reaches_a_prosody_user_over_sasl_external(world):
    bed, prosody, fg = world

    async def scenario():
        bob = User("bob@fabrikam.test/desk", "bobpass", bed.ca.cert)
        bob.connect(("127.0.0.12", 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        rc, out, err = await cli(fg, "test-im", "--to", "bob@fabrikam.test",
                                 "--body", "hello from contoso")
        msg = await asyncio.wait_for(bob.inbox.get(), 15) if rc == 0 else None
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return rc, out, err, msg

    rc, out, err, msg = run(scenario())
    assert rc == 0, out + err
    assert "DNS: xmpp.fabrikam.test [127.0.0.12]:5269" in out
    assert re.search(r"TLS: TLSv1\.[23] .*certificate of fabrikam\.test: the certificate chain "
                     r"is trusted; the certificate names fabrikam\.test as DNS-ID", out), out
    assert "SASL EXTERNAL accepted by fabrikam.test" in out
    assert "stream ready: authenticated with SASL over TLS" in out
    assert msg["body"] == "hello from contoso"
    assert str(msg["from"]) == "fedgate-test@contoso.test"
    # Prosody saw the same thing from its side.
    assert "Accepting SASL EXTERNAL identity from contoso.test" in prosody.read_log()


def test_not_a_partner_is_refused_at_once(world):
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "someone@stranger.test"))
    assert rc == 1
    assert "stranger.test is not an allowed federation partner" in err


def test_unreachable_partner_reports_why(world):
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@closed.test"))
    assert rc == 1
    assert "cannot connect to closed.test" in err and "refused" in err.lower(), err
    assert "not sent" in err or "not sent" in out


def test_peer_that_does_not_host_the_domain(world):
    """wrong.test resolves to the Prosody, which does not serve it: its
    stream error comes back in the report instead of a silent loss."""
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@wrong.test"))
    assert rc == 1
    assert "wrong.test closed the stream with <host-unknown/>" in err, out + err
