"""Certificates of 2026 against real Prosody servers (issue 15): a
certificate with only the serverAuth purpose authenticates with SASL
EXTERNAL in both directions, ours and the partner's; a partner whose keys
are pinned is let in on a CA fedgate does not trust, and refused with both
fingerprints when it shows another key, in both directions; `probe` prints
the key to pin and `status` the purpose and key of each stream's peer."""
import asyncio
import base64
import json
import os
import time

import pytest

from bed import CA, spki_sha256
from clients import User, cli, round_trip, run, status_rows

FABRIKAM = "127.0.0.12"   # serverAuth-only certificate, from the bed's CA
NORTHWIND = "127.0.0.13"  # a private CA fedgate does not trust; its key pinned
LITWARE = "127.0.0.14"    # the bed's CA, but not the key pinned for it
SERVER_ONLY = "serverAuth"


def pin_of(cert):
    """The pin an admin would compute by hand: the openssl CLI's SHA-256
    of the SubjectPublicKeyInfo (bed.spki_sha256), in base64."""
    return base64.b64encode(bytes.fromhex(spki_sha256(cert))).decode()


@pytest.fixture(scope="module")
def world(module_daemons):
    names = {"fabrikam.test": FABRIKAM, "northwind.test": NORTHWIND, "litware.test": LITWARE}
    bed = module_daemons.bed(
        names, srv=[(f"_xmpp-server._tcp.{d}", d, 5269) for d in list(names) + ["contoso.test"]])
    fabrikam = module_daemons.prosody(bed, "fabrikam", FABRIKAM, ["fabrikam.test"],
                                      users={"bob@fabrikam.test": "bobpass"}, eku=SERVER_ONLY)
    private = CA(bed.root, "private")
    northwind = module_daemons.prosody(bed, "northwind", NORTHWIND, ["northwind.test"],
                                       users={"nina@northwind.test": "ninapass"}, ca=private)
    litware = module_daemons.prosody(bed, "litware", LITWARE, ["litware.test"],
                                     users={"lee@litware.test": "leepass"})
    north_pin = pin_of(os.path.join(northwind.dir, "cert.pem"))
    lit_pin = pin_of(os.path.join(litware.dir, "cert.pem"))
    fg = module_daemons.fedgate(
        bed=bed, cert_eku=SERVER_ONLY, partners=[
            "fabrikam.test",
            ("northwind.test", "--pins", north_pin),
            # Another server's key: a stranger's for litware.test.
            ("litware.test", "--pins", north_pin)]).start()
    bed.private_ca = private.cert  # what nina's client trusts
    return bed, fg, north_pin, lit_pin



def test_server_auth_only_certificates_authenticate_both_ways(world):
    bed, fg, _, _ = world
    rc, out, got, back = round_trip(fg, bed.ca.cert, "bob@fabrikam.test", "bobpass", FABRIKAM)
    assert rc == 0, out
    # Out: Prosody took our serverAuth-only certificate as a client's.
    assert "SASL EXTERNAL accepted by fabrikam.test" in out, out
    assert got["body"] == "test"
    # In: we took Prosody's, and the answer came back.
    assert back["type"] == "error"
    rows = status_rows(fg, "fabrikam.test", "in")
    assert rows and rows[0]["method"] == "SASL over TLS", rows
    assert rows[0]["certificate_eku"] == "TLS server only"
    out_rows = status_rows(fg, "fabrikam.test", "out")
    assert out_rows and out_rows[0]["certificate_eku"] == "TLS server only", out_rows
    # The text form says it too.
    rc, text, _ = run(cli(fg, "status"))
    assert "extended key usage: TLS server only" in text
    # And `check` describes our own certificate's purpose.
    rc, text, err = run(cli(fg, "check"))
    assert "extendedKeyUsage is serverAuth only" in text + err


def test_pinned_key_on_an_untrusted_ca_is_let_in_both_ways(world):
    bed, fg, north_pin, _ = world
    rc, out, got, back = round_trip(fg, bed.private_ca, "nina@northwind.test", "ninapass",
                                    NORTHWIND)
    assert rc == 0, out
    assert f"the public key is pinned for northwind.test (SHA-256 {north_pin})" in out, out
    assert "SASL EXTERNAL accepted by northwind.test" in out, out
    assert got["body"] == "test" and back["type"] == "error"
    rows = status_rows(fg, "northwind.test", "in")
    assert rows and rows[0]["method"] == "SASL over TLS", rows
    assert rows[0]["certificate_key"] == north_pin


def test_another_key_is_refused_with_both_fingerprints(world):
    bed, fg, north_pin, lit_pin = world
    # Out: test-im fails, and says why.
    rc, out, err = run(cli(fg, "test-im", "--to", "lee@litware.test", "--wait", "0"))
    assert rc != 0
    text = out + err
    assert f"public key (SHA-256 {lit_pin}) is not one pinned for litware.test" in text, text
    assert north_pin in text and "--add-pin" in text

    # In: Prosody's stream is closed with the same reason.
    async def scenario():
        lee = User("lee@litware.test/t", "leepass", bed.ca.cert)
        lee.connect((LITWARE, 5222))
        await asyncio.wait_for(lee.online.wait(), 20)
        lee.send_message(mto="alice@contoso.test", mbody="hi", mtype="chat")
        bounced = await asyncio.wait_for(lee.errors.get(), 30)
        lee.disconnect()
        await asyncio.wait_for(lee.disconnected, 5)
        return bounced

    bounced = run(scenario())
    assert bounced["type"] == "error"
    deadline = time.time() + 10
    while time.time() < deadline:
        log = fg.read_log()
        if "policy-violation" in log and f"(SHA-256 {lit_pin})" in log:
            break
        time.sleep(0.2)
    lines = [x for x in fg.read_log().splitlines()
             if f"(SHA-256 {lit_pin}) is not one pinned for litware.test" in x]
    assert any(north_pin in x for x in lines), fg.read_log()[-3000:]
    assert not status_rows(fg, "litware.test", "in")


def test_probe_prints_the_key_to_pin(world):
    _, fg, north_pin, lit_pin = world
    rc, out, err = run(cli(fg, "probe", "litware.test"))
    assert f"public key (pin): {lit_pin}" in out + err, out + err
    rc, out, err = run(cli(fg, "probe", "litware.test", "--json"))
    found = json.dumps(json.loads(out))
    assert lit_pin in found and '"pinned": "mismatch"' in found, found
