"""Offline messages (XEP-0160) paced to what the client can take: a burst
larger than the client's stream-management queue ([users]
resumption_queue) or its output queue ([limits] output_queue) arrives
whole in the one session that signs in, in batches that fit, the next one
when the client has room again; nothing stays in storage, nothing comes
twice. On one node with SQLite (the store's rows are counted directly)."""
import os
import sqlite3
import time

from c2sclient import Client

USERS = {"alice@contoso.test": "alice's long password",
         "bob@contoso.test": "bob's long password"}
NS_SM = "urn:xmpp:sm:3"
NS_C = "{jabber:client}"
NS_DELAY = "urn:xmpp:delay"


def login(user, resource):
    c = Client()
    c.login(user, USERS[f"{user}@contoso.test"], resource=resource)
    return c


def stored(fg, user="alice@contoso.test"):
    """Rows of user's offline messages in the daemon's SQLite store."""
    db = sqlite3.connect(f"file:{os.path.join(fg.dir, 'fedgate.db')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM offline WHERE user = ?", (user,)).fetchone()[0]
    finally:
        db.close()


def wait_stored(fg, n):
    """Until n rows are stored (the writes are the store thread's)."""
    for _ in range(1000):
        if stored(fg) == n:
            return
        time.sleep(0.02)
    assert stored(fg) == n


def send_burst(fg, n, body="n"):
    """bob sends n chats to alice's bare JID while she is offline; the
    store's rows are counted until all n are there."""
    bob = login("bob", "b")
    for i in range(n):
        bob.send(f"<message to='alice@contoso.test' type='chat' id='m{i}'>"
                 f"<body>{body}{i}</body></message>")
    bob.send("<iq type='get' id='p1' to='contoso.test'><ping xmlns='urn:xmpp:ping'/></iq>")
    while True:
        el = bob.next_element(10)
        assert el is not None and el != "close", el
        if el.tag == NS_C + "iq" and el.get("id") == "p1":
            break
        assert el.get("type") != "error", f"bob got an error: {el.get('id')}"
    wait_stored(fg, n)
    return bob


class Reader:
    """alice's client: answers the server's <r/> with what it handled
    (XEP-0198), collects the ids of delayed (offline) messages."""

    def __init__(self, c, sm):
        self.c, self.sm, self.h, self.delayed, self.acks = c, sm, 0, [], 0

    def read_until(self, n, timeout=10):
        while len(self.delayed) < n:
            el = self.c.next_element(timeout)
            assert el is not None and el != "close", \
                f"only {len(self.delayed)} of {n} offline messages came: {self.delayed[-5:]}"
            if el.tag == f"{{{NS_SM}}}r":
                self.acks += 1
                self.c.send(f"<a xmlns='{NS_SM}' h='{self.h}'/>")
                continue
            if el.tag.startswith(f"{{{NS_SM}}}"):
                continue
            self.h += 1
            if el.tag == NS_C + "message" and el.find(f"{{{NS_DELAY}}}delay") is not None:
                self.delayed.append(el.get("id"))

    def close(self):
        if self.sm:
            self.c.send(f"<a xmlns='{NS_SM}' h='{self.h}'/>")
        self.c.send("</stream:stream>")
        self.c.close()


def test_burst_larger_than_the_sm_queue_arrives_in_one_session(daemons):
    fg = daemons.fedgate(users=USERS, extra={"users": {"resumption_queue": "20",
                                                      "ping_interval": "0"}}).start()
    n = 60
    bob = send_burst(fg, n)
    assert stored(fg) == n
    alice = login("alice", "a")
    alice.send(f"<enable xmlns='{NS_SM}'/>")
    el = alice.next_element(10)
    assert el is not None and el != "close" and el.tag == f"{{{NS_SM}}}enabled", el
    alice.send("<presence/>")
    r = Reader(alice, sm=True)
    r.read_until(n)
    print(f"\n{n} offline messages, resumption_queue 20: {len(r.delayed)} in one session, "
          f"{r.acks} acknowledgements asked, {stored(fg)} left in storage")
    # all of them, oldest first, once each; storage is empty
    assert r.delayed == [f"m{i}" for i in range(n)]
    assert stored(fg) == 0
    r.close()
    # Signing in again: nothing waits (the rows were counted above, and
    # what she acknowledged is not routed back to storage at her exit).
    assert stored(fg) == 0
    bob.close()


def test_burst_larger_than_the_output_queue_without_sm(daemons):
    # 16 KiB of output queue, 200 messages of 20 KB: 4 MB, more than the
    # loopback socket's buffers hold while she does not read.
    fg = daemons.fedgate(users=USERS, extra={"limits": {"output_queue": "16KiB"},
                                             "users": {"offline_limit": "1000"}}).start()
    n = 200
    bob = send_burst(fg, n, body="x" * 20000)
    assert stored(fg) == n
    alice = login("alice", "a")
    alice.send("<presence/>")
    # She reads only after the daemon had to stop writing to her: its log
    # says so when a message did not fit (old behaviour) or the take
    # waits for room (paced); either way, her socket is full first.
    r = Reader(alice, sm=False)
    r.read_until(n, timeout=20)
    dup = len(r.delayed) - len(set(r.delayed))
    print(f"\n{n} offline messages of 20 KB, output_queue 16 KiB, no SM: "
          f"{len(set(r.delayed))} in one session, {dup} duplicates, "
          f"{stored(fg)} left in storage")
    assert r.delayed == [f"m{i}" for i in range(n)]
    assert stored(fg) == 0
    r.close()
    bob.close()
