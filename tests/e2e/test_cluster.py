"""Issue 17 on the cluster bed (cluster.py): contoso.test on three fedgate
nodes sharing PostgreSQL and Redis, fabrikam.test on Prosody.

  - alice on n1 <-> bob on n3 <-> bob@fabrikam.test: messages every way,
    and subscription rounds (subscribe, subscribed, presence seen), each
    client connected to a chosen node's address;
  - a partner change made on n2 is applied on n1 and n3 (their log line
    and their behaviour), audited once; the delays are printed from the
    log lines (no timed assertion: the figures are for the record);
  - `fedgate status` on every node lists the three nodes.
"""
import asyncio
import json
import re
import socket
import threading
import time

import pytest

from clients import User, cli, run
from bed import DNS_ADDR
from cluster import PG_NAME, ClusterBed, wait_until
from conftest import BED_PROSODY_ADDR
from webclient import Client, unescape

ADMIN_PW = "correct horse battery"
APPLIED = re.compile(r'cluster: applied "([^"]*)" from node (\S+), (-?\d+) ms after its commit')


@pytest.fixture(scope="module")
def bed(module_daemons):
    return ClusterBed(module_daemons,
                      users={"alice@contoso.test": "alice-pass", "bob@contoso.test": "bob-pass-1"},
                      remote_users={"bob@fabrikam.test": "rbob-pass-1"},
                      # Federated: its users may write before being contacts.
                      partners=[("fabrikam.test", "--partner-type", "federated")],
                      admins={"root": ("administrator", ADMIN_PW)}).start()


def client(c, jid, password, addr):
    u = User(jid, password, c.bed.ca.cert)
    u.connect((addr, 5222))
    return u


async def online(*users):
    await asyncio.gather(*(asyncio.wait_for(u.online.wait(), 30) for u in users))


async def offline(*users):
    for u in users:
        u.disconnect()
    await asyncio.gather(*(asyncio.wait_for(u.disconnected, 10) for u in users),
                         return_exceptions=True)


async def registered(bed, want):
    """Until every node's view of the cluster has at least want[node]
    sessions on node: a session reaches the other nodes through Redis a
    moment after it is bound, and a message sent before goes to offline
    storage (delivered at the next sign-in, not now)."""
    views = {}
    for _ in range(150):
        for fg in bed.nodes:
            rc, out, err = await cli(fg, "status", "--cluster", "--json")
            views[fg.name] = {n["name"]: n["sessions"] for n in json.loads(out)["nodes"]} \
                if rc == 0 else err
        if all(isinstance(v, dict) and all(v.get(k, 0) >= n for k, n in want.items())
               for v in views.values()):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"sessions never seen cluster-wide: {views}")


async def expect(u, frm, body, timeout=20):
    """The next message u receives; it must be body from frm (a bare JID)."""
    m = await asyncio.wait_for(u.inbox.get(), timeout)
    assert (m["from"].bare, m["body"]) == (frm, body), (str(m["from"]), m["body"])
    return m


def test_messages_between_nodes_and_prosody(bed):
    n1, n3 = bed.node("n1"), bed.node("n3")

    async def scenario():
        alice = client(bed, "alice@contoso.test/n1", "alice-pass", n1.addr)
        bob = client(bed, "bob@contoso.test/n3", "bob-pass-1", n3.addr)
        rbob = client(bed, "bob@fabrikam.test/p", "rbob-pass-1", BED_PROSODY_ADDR)
        await online(alice, bob, rbob)
        await registered(bed, {"n1": 1, "n3": 1})
        try:
            # Cross-node, both ways; then a node's user and Prosody's,
            # both ways: out through the node's own stream, in through
            # whichever node Prosody's SRV lookup chose, then forwarded.
            users = {"alice@contoso.test": alice, "bob@contoso.test": bob,
                     "bob@fabrikam.test": rbob}
            for frm, to, body in (("alice@contoso.test", "bob@contoso.test", "n1 to n3"),
                                  ("bob@contoso.test", "alice@contoso.test", "n3 to n1"),
                                  ("bob@contoso.test", "bob@fabrikam.test", "n3 to prosody"),
                                  ("bob@fabrikam.test", "bob@contoso.test", "prosody to n3"),
                                  ("alice@contoso.test", "bob@fabrikam.test", "n1 to prosody"),
                                  ("bob@fabrikam.test", "alice@contoso.test", "prosody to n1")):
                users[frm].send_message(mto=to, mbody=body, mtype="chat")
                await expect(users[to], frm, body)
            assert alice.errors.empty() and bob.errors.empty() and rbob.errors.empty()
        finally:
            await offline(alice, bob, rbob)

    run(scenario())


def test_subscription_rounds(bed):
    """alice (n1) asks bob (n3) and bob@fabrikam.test for their presence;
    their clients approve (slixmpp's auto_authorize) and alice sees them
    online. The rosters live in the shared store."""
    n1, n3 = bed.node("n1"), bed.node("n3")

    async def scenario():
        alice = client(bed, "alice@contoso.test/sub", "alice-pass", n1.addr)
        seen = {}

        def available(p):
            seen.setdefault(p["from"].bare, asyncio.get_event_loop().time())
        alice.add_event_handler("presence_available", available)
        subscribed = set()
        alice.add_event_handler("presence_subscribed", lambda p: subscribed.add(p["from"].bare))
        bob = client(bed, "bob@contoso.test/sub", "bob-pass-1", n3.addr)
        rbob = client(bed, "bob@fabrikam.test/sub", "rbob-pass-1", BED_PROSODY_ADDR)
        await online(alice, bob, rbob)
        await registered(bed, {"n1": 1, "n3": 1})
        try:
            for contact in ("bob@contoso.test", "bob@fabrikam.test"):
                alice.send_presence(pto=contact, ptype="subscribe")
            for _ in range(400):
                if {"bob@contoso.test", "bob@fabrikam.test"} <= set(seen) and \
                        {"bob@contoso.test", "bob@fabrikam.test"} <= subscribed:
                    break
                await asyncio.sleep(0.05)
            assert subscribed >= {"bob@contoso.test", "bob@fabrikam.test"}, subscribed
            assert set(seen) >= {"bob@contoso.test", "bob@fabrikam.test"}, seen
            # The server's roster (slixmpp's copy from the pushes may lag
            # behind: after a mutual subscription it can still say "from").
            await alice.get_roster()
            roster = alice.client_roster
            for contact in ("bob@contoso.test", "bob@fabrikam.test"):
                assert roster[contact]["subscription"] in ("to", "both"), \
                    (contact, roster[contact]["subscription"])
        finally:
            await offline(alice, bob, rbob)
        # The roster is in the shared store: alice signing in on n2 gets it.
        again = client(bed, "alice@contoso.test/n2", "alice-pass", bed.node("n2").addr)
        await online(again)
        try:
            await again.get_roster()
            return {c: again.client_roster[c]["subscription"]
                    for c in ("bob@contoso.test", "bob@fabrikam.test")}
        finally:
            await offline(again)

    subs = run(scenario())
    assert all(s in ("to", "both") for s in subs.values()), subs


def applied_lines(fg, domain):
    return [m for m in APPLIED.finditer(fg.read_log()) if domain in m.group(1)]


def test_partner_change_on_n2_applied_on_n1_and_n3(bed):
    n1, n2, n3 = bed.node("n1"), bed.node("n2"), bed.node("n3")
    before = {fg.name: len(applied_lines(fg, "fabrikam.test")) for fg in (n1, n3)}
    audit_before = len(n1.cli_json("audit", "--filter", "fabrikam.test"))

    # Suspended on n2: n1 and n3 apply it, and stop federating at once.
    bed.check(n2.cli("partner", "set", "fabrikam.test", "--enabled", "false"))
    delays = {}
    for fg in (n1, n3):
        lines = wait_until(lambda: applied_lines(fg, "fabrikam.test")[before[fg.name]:], 10)
        assert lines, f"{fg.name} never applied n2's change:\n{bed.logs()}"
        m = lines[0]
        assert m.group(1) == "partner set fabrikam.test" and m.group(2) == "n2", m.group(0)
        delays[fg.name] = int(m.group(3))
        # The whole line, with the node's own time stamp, for the reader.
        print(f"\n{fg.name}: " + next(l for l in fg.read_log().splitlines() if m.group(0) in l),
              end="")
    # n2 applied it itself, when it committed: no notification for it.
    assert not applied_lines(n2, "fabrikam.test"), n2.read_log()
    # Applied as a local change is: the streams with fabrikam.test that
    # n1 and n3 had open since the first test end with the reason, the
    # inbound one (on whichever node Prosody's SRV lookup chose) with a
    # stream error.
    suspended = "federation with fabrikam.test is suspended by the administrator"
    for fg in (n1, n3):
        assert f"s2s-out contoso.test->fabrikam.test: failed: {suspended}" in fg.read_log(), \
            fg.read_log()[-3000:]
    assert any(f"sending stream error <policy-violation/>: {suspended}" in fg.read_log()
               for fg in bed.nodes), bed.logs()
    print(f"\npartner change on n2 applied: n1 {delays['n1']} ms, n3 {delays['n3']} ms "
          "after its commit")

    async def suspended():
        alice = client(bed, "alice@contoso.test/susp", "alice-pass", n1.addr)
        bob = client(bed, "bob@contoso.test/susp", "bob-pass-1", n3.addr)
        await online(alice, bob)
        try:
            out = []
            for u in (alice, bob):
                u.send_message(mto="bob@fabrikam.test", mbody="while suspended", mtype="chat")
                err = await asyncio.wait_for(u.errors.get(), 20)
                out.append(err["error"]["text"])
            return out
        finally:
            await offline(alice, bob)

    texts = run(suspended())
    for text in texts:
        assert "federation with fabrikam.test is suspended by the administrator" in text, texts

    # Enabled again on n2: federation works from n1 and n3 again.
    bed.check(n2.cli("partner", "set", "fabrikam.test", "--enabled", "true"))
    for fg in (n1, n3):
        assert wait_until(lambda: len(applied_lines(fg, "fabrikam.test")) >= before[fg.name] + 2,
                          10), fg.read_log()
    delays2 = {fg.name: int(applied_lines(fg, "fabrikam.test")[-1].group(3)) for fg in (n1, n3)}
    print(f"partner enabled again on n2 applied: n1 {delays2['n1']} ms, n3 {delays2['n3']} ms "
          "after its commit")

    async def enabled():
        alice = client(bed, "alice@contoso.test/again", "alice-pass", n1.addr)
        rbob = client(bed, "bob@fabrikam.test/again", "rbob-pass-1", BED_PROSODY_ADDR)
        await online(alice, rbob)
        try:
            alice.send_message(mto="bob@fabrikam.test", mbody="enabled again", mtype="chat")
            await expect(rbob, "alice@contoso.test", "enabled again")
        finally:
            await offline(alice, rbob)

    run(enabled())
    # Audited once each, by n2, whichever node's CLI reads the log.
    for fg in (n1, n3):
        rows = fg.cli_json("audit", "--filter", "fabrikam.test")
        new = rows[:len(rows) - audit_before] if rows and rows[0]["id"] > rows[-1]["id"] \
            else rows[audit_before:]
        assert [(r["action"], r["target"]) for r in new] == \
            [("partner set", "fabrikam.test")] * 2, new


def applied_actions(fg, action):
    """The applied lines whose actions start with action."""
    return [m for m in APPLIED.finditer(fg.read_log()) if m.group(1).startswith(action)]


def test_gateway_change_and_import_applied_everywhere(bed):
    """Changes of the other kinds, made on other nodes: gateway settings on
    n3, a partner import (every partner replaced) on n1."""
    n1, n2, n3 = bed.node("n1"), bed.node("n2"), bed.node("n3")
    seen = {fg.name: len(applied_actions(fg, "gateway set")) for fg in bed.nodes}
    bed.check(n3.cli("gateway", "set", "--keepalive-interval", "240"))
    for fg in (n1, n2):
        lines = wait_until(lambda: applied_actions(fg, "gateway set")[seen[fg.name]:], 10)
        assert lines and lines[0].group(2) == "n3", fg.read_log()[-3000:]
        # The target "gateway" is not repeated after the action.
        assert lines[0].group(1) == "gateway set", lines[0].group(0)
        # Applied as a local change is: the settings' line with the value.
        assert "keepalive_interval=240" in fg.read_log().split(lines[0].group(0))[0] \
            .rsplit("applying gateway settings", 1)[-1], fg.read_log()[-3000:]
        print(f"\ngateway change on n3 applied on {fg.name} {lines[0].group(3)} ms after its "
              "commit")
    export = json.loads(n1.export())
    for p in export["partners"]:
        p["description"] = "imported on n1"
    # Big enough that the notification cannot name every partner: it
    # counts the rest, and the other nodes read the whole set anyway.
    export["partners"] += [dict(export["partners"][0], domain=f"p{i}.example.test")
                           for i in range(300)]
    path = f"{n1.dir}/partners.json"
    with open(path, "w") as f:
        json.dump(export, f)
    seen = {fg.name: len(applied_actions(fg, "partner import")) for fg in bed.nodes}
    bed.check(n1.cli("partner", "import", path))
    for fg in (n2, n3):
        lines = wait_until(lambda: applied_actions(fg, "partner import")[seen[fg.name]:], 10)
        assert lines and lines[0].group(2) == "n1", fg.read_log()[-3000:]
        before_line = fg.read_log().split(lines[0].group(0))[0]
        applied_here = before_line.rsplit("cluster: applied", 1)[-1]
        assert "applying partner fabrikam.test" in applied_here
        assert "applying partner p299.example.test" in applied_here
        assert re.search(r" and \d+ more$", lines[0].group(1)), lines[0].group(0)[-200:]
        print(f"partner import on n1 applied on {fg.name} {lines[0].group(3)} ms after its "
              "commit")
    assert not applied_actions(n1, "partner import") and not applied_actions(n3, "gateway set")


def cluster_status(fg):
    """`fedgate status --cluster --json`: the node's "cluster" object."""
    r = fg.cli("status", "--cluster", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_status_lists_the_three_nodes(bed):
    for fg in bed.nodes:
        st = wait_until(lambda: (lambda s: s if s and len(s.get("nodes", [])) == 3 else None)(
            cluster_status(fg)), 10, step=0.5)
        assert st, f"{fg.name}: {cluster_status(fg)}"
        assert st["node"] == fg.name and st["redis"] == "up", st
        assert sorted(n["name"] for n in st["nodes"]) == ["n1", "n2", "n3"], st
        assert [n["name"] for n in st["nodes"] if n.get("self")] == [fg.name], st
        r = fg.cli("status")
        assert r.returncode == 0, r.stderr
        for name in bed.names:
            assert name in r.stdout, r.stdout


def panel_text(page, ident):
    m = re.search(rf'<(table|p)[^>]* id="{ident}".*?</\1>', page, re.S)
    assert m, f"no #{ident} in the page:\n{page}"
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", m.group(0))).split())
    return re.sub(r" ([.,)])", r"\1", text)


def test_panel_shows_the_cluster(bed):
    """The dashboard of n2 (signed in there; the admin was made through
    n1's CLI) lists every node with its heartbeat and sessions."""
    n2 = bed.node("n2")
    web = Client(f"http://{n2.addr}:5280")
    assert web.signin("root", ADMIN_PW).status == 303
    page = web.get("/status")
    assert page.status == 200, page.text
    assert "This node: n2. Redis: up." in panel_text(page.text, "cluster-summary")
    nodes = panel_text(page.text, "cluster-nodes")
    for name in bed.names:
        assert re.search(rf"\b{name}\b", nodes), nodes
    assert "n2 (this node)" in nodes, nodes
    print(f"\npanel of n2: {nodes}")


def test_single_node_panel_has_no_cluster(daemons):
    fg = daemons.fedgate(admins={"root": ("administrator", ADMIN_PW)}).start()
    web = Client(f"http://{fg.addr}:5280")
    assert web.signin("root", ADMIN_PW).status == 303
    page = web.get("/status")
    assert page.status == 200 and "<h2>Streams</h2>" in page.text, page.text
    assert "cluster-summary" not in page.text and "<h2>Cluster</h2>" not in page.text


def test_postgresql_restart_then_changes_flow_again(bed):
    """PostgreSQL stopped and started: every node's watch says it lost
    the notifications, reconnects by itself, reads partners and settings
    again, and a later change on n2 is applied on n1 and n3."""
    n1, n2, n3 = bed.node("n1"), bed.node("n2"), bed.node("n3")
    lost = "watching for configuration changes of other nodes: "
    back = "watching for configuration changes of other nodes again"
    seen = {fg.name: (fg.read_log().count(lost), fg.read_log().count(back)) for fg in bed.nodes}
    bed.pg.stop()
    for fg in bed.nodes:
        assert wait_until(lambda: fg.read_log().count(lost) > seen[fg.name][0], 15), \
            f"{fg.name} did not notice:\n{fg.read_log()[-3000:]}"
    bed.pg.start()
    for fg in bed.nodes:
        assert wait_until(lambda: fg.read_log().count(back) > seen[fg.name][1], 20), \
            f"{fg.name} did not come back:\n{fg.read_log()[-3000:]}"
    before = {fg.name: len(applied_lines(fg, "fabrikam.test")) for fg in (n1, n3)}
    # The first commit after the restart may find a connection of the
    # store's pool dead (it says so, saves nothing, and reconnects).
    r = n2.cli("partner", "set", "fabrikam.test", "--description", "after the restart")
    if r.returncode != 0:
        assert "nothing was saved" in r.stdout + r.stderr, r.stdout + r.stderr
        r = n2.cli("partner", "set", "fabrikam.test", "--description", "after the restart")
    bed.check(r)
    for fg in (n1, n3):
        lines = wait_until(lambda: applied_lines(fg, "fabrikam.test")[before[fg.name]:], 10)
        assert lines and lines[0].group(2) == "n2", fg.read_log()[-3000:]
        print(f"\nafter the PostgreSQL restart, {fg.name} applied n2's change "
              f"{lines[0].group(3)} ms after its commit")


def test_unreadable_notification_makes_every_node_read_again(bed):
    """A payload on fedgate_config that is not what the store sends (input
    from another process) is refused with a reason; the node reads
    partners and settings again instead of guessing."""
    said = "a configuration notification could not be read"
    seen = {fg.name: fg.read_log().count(said) for fg in bed.nodes}
    bed.pg.psql("SELECT pg_notify('fedgate_config', '{\"node\": 7}')")
    for fg in bed.nodes:
        assert wait_until(lambda: fg.read_log().count(said) > seen[fg.name], 10), \
            fg.read_log()[-2000:]
        line = [x for x in fg.read_log().splitlines() if said in x][-1]
        assert '"node" is not a name' in line and "read again" in line, line


class HeldDNS:
    """On the bed's DNS address instead of dnsmasq: receives queries and
    answers none, as a DNS server that has become slow; records the names
    asked."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((DNS_ADDR, 53))
        self.sock.settimeout(0.2)
        self.names, self.done = [], False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                data, _ = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            labels, off = [], 12
            while off < len(data) and data[off]:
                labels.append(data[off + 1:off + 1 + data[off]].decode(errors="replace"))
                off += 1 + data[off]
            self.names.append(".".join(labels))

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


def http_status_line(addr, timeout):
    """The first line of the answer to a GET on a node's admin HTTP port:
    served by the node's event loop, nothing from the store needed."""
    with socket.create_connection((addr, 5280), timeout=timeout) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        return s.makefile("rb").readline().decode().strip()


def test_slow_dns_does_not_stop_the_loop(bed):
    """The nodes' dsn names PostgreSQL (host=db.contoso.test): each
    reconnect of the configuration watch looks the name up, and libpq does
    that with a blocking getaddrinfo. With PostgreSQL away and the DNS
    server answering nothing (the resolver told to wait 30 s a try, 5
    tries: a lookup is held 150 s), n1 still answers on its loop well
    within that; once DNS and PostgreSQL are back, every watch listens
    again."""
    n1 = bed.node("n1")
    back = "watching for configuration changes of other nodes again"
    seen = {fg.name: fg.read_log().count(back) for fg in bed.nodes}
    queries = open(bed.bed.dns.log).read()
    assert f"query[A] {PG_NAME} from" in queries, "the nodes never looked PostgreSQL up"
    # This run's namespace has its own resolv.conf (netns.sh); glibc reads
    # it again when it changes.
    with open("/etc/resolv.conf") as f:
        resolv = f.read()
    bed.bed.dns.stop()
    held = HeldDNS()
    try:
        with open("/etc/resolv.conf", "w") as f:
            f.write(resolv + "options timeout:30 attempts:5\n")
        bed.pg.stop()
        assert wait_until(lambda: PG_NAME in held.names, 20), \
            f"no lookup of {PG_NAME} while reconnecting: {held.names}"
        t0 = time.monotonic()
        try:
            line = http_status_line(n1.addr, 60)
        except socket.timeout:
            line = None
        took = time.monotonic() - t0
        assert line is not None and line.startswith("HTTP/"), \
            f"n1 did not answer within 60 s while {PG_NAME} was being looked up: {line}"
        print(f"\nn1 answered HTTP in {took * 1000:.0f} ms while its lookup of {PG_NAME} was "
              f"held ({len(held.names)} queries unanswered so far)")
    finally:
        with open("/etc/resolv.conf", "w") as f:
            f.write(resolv)
        held.close()
        bed.bed.dns.start()
        bed.pg.start()
    for fg in bed.nodes:
        assert wait_until(lambda: fg.read_log().count(back) > seen[fg.name], 60), \
            f"{fg.name} did not come back:\n{fg.read_log()[-3000:]}"
