"""The daemon's log: [log] file with a reopen for logrotate (SIGUSR1), and
journald's format when standard error is the journal (issue 12 item 6)."""
import os
import pwd
import re
import signal
import subprocess
import time

from fgtest import FEDGATE, Peer

NOBODY = pwd.getpwnam("nobody")


def wait_for(path, pattern, timeout=10):
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        if os.path.exists(path):
            text = open(path).read()
            if re.search(pattern, text):
                return text
        time.sleep(0.05)
    raise AssertionError(f"{path} never matched {pattern!r}:\n{text}")


def test_log_file_reopened_after_logrotate_moved_it(daemons):
    fg = daemons.fedgate()
    logfile = os.path.join(fg.dir, "fedgate.log.d", "fedgate.log")
    os.mkdir(os.path.dirname(logfile))
    text = open(fg.conf).read().replace("[log]\n", f"[log]\nfile = {logfile}\n", 1)
    # As a service would: switch to an account after opening the file.
    text = text.replace("[server]\n", "[server]\nuser = nobody\n", 1)
    open(fg.conf, "w").write(text)
    for d in (fg.dir, os.path.dirname(logfile)):
        os.chown(d, NOBODY.pw_uid, NOBODY.pw_gid)

    proc = subprocess.Popen([FEDGATE, "serve", "-c", fg.conf], stderr=subprocess.PIPE,
                            text=True)
    try:
        first = wait_for(logfile, r"ready: serving")
        assert re.search(r"(?m)^\d{4}-\d\d-\d\dT[\d:.]+Z info privs: running as nobody:", first)
        st = os.stat(logfile)
        # Created by fedgate while root, given to the account, 0640.
        assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o640), st

        os.rename(logfile, logfile + ".1")
        Peer().open()  # a line written between the move and the reopen
        wait_for(logfile + ".1", r"s2s-in #\d+")
        assert not os.path.exists(logfile)
        proc.send_signal(signal.SIGUSR1)
        new = wait_for(logfile, r"log file reopened \(SIGUSR1\)")
        p = Peer()
        p.open()
        assert p.wait_header() is not None
        new = wait_for(logfile, r"s2s-in #\d+")
        assert "ready: serving" not in new
        # The new file was made by the account, after the switch.
        assert os.stat(logfile).st_uid == NOBODY.pw_uid
        assert "log file reopened" not in open(logfile + ".1").read()
    finally:
        proc.terminate()
        rc = proc.wait(timeout=15)
    assert rc == 0, proc.stderr.read()
    assert "stopped" in open(logfile).read()
    assert proc.stderr.read() == ""  # everything went to the file


def test_journal_format_when_stderr_is_the_journal(daemons):
    fg = daemons.fedgate()
    out = os.path.join(fg.dir, "journal.txt")
    with open(out, "w") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        proc = subprocess.Popen([FEDGATE, "serve", "-c", fg.conf], stderr=f, env=env)
    try:
        text = wait_for(out, r"ready: serving")
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    lines = open(out).read().splitlines()
    assert lines, text
    for line in lines:
        assert re.match(r"<[3467]>(error|warning|info|debug) ", line), line
    assert any(line.startswith("<6>info serve: fedgate ") for line in lines), lines
    # run_as_root = yes (init ran as root) is a warning.
    assert any(line.startswith("<4>warning privs: running as root") for line in lines)


def test_reload_reopens_the_log_file(daemons):
    fg = daemons.fedgate()
    logfile = os.path.join(fg.dir, "fedgate.log")
    text = open(fg.conf).read().replace("[log]\n", f"[log]\nfile = {logfile}\n", 1)
    open(fg.conf, "w").write(text)
    proc = subprocess.Popen([FEDGATE, "serve", "-c", fg.conf], stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(logfile, r"ready: serving")
        os.rename(logfile, logfile + ".1")
        r = fg.cli("reload")
        assert r.returncode == 0, r.stderr
        new = wait_for(logfile, r"reload: done")
        assert "ready: serving" not in new
        # [server] user and run_as_root wait for a restart; the file moves
        # at once.
        other = os.path.join(fg.dir, "other.log")
        text = open(fg.conf).read().replace(f"file = {logfile}", f"file = {other}")
        text = text.replace("run_as_root = yes", "run_as_root = yes\nuser = nobody")
        open(fg.conf, "w").write(text)
        r = fg.cli("reload")
        assert r.returncode == 0, r.stderr
        assert "[server] user" in r.stdout, r.stdout
        moved = wait_for(other, r"reload: done")
        assert re.search(r"\[server\] user changed \(.*\) but needs a restart", moved), moved
        assert os.stat(other).st_uid == 0  # still root: nothing switched
        # A file that cannot be opened refuses the reload; logging goes on.
        text = open(fg.conf).read().replace(f"file = {other}",
                                            "file = /nonexistent-fg/x.log")
        open(fg.conf, "w").write(text)
        r = fg.cli("reload")
        assert r.returncode == 1
        assert "cannot open the log file /nonexistent-fg/x.log" in r.stderr + r.stdout
        wait_for(other, r"cannot open the log file /nonexistent-fg/x.log")
    finally:
        proc.terminate()
        rc = proc.wait(timeout=15)
    assert rc == 0, proc.stderr.read()
