"""Helpers of the retention and disk-pressure tests: running `spillway rotate`, reading archives,
snapshots of a directory (bytes and timestamps), small mounted filesystems, and writer
processes that append numbered lines while rotation runs."""

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import to_yaml

ARCHIVE_RE = re.compile(r"^(?P<base>.+)\.(?P<num>[1-9][0-9]{0,8})(?P<zst>\.zst)?$")
TMP_RE = re.compile(r"\.tmp-[A-Za-z0-9]{6}$")
ACTION_RE = re.compile(r"^(?P<kind>[a-z-]+) (?P<path>\S+)(?: -> (?P<to>\S+))? bytes=(?P<bytes>\d+)")


def rotate(spillway_bin, config, dry_run=False, timeout=120, check=True):
    """Runs `spillway rotate -c config [--dry-run]`; returns (plan lines, log records, proc)."""
    args = [spillway_bin, "rotate", "-c", str(config)] + (["--dry-run"] if dry_run else [])
    p = subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    out = p.stdout.decode()
    if check:
        assert p.returncode == 0, "spillway rotate failed (%d):\n%s\n%s" % (
            p.returncode, out, p.stderr.decode(errors="replace")[-3000:])
    plan = [l for l in out.splitlines() if l and not l.startswith("#")]
    return plan, log_records(p.stderr), p


def log_records(data):
    """The agent's JSON log lines (bytes or str), parsed; other lines are skipped."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    recs = []
    for line in data.splitlines():
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
    return recs


def actions(recs):
    """retention log records "action=KIND k=v ..." as dicts, in order."""
    out = []
    for r in recs:
        m = r.get("msg", "")
        if r.get("component") != "retention" or not m.startswith("action="):
            continue
        d = {}
        for tok in m.split(" "):
            if "=" in tok:
                k, v = tok.split("=", 1)
                d[k] = v
        out.append(d)
    return out


def windows(recs):
    """(t0, t1) monotonic-ns race windows logged by copytruncate and truncate_shipped."""
    out = []
    for a in actions(recs):
        w = a.get("window_ns")
        if w:
            t0, t1 = w.split("..")
            out.append((int(t0), int(t1)))
    return out


def write_config(path, cfg):
    Path(path).write_text(to_yaml(cfg))
    return path


def archive_bytes(path):
    """Contents of a live file or an archive (.zst decompressed with the zstd CLI)."""
    path = str(path)
    if path.endswith(".zst"):
        p = subprocess.run(["zstd", "-dc", "-q", path], capture_output=True, timeout=120)
        assert p.returncode == 0, "zstd -dc %s failed: %s" % (path, p.stderr.decode())
        return p.stdout
    with open(path, "rb") as f:
        return f.read()


def zstd_test(path):
    p = subprocess.run(["zstd", "-t", "-q", str(path)], capture_output=True, timeout=120)
    return p.returncode == 0, p.stderr.decode(errors="replace")


def family(d, base):
    """Names in directory d that are base or base's archives, sorted."""
    return sorted(n for n in os.listdir(d) if n == base or
                  (ARCHIVE_RE.match(n) and ARCHIVE_RE.match(n).group("base") == base))


def temporaries(d):
    return sorted(n for n in os.listdir(d) if TMP_RE.search(n))


def listdir_noatime(d):
    """os.listdir that does not move the directory's atime (O_NOATIME: we are root or owner)."""
    fd = os.open(str(d), os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOATIME", 0))
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def snapshot(d, with_content=True):
    """{name: (size, ino, atime_ns, mtime_ns, ctime_ns, sha256)} for every entry of directory d
    and "." for d itself. Listing uses O_NOATIME; content hashes are read FIRST (reading moves
    atime), then every stat is taken."""
    d = Path(d)
    names = sorted(listdir_noatime(d))
    hashes = {}
    if with_content:
        for n in names:
            p = d / n
            if p.is_file() and not p.is_symlink():
                hashes[n] = hashlib.sha256(p.read_bytes()).hexdigest()
    out = {}
    for n in names + ["."]:
        st = os.lstat(d / n)
        out[n] = (st.st_size, st.st_ino, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, hashes.get(n))
    return out


def usage_percent(path):
    """Used percentage as df (and spillway) compute it."""
    v = os.statvfs(path)
    used = (v.f_blocks - v.f_bfree) * v.f_frsize
    avail = v.f_bavail * v.f_frsize
    return 100.0 * used / (used + avail), used, avail


def need_root(what):
    if os.geteuid() != 0:
        pytest.skip("%s needs root (mount a size-limited tmpfs); run the suite as root" % what)


@contextlib.contextmanager
def tmpfs(path, size, opts=""):
    """A size-limited tmpfs mounted at path for the duration (root only)."""
    need_root("this test")
    Path(path).mkdir(parents=True, exist_ok=True)
    o = "size=%s" % size + ("," + opts if opts else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", o, "tmpfs", str(path)], check=True)
    try:
        yield Path(path)
    finally:
        for _ in range(50):  # a child may still hold a file open for a moment: bounded retries
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)  # bounded retry of the unmount, not a wait on the system under test
        else:
            subprocess.run(["umount", "-l", str(path)])


# --------------------------------------------------------------------------------------------
# writer processes


WRITER = r'''
import os, signal, sys, time
path, mode, out, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
reopen = [False]
signal.signal(signal.SIGHUP, lambda s, f: reopen.__setitem__(0, True))
stop = [False]
signal.signal(signal.SIGTERM, lambda s, f: stop.__setitem__(0, True))
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
times = open(out + ".times", "w")
seq = 0
pad = "x" * 60
gap = 1.0 / rate if rate > 0 else 0
while not stop[0]:
    if reopen[0] and mode == "reopen":
        reopen[0] = False
        os.close(fd)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    line = ("seq=%09d %s\n" % (seq, pad)).encode()
    t0 = time.monotonic_ns()
    os.write(fd, line)
    t1 = time.monotonic_ns()
    times.write("%d %d %d\n" % (seq, t0, t1))
    seq += 1
    if gap:
        time.sleep(gap)
times.close()
with open(out, "w") as f:
    f.write(str(seq))
'''


class Writer:
    """A child process appending "seq=NNNNNNNNN xxx..." lines to path (O_APPEND), `rate` lines per
    second. mode "reopen": SIGHUP makes it reopen path (a writer for method rename);
    "keep": it never reopens (a writer for copytruncate). stop() returns the number written;
    times() maps seq -> (t0, t1), the monotonic interval around its write()."""

    def __init__(self, path, workdir, mode, rate=2000):
        self.out = str(Path(workdir) / ("writer-%d" % os.getpid()))
        script = Path(workdir) / "writer.py"
        script.write_text(WRITER)
        self.proc = subprocess.Popen([sys.executable, str(script), str(path), mode, self.out, str(rate)],
                                     stdin=subprocess.DEVNULL)
        self.pid_file = Path(workdir) / "writer.pid"
        self.pid_file.write_text("%d\n" % self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        return int(Path(self.out).read_text())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def times(self):
        t = {}
        with open(self.out + ".times") as f:
            for line in f:
                s, a, b = line.split()
                t[int(s)] = (int(a), int(b))
        return t


SEQ_LINE = re.compile(rb"^seq=(\d{9}) ")


def seqs_in(d, base):
    """Every seq number in base and its archives in d: {seq: count}, and per-file lists."""
    counts = {}
    for n in family(d, base):
        for line in archive_bytes(Path(d) / n).split(b"\n"):
            if not line:
                continue
            m = SEQ_LINE.match(line)
            assert m, "%s holds a line that is not a whole writer line: %r" % (n, line[:100])
            s = int(m.group(1))
            counts[s] = counts.get(s, 0) + 1
    return counts
