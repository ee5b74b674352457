"""The layout holds: one folder per stage, and dependencies that only go one way.

* No dependency cycle between source files: file A depends on file B when A's object file uses a
  symbol B's defines (read with `nm` from the build the suite runs on). A cycle means two files
  that can only be understood, tested or moved together; callbacks (function pointers) are how
  a lower file reaches up.
* No cycle between folders either (the same graph, grouped by folder).
* The lower layers (common, parsers, redact) include nothing from the upper ones (agent, sinks,
  search): they stay pure libraries, fuzzable alone.
"""

import collections
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, tracked

LOWER = ("common", "parsers", "redact")
UPPER = ("agent", "sinks", "search")


def build_dir(spillway_bin):
    return Path(spillway_bin).resolve().parent


def symbol_graph(build):
    """{file: {file it uses a symbol of}} over the agent's libraries, files as source paths
    without the .c."""
    objs = []
    for lib in ("sw_core.dir", "sw_parsers.dir"):
        objs += (build / "CMakeFiles" / lib).rglob("*.c.o")
    if not objs:
        pytest.fail("no object files under %s/CMakeFiles: build first (scripts/build.sh)" % build)
    defs, uses = {}, collections.defaultdict(set)
    for o in objs:
        name = str(o).split(".dir/", 1)[1][:-len(".c.o")]
        out = subprocess.run(["nm", str(o)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in "TDBR":
                defs[p[2]] = name
            elif len(p) == 2 and p[0] == "U":
                uses[name].add(p[1])
    g = collections.defaultdict(set)
    why = {}
    for f, syms in uses.items():
        for s in syms:
            d = defs.get(s)
            if d and d != f:
                g[f].add(d)
                why.setdefault((f, d), s)
    return g, why


def cycles(g):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    nodes = set(g) | {w for vs in g.values() for w in vs}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(g.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(g.get(nxt, ())))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_cycle_between_files(spillway_bin):
    g, why = symbol_graph(build_dir(spillway_bin))
    assert len(g) > 30, "too few files read: %d" % len(g)
    bad = cycles(g)
    detail = ["%s -> %s (%s)" % (a, b, why[(a, b)]) for comp in bad for a in comp for b in comp
              if (a, b) in why]
    assert not bad, "files that depend on each other: %s\n%s" % (bad, "\n".join(detail))


def test_no_cycle_between_folders(spillway_bin):
    g, why = symbol_graph(build_dir(spillway_bin))
    fg = collections.defaultdict(set)
    for a, bs in g.items():
        for b in bs:
            if os.path.dirname(a) != os.path.dirname(b):
                fg[os.path.dirname(a)].add(os.path.dirname(b))
    bad = cycles(fg)
    detail = ["%s -> %s (%s)" % (a, b, s) for (a, b), s in why.items()
              if any(os.path.dirname(a) in c and os.path.dirname(b) in c
                     and os.path.dirname(a) != os.path.dirname(b) for c in bad)]
    assert not bad, "folders that depend on each other: %s\n%s" % (bad, "\n".join(detail[:20]))


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def test_lower_layers_include_nothing_above():
    bad = []
    for p in tracked("*.c", "*.h"):
        rel = p.relative_to(REPO)
        if rel.parts[0] not in LOWER:
            continue
        for inc in INCLUDE.findall(p.read_text()):
            target = os.path.normpath(os.path.join(str(rel.parent), inc))
            if target.split("/")[0] in UPPER or inc.split("/")[0] in UPPER:
                bad.append("%s includes %s" % (rel, inc))
    assert not bad, "\n".join(bad)


def test_each_stage_has_its_folder():
    for folder in ("agent/config", "agent/tail", "agent/buffer", "agent/retention", "agent/http", "agent/journal"):
        assert list((REPO / folder).glob("*.c")), folder
    top = sorted(p.name for p in (REPO / "agent").glob("*.c"))
    assert set(top) <= {"main.c", "agent.c", "pipeline.c", "cli.c", "cli_common.c", "cli_search.c"}, top


def test_a_cycle_is_found():
    """The checker itself: a planted cycle is reported."""
    g = {"a/x": {"a/y"}, "a/y": {"b/z"}, "b/z": {"a/x"}, "c/w": {"a/x"}}
    assert cycles(g) == [["a/x", "a/y", "b/z"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
