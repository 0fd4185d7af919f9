"""Reload without a restart (issue 12): SIGHUP and `fedgate reload` read the
configuration file, certificates and keys again. New connections get the
new certificate while streams already open keep theirs; a file with errors
is refused, each error logged with its line, and the daemon keeps serving as
it was; keys that need a restart are reported as such; `fedgate stop` shuts
the daemon down cleanly and returns once it has exited."""
import os
import re
import shutil
import signal
import subprocess
import tempfile

from fgtest import FEDGATE, Fedgate, Peer, NS_STREAM

DOMAIN = "contoso.test"


def new_certificate(fg):
    """A second certificate for the same domain, made the way `fedgate init`
    makes one, copied over the files the configuration names."""
    other = tempfile.mkdtemp(prefix="fgtest-cert-")
    r = subprocess.run([FEDGATE, "init", "--domain", DOMAIN, "--dir", other],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for ext in ("pem", "key"):
        shutil.copy(os.path.join(other, "certs", f"{DOMAIN}.{ext}"),
                    os.path.join(fg.dir, "certs", f"{DOMAIN}.{ext}"))
    shutil.rmtree(other)


def tls_peer():
    """An s2s stream upgraded to TLS; returns (peer, the server's certificate)."""
    p = Peer()
    p.open(to=DOMAIN)
    assert p.wait_header() is not None
    p.features()
    tls = p.starttls()
    return p, tls.getpeercert(binary_form=True)


def still_up(p):
    """The old stream works: a restart after TLS gets a header and features."""
    p.open(to=DOMAIN)
    assert p.wait_header() is not None, "the old stream was closed by the reload"
    p.features()


def reloads_done(fg):
    return len(re.findall(r"reload: done", fg.read_log()))


def sighup_and_wait(fg, pattern):
    before = len(re.findall(pattern, fg.read_log()))
    fg.proc.send_signal(signal.SIGHUP)
    import time
    deadline = time.time() + 10
    while time.time() < deadline:
        if len(re.findall(pattern, fg.read_log())) > before:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} after SIGHUP:\n{fg.read_log()}")


def test_sighup_new_certificate_for_new_connections_old_stream_stays():
    fg = Fedgate(DOMAIN).start()
    try:
        old_peer, old_cert = tls_peer()
        new_certificate(fg)
        sighup_and_wait(fg, r"reload: done")
        new_peer, new_cert = tls_peer()
        assert new_cert != old_cert, "a new connection still got the old certificate"
        still_up(old_peer)
        # The reload names the certificate new connections now get.
        import hashlib
        fp = hashlib.sha256(new_cert).hexdigest().upper()
        fp = ":".join(fp[i:i + 2] for i in range(0, len(fp), 2))
        assert fp in fg.read_log(), fg.read_log()
        new_peer.close()
        old_peer.close()
        assert fg.alive()
    finally:
        fg.stop()


def test_invalid_file_is_refused_and_the_daemon_keeps_serving():
    fg = Fedgate(DOMAIN).start()
    try:
        p, cert = tls_peer()
        good = open(fg.conf).read()
        lines = good.count("\n")
        with open(fg.conf, "a") as f:
            f.write("[limits]\noutput_queue = lots\n")
        sighup_and_wait(fg, r"was not reloaded")
        log = fg.read_log()
        # Each error with its file and line.
        assert re.search(rf"error reload: {re.escape(fg.conf)}:{lines + 2}: .*output_queue",
                         log), log
        assert fg.alive()
        # Still serving, still with the certificate it had.
        q, cert2 = tls_peer()
        assert cert2 == cert
        still_up(p)
        # `fedgate reload` reaches the daemon although the file has errors,
        # prints the errors and exits 1; nothing changed.
        r = fg.cli("reload")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert f"{fg.conf}:{lines + 2}:" in r.stderr and "output_queue" in r.stderr, r.stderr
        assert "keeps running" in r.stderr, r.stderr
        # A certificate that does not match its key is refused the same way.
        open(fg.conf, "w").write(good)
        shutil.copy(os.path.join(fg.dir, "certs", f"{DOMAIN}.key"), "/tmp/fgtest-oldkey")
        new_certificate(fg)
        shutil.copy("/tmp/fgtest-oldkey", os.path.join(fg.dir, "certs", f"{DOMAIN}.key"))
        os.unlink("/tmp/fgtest-oldkey")
        r = fg.cli("reload")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "key" in r.stderr and "not reloaded" in r.stderr, r.stderr
        q2, cert3 = tls_peer()
        assert cert3 == cert, "a refused reload changed the certificate"
        for x in (p, q, q2):
            x.close()
    finally:
        fg.stop()


def test_fedgate_reload_reports_key_by_key():
    fg = Fedgate(DOMAIN).start()
    try:
        text = open(fg.conf).read()
        text = re.sub(r"(?m)^level = .*$", "level = debug", text)
        text = re.sub(r"(?m)^s2s = .*$", "s2s = 127.0.0.1:5270", text)
        if re.search(r"(?m)^#? *stream_header = ", text):
            text = re.sub(r"(?m)^#? *stream_header = .*$", "stream_header = 7s", text)
        elif "[timeouts]\n" in text:
            text = text.replace("[timeouts]\n", "[timeouts]\nstream_header = 7s\n", 1)
        else:
            text += "\n[timeouts]\nstream_header = 7s\n"
        open(fg.conf, "w").write(text)
        r = fg.cli("reload")
        assert r.returncode == 0, r.stderr
        out = r.stdout
        applied = out.split("applied:")[1].split("changed, but needs a restart")[0]
        restart = out.split("needs a restart")[1]
        assert "[log] level: info -> debug" in applied, out
        assert "[timeouts] stream_header: 30 -> 7" in applied, out
        assert "[listen] s2s: 127.0.0.1:5269 -> 127.0.0.1:5270" in restart, out
        assert "[listen] s2s" not in applied, out
        # The restart key kept its running value: the old port still serves,
        # the new one is not bound.
        p = Peer(5269)
        p.open(to=DOMAIN)
        assert p.wait_header() is not None
        p.close()
        try:
            Peer(5270)
            raise AssertionError("the s2s listener moved without a restart")
        except ConnectionRefusedError:
            pass
        # The applied log level is in effect: a debug line appears.
        p = Peer(5269)
        p.open(to=DOMAIN)
        p.wait_header()
        p.close()
        fg.wait_log(r"\bdebug\b", timeout=5)
        # The applied header timeout is in effect for new streams.
        import time
        p = Peer(5269)
        t0 = time.time()
        p.wait_closed(timeout=15)
        assert 5 < time.time() - t0 < 12, time.time() - t0
        # Nothing changed since: a second reload says so.
        r = fg.cli("reload")
        assert r.returncode == 0 and "no key changed" not in r.stdout  # s2s still differs
        assert "[log] level" not in r.stdout, r.stdout
    finally:
        fg.stop()


def test_fedgate_stop_tells_peers_and_waits_for_the_exit():
    fg = Fedgate(DOMAIN).start()
    p = Peer()
    p.open(to=DOMAIN)
    assert p.wait_header() is not None
    p.features()
    r = fg.cli("stop")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert re.search(r"fedgate \(pid \d+\) stopped", r.stdout), r.stdout
    # It returned once the process was gone.
    assert fg.proc.poll() is not None, "fedgate stop returned before the daemon exited"
    assert fg.proc.returncode == 0, fg.read_log()
    cond, _ = p.stream_error()
    assert cond == "system-shutdown"
    assert "fedgate stop: shutting down" in fg.read_log()
    fg.proc = None
    fg.log.close()
    # Not running: stop and reload say so and exit 1.
    for cmd in ("stop", "reload"):
        r = fg.cli(cmd)
        assert r.returncode == 1, (cmd, r.stdout, r.stderr)
        assert "not running" in r.stderr or "no daemon" in r.stderr, r.stderr


def test_stop_answers_a_test_im_under_way():
    """A test-im waiting for a partner that never answers, when the daemon
    stops: the CLI gets the daemon's answer, not a closed socket."""
    import socket
    import time
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", 5999))
    silent.listen(8)
    fg = Fedgate(DOMAIN).start()
    try:
        r = fg.cli("partner", "new", "silent.test", "--proxy-fqdn", "127.0.0.1:5999")
        assert r.returncode == 0, r.stderr
        im = subprocess.Popen([FEDGATE, "test-im", "--to", "bob@silent.test", "-c", fg.conf],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fg.wait_log(r"runs 'test-im'")
        time.sleep(0.3)
        r = fg.cli("stop")
        assert r.returncode == 0, r.stderr
        out, err = im.communicate(timeout=15)
        assert "no valid answer" not in err, err
        assert "stopping" in (out + err), (out, err)
        fg.proc = None
        fg.log.close()
    finally:
        silent.close()
        fg.stop()
