"""The partner form's "Test these settings" against the bed's real Prosody
(fabrikam.test, a certificate of the bed's CA, SASL EXTERNAL): the probe's
report under the form as typed, in words, with the matrix rows that would
work most secure first; a bad setting shown beside its field; nothing
saved or audited in either case; and "Update allowed methods" (no command
at all). The browser test (tests/browser/panel_lists.js) covers NXDOMAIN,
the viewer and the layout."""
import re

import pytest

from webclient import Client, unescape

ADMIN_PW = "correct horse battery"


@pytest.fixture
def world(daemons):
    bed = daemons.bed({"fabrikam.test": "127.0.0.12", "xmpp.fabrikam.test": "127.0.0.12"},
                      srv=[("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269)])
    daemons.prosody(bed, "fabrikam", "127.0.0.12", ["fabrikam.test"])
    fg = daemons.fedgate(bed=bed, admins={"alice": ("administrator", ADMIN_PW)},
                         gateway=("--stream-establishment-timeout", "5")).start()
    web = Client(f"http://{fg.addr}:5280")
    assert web.signin("alice", ADMIN_PW).status == 303
    return fg, web


def untouched(fg):
    return (fg.cli("audit", "--json").stdout, fg.cli("partner", "export").stdout)


def form(web, **kw):
    f = {"csrf": web.get("/partners/new").csrf(), "mode": "new", "domain": "fabrikam.test",
         "description": "typed, not saved", "additional_domains": "corp.fabrikam.test",
         "partner_type": "federated", "tls": "required", "sasl": "optional",
         "dialback": "true", "keepalive": "true", "connection_limit": "0", "proxy_fqdn": ""}
    f.update(kw)
    return f


def section(page, ident):
    m = re.search(rf'<(section|table|ol|p) id="{ident}".*?</\1>', page, re.S)
    assert m, f"no #{ident} in the page"
    return unescape(re.sub(r"<[^>]+>", " ", m.group(0)))


def words(s):
    return " ".join(s.split())


def test_test_these_settings_shows_the_report_and_saves_nothing(world):
    fg, web = world
    before = untouched(fg)
    r = web.post("/partners/probe", form=form(web))
    assert r.status == 200, r.text
    page = r.text
    assert "probe of fabrikam.test: the settings probed would work" in section(page,
                                                                             "probe-verdict")
    report = words(section(page, "probe-report"))
    assert "Settings tested TLS Required, SASL Optional, dialback True (row " in report
    assert "would authenticate with SASL over TLS" in report
    assert "STARTTLS required TLS" in report, report
    assert re.search(r"TLS TLSv1\.[23] ", report), report
    assert "Certificate valid" in report
    assert "the certificate chain is trusted; the certificate names fabrikam.test" in report
    assert "SASL EXTERNAL accepted" in report, report
    methods = words(section(page, "probe-methods"))
    assert "SASL over TLS works" in methods, methods
    rows = re.findall(r"<tr(?: class=\"tested\")?><td>(\d+)(?: \(these settings\))?</td>"
                      r"<td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>",
                      page)
    assert rows and rows[0][4] == "SASL over TLS", rows
    order = ["SASL over TLS", "TLS Dialback", "TCP Dialback"]
    assert [m for *_, m in rows] == sorted((m for *_, m in rows), key=order.index), rows
    assert all(t in ("Required", "Optional", "Not Supported") for _, t, *_ in rows), rows
    # The row of the settings tested (required, optional, true) stands out.
    tested = re.findall(r'<tr class="tested"><td>(\d+) \(these settings\)</td>'
                        r'<td>Required</td><td>Optional</td><td>True</td>', page)
    assert len(tested) == 1 and tested[0] in [n for n, *_ in rows], rows
    steps = section(page, "probe-steps")
    assert "connected to xmpp.fabrikam.test [127.0.0.12]:5269" in steps, steps
    # The form as typed, above the report, still to be committed.
    assert 'value="typed, not saved"' not in page  # a textarea, not an input
    assert ">typed, not saved</textarea>" in page
    assert ">corp.fabrikam.test</textarea>" in page
    assert '<option value="optional" selected>Optional</option>' in page
    assert '<option value="federated" selected>Federated</option>' in page
    assert untouched(fg) == before


def test_a_bad_setting_is_shown_beside_its_field(world):
    fg, web = world
    before = untouched(fg)
    r = web.post("/partners/probe", form=form(web, tls="sometimes"))
    assert r.status == 422, r.text
    assert 'id="probe-report"' not in r.text
    err = re.search(r'<select id="tls".*?</div>', r.text, re.S).group(0)
    assert 'class="field-error"' in err and "sometimes" in unescape(err), err
    assert untouched(fg) == before


def test_update_allowed_methods_runs_nothing(world):
    fg, web = world
    before = untouched(fg)
    r = web.post("/partners/recompute", form=form(web, tls="optional", sasl="not-supported"))
    assert r.status == 200, r.text
    box = words(section(re.sub(r'<div class="methods" id="methods">', '<p id="methods">',
                               r.text), "methods"))
    assert "settings: TLS Dialback, TCP Dialback" in box, box
    assert 'id="probe-report"' not in r.text
    assert untouched(fg) == before
