"""Idle streams give their XML parser back (xmlstream_sleep, stream_doze
every 10 s) and read on exactly as before when their peer speaks again:
a message split across two sends after the sleep, a prefix the client's
stream header declared, the closing tag."""
import time

import pytest

from c2sclient import Client
from fgtest import metrics

USERS = {"alice@contoso.test": "alice's long password",
         "bob@contoso.test": "bob's long password"}


@pytest.fixture
def fg(daemons):
    f = daemons.fedgate(users=USERS)
    r = f.cli("admin", "add", "mon", "--role", "viewer", input="mon's long password\n")
    assert r.returncode == 0, r.stderr
    return f.start()


def wait_dozed(fg, n, timeout=35):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = metrics(fg).get("dozed", 0)
        if got >= n:
            return got
        time.sleep(1)
    raise AssertionError(f"fewer than {n} streams dozed in {timeout} s")


def test_sleeping_streams_read_on_as_before(fg):
    alice, bob = Client(), Client()
    alice.login("alice", USERS["alice@contoso.test"], resource="a")
    bob.login("bob", USERS["bob@contoso.test"], resource="b")
    assert metrics(fg).get("dozed", 0) == 0
    # Both sit silent through two doze periods.
    wait_dozed(fg, 2)
    # Alice's stream wakes in the middle of a stanza, with a prefix only
    # the stanza declares; then Bob's, whose parser must still know the
    # header's bindings to read an unprefixed message.
    alice.send("<message to='bob@contoso.test/b' type='chat' id='m1'><bo")
    time.sleep(0.3)
    alice.send("dy>after a nap</body><x:hint xmlns:x='urn:xmpp:hints'/></message>")
    msg = bob.next_element(timeout=5)
    assert msg.tag == "{jabber:client}message" and msg.get("id") == "m1"
    assert msg.find("{jabber:client}body").text == "after a nap"
    bob.send("<message to='alice@contoso.test/a' type='chat' id='m2'><body>hi</body></message>")
    msg = alice.next_element(timeout=5)
    assert msg.get("id") == "m2" and msg.find("{jabber:client}body").text == "hi"
    # Asleep again, a stream still ends cleanly with its closing tag.
    wait_dozed(fg, 4)
    bob.send("</stream:stream>")
    assert bob.next_element(timeout=5) == "close"
    alice.close()
    bob.close()
