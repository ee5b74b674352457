"""Packaging and deployment checks: the container image, Kubernetes manifests, systemd unit,
Debian package, CI workflows and lint of every YAML and shell file.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/packaging
The agent binary is $SPILLWAY_BIN, default <repo>/build/spillway (scripts/build.sh builds it).
Tools come from scripts/bootstrap.sh test (kubectl, yamllint, shellcheck, systemd-analyze,
dpkg-dev, the npm workflow validator). Tests that need root (chroot, mount namespaces, setpriv)
say so when they skip; on the project's machines and CI they run as root.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "build" / "spillway"


def run(cmd, timeout=300, check=False, **kw):
    """subprocess.run with text output captured; cmd is a list."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(cmd, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s"
                             % (" ".join(map(str, cmd)), r.returncode, r.stdout, r.stderr))
    return r


def project_version():
    m = re.search(r"project\(spillway VERSION ([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    assert m, "no project(spillway VERSION x.y.z) in CMakeLists.txt"
    return m.group(1)


def tracked(*patterns):
    """Repository files matching git pathspecs (untracked new files included, ignored ones not)."""
    r = run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard",
             "--", *patterns])
    if r.returncode == 0:
        return sorted({REPO / l for l in r.stdout.splitlines() if (REPO / l).is_file()})
    skip = {"node_modules", ".git", "demo-data"}  # not a git checkout: walk the tree
    out = set()
    for pat in patterns:
        for p in (REPO.rglob(pat) if "/" not in pat else [REPO / pat]):
            rel = p.relative_to(REPO).parts
            if p.is_file() and not skip & set(rel) and not rel[0].startswith("build"):
                out.add(p)
    return sorted(out)


def is_root():
    return os.geteuid() == 0


def need_root(what):
    if not is_root():
        pytest.skip("%s needs root (chroot, mounts or setpriv); run the suite as root" % what)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def public_tmpdir(prefix):
    """A directory other users can traverse (pytest's tmp_path parents are mode 0700, which
    would confound the tests that run the agent as another user)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return Path(d)


@pytest.fixture(scope="session")
def spillway_bin():
    path = Path(os.environ.get("SPILLWAY_BIN") or DEFAULT_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("spillway binary not found or not executable: %s (run scripts/build.sh)"
                    % path)
    return path


@pytest.fixture(scope="session")
def deb():
    """The Debian package, built once per session by `make package` (scripts/package.sh),
    unless $SPILLWAY_DEB names one already built."""
    given = os.environ.get("SPILLWAY_DEB")
    if given:
        return Path(given)
    r = run(["make", "-s", "-C", str(REPO), "--no-print-directory", "package"], timeout=1800)
    assert r.returncode == 0, "make package failed:\n%s\n%s" % (r.stdout[-3000:], r.stderr[-6000:])
    debs = [REPO / line.strip() for line in r.stdout.splitlines() if line.strip().endswith(".deb")]
    assert len(debs) == 1 and debs[0].is_file(), "package.sh printed %r" % r.stdout
    return debs[0]


@pytest.fixture(scope="session")
def deb_root(deb, tmp_path_factory):
    root = tmp_path_factory.mktemp("debroot")
    run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


@pytest.fixture
def scratch():
    """A world-traversable scratch directory, removed afterwards."""
    d = public_tmpdir("spillway-pkg-")
    yield d
    shutil.rmtree(d, ignore_errors=True)
