"""IPv6 and Happy Eyeballs (RFC 8305) against real Prosody servers, on ::1
and 127.0.0.x inside the test's network namespace (issue 15):
- fedgate listens on [::1] as well, and a Prosody whose only way to
  contoso.test is an AAAA record reaches it there;
- outbound, a partner with A and AAAA records is reached over IPv6 first;
- a partner whose IPv6 address never answers (a listener whose full
  accept queue drops SYNs, as a broken route would) is reached over IPv4
  a quarter of a second later, not after a connect timeout."""
import asyncio
import re
import socket

import pytest

from clients import User, cli, run, status_rows

FABRIKAM = "127.0.0.12"   # and ::1, port 5269
NORTHWIND = "127.0.0.13"  # port 5273; ::1 port 5273 never answers
FG_V6_PORT = 5270


@pytest.fixture(scope="module")
def blackhole():
    """[::1]:5273 accepts nothing: backlog 0, filled by one connection."""
    lsn = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsn.bind(("::1", 5273))
    lsn.listen(0)
    filler = socket.create_connection(("::1", 5273))
    yield
    filler.close()
    lsn.close()


@pytest.fixture(scope="module")
def world(module_daemons, blackhole):
    bed = module_daemons.bed(
        {"fabrikam.test": FABRIKAM, "xmpp.northwind.test": NORTHWIND},
        srv=[("_xmpp-server._tcp.fabrikam.test", "fabrikam.test", 5269),
             ("_xmpp-server._tcp.northwind.test", "xmpp.northwind.test", 5273),
             # Only an AAAA record leads to contoso.test's servers.
             ("_xmpp-server._tcp.contoso.test", "v6.contoso.test", FG_V6_PORT)])
    bed.dns.add_a("fabrikam.test", "::1")
    bed.dns.add_a("xmpp.northwind.test", "::1")
    bed.dns.add_a("v6.contoso.test", "::1")
    bed.dns.stop()
    bed.dns.start()
    fabrikam = module_daemons.prosody(
        bed, "fabrikam", FABRIKAM, ["fabrikam.test"], users={"bob@fabrikam.test": "bobpass"},
        extra=f'interfaces = {{ "{FABRIKAM}", "::1" }}')
    northwind = module_daemons.prosody(
        bed, "northwind", NORTHWIND, ["northwind.test"],
        users={"nina@northwind.test": "ninapass"}, extra="s2s_ports = { 5273 }")
    fg = module_daemons.fedgate(bed=bed, partners=["fabrikam.test", "northwind.test"])
    text = open(fg.conf).read()
    text = re.sub(r"(?m)^s2s = .*$", f"s2s = 127.0.0.11:5269, [::1]:{FG_V6_PORT}", text)
    open(fg.conf, "w").write(text)
    fg.start()
    return bed, fabrikam, northwind, fg



def test_listens_on_ipv6_and_connects_over_it_first(world):
    bed, fabrikam, _, fg = world
    assert f"listening for servers (s2s) on [::1]:{FG_V6_PORT}" in fg.read_log()

    async def scenario():
        bob = User("bob@fabrikam.test/t", "bobpass", bed.ca.cert)
        bob.connect((FABRIKAM, 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        rc, out, err = await cli(fg, "test-im", "--to", "bob@fabrikam.test", "--wait", "0")
        got = await asyncio.wait_for(bob.inbox.get(), 15) if rc == 0 else None
        bob.send_message(mto="alice@contoso.test", mbody="back", mtype="chat")
        back = await asyncio.wait_for(bob.errors.get(), 20)
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return rc, out + err, got, back

    rc, report, got, back = run(scenario())
    assert rc == 0, report
    # AAAA before A: the first target is IPv6, and it answered.
    targets = re.findall(r"DNS: fabrikam\.test \[([^\]]+)\]:5269", report)
    assert targets == ["::1", FABRIKAM], report
    assert "connected to fabrikam.test [::1]:5269" in report, report
    assert "Happy Eyeballs" not in report
    assert got["body"] == "fedgate test message: federation works"
    assert back["type"] == "error"
    out = status_rows(fg, "fabrikam.test", "out")
    assert out and out[0]["peer"] == "[::1]:5269", out
    # Prosody came in over IPv6 too: contoso.test has only an AAAA record.
    inb = status_rows(fg, "fabrikam.test", "in")
    assert inb and inb[0]["peer"].startswith("[::1]:"), inb
    assert inb[0]["method"] == "SASL over TLS"


def test_silent_ipv6_falls_to_ipv4_at_once(world):
    bed, _, northwind, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "nina@northwind.test", "--wait", "0"))
    report = out + err
    assert rc == 0, report
    assert "DNS: xmpp.northwind.test [::1]:5273" in report
    assert (f"also trying xmpp.northwind.test [{NORTHWIND}]:5273 (Happy Eyeballs: no answer "
            "yet from the first)") in report, report
    assert f"connected to xmpp.northwind.test [{NORTHWIND}]:5273" in report
    # The silent attempt was given up, not failed: no error about it.
    assert "[::1]:5273: connect timed out" not in report
    out_rows = status_rows(fg, "northwind.test", "out")
    assert out_rows and out_rows[0]["peer"] == f"{NORTHWIND}:5273", out_rows
