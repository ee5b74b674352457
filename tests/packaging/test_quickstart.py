"""A new user's first run: the default build needs nothing beyond the bootstrap's build set, and
every command of the README's quick start works on the demo and prints something real."""

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, run

README = REPO / "README.md"
DEMO_DATA = REPO / "packaging/examples/demo-data"


# ---- the default build's packages -------------------------------------------------------------

def bootstrap_list(name):
    """The package names of one array (build_pkgs, test_pkgs, ...) in scripts/bootstrap.sh."""
    text = (REPO / "scripts/bootstrap.sh").read_text()
    m = re.search(r"^%s=\(([^)]*)\)" % name, text, re.M)
    assert m, "no %s=(...) in scripts/bootstrap.sh" % name
    return set(m.group(1).split())


def make_build_flags():
    """The -D flags the Makefile's `build` target (what `make run` builds) passes to CMake."""
    text = (REPO / "Makefile").read_text()
    m = re.search(r"^build:\n((?:\t.*\n)+)", text, re.M)
    assert m, "no build target in the Makefile"
    return dict(re.findall(r"-D(\w+)=(\w+)", m.group(1)))


def cmake_statements(path):
    """(command, args) of a CMake file, with include()d files expanded in place."""
    text = re.sub(r"#[^\n]*", "", path.read_text())
    for cmd, args in re.findall(r"(\w+)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)", text):
        cmd = cmd.lower()
        if cmd == "include" and args.strip().endswith(".cmake"):
            yield from cmake_statements(REPO / args.strip())
        else:
            yield cmd, args.split()


def default_build_requirements():
    """pkg-config modules and programs the default build asks for, evaluating if() on the options
    as the Makefile sets them (an option the Makefile does not set keeps its default)."""
    flags = make_build_flags()
    options, stack, modules, programs = {}, [], [], []

    def truth(cond):
        neg = cond[:1] == ["NOT"]
        cond = cond[1:] if neg else cond
        if len(cond) == 1 and cond[0] in options:
            v = options[cond[0]]
        else:
            v = True  # not an option: count what it guards as needed (the safe side)
        return v != neg

    for cmd, args in cmake_statements(REPO / "CMakeLists.txt"):
        if cmd == "option":
            name, default = args[0], args[-1]
            options[name] = flags.get(name, default) in ("ON", "TRUE", "1")
        elif cmd == "if":
            stack.append(truth(args))
        elif cmd == "else":
            stack[-1] = not stack[-1]
        elif cmd == "endif":
            stack.pop()
        elif all(stack) and cmd == "pkg_check_modules":
            modules += [a for a in args[1:] if a not in ("REQUIRED", "IMPORTED_TARGET", "QUIET")]
        elif all(stack) and cmd == "find_program":
            programs.append(args[1])
    assert options.get("BUILD_TESTING") is False, "make run must not build the test binaries"
    return modules, programs


def owner_package(path):
    r = run(["dpkg", "-S", str(path)])
    assert r.returncode == 0, "no Debian package owns %s: %s" % (path, r.stderr)
    return r.stdout.split(":")[0].strip()


def test_default_build_needs_only_the_build_set():
    build = bootstrap_list("build_pkgs")
    modules, programs = default_build_requirements()
    assert "libuv" in modules and "sqlite3" in modules, modules
    missing = []
    for mod in modules:
        r = run(["pkg-config", "--variable=pcfiledir", mod])
        assert r.returncode == 0, "pkg-config does not know %s" % mod
        pkg = owner_package(Path(r.stdout.strip()) / (mod + ".pc"))
        if pkg not in build:
            missing.append("%s (from %s)" % (pkg, mod))
    for prog in programs:
        pkg = owner_package(Path(run(["which", prog], check=True).stdout.strip()).resolve())
        if pkg not in build:
            missing.append("%s (program %s)" % (pkg, prog))
    for tool in ("cmake", "make", "gcc", "pkg-config"):
        assert tool in build, "the build set lacks %s" % tool
    assert not missing, "the default build needs packages the bootstrap's build set lacks: %s" % missing


def test_test_only_modules_are_in_the_test_set():
    """The other half: what only tests need (cmocka) is installed by `bootstrap.sh test`."""
    test = bootstrap_list("test_pkgs")
    text = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"if\(BUILD_TESTING\)(.*?)endif\(\)", text, re.S).group(1)
    for mod in re.findall(r"pkg_check_modules\(\w+ (?:REQUIRED )?(?:IMPORTED_TARGET )?([\w.-]+)", block):
        r = run(["pkg-config", "--variable=pcfiledir", mod], check=True)
        assert owner_package(Path(r.stdout.strip()) / (mod + ".pc")) in test, mod


# ---- the README's quick start ------------------------------------------------------------------

def quickstart_blocks():
    text = README.read_text()
    m = re.search(r"^## Quick start.*?\n(.*?)^## ", text, re.S | re.M)
    assert m, "README has no Quick start section"
    blocks = re.findall(r"```sh\n(.*?)```", m.group(1), re.S)
    assert len(blocks) >= 2, "quick start: a block of set-up commands, then one to try"
    cmds = [[re.sub(r"\s+#.*$", "", l).strip() for l in b.splitlines()] for b in blocks]
    return [[c for c in b if c] for b in cmds]


def test_quick_start_has_exactly_two_setup_commands():
    setup = quickstart_blocks()[0]
    assert setup == ["make run", "make test"], setup


class Reader(threading.Thread):
    """Collects a process's combined output without blocking the test."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.lines = proc, []

    def run(self):
        for line in self.proc.stdout:
            self.lines.append(line)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    pytest.fail("timed out after %ss waiting for %s" % (timeout, what))


def shipped_lines():
    p = DEMO_DATA / "out/shipped.ndjson"
    return p.read_text().count("\n") if p.exists() else 0


def run_readme_command(cmd):
    """One command of the README's second block, run as the user would (in the repo root);
    `tail -f` is read until it has printed a few lines, then stopped."""
    if cmd.startswith("tail -f "):
        p = subprocess.Popen(cmd, shell=True, cwd=REPO, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
        r = Reader(p)
        r.start()
        try:
            wait_for(lambda: len(r.lines) >= 5, 30, "%s to print" % cmd)
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(10)
        return 0, "".join(r.lines)
    r = run(cmd, shell=True, cwd=REPO, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_readme_quick_start_runs_on_the_demo():
    """`make run` starts the demo; each command the README shows beside it succeeds and prints
    something real (shipped records, the status of each source, search matches)."""
    import shutil
    shutil.rmtree(DEMO_DATA, ignore_errors=True)  # a fresh demo, as on a first run
    agent = subprocess.Popen(["make", "run"], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = Reader(agent)
    out.start()
    try:
        wait_for(lambda: shipped_lines() >= 10000 or agent.poll() is not None, 300,
                 "the demo to ship its first records")
        assert agent.poll() is None, "make run exited:\n" + "".join(out.lines)[-4000:]
        for cmd in quickstart_blocks()[1]:
            rc, text = run_readme_command(cmd)
            assert rc == 0, "%s exited %d:\n%s" % (cmd, rc, text[-3000:])
            lines = [l for l in text.splitlines() if l.strip()]
            assert len(lines) >= 3, "%s printed too little:\n%s" % (cmd, text)
            if " search " in cmd:
                pattern = re.search(r"'([^']+)'\s*$", cmd).group(1)
                assert all(re.search(pattern, l) for l in lines), text[:3000]
            if " status " in cmd:
                for source in ("docker", "pods", "app"):
                    assert source in text, text
    finally:
        os.killpg(agent.pid, signal.SIGINT)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(10)
    log = "".join(out.lines)
    assert "spillway demo" in log
    assert '"level":"error"' not in log, log[-4000:]
