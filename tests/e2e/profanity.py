"""Debian's profanity (a curses XMPP client) driven in tmux for the
end-to-end tests: each instance has a HOME of its own (profanity keeps its
accounts, OMEMO keys, chat database and debug log there), a tmux server on
a socket of its own with a fixed window size, lines typed with send-keys
and the screen read with capture-pane. Everything is polled against a
deadline; nothing sleeps to let something happen.

Profanity trusts the bed's CA through `tls.certpath` (a c_rehash'ed folder
holding it): libstrophe verifies the server's certificate for the account's
domain with OpenSSL, so a wrong certificate still fails the test.
"""
import os
import re
import shutil
import subprocess
import time

WIDTH, HEIGHT = 200, 50


class Timeout(AssertionError):
    pass


def compact(screen):
    """A screen without its blank lines and trailing blanks, for reports."""
    return "\n".join(line.rstrip() for line in screen.splitlines() if line.strip())


class Profanity:
    """One profanity signed in (or signing in) as jid/resource at addr."""

    def __init__(self, root, name, jid, password, addr, cafile, resource="prof", port=5222,
                 prefs=None):
        """root: a folder for this instance's files; name: a label unique
        in the test (the tmux session and socket are named for it).
        prefs: {group: {key: value}} written into profrc."""
        self.name = name
        self.jid = jid
        self.home = os.path.join(root, f"profanity-{name}")
        self.config = os.path.join(self.home, ".config")
        self.data = os.path.join(self.home, ".local", "share")
        self.socket = os.path.join(self.home, "tmux.sock")
        self.started = False
        self.device = None  # this device's OMEMO ID, once omemo_keys() made it
        certs = os.path.join(self.home, "certs")
        for d in (os.path.join(self.config, "profanity"), os.path.join(self.data, "profanity"),
                  certs):
            os.makedirs(d, exist_ok=True)
        shutil.copy(cafile, os.path.join(certs, "ca.pem"))
        subprocess.run(["openssl", "rehash", certs], check=True, capture_output=True)
        groups = {
            "ui": {"splash": "false", "vercheck": "false", "titlebar": "true",
                   "statusbar.show.name": "true", "wrap": "false", "intype": "false",
                   "time.chat": "%H:%M", "time.console": "off", "roster": "false",
                   "occupants": "false", "beep": "false", "flash": "false"},
            "connection": {"tls.certpath": certs, "autoping": "0", "reconnect": "0",
                       "mam": "false"},
            "notifications": {"message": "false", "typing": "false", "invite": "false",
                              "sub": "false", "room": "off", "remind": "0"},
            "chatstates": {"enabled": "false"},
            "logging": {"chlog": "true"},
            "presence": {"autoaway.mode": "off"},
        }
        for group, values in (prefs or {}).items():
            groups.setdefault(group, {}).update(values)
        with open(os.path.join(self.config, "profanity", "profrc"), "w") as f:
            for group, values in groups.items():
                f.write(f"[{group}]\n" + "".join(f"{k}={v}\n" for k, v in values.items()) + "\n")
        # The account, as `/account add` + `/account set` would write it:
        # `profanity -a JID` then signs in without a password prompt.
        with open(os.path.join(self.data, "profanity", "accounts"), "w") as f:
            f.write(f"[{jid}]\nenabled=true\njid={jid}\nresource={resource}\n"
                    f"password={password}\nserver={addr}\nport={port}\ntls.policy=force\n")
        self.log_file = os.path.join(self.data, "profanity", "logs", "profanity.log")

    def set_resource(self, resource):
        """Signs in as jid/resource from the next start() (profanity keeps
        the account file up to date itself: only that line changes)."""
        path = os.path.join(self.data, "profanity", "accounts")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"(?m)^resource=.*$", f"resource={resource}", text))

    def _tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              text=True, check=check)

    def start(self):
        env = {"HOME": self.home, "XDG_CONFIG_HOME": self.config, "XDG_DATA_HOME": self.data,
               "TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        # The environment reaches profanity through `env -i`: a tmux server
        # passes its own on only in part.
        cmd = ["env", "-i"] + [f"{k}={v}" for k, v in env.items()] + \
              ["profanity", "-l", "DEBUG", "-a", self.jid]
        # A tmux.conf of our own, not the user's: remain-on-exit keeps the
        # last screen if profanity dies, for the failure report.
        conf = os.path.join(self.home, "tmux.conf")
        with open(conf, "w") as f:
            f.write("set -g remain-on-exit on\nset -g history-limit 0\n")
        self._tmux("-f", conf, "new-session", "-d", "-s", self.name, "-x", str(WIDTH),
                   "-y", str(HEIGHT), *cmd)
        self.started = True
        return self

    def screen(self):
        """What the window shows now, one string, lines joined ("-J": a
        line profanity wrapped comes back whole)."""
        r = self._tmux("capture-pane", "-p", "-J", "-t", self.name, check=False)
        return r.stdout

    def type(self, line):
        """Types line and Enter, as a user would."""
        self._tmux("send-keys", "-t", self.name, "-l", line)
        self._tmux("send-keys", "-t", self.name, "Enter")

    def wait(self, pattern, timeout=30, what=None):
        """Polls the screen until the regular expression pattern matches;
        returns the match. On time-out raises with the screen."""
        deadline = time.time() + timeout
        while True:
            text = self.screen()
            m = re.search(pattern, text)
            if m:
                return m
            if time.time() > deadline:
                raise Timeout(f"{self.name}: {what or pattern!r} never appeared on screen:\n"
                              f"{compact(text)}")
            time.sleep(0.1)

    def wait_log(self, pattern, timeout=30, since=0):
        """Polls profanity's debug log (from offset since: a length of
        read_log() taken before) for pattern; returns the match."""
        deadline = time.time() + timeout
        while True:
            m = re.search(pattern, self.read_log()[since:])
            if m:
                return m
            if time.time() > deadline:
                raise Timeout(f"{self.name}: {pattern!r} never appeared in {self.log_file}")
            time.sleep(0.1)

    def read_log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def command(self, line, expect, timeout=30):
        """Types a command and waits for expect on screen."""
        self.type(line)
        return self.wait(expect, timeout)

    def connected(self, timeout=30):
        """Waits until the account is signed in (the console says so)."""
        self.wait(re.escape(self.jid) + r"\S* logged in successfully", timeout,
                  "logged in successfully")
        return self

    def window(self, jid, timeout=15):
        """Opens (or focuses) the chat window with jid: its title bar
        (the first line) names jid."""
        self.type(f"/msg {jid}")
        return self.wait(r"\A\s*" + re.escape(jid) + r"\b", timeout, f"the window of {jid}")

    def console(self):
        """Focuses the console (window 1), where profanity reports events."""
        self.type("/win 1")
        return self.wait(r"\A\s*Profanity\.", 10, "the console")

    def says(self, sender, text, enc="-", timeout=30):
        """Waits for a chat line "HH:MM ENC SENDER: TEXT" in the focused
        window (enc: "-" plain, "~" OMEMO; sender "me" or a JID, full or
        bare). Returns the match."""
        pattern = (r"(?m)^\d\d:\d\d " + re.escape(enc) + " " + re.escape(sender) +
                   r"(/\S+)?: " + re.escape(text) + r"\s*$")
        return self.wait(pattern, timeout, f"{enc} {sender}: {text}")

    def omemo_keys(self, timeout=30):
        """Generates this device's OMEMO keys and waits until the server
        holds the account's device list with this device in it (the PEP
        notification of that list reaches this client, +notify being in
        its caps). Returns the device ID.

        Profanity 0.13.1 adds its device to the list it reads first; a
        list nobody made yet gets item-not-found, which it takes as a
        missing list only with the legacy code="404" (Prosody 0.12 sends
        none), and then never publishes. `/omemo clear_device_list`
        publishes an empty list; its notification brings profanity back
        to "Going to publish own device ID"."""
        m = self.command("/omemo gen", r"OMEMO crytographic materials generated\. "
                         r"Your Device ID is (\d+)", 60)
        device = self.device = m.group(1)
        mark = len(self.read_log())
        self.type("/omemo clear_device_list")
        try:
            self.wait_log(r'RECV: <message [^\n]*from="' + re.escape(self.jid) +
                          r'"[^\n]*axolotl\.devicelist[^\n]*<device id="' + device + '"',
                          timeout, since=mark)
        except Timeout as e:
            raise Timeout(f"{e}\nno PEP notification of {self.jid}'s device list with device "
                          f"{device}; the exchange:\n" + self.exchange("pubsub", since=mark))
        return device

    def exchange(self, word, since=0):
        """The stanzas profanity sent and received (its debug log) that
        contain word, each cut at 600 characters: for failure reports."""
        return "\n".join(line[:600] for line in self.read_log()[since:].splitlines()
                         if (": SENT: " in line or ": RECV: " in line) and word in line)

    def quit(self, timeout=15):
        """`/quit`, waits for profanity to exit, then ends the tmux server:
        start() may then run this instance again (same HOME)."""
        self.type("/quit")
        deadline = time.time() + timeout
        while self._tmux("display-message", "-p", "-t", self.name, "#{pane_dead}",
                         check=False).stdout.strip() != "1":
            if time.time() > deadline:
                raise Timeout(f"{self.name}: profanity did not exit on /quit:\n"
                              f"{compact(self.screen())}")
            time.sleep(0.1)
        self.stop()

    def stop(self):
        """Quits profanity if it runs and kills this instance's tmux
        server; safe to call twice."""
        if not self.started:
            return
        self.started = False
        self._tmux("kill-server", check=False)
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass

    def report(self):
        """The screen and the end of the debug log, for a failed test."""
        # The last lines, each cut short: OMEMO bundles fill whole screens.
        tail = "\n".join(line[:400] for line in self.read_log().splitlines()[-80:])
        return (f"===== {self.name} ({self.jid}) screen =====\n{compact(self.screen())}\n"
                f"===== {self.name} log tail ({self.log_file}) =====\n{tail}\n")


def befriend(a, b, timeout=30):
    """Mutual presence subscription between two profanity users, each
    approving the other's request as a user would (`/sub request`, then
    `/sub allow` when the console reports the request), unless the
    server approves for them (fedgate does for a federated partner's
    users, SPEC §4): then the requester's log shows the "subscribed".
    Both must show their console."""
    for asker, asked in ((a, b), (b, a)):
        mark = len(asker.read_log())
        asker.type(f"/sub request {asked.jid}")
        request = f"Received authorization request from {re.escape(asker.jid)}"
        approved = (r'RECV: <presence (?=[^\n]*type="subscribed")(?=[^\n]*from="' +
                    re.escape(asked.jid) + '")')
        allowed = False
        deadline = time.time() + timeout
        while not re.search(approved, asker.read_log()[mark:]):
            if not allowed and re.search(request, asked.screen()):
                asked.type(f"/sub allow {asker.jid}")
                allowed = True
            if time.time() > deadline:
                raise Timeout(f"{asker.name}'s subscription request to {asked.jid} was never "
                              f"approved ({'allowed' if allowed else 'not seen'} by "
                              f"{asked.name}):\n{compact(asked.screen())}")
            time.sleep(0.1)


class Profanities:
    """The profanity instances of one test: made with new(), all stopped
    by stop(), and on failure report() prints every screen and log tail."""

    def __init__(self, root):
        self.root = root
        self.all = []

    def new(self, name, *args, **kw):
        p = Profanity(self.root, name, *args, **kw)
        self.all.append(p)
        return p

    def report(self):
        return "".join(p.report() for p in self.all)

    def stop(self):
        for p in reversed(self.all):
            p.stop()
