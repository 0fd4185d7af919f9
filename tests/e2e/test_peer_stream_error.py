"""A real peer that ends a stream with its own stream error: Prosody
(fabrikam.test) requires a trusted certificate (s2s_secure_auth), and this
fedgate shows the self-signed one `fedgate init` made, so Prosody's stream
to fedgate ends, after TLS, with <not-authorized/> "Your server's
certificate ..." -- as ejabberd's ends with <policy-violation/> "Use of
STARTTLS required". fedgate must log the peer's condition and text, keep
them as the route's last failure, and not answer with a stream error of
its own."""
import asyncio
import re
import time

import pytest

from clients import User, run
from conftest import BED_FEDGATE_ADDR

WHY = "fabrikam.test closed the stream; the peer said: <not-authorized/> 'Your server's certificate "


@pytest.fixture(scope="module")
def world(module_daemons):
    bed = module_daemons.bed({"fabrikam.test": "127.0.0.12"})
    prosody = module_daemons.prosody(bed, "fabrikam", "127.0.0.12", ["fabrikam.test"],
                                     users={"bob@fabrikam.test": "bobpass"})
    # Not the bed's certificate: Prosody cannot trust it.
    fg = module_daemons.fedgate(addr=BED_FEDGATE_ADDR, partners=["fabrikam.test"])
    return bed, prosody, fg.start()


def test_prosody_stream_error_is_recorded_not_answered(world):
    bed, prosody, fg = world

    async def scenario():
        bob = User("bob@fabrikam.test/desk", "bobpass", bed.ca.cert)
        bob.connect(("127.0.0.12", 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        bob.send_message(mto="alice@contoso.test", mbody="hi", mtype="chat")
        err = await asyncio.wait_for(bob.errors.get(), 30)
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return err

    err = run(scenario())
    assert err["type"] == "error"  # bob hears the message did not go through
    fg.wait_log(re.escape(WHY))
    log = fg.read_log()
    assert "sending stream error" not in log, log
    # The route keeps it for status (no retry delay: no attempt of ours).
    deadline = time.time() + 5
    while True:
        rows = fg.cli_json("status")
        route = [r for r in rows if r["remote"] == "fabrikam.test" and "last_failure" in r]
        if route or time.time() > deadline:
            break
        time.sleep(0.1)
    assert route and route[0]["last_failure"]["reason"].startswith(WHY), rows
    assert route[0]["last_failure"]["attempts"] == 0
    # The peer's words, marked as the peer's, in status for people too.
    assert route[0]["last_failure"]["by_peer"] is True
    assert route[0]["last_failure"]["state"] == "failing"
    text = fg.cli("status", "--failing").stdout
    assert "reason (the peer's): " + WHY in text, text
    # Prosody closed with its own error and got none of ours back.
    plog = prosody.read_log()
    assert "Your server's certificate is not trusted" in plog
    assert not re.search(r"Received\[s2sout[a-z_]*\]: <stream:error", plog), plog[-3000:]
    assert "closed by remote with error" not in plog, plog[-3000:]
