"""TLS session resumption on client streams ([tls] session_tickets): a
client that connected once shows its ticket and skips the full handshake;
a reload, or session_tickets = 0, makes every connection full again."""
import ssl

import pytest

from c2sclient import Client

USER, PASSWORD = "alice@contoso.test", "alice's long password"


def client_context(fg):
    """One context per client, as a client program has: Python resumes
    only sessions of the context that made them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(fg.cert)
    return ctx


def connect(ctx, session=None):
    """STARTTLS, PLAIN, then a clean TLS close; returns (resumed, the
    session to offer next time)."""
    c = Client()
    c.begin_with(ctx, session)
    kind, _ = c.plain("alice", PASSWORD)
    assert kind == "success"  # a resumed session authenticates like any other
    resumed, next_session = c.sock.session_reused, c.sock.session
    c.send("</stream:stream>")
    try:
        c.sock.unwrap()  # close_notify: the session stays resumable
    except (OSError, ssl.SSLError):
        pass
    c.close()
    return resumed, next_session


@pytest.fixture
def fg(daemons):
    return daemons.fedgate(users={USER: PASSWORD})


def test_a_returning_client_resumes_until_a_reload(fg):
    fg.start()
    ctx = client_context(fg)
    resumed, s1 = connect(ctx)
    assert not resumed
    resumed, s2 = connect(ctx, s1)
    assert resumed, "the second connection did a full handshake"
    resumed, s3 = connect(ctx, s2)
    assert resumed
    # A reload makes new TLS contexts with new keys: tickets end.
    r = fg.cli("reload")
    assert r.returncode == 0, r.stderr
    resumed, s4 = connect(ctx, s3)
    assert not resumed
    resumed, _ = connect(ctx, s4)
    assert resumed


def test_session_tickets_0_means_full_handshakes(fg):
    text = open(fg.conf).read().replace("[tls]\n", "[tls]\nsession_tickets = 0\n", 1)
    with open(fg.conf, "w") as f:
        f.write(text)
    fg.start()
    ctx = client_context(fg)
    resumed, s1 = connect(ctx)
    assert not resumed
    resumed, _ = connect(ctx, s1)
    assert not resumed
