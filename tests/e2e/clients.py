"""Real XMPP clients for the end-to-end tests (slixmpp, Debian's), and the
CLI run from inside their event loop."""
import asyncio
import json
import os
import sys

import slixmpp

sys.path.insert(0, os.path.dirname(__file__))
from fgtest import FEDGATE  # noqa: E402


class User(slixmpp.ClientXMPP):
    """A user that records what arrives: inbox (messages), errors
    (message errors), and `online` once the session started."""

    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ca_certs = cafile
        self.inbox = asyncio.Queue()
        self.errors = asyncio.Queue()
        self.online = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", lambda m: self.inbox.put_nowait(m))
        self.add_event_handler("message_error", lambda m: self.errors.put_nowait(m))

    async def on_start(self, _):
        self.send_presence()
        self.online.set()


def run(coro):
    """Runs a scenario on a loop of its own and cancels whatever slixmpp
    leaves pending, so one test's clients never leak into the next."""
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
    """`fedgate ARGS -c CONF` without blocking the clients' loop."""
    proc = await asyncio.create_subprocess_exec(
        FEDGATE, *args, "-c", fg.conf, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode, out.decode(), err.decode()


def status_rows(fg, remote, direction):
    """The rows of `fedgate status --json` for remote in direction
    ("in", "out")."""
    rc, out, err = run(cli(fg, "status", "--json"))
    assert rc == 0, err
    return [r for r in json.loads(out)
            if r.get("remote") == remote and r.get("direction") == direction]


def round_trip(fg, cafile, jid, password, addr, body="test"):
    """The federation both ways for one partner user: the user comes online
    at their server (addr), fedgate sends them a test message (out), they
    write to alice@contoso.test and fedgate's error comes back (in, then
    out). Returns (test-im status, its report, the message or None, the
    error stanza)."""
    async def scenario():
        user = User(f"{jid}/t", password, cafile)
        user.connect((addr, 5222))
        await asyncio.wait_for(user.online.wait(), 20)
        # The partner user's client sends no receipts: no need to wait.
        rc, out, err = await cli(fg, "test-im", "--to", jid, "--body", body, "--wait", "0")
        got = await asyncio.wait_for(user.inbox.get(), 15) if rc == 0 else None
        user.send_message(mto="alice@contoso.test", mbody="back", mtype="chat")
        back = await asyncio.wait_for(user.errors.get(), 20)
        user.disconnect()
        await asyncio.wait_for(user.disconnected, 5)
        return rc, out + err, got, back
    return run(scenario())
