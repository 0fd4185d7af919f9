"""Fixtures the end-to-end tests share. pytest loads this file for every
test in tests/e2e; tests/browser/conftest.py loads it for the browser tests.

  daemons         makes fedgate daemons and federation beds for one test,
                  and stops them at its end, the last made first
  module_daemons  the same for a whole test module
  fg              a fresh fedgate (`fedgate init` and nothing more), not
                  started; stopped at the end of the test if it was

A test module that needs a different fedgate or world defines a fixture of
its own on top of daemons or module_daemons, with the arguments it needs.
It also makes tests/e2e and tests/bed importable (fgtest, clients, bed).
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bed"))
from bed import Bed  # noqa: E402
from fgtest import Fedgate  # noqa: E402

# In a federation bed, fedgate serves contoso.test at this address.
BED_FEDGATE_ADDR = "127.0.0.11"
# ... and the partner fabrikam.test runs on a Prosody at this one.
BED_PROSODY_ADDR = "127.0.0.12"


class Daemons:
    """What a test starts: fedgate daemons and federation beds (a CA, DNS
    and Prosody servers, tests/bed), stopped in the reverse order."""

    def __init__(self):
        self.made = []

    def fedgate(self, bed=None, users=None, admins=None, partners=(), gateway=(), cert_eku=None,
                **kw):
        """A Fedgate(**kw), not started, holding what the arguments say,
        each added with the CLI, which must succeed: users {jid: password},
        admins {name: (role, password)}, partners [domain or (domain, more
        `partner new` arguments...)], then `gateway set GATEWAY...`.
        With bed: it shows a certificate of the bed's CA and trusts that
        CA (its extendedKeyUsage cert_eku when given), and listens at
        BED_FEDGATE_ADDR unless addr says otherwise."""
        if bed is not None:
            kw.setdefault("addr", BED_FEDGATE_ADDR)
        fg = Fedgate(**kw)
        self.made.append(fg)
        if bed is not None:
            fg.use_bed_certificate(bed, **({"eku": cert_eku} if cert_eku else {}))
        for jid, password in (users or {}).items():
            r = fg.cli("user", "add", jid, input=password + "\n")
            assert r.returncode == 0, r.stderr
        for name, (role, password) in (admins or {}).items():
            r = fg.cli("admin", "add", name, "--role", role, input=password + "\n")
            assert r.returncode == 0, r.stderr
        for partner in partners:
            domain, *args = (partner,) if isinstance(partner, str) else partner
            r = fg.cli("partner", "new", "--domain", domain, *args)
            assert r.returncode == 0, r.stderr
        if gateway:
            r = fg.cli("gateway", "set", *gateway)
            assert r.returncode == 0, r.stderr
        return fg

    def bed(self, a, srv=()):
        """A federation bed whose DNS, started, answers the A records a
        {name: address}, contoso.test at BED_FEDGATE_ADDR, and the SRV
        records srv [(service, target, port[, priority, weight])]."""
        b = Bed()
        self.made.append(b)
        for name, addr in a.items():
            b.dns.add_a(name, addr)
        b.dns.add_a("contoso.test", BED_FEDGATE_ADDR)
        for record in srv:
            b.dns.add_srv(*record)
        b.dns.start()
        return b

    def federation(self, remote_users, local_users, partner=(), prosody_kw=None, **kw):
        """The two organisations most tests need: fabrikam.test on a
        Prosody at BED_PROSODY_ADDR (started) with remote_users {jid:
        password}, both domains' _xmpp-server SRV records, and fedgate for
        contoso.test (not started) with local_users {jid: password} and
        fabrikam.test as a partner (partner: more `partner new`
        arguments). Returns (bed, prosody, fedgate)."""
        bed = self.bed({"fabrikam.test": BED_PROSODY_ADDR},
                       srv=[("_xmpp-server._tcp.fabrikam.test", "fabrikam.test", 5269),
                            ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)])
        prosody = self.prosody(bed, "fabrikam", BED_PROSODY_ADDR, ["fabrikam.test"],
                               users=remote_users, **(prosody_kw or {}))
        fg = self.fedgate(bed=bed, users=local_users, partners=[("fabrikam.test", *partner)],
                          **kw)
        return bed, prosody, fg

    @staticmethod
    def prosody(bed, name, addr, hosts, users=None, **kw):
        """A Prosody of bed (Bed.prosody: extra, tls, ca in kw) with users
        {jid: password} registered, started; the bed stops it."""
        p = bed.prosody(name, addr, hosts, **kw)
        for jid, password in (users or {}).items():
            user, host = jid.split("@")
            p.register(user, host, password)
        p.start()
        return p

    def stop(self):
        """Stops everything, the last made first, then raises the first
        error a stop raised: a daemon must exit cleanly."""
        errors = []
        while self.made:
            try:
                self.made.pop().stop()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def daemons():
    d = Daemons()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def module_daemons():
    d = Daemons()
    yield d
    d.stop()


@pytest.fixture
def fg(daemons):
    return daemons.fedgate()
