#!/usr/bin/env python3
"""make lint: the include rule of src/ (docs/internals.md, "Layers").

A file includes headers only from its own folder or a lower layer. xmpp/
and cmd/ share a rank and must not include each other. Besides the rule,
the file-level include graph (foo.c and foo.h are one node) must have no
circle, inside a folder too. Prints one line per violation, file:line
first, and exits 1 when there is any.
"""
import os
import re
import sys

# Folder -> rank. Equal ranks in different folders may not include each other.
LAYERS = {
    "core": 0,   # pure: XML, stream parser, JIDs, conf, policy, SASL, maps, log, counters
    "net": 1,    # connections, TLS, DNS
    "store": 2,  # SQLite engine, migrations, partners, users, admins, audit
    "xmpp": 3,   # stream core and roles, routes, sessions, router, presence, roster
    "cmd": 3,    # the command table, transactions, handlers
    "front": 4,  # CLI, control socket, HTTP, API, panel, metrics
    "app": 5,    # main, serve wiring, init
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main(top):
    src = os.path.join(top, "src")
    where = {}  # header name -> folder
    files = []
    problems = []
    for folder in sorted(os.listdir(src)):
        path = os.path.join(src, folder)
        if not os.path.isdir(path):
            continue
        if folder not in LAYERS:
            problems.append(f"src/{folder}/: a folder that is no layer "
                            f"(add it to LAYERS in scripts/lint-layers.py)")
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith((".c", ".h")):
                files.append((folder, name))
                if name.endswith(".h"):
                    if name in where:
                        problems.append(f"src/{folder}/{name}: the same header name is in "
                                        f"src/{where[name]}/; header names must be unique")
                    where[name] = folder
    for name in sorted(os.listdir(src)):
        if name.endswith((".c", ".h")):
            problems.append(f"src/{name}: a file outside the layer folders")

    graph = {}  # "folder/stem" -> {"folder/stem": (file, line)}
    for folder, name in files:
        node = f"{folder}/{name.rsplit('.', 1)[0]}"
        edges = graph.setdefault(node, {})
        with open(os.path.join(src, folder, name), encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = os.path.basename(m.group(1))
                here = f"src/{folder}/{name}:{lineno}"
                target = where.get(inc)
                if target is None:
                    problems.append(f"{here}: includes \"{inc}\", which is in no layer folder")
                    continue
                if target != folder:
                    if LAYERS[target] > LAYERS[folder]:
                        problems.append(
                            f"{here}: includes {target}/{inc}, a layer above {folder}/ "
                            f"(tell the upper layer through a hook it registers)")
                    elif LAYERS[target] == LAYERS[folder]:
                        problems.append(
                            f"{here}: includes {target}/{inc}; {folder}/ and {target}/ are "
                            f"side by side and must not include each other")
                tnode = f"{target}/{inc.rsplit('.', 1)[0]}"
                if tnode != node:
                    edges.setdefault(tnode, here)

    # Circles: depth-first search, reporting each back edge's circle once.
    state = {}
    seen_cycles = set()

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt, here in sorted(graph.get(node, {}).items()):
            if state.get(nxt) == 1:
                cyc = stack[stack.index(nxt):]
                key = frozenset(cyc)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    problems.append(f"{here}: closes an include circle: "
                                    + " -> ".join(cyc + [nxt]))
            elif nxt in graph and state.get(nxt) is None:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if state.get(node) is None:
            visit(node, [])

    for p in problems:
        print(p)
    if problems:
        print(f"lint: {len(problems)} include problem(s) in src/", file=sys.stderr)
        return 1
    print(f"lint: {len(files)} files in {len(set(f for f, _ in files))} layer folders, "
          f"every include points down or sideways within a folder, no include circle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()))
