#!/usr/bin/python3
"""Cross-node messages/s (issue 17): two fedgate nodes of contoso.test
sharing PostgreSQL and Redis (the cluster bed, tests/e2e/cluster.py), and
the load client of the side-by-side benchmark (build/bench_load) sending
N chat messages over c2s from a user on node A

  cross-node   to a user signed in on node B (forwarded through Redis),
  same node    to a user signed in on node A too,
  single node  the same on a lone fedgate with its SQLite store, no Redis,

runs interleaved, the median of each printed with the nodes' CPU per
100k messages; first with fedgate's archive off (routing alone, as
bench/compare.py measures), then on (every message also written to the
store). Prints figures, asserts nothing about them. Run inside a
network namespace (tests/e2e/netns.sh; `make bench` does):

  FEDGATE=build/fedgate [FG_CLUSTER_N=20000] [FG_CLUSTER_RUNS=3] bench/cross_node.py
"""
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
sys.path.insert(0, os.path.join(TOP, "tests", "bed"))
from cluster import ClusterBed  # noqa: E402
from conftest import Daemons  # noqa: E402

N = int(os.environ.get("FG_CLUSTER_N", "20000"))
RUNS = int(os.environ.get("FG_CLUSTER_RUNS", "3"))
LOAD = os.environ.get("FG_BENCH_LOAD", os.path.join(TOP, "build", "bench_load"))
PASSWORD = "bench-password-1"
USERS = {f"{u}@contoso.test": PASSWORD for u in ("sender", "receiver")}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def spec(addr, user):
    return f"{addr}:5222,contoso.test,{user},{PASSWORD}"


def msgs(frm, to, n):
    # --settle-ms: the receiver's session reaches the sender's node
    # through Redis a moment after it is bound; sent before, a message
    # would go to offline storage. The same wait for every case, outside
    # the measured time.
    r = subprocess.run([LOAD, "msgs", "--from", frm, "--to", to, "-n", str(n),
                        "--settle-ms", "500"],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"bench_load msgs failed: {r.stdout}{r.stderr[-2000:]}")
    m = re.search(r"(\d+) received, (\d+) errors in [\d.]+ s: ([\d.]+) msg/s", r.stdout)
    if not m:
        raise RuntimeError(f"bench_load said: {r.stdout}")
    return float(m.group(3)), int(m.group(1)), int(m.group(2))


def measure(name, frm, to, pids, results):
    c0 = cpu_s(pids)
    rate, got, errors = msgs(frm, to, N)
    cpu = cpu_s(pids) - c0
    results.setdefault(name, []).append((rate, cpu * 1e5 / max(got, 1), errors))
    print(f"  {name:12} {rate:10,.0f} msg/s, nodes' CPU {cpu * 1e5 / max(got, 1):.2f} s per "
          f"100k, {got} received, {errors} errors", flush=True)


def bench(archive):
    """One round of every case with fedgate's archive on or off (the
    archive writes each message to the store: PostgreSQL on the nodes,
    SQLite on the single node); returns {case: median msg/s}."""
    d = Daemons()
    results = {}
    extra = {} if archive else {"archive": {"enabled": "no"}}
    try:
        c = ClusterBed(d, users=USERS, partners=(), nodes=2, prosody=False, extra=extra)
        c.start()
        a, b = c.nodes
        single = d.fedgate(users=USERS, addr="127.0.0.24", extra=extra).start()
        pids = {"cross-node": [a.proc.pid, b.proc.pid], "same node": [a.proc.pid, b.proc.pid],
                "single node": [single.proc.pid]}
        pairs = {"cross-node": (spec(a.addr, "sender"), spec(b.addr, "receiver")),
                 "same node": (spec(a.addr, "sender"), spec(a.addr, "receiver")),
                 "single node": (spec(single.addr, "sender"), spec(single.addr, "receiver"))}
        print(f"cluster bench, archive {'on' if archive else 'off'}: {N} messages per run, "
              f"{RUNS} runs each, interleaved (2 nodes on PostgreSQL + Redis; single node on "
              "SQLite)", flush=True)
        for name, (frm, to) in pairs.items():
            msgs(frm, to, 2000)  # warm-up: sessions, caches, the first forward
        for run in range(RUNS):
            print(f"run {run + 1}:", flush=True)
            for name, (frm, to) in pairs.items():
                measure(name, frm, to, pids[name], results)
    finally:
        d.stop()
    medians = {}
    print(f"cluster bench, archive {'on' if archive else 'off'} (medians):")
    for name, rows in results.items():
        medians[name] = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        print(f"  {name:12} {medians[name]:10,.0f} msg/s   CPU {cpu:.2f} s per 100k   "
              f"errors {sum(r[2] for r in rows)}")
    return medians


def main():
    if not os.path.exists(LOAD):
        sys.exit(f"cluster bench: {LOAD} missing (cmake --build build --target bench_load)")
    figures = {archive: bench(archive) for archive in (False, True)}
    for archive, m in figures.items():
        print(f"cross-node messages/s, archive {'on ' if archive else 'off'}: "
              f"{m['cross-node']:,.0f}   same node {m['same node']:,.0f}   "
              f"single node {m['single node']:,.0f}")


if __name__ == "__main__":
    main()
