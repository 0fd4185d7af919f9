"""Issue 16's "must show" on profanity (Debian's 0.13.1, driven in tmux by
profanity.py): alice signed in twice on fedgate gets carbons of what each
device sends and receives; after signing out and in, opening the chat
loads the earlier conversation from fedgate's archive (XEP-0313); and an
OMEMO conversation between alice on fedgate and bob on the bed's Prosody
(a federated partner), decrypted on both sides.

The bed's Prosody is first checked on its own (test_harness_on_prosody):
the same steps against a server known to have carbons, MAM and PEP, so a
failure of the fedgate tests is fedgate's, not the harness's.

Every test prints each profanity's screen and the tail of its debug log
at its end; pytest shows them when the test fails.
"""
import os
import re
import shutil

import pytest

from bed import MODERN
from profanity import Profanities, befriend

FG = "127.0.0.11"
PROSODY = "127.0.0.12"
LOCAL = {"alice@contoso.test": "alice-secret-1", "bob@contoso.test": "bob-secret-1",
         "carol@contoso.test": "carol-secret-1"}
REMOTE = {"bob@fabrikam.test": "bob-pass", "dave@fabrikam.test": "dave-pass",
          "erin@fabrikam.test": "erin-pass"}
# OMEMO keys are trusted blindly: the test shows encryption and
# decryption across federation, not the users' fingerprint checks.
OMEMO = {"omemo": {"trustmode": "blind"}}


@pytest.fixture(scope="module")
def world(module_daemons):
    bed, prosody, fg = module_daemons.federation(
        REMOTE, LOCAL, partner=("--partner-type", "federated"), prosody_kw={"modules": MODERN})
    # At debug level: no message text may reach even that (no_bodies_logged).
    with open(fg.conf) as f:
        conf = re.sub(r"(?m)^level = info$", "level = debug", f.read())
    with open(fg.conf, "w") as f:
        f.write(conf)
    fg.start()
    return bed, prosody, fg


@pytest.fixture
def profs(tmp_path):
    ps = Profanities(str(tmp_path))
    yield ps
    print(ps.report())
    ps.stop()


def local(profs, world, name, user, resource, prefs=None):
    bed, _, _ = world
    return profs.new(name, user, LOCAL[user], FG, bed.ca.cert, resource=resource,
                     prefs=prefs).start()


def remote(profs, world, name, user, resource, prefs=None):
    bed, _, _ = world
    return profs.new(name, user, REMOTE[user], PROSODY, bed.ca.cert, resource=resource,
                     prefs=prefs).start()


def no_bodies_logged(world, *texts):
    """fedgate's log holds none of the message texts (issue 16: bodies
    never reach logs, the archive's and carbons' code paths included)."""
    log = world[2].read_log()
    assert not [t for t in texts if t in log], "a message body in fedgate's log"


def no_plaintext_on_the_wire(p, text):
    """No stanza profanity sent or received (its debug log shows each)
    carries text; the messages it sent to the peer carry OMEMO's
    <encrypted/>."""
    wire = [line for line in p.read_log().splitlines() if ": SENT: " in line or ": RECV: " in line]
    assert wire, f"{p.name}: no stanza in the debug log"
    leaked = [line for line in wire if text in line]
    assert not leaked, f"{p.name}: plaintext on the wire:\n" + "\n".join(leaked)
    sent = [line for line in wire if ": SENT: <message" in line]
    assert any("eu.siacs.conversations.axolotl" in line and "<encrypted" in line
               for line in sent), f"{p.name}: no OMEMO message sent:\n" + "\n".join(sent)


def omemo_chat(a, b, hello, answer):
    """a and b (subscribed to each other, keys published) start OMEMO
    with each other and exchange hello and answer; each side's window
    shows the other's message decrypted, marked with OMEMO's "~"."""
    for me, peer in ((a, b), (b, a)):
        me.window(peer.jid)
        me.type("/omemo start")
        me.wait(r"\A\s*" + re.escape(peer.jid) + r" .*\[OMEMO\]", 15, "[OMEMO] in the title")
        # The session needs the peer's device list and bundle: sending
        # before that would reach no device. The peer's account may list
        # older devices too (another test's): this one's must be ready.
        try:
            me.wait_log(r"\[OMEMO\] (create session|session) with " + re.escape(peer.jid) +
                        " device " + peer.device + r"\b", 60)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{me.name} found no OMEMO device of {peer.jid}; the "
                                 "exchange:\n" + me.exchange("axolotl")) from None
    a.type(hello)
    a.says("me", hello, enc="~")
    b.says(a.jid, hello, enc="~")
    b.type(answer)
    b.says("me", answer, enc="~")
    a.says(b.jid, answer, enc="~")
    no_plaintext_on_the_wire(a, hello)
    no_plaintext_on_the_wire(b, answer)


def test_harness_on_prosody(world, profs):
    """The harness against the bed's Prosody alone (two of its users, not
    bob, whose OMEMO devices would outlive this test):
    subscription, OMEMO keys, an encrypted exchange."""
    a = remote(profs, world, "dave", "dave@fabrikam.test", "desk", OMEMO).connected()
    b = remote(profs, world, "erin", "erin@fabrikam.test", "desk", OMEMO).connected()
    befriend(a, b)
    a.omemo_keys()
    b.omemo_keys()
    omemo_chat(a, b, "prosody alone, encrypted", "and back, encrypted")


def carbons_on(p):
    """Profanity asks for carbons after signing in; its log says how the
    server answered."""
    m = p.wait_log(r"Message carbons enabled|Error enabling carbons[^\n]*", 30)
    assert m.group(0) == "Message carbons enabled", \
        f"{p.name}: {m.group(0)}\n" + "\n".join(
            line for line in p.read_log().splitlines() if "urn:xmpp:carbons" in line)


def test_carbons_between_two_devices(world, profs):
    """alice on two devices (resources one and two) and bob, all on
    fedgate: what alice/one sends, alice/two shows as sent (a sent
    carbon); bob's reply to alice/one shows on both (a received carbon
    on two)."""
    one = local(profs, world, "alice-one", "alice@contoso.test", "one").connected()
    two = local(profs, world, "alice-two", "alice@contoso.test", "two").connected()
    bob = local(profs, world, "bob", "bob@contoso.test", "desk").connected()
    carbons_on(one)
    carbons_on(two)

    one.window("bob@contoso.test")
    one.type("sent from one, seen on two")
    one.says("me", "sent from one, seen on two")
    bob.window("alice@contoso.test")
    bob.says("alice@contoso.test", "sent from one, seen on two")
    # alice/two never wrote to bob: the window it opens shows what the
    # carbon brought (its own local history, mam off, is what it received).
    two.window("bob@contoso.test")
    two.says("me", "sent from one, seen on two")

    bob.type("reply, seen on both")
    bob.says("me", "reply, seen on both")
    one.says("bob@contoso.test", "reply, seen on both")
    two.says("bob@contoso.test", "reply, seen on both")
    no_bodies_logged(world, "sent from one, seen on two", "reply, seen on both")


def test_archive_after_signing_in_again(world, profs):
    """alice chats with carol, signs out, signs in again: opening the chat
    with carol (profanity's `/mam on`: a window asks the server's archive
    for the last week with that contact) shows the earlier conversation.
    Profanity's local chat database is removed while alice is signed out,
    and with mam on profanity 0.13.1 never shows local history anyway:
    what appears comes from fedgate's archive."""
    mam = {"connection": {"mam": "true"}}
    alice = local(profs, world, "alice", "alice@contoso.test", "one", mam).connected()
    carol = local(profs, world, "carol", "carol@contoso.test", "desk").connected()
    alice.window("carol@contoso.test")
    alice.type("archived question from alice")
    carol.window("alice@contoso.test")
    carol.says("alice@contoso.test", "archived question from alice")
    carol.type("archived answer from carol")
    alice.says("carol@contoso.test", "archived answer from carol")
    # alice signs out once she has acknowledged carol's answer (XEP-0198;
    # fedgate asks right after a message with a body): an unacknowledged
    # one would come again from offline storage when she signs in, open
    # carol's window itself, and profanity asks the archive only for a
    # window that /msg opens.
    got = alice.read_log().index("<body>archived answer from carol</body>")
    alice.wait_log(r'SENT: <a h="\d+" xmlns="urn:xmpp:sm:3"/>', 30, since=got)

    alice.quit()
    shutil.rmtree(os.path.join(alice.data, "profanity", "database"), ignore_errors=True)
    # Signing in again with another resource: profanity 0.13.1 does not
    # print an archived message whose sender is its own full JID (its
    # guard against showing what it sends twice), so with resource "one"
    # only carol's half would show.
    alice.set_resource("laptop")
    mark = len(alice.read_log())
    again = alice.start().connected()
    # profanity decides from the server features it has received so far:
    # open the window only once the server's disco#info answer is in (on a
    # loaded machine it can come after "connected").
    again.wait_log(r'RECV: <iq [^>]*from="contoso.test"><query '
                   r'xmlns="http://jabber.org/protocol/disco#info">', 30, since=mark)
    again.window("carol@contoso.test")
    # Profanity 0.13.1 asks the archive only if the server's own
    # disco#info (or one of its disco#items) lists urn:xmpp:mam:2; the
    # account's is never asked.
    m = again.wait_log(r"Server doesn't advertise urn:xmpp:mam:2|<query xmlns=\"urn:xmpp:mam:2\"",
                       30, since=mark)
    assert "advertise" not in m.group(0), (
        "profanity did not ask for the archive: the server's disco#info lacks urn:xmpp:mam:2:\n" +
        again.exchange("disco#info", since=mark))
    again.says("carol@contoso.test", "archived answer from carol")
    again.says("me", "archived question from alice")
    no_bodies_logged(world, "archived question from alice", "archived answer from carol")
    # And they came as archive results (the log continues the first one).
    assert re.search(r'RECV: <message[^\n]*<result [^>]*xmlns="urn:xmpp:mam:2"[^\n]*'
                     r"archived answer from carol", again.read_log()[mark:])


def test_omemo_across_federation(world, profs):
    """alice on fedgate and bob on the bed's Prosody, both on profanity:
    they add each other, publish their OMEMO keys (alice's in fedgate's
    PEP, which bob's Prosody reads over federation) and exchange
    encrypted messages, each decrypted on the other side."""
    alice = local(profs, world, "alice", "alice@contoso.test", "one", OMEMO).connected()
    bob = remote(profs, world, "bob", "bob@fabrikam.test", "desk", OMEMO).connected()
    befriend(alice, bob)
    alice.omemo_keys()
    bob.omemo_keys()
    omemo_chat(alice, bob, "across federation, encrypted", "decrypted at fabrikam, and back")
    no_bodies_logged(world, "across federation, encrypted", "decrypted at fabrikam, and back")
