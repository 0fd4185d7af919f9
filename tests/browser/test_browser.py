"""Runs each panel*.js (headless Debian chromium through playwright-core)
against a real daemon of its own inside the test's network namespace, and
checks that every screenshot it names was written. FG_SCREENSHOTS (set by
CTest to BUILD/screenshots) says where they go."""
import glob
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from fgtest import FEDGATE  # noqa: E402

ADMIN_PW = "alice's long password"
VIEWER_PW = "victor's long password"
SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(HERE, "panel*.js")))


@pytest.mark.parametrize("script", SCRIPTS)
def test_control_panel_in_chromium(daemons, script):
    assert os.path.exists("/usr/bin/chromium"), "install Debian's chromium (make deps)"
    assert os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")), \
        "run 'npm ci' in tests/browser (make deps does)"
    shots = os.environ.get("FG_SCREENSHOTS", os.path.join(HERE, "screenshots"))
    os.makedirs(shots, exist_ok=True)
    started = __import__("time").time()
    fg = daemons.fedgate(admins={"alice": ("administrator", ADMIN_PW),
                                 "victor": ("viewer", VIEWER_PW)}).start()
    env = dict(os.environ, FG_BASE="http://127.0.0.1:5280", FEDGATE=FEDGATE,
               FG_CONF=fg.conf, FG_ADMIN_PW=ADMIN_PW, FG_VIEWER_PW=VIEWER_PW,
               FG_SCREENSHOTS=shots, HOME=fg.dir)
    r = subprocess.run(["node", os.path.join(HERE, script)], env=env,
                       capture_output=True, text=True, timeout=300)
    print(r.stdout)
    print(r.stderr, file=sys.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "browser: every step passed" in r.stdout
    fg.stop()  # the whole log, before it is read below
    names = re.findall(r"^screenshot: (\S+)$", r.stdout, re.M)
    assert names, f"{script} took no screenshot"
    for name in names:
        p = os.path.join(shots, name)
        # Written by this run, not left from an earlier one.
        assert os.path.getmtime(p) >= started and os.path.getsize(p) > 1000, p
        print(f"screenshot: {p}")
    log = fg.read_log()
    for secret in (ADMIN_PW, VIEWER_PW):
        assert secret not in log
