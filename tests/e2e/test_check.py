"""`fedgate check` as a health check: real certificates (the bed's CA and
fedgate init's own), a real DNS server (the bed's dnsmasq on 127.0.0.53,
named by the configuration's [dns] resolv_conf), real sockets holding the
ports, a real daemon, a store another user cannot write."""
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess

from fgtest import FEDGATE

SRV_OK = [("_xmpp-server._tcp.contoso.test", "contoso.test", 5269),
          ("_xmpp-client._tcp.contoso.test", "contoso.test", 5222)]


def gateway(daemons, srv=SRV_OK, a=None):
    """A fresh fedgate (fedgate init: a self-signed certificate) whose
    resolver is the bed's DNS server, which serves the records srv."""
    bed = daemons.bed(a or {}, srv=srv)
    fg = daemons.fedgate()
    resolv = os.path.join(fg.dir, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.53\n")
    set_key(fg, "resolv_conf", resolv)
    return fg, bed


def set_key(fg, key, value):
    text = open(fg.conf).read()
    text, n = re.subn(rf"(?m)^{key} =.*$", f"{key} = {value}", text)
    assert n == 1, key
    with open(fg.conf, "w") as f:
        f.write(text)


def use_cert(fg, cert, key, ca_file=""):
    shutil.copy(cert, os.path.join(fg.dir, "certs", "contoso.test.pem"))
    shutil.copy(key, os.path.join(fg.dir, "certs", "contoso.test.key"))
    set_key(fg, "ca_file", ca_file)


def check(fg, *pre):
    r = subprocess.run([*pre, FEDGATE, "check", "-c", fg.conf], capture_output=True, text=True,
                       timeout=60)
    print(r.stdout, r.stderr)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def lines(r, level):
    """The findings of one level, without the level word."""
    return [m.group(1) for m in re.finditer(rf"(?m)^  {level} +(.*)$", r.stdout)]


def fix_after(r, text):
    """The fix line under the finding that contains text."""
    out = r.stdout.splitlines()
    for i, line in enumerate(out):
        if text in line and i + 1 < len(out) and out[i + 1].strip().startswith("fix: "):
            return out[i + 1].strip()
    raise AssertionError(f"no fix under {text!r}:\n{r.stdout}")


def test_good_setup_warns_only_about_self_signed(daemons):
    fg, _ = gateway(daemons)
    r = check(fg)
    assert r.returncode == 0, r.stdout
    assert lines(r, "error") == []
    warnings = lines(r, "warning")
    assert len(warnings) == 1 and "is self-signed" in warnings[0], warnings
    assert "partners will only accept dialback" in warnings[0]
    ok = lines(r, "ok")
    assert "[tls] certificate covers contoso.test: the certificate names contoso.test as " \
           "DNS-ID contoso.test" in ok, ok
    assert "[tls] key %s/certs/contoso.test.key matches the certificate" % fg.dir in ok
    assert "_xmpp-server._tcp.contoso.test: SRV 0 0 5269 contoso.test -> 127.0.0.11" in ok
    assert "_xmpp-client._tcp.contoso.test: SRV 0 0 5222 contoso.test -> 127.0.0.11" in ok
    # Direct TLS is off, and no record says otherwise.
    assert "_xmpps-client._tcp.contoso.test: no SRV record, as it should be: [listen] " \
           "c2s_tls (Direct TLS) is off" in ok, ok
    assert "[listen] s2s 127.0.0.1:5269 is free" in ok
    # Sections come in order, then the summary.
    heads = ("configuration", "certificates", "dns", "listeners", "store")
    pos = [r.stdout.index(f"\n{h}\n") for h in heads]
    assert pos == sorted(pos), r.stdout
    assert r.stdout.rstrip().splitlines()[-1] == f"summary: 0 errors, 1 warning, {len(ok)} ok"


def test_certificate_for_another_domain_is_an_error(daemons):
    fg, bed = gateway(daemons)
    cert, key = bed.ca.issue("other", ["fabrikam.test", "www.fabrikam.test"], days=90)
    use_cert(fg, cert, key, bed.ca.cert)
    r = check(fg)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert len(errors) == 1, errors
    assert "does not cover the local domain contoso.test" in errors[0]
    assert "fabrikam.test" in errors[0] and "www.fabrikam.test" in errors[0]
    assert "DNS subjectAltName for contoso.test" in fix_after(r, "does not cover")
    assert r.stdout.rstrip().splitlines()[-1].startswith("summary: 1 error,")


def test_key_that_does_not_match_is_an_error(daemons):
    fg, bed = gateway(daemons)
    _, other_key = bed.ca.issue("stranger", ["contoso.test"])
    shutil.copy(other_key, os.path.join(fg.dir, "certs", "contoso.test.key"))
    r = check(fg)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert len(errors) == 1 and "does not match the certificate" in errors[0], errors


def test_expired_certificate_is_an_error(daemons):
    fg, bed = gateway(daemons)
    cert, key = bed.ca.issue_expired("old", ["contoso.test"])
    use_cert(fg, cert, key, bed.ca.cert)
    r = check(fg)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert len(errors) == 1, errors
    assert "expired on 2020-02-01 00:00 UTC" in errors[0]


def test_certificate_expiring_in_10_days_is_a_warning(daemons):
    fg, bed = gateway(daemons)
    cert, key = bed.ca.issue("soon", ["contoso.test"], days=10)
    use_cert(fg, cert, key, bed.ca.cert)
    r = check(fg)
    assert r.returncode == 0, r.stdout
    assert lines(r, "error") == []
    warnings = lines(r, "warning")
    assert len(warnings) == 1 and re.search(r"expires on \d{4}-\d\d-\d\d \d\d:\d\d UTC, in (9|10) "
                                            r"days", warnings[0]), warnings
    assert "renew it" in fix_after(r, "expires on")
    # Issued by the bed's CA, which ca_file names: the chain is complete.
    assert any(x.startswith("[tls] chain complete up to a trust anchor of [tls] ca_file")
               for x in lines(r, "ok")), r.stdout


def test_chain_without_its_issuer_names_the_missing_link(daemons):
    fg, bed = gateway(daemons)
    cert, key = bed.ca.issue("orphan", ["contoso.test"], days=90)
    use_cert(fg, cert, key, "")  # the system store does not know the bed's CA
    r = check(fg)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert len(errors) == 1, errors
    assert "chain incomplete: it stops at /CN=contoso.test (depth 0), whose issuer " \
           "/CN=fedgate test ca is neither in" in errors[0], errors
    assert "the system trust store" in errors[0]


def test_server_auth_only_certificate_is_fine_and_said(daemons, tmp_path):
    # What public CAs issue since 2026 (issue 15): no warning, but check
    # says what the certificate allows and what a strict peer would do.
    fg, bed = gateway(daemons)
    key, csr, cert = (str(tmp_path / n) for n in ("k.pem", "r.csr", "c.pem"))
    ext = tmp_path / "ext"
    ext.write_text("extendedKeyUsage=serverAuth\nsubjectAltName=DNS:contoso.test\n")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=contoso.test"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", bed.ca.cert, "-CAkey",
                    bed.ca.key, "-CAcreateserial", "-out", cert, "-days", "60", "-extfile",
                    str(ext)], check=True, capture_output=True)
    use_cert(fg, cert, key, bed.ca.cert)
    r = check(fg)
    assert r.returncode == 0, r.stdout
    assert lines(r, "warning") == [], r.stdout
    ok = [x for x in r.stdout.splitlines() if "extendedKeyUsage is serverAuth only" in x]
    assert len(ok) == 1, r.stdout
    assert "SASL EXTERNAL" in ok[0] and "dialback" in ok[0]


def test_srv_absent_is_a_warning_with_the_record_to_add(daemons):
    fg, _ = gateway(daemons, srv=())
    r = check(fg)
    assert r.returncode == 0, r.stdout
    warnings = lines(r, "warning")
    s2s = [w for w in warnings if w.startswith("_xmpp-server._tcp.contoso.test")]
    assert s2s == ["_xmpp-server._tcp.contoso.test: no SRV record: partners fall back to the "
                   "address of contoso.test (127.0.0.11) on port 5269"], warnings
    assert fix_after(r, "_xmpp-server._tcp.contoso.test: no SRV") == \
        'fix: publish "_xmpp-server._tcp.contoso.test. 3600 IN SRV 5 0 5269 contoso.test."'
    assert any(w.startswith("_xmpp-client._tcp.contoso.test: no SRV record") for w in warnings)


def test_srv_to_a_name_without_addresses_is_an_error(daemons):
    fg, _ = gateway(daemons, srv=[("_xmpp-server._tcp.contoso.test", "nowhere.test", 5269),
                                  ("_xmpp-client._tcp.contoso.test", "contoso.test", 5222)])
    r = check(fg)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert errors == ["_xmpp-server._tcp.contoso.test: SRV 0 0 5269 nowhere.test points to a "
                      "name without addresses"], errors


def test_srv_on_another_port_is_a_warning(daemons):
    fg, _ = gateway(daemons, srv=[("_xmpp-server._tcp.contoso.test", "contoso.test", 5270),
                                  ("_xmpp-client._tcp.contoso.test", "contoso.test", 5222)])
    r = check(fg)
    assert r.returncode == 0, r.stdout
    assert any("port 5270 is not a [listen] s2s port (5269)" in w for w in lines(r, "warning"))


def test_listener_held_by_another_process_is_an_error(daemons):
    fg, _ = gateway(daemons)
    s = socket.socket()
    # As any daemon does: a connection of an earlier test in TIME_WAIT on
    # the port must not keep this one from binding it.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 5269))
    s.listen()
    try:
        r = check(fg)
    finally:
        s.close()
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert errors == [f"[listen] s2s 127.0.0.1:5269 is held by another process: python3 "
                      f"(pid {os.getpid()}); no fedgate answers on [listen] control "
                      f"{fg.dir}/fedgate.sock"], errors
    assert "ss -ltnp" in fix_after(r, "is held by another process")


def test_listener_held_by_the_running_fedgate_is_ok(daemons):
    fg, _ = gateway(daemons)
    fg.start()
    r = check(fg)
    assert r.returncode == 0, r.stdout
    ok = lines(r, "ok")
    for kind, port in (("s2s", 5269), ("c2s", 5222), ("admin", 5280)):
        assert f"[listen] {kind} 127.0.0.1:{port} is held by this fedgate (pid {fg.proc.pid})" \
            in ok, ok
    assert any(x.startswith(f"store {fg.dir}/fedgate.db: PRAGMA quick_check ok") for x in ok)
    assert fg.alive()


AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def readable_to_all(fg, *names):
    """Lets nobody read the gateway's folders and the files named; the
    rest stays root's, and nothing becomes writable."""
    for path in (fg.dir, os.path.join(fg.dir, "certs")):
        os.chmod(path, 0o755)
    for name in names:
        os.chmod(os.path.join(fg.dir, name), 0o644)


def test_store_not_writable_is_an_error(daemons):
    fg, _ = gateway(daemons)
    r = fg.cli("partner", "new", "--domain", "fabrikam.test")  # makes the store
    assert r.returncode == 0, r.stderr
    db = os.path.join(fg.dir, "fedgate.db")
    # The check runs as nobody, who may read everything but the store's
    # folder and the store itself stay root's to write.
    readable_to_all(fg, "fedgate.conf", "certs/contoso.test.key", "resolv.conf", "fedgate.db")
    r = check(fg, *AS_NOBODY)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert errors == [f"store {db} is not writable by user nobody (uid 65534) (permission "
                      f"denied; owner uid 0, mode 0644)"], errors
    assert "chown the store" in fix_after(r, "is not writable")
    # Readable, so its schema and integrity are still checked.
    assert any(x.startswith(f"store {db}: schema ") for x in lines(r, "ok")), r.stdout


def test_store_from_a_newer_fedgate_is_an_error(daemons):
    fg, _ = gateway(daemons)
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    db = os.path.join(fg.dir, "fedgate.db")
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 999")
    con.close()
    r = check(fg)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert len(errors) == 1 and "written by a newer fedgate (schema 999" in errors[0], errors


def test_configuration_errors_skip_the_other_sections(daemons):
    fg, _ = gateway(daemons)
    set_key(fg, "level", "loud")
    r = check(fg)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert len(errors) == 1 and re.match(rf"{re.escape(fg.conf)}:\d+: ", errors[0]), errors
    assert r.stdout.count("skipped: it needs a valid configuration") == 4, r.stdout
    assert "certificates" in r.stdout and "is self-signed" not in r.stdout


def test_config_switch_prints_the_effective_configuration(daemons):
    fg, _ = gateway(daemons)
    r = fg.cli("check", "--config")
    assert r.returncode == 0, r.stderr
    assert "[server]" in r.stdout and "domains = contoso.test" in r.stdout
    set_key(fg, "level", "loud")
    r = fg.cli("check", "--config")
    assert r.returncode == 1 and "1 error in" in r.stderr, r.stderr


def test_srv_target_dot_is_reported(daemons):
    """"." means the service is explicitly unavailable: right for direct
    TLS, which fedgate does not serve; an error for the s2s service."""
    fg, bed = gateway(daemons, srv=[("_xmpp-server._tcp.contoso.test", ".", 0),
                                    ("_xmpps-server._tcp.contoso.test", ".", 0),
                                    ("_xmpp-client._tcp.contoso.test", "contoso.test", 5222)])
    r = check(fg)
    assert r.returncode == 1, r.stdout
    assert lines(r, "error") == [
        "_xmpp-server._tcp.contoso.test: service explicitly unavailable (SRV target .): "
        "partners will not connect to contoso.test at all"], r.stdout
    assert "_xmpps-server._tcp.contoso.test: service explicitly unavailable (SRV target .)" \
        in lines(r, "ok")


def test_resolver_that_does_not_answer_is_one_error(daemons):
    fg, _ = gateway(daemons)
    with open(os.path.join(fg.dir, "resolv.conf"), "w") as f:
        f.write("nameserver 127.0.0.99\n")  # nothing there
    r = check(fg)
    assert r.returncode == 1, r.stdout
    assert lines(r, "error") == ["no record could be looked up: no answer within 10 s (every "
                                 "lookup of every local domain)"], r.stdout


def test_unreadable_key_is_named_as_permission_denied(daemons):
    fg, _ = gateway(daemons)
    readable_to_all(fg, "fedgate.conf", "resolv.conf")  # the key stays 0600 root
    r = check(fg, *AS_NOBODY)
    assert r.returncode == 1, r.stdout
    errors = lines(r, "error")
    assert f"[tls] key {fg.dir}/certs/contoso.test.key cannot be read: permission denied " \
           f"for user nobody (uid 65534)" in errors, errors
    # Nor may nobody create the store in root's folder.
    assert f"store {fg.dir}/fedgate.db does not exist and its folder {fg.dir} is not " \
           f"writable for user nobody (uid 65534)" in errors, errors
    assert len(errors) == 2, errors


def test_daemon_another_user_cannot_ask_is_a_warning(daemons):
    """Checked as a user who may not use the control socket (0660 root),
    a port the daemon holds cannot be told from another process's."""
    fg, _ = gateway(daemons)
    fg.start()
    readable_to_all(fg, "fedgate.conf", "certs/contoso.test.key", "resolv.conf")
    r = check(fg, *AS_NOBODY)
    warnings = [w for w in lines(r, "warning") if w.startswith("[listen] s2s")]
    assert warnings == [f"[listen] s2s 127.0.0.1:5269 is held, by this fedgate or another "
                        f"process: cannot reach the daemon on {fg.dir}/fedgate.sock: "
                        f"Permission denied"], r.stdout
    assert fg.alive()


def test_json_has_the_same_findings(daemons):
    fg, bed = gateway(daemons)
    cert, key = bed.ca.issue("other", ["fabrikam.test"], days=90)
    use_cert(fg, cert, key, bed.ca.cert)
    text = check(fg)
    r = subprocess.run([FEDGATE, "check", "--json", "-c", fg.conf], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    doc = json.loads(r.stdout)
    assert doc["config"] == fg.conf
    assert [s["name"] for s in doc["sections"]] == ["configuration", "certificates", "dns",
                                                    "listeners", "store"]
    found = [f for s in doc["sections"] for f in s["findings"]]

    def days(xs):
        # The two runs may straddle the second at which the certificate's
        # whole days left go from 90 to 89.
        return [re.sub(r"\(\d+ days\)", "(N days)", x) for x in xs]
    assert days(f["text"] for f in found if f["level"] == "error") == days(lines(text, "error"))
    assert days(f["text"] for f in found if f["level"] == "ok") == days(lines(text, "ok"))
    bad = [f for f in found if f["level"] == "error"][0]
    assert "fabrikam.test" in bad["text"] and bad["fix"] in fix_after(text, bad["text"])
    assert doc["summary"] == {"errors": 1, "warnings": 0, "ok": len(lines(text, "ok"))}


def test_account_the_daemon_would_refuse_or_use(daemons):
    """The store section says whether `fedgate serve`, started as root,
    would run, and as whom: privs.c's own verdict."""
    fg, _ = gateway(daemons)
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    text = open(fg.conf).read()
    # Root, no user, no run_as_root: serve would refuse.
    with open(fg.conf, "w") as f:
        f.write(re.sub(r"(?m)^run_as_root = yes$", "", text))
    r = check(fg)
    assert r.returncode == 1, r.stdout
    assert "fedgate serve, started by user root (uid 0), would refuse to run" \
        in lines(r, "error"), r.stdout
    assert "user = " in fix_after(r, "would refuse to run"), r.stdout
    # A user who cannot reach the store: refused with the chown to run.
    with open(fg.conf, "w") as f:
        f.write(re.sub(r"(?m)^run_as_root = yes$", "user = nobody", text))
    os.chmod(fg.dir, 0o700)
    r = check(fg)
    assert r.returncode == 1, r.stdout
    assert "chown" in fix_after(r, "would refuse to run"), r.stdout
    # Given the store's folder and file, the account is fine.
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(fg.dir, 0o755)
    db = os.path.join(fg.dir, "fedgate.db")
    for path in (fg.dir, db):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    r = check(fg)
    assert "fedgate serve started as root switches to nobody:nogroup, who can use the store" \
        in lines(r, "ok"), r.stdout
    assert not any("would refuse" in e for e in lines(r, "error")), r.stdout
    os.chown(fg.dir, 0, 0)
