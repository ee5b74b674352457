"""End-to-end harness: runs the real spillway binary against real files on this machine.

Rules kept here: no bare sleeps -- every wait polls a condition until a deadline;
every loop is bounded; every process we start is killed on teardown (no strays); nothing listens
anywhere but 127.0.0.1.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/e2e
The binary is $SPILLWAY_BIN, default <repo>/build/spillway.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import weakref
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "build" / "spillway"
HOST = "testhost"
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
RECORD_KEYS = ["ts", "labels", "stream", "line"]
# The raw bytes of one output line: compact JSON, keys in contract order (escaping is free).
RAW_RE = re.compile(rb'^\{"ts":"[0-9T:.Z-]{30}","labels":\{.*\},"stream":"(?:stdout|stderr|file)",'
                    rb'"line":".*"(?:,"truncated":"true")?\}$', re.S)
STOP_TIMEOUT = 5.0  # the contract: SIGTERM/SIGINT -> flush, commit, exit 0 within 5 s
# Sanitizer builds (scripts/test.sh sets SPILLWAY_SANITIZED=1) run several times slower: time
# budgets of whole workloads scale by this; contract limits (stop within 5 s, pick-up) do not.
SLOW = 3.0 if os.environ.get("SPILLWAY_SANITIZED") == "1" else 1.0

_LIVE = weakref.WeakSet()  # every Agent, so a crashed test still leaves no process behind


def free_port():
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------------------------
# pytest plumbing


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (crash loops, big workloads); run "
                                       "by default, deselect with -m 'not slow'")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_sessionfinish(session, exitstatus):
    for a in list(_LIVE):
        a.cleanup()


# --------------------------------------------------------------------------------------------
# waiting


def wait_for(predicate, timeout, desc, interval=0.05, alive=None):
    """Polls predicate() until it returns something truthy (returned) or the deadline passes
    (AssertionError naming desc and the last value). alive(), if given, is called on every
    round and should raise if the thing we wait on has died."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last value: %.300r)"
                                 % (timeout, desc, last))
        time.sleep(interval)  # polling interval of a deadline-bounded wait


def poll(predicate, timeout, interval=0.05, alive=None):
    """Like wait_for, but returns None instead of failing at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def assert_never(predicate, duration, desc, interval=0.05, alive=None):
    """Asserts predicate() stays falsy for the whole duration (a bounded negative check)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        v = predicate()
        assert not v, "%s (value: %.300r)" % (desc, v)
        if alive is not None:
            alive()
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# YAML writing (block style; scalars double-quoted JSON-style, which YAML accepts)


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    return json.dumps(str(v))


def to_yaml(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 2)))
            elif isinstance(v, (dict, list)):
                out.append("%s%s: %s\n" % (pad, k, "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s: %s\n" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = to_yaml(v, indent + 2)
                out.append("%s- %s" % (pad, inner[indent + 2:]))
            else:
                out.append("%s- %s\n" % (pad, _scalar(v)))
    else:
        out.append(pad + _scalar(obj) + "\n")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# the agent


class LineCounter:
    """Counts complete lines of a growing file incrementally; starts over when the file shrinks
    or is replaced. A progress indicator only (a file truncated and regrown between two calls
    is not noticed): exact checks read the whole file. One instance per thread."""

    def __init__(self, path):
        self.path = Path(path)
        self.reset()

    def reset(self):
        self.ino, self.off, self.nl = None, 0, 0

    def count(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.reset()
            return 0
        if st.st_ino != self.ino or st.st_size < self.off:
            self.ino, self.off, self.nl = st.st_ino, 0, 0
        with open(self.path, "rb") as f:
            f.seek(self.off)
            data = f.read(st.st_size - self.off if st.st_size > self.off else -1)
        self.nl += data.count(b"\n")
        self.off += len(data)
        return self.nl


class Agent:
    """One spillway configuration and data dir, run as a child process (possibly many times).

    a = Agent(bin, workdir)
    a.write_config(sources=[...])        # file sink -> a.out_path unless sinks= given
    a.start(); a.wait_count(n, 30); a.stop()   # stop asserts exit 0 within 5 s
    recs = a.read_output()               # parsed NDJSON, shape checked
    """

    def __init__(self, binary, workdir, name="agent"):
        self.bin = str(binary)
        self.dir = Path(workdir)
        self.name = name
        self.config_path = self.dir / ("%s.yaml" % name)
        self.data_dir = self.dir / ("%s-data" % name)
        self.out_path = self.dir / "out" / ("%s.ndjson" % name)
        self.proc = None
        self.runs = 0
        self.cwd = str(self.dir)
        self.env = None
        self._files = []
        self.counter = LineCounter(self.out_path)
        _LIVE.add(self)

    # ---- configuration

    def config_dict(self, sources, sinks=None, buffer=None, hostname=HOST, log=None,
                    extra=None):
        cfg = {"data_dir": str(self.data_dir)}
        if hostname is not None:
            cfg["hostname"] = hostname
        cfg["buffer"] = buffer if buffer is not None else {
            "max_bytes": "1GiB", "when_full": "block",
            "chunk": {"max_records": 5000, "max_bytes": "1MiB", "max_wait": "200ms"}}
        cfg["sources"] = sources
        cfg["sinks"] = sinks if sinks is not None else [
            {"name": "local", "type": "file", "path": str(self.out_path)}]
        cfg["log"] = log if log is not None else {"level": "info"}
        # Every test agent serves HTTP on a free port (read back with http_port()).
        cfg["server"] = {"listen": "127.0.0.1:0"}
        if extra:
            cfg.update(extra)
        return cfg

    def write_config(self, sources, **kw):
        """Writes the YAML config (see config_dict for keywords); returns its path."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(to_yaml(self.config_dict(sources, **kw)))
        return self.config_path

    def write_config_text(self, text):
        self.config_path.write_text(text)
        return self.config_path

    # ---- process control

    def start(self, wait_ready=True, args=()):
        """Starts `spillway run` (plus args). With wait_ready, returns once the process has its
        sink output open (and so has truncated it to the committed length and installed its
        signal handlers); the file sink opens it at start-up."""
        assert not self.running(), "agent already running (pid %d)" % self.proc.pid
        self.runs += 1
        base = self.dir / ("%s.run%d" % (self.name, self.runs))
        out = open(str(base) + ".stdout", "wb")
        err = open(str(base) + ".stderr", "wb")
        self._files += [out, err]
        self.stderr_path = Path(str(base) + ".stderr")
        self.proc = subprocess.Popen([self.bin, "run", "-c", str(self.config_path)] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     cwd=self.cwd, env=self.env, start_new_session=True)
        self.counter.reset()  # the sink may truncate its output on start
        if wait_ready:
            out = os.path.realpath(self.out_path)
            self.wait_for(lambda: out in self.fd_targets(), 15,
                          "spillway to start (open its sink output %s)" % out)
            self.counter.reset()
        return self.proc.pid

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, n=3000):
        try:
            data = self.stderr_path.read_bytes()
        except (AttributeError, OSError):
            return ""
        return data[-n:].decode("utf-8", "replace")

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError("spillway (pid %d) exited unexpectedly with %s; stderr tail:\n%s"
                                 % (self.proc.pid, self.proc.returncode, self.stderr_tail()))

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, expect_rc=0):
        """Graceful stop: sends sig, asserts the exit within timeout and the exit code.
        Returns the seconds it took."""
        assert self.proc is not None, "agent was never started"
        self.check_alive()
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError("spillway did not exit within %.0f s after %s; stderr tail:\n%s"
                                 % (timeout, signal.Signals(sig).name, self.stderr_tail()))
        took = time.monotonic() - t0
        if expect_rc is not None:
            assert rc == expect_rc, ("spillway exited with %s after %s (expected %s); stderr "
                                     "tail:\n%s" % (rc, signal.Signals(sig).name, expect_rc,
                                                    self.stderr_tail()))
        return took

    def kill9(self):
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def cleanup(self):
        try:
            self.kill9()
        except Exception:
            pass
        for f in self._files:
            try:
                f.close()
            except Exception:
                pass
        self._files = []

    # ---- waiting

    def wait_for(self, predicate, timeout, desc, interval=0.05):
        return wait_for(predicate, timeout, desc, interval, alive=self.check_alive)

    def poll(self, predicate, timeout, interval=0.05):
        return poll(predicate, timeout, interval, alive=self.check_alive)

    def assert_never(self, predicate, duration, desc, interval=0.05):
        return assert_never(predicate, duration, desc, interval, alive=self.check_alive)

    # ---- the file sink's output

    def http_port(self, timeout=10):
        """The port the agent's HTTP server bound (it logs it at start)."""
        pat = re.compile(r'listening on [^ ]+ \(port (\d+)\)')
        def port():
            m = pat.search(self.stderr_path.read_text(errors="replace"))
            return int(m.group(1)) if m else None
        return self.wait_for(port, timeout, "the HTTP server to listen")

    def output_count(self):
        """Complete lines in the sink output so far (incremental, see LineCounter)."""
        return self.counter.count()

    def output_count_full(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().count(b"\n")
        except FileNotFoundError:
            return 0

    def wait_count(self, n, timeout, exact_recount=False, interval=0.05):
        """Waits until the sink output holds at least n records."""
        f = self.output_count_full if exact_recount else self.output_count
        return self.wait_for(lambda: f() >= n, timeout,
                             "%d records in %s (have %d)" % (n, self.out_path, f()), interval)

    def read_raw(self):
        try:
            return self.out_path.read_bytes()
        except FileNotFoundError:
            return b""

    def read_output(self, check_shape=True):
        """All complete records of the sink output, parsed. When the agent is not running the
        file must end with a newline (nothing half-written after a graceful stop)."""
        data = self.read_raw()
        if data and not data.endswith(b"\n"):
            assert self.running(), "sink output ends with a partial line after the agent " \
                                   "stopped: %r" % data[-200:]
            data = data[:data.rfind(b"\n") + 1]
        recs = []
        for i, raw in enumerate(data.split(b"\n")[:-1] if data else []):
            try:
                rec = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise AssertionError("sink output line %d is not valid UTF-8 JSON (%s): %r"
                                     % (i + 1, e, raw[:300]))
            if check_shape:
                assert RAW_RE.match(raw), "sink output line %d is not compact NDJSON in the " \
                    "contract's key order: %.300r" % (i + 1, raw)
                check_record_shape(rec, i + 1)
            recs.append(rec)
        return recs

    # ---- CLI

    def cli(self, *args, timeout=30):
        return subprocess.run([self.bin] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, cwd=self.cwd, env=self.env)

    def status(self):
        p = self.cli("status", "-c", self.config_path, "--output", "json")
        assert p.returncode == 0, "spillway status failed (%d): %s" % (
            p.returncode, p.stderr.decode("utf-8", "replace")[-2000:])
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError("status --output json printed no JSON object (%s): %r"
                                 % (e, p.stdout[:500]))

    # ---- the process as the kernel sees it

    def fd_targets(self):
        """Targets of /proc/<pid>/fd/* (files that vanish meanwhile are skipped)."""
        d = "/proc/%d/fd" % self.proc.pid
        out = []
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return out
        for n in names:
            try:
                out.append(os.readlink(os.path.join(d, n)))
            except OSError:
                pass
        return out

    def deleted_fds(self, under=None):
        under = str(under) if under is not None else None
        return [t for t in self.fd_targets() if t.endswith(" (deleted)")
                and (under is None or t.startswith(under))]


def check_record_shape(rec, lineno=0):
    where = "sink output line %d" % lineno
    assert isinstance(rec, dict), "%s is not a JSON object: %.200r" % (where, rec)
    keys = list(rec)
    assert keys[:4] == RECORD_KEYS and set(keys[4:]) <= {"truncated"}, \
        "%s: keys must be %s in this order, got %s" % (where, RECORD_KEYS, keys)
    assert isinstance(rec["ts"], str) and TS_RE.match(rec["ts"]), \
        "%s: ts must be UTC with 9 fraction digits, got %r" % (where, rec["ts"])
    assert rec["stream"] in ("stdout", "stderr", "file"), "%s: stream %r" % (where, rec["stream"])
    lab = rec["labels"]
    assert isinstance(lab, dict) and all(isinstance(k, str) and isinstance(v, str)
                                         for k, v in lab.items()), \
        "%s: labels must map strings to strings: %.300r" % (where, lab)
    assert "host" in lab and "source" in lab, "%s: labels lack host/source: %r" % (where, lab)
    assert isinstance(rec["line"], str), "%s: line is not a string" % where


def is_truncated(rec):
    """The contract says split records carry "truncated":"true" (as a label, like
    parse_error/invalid_utf8; a top-level key is accepted too)."""
    return rec["labels"].get("truncated") == "true" or rec.get("truncated") in ("true", True)


def strip_flags(labels):
    return {k: v for k, v in labels.items() if k not in ("truncated",)}


def by_name(items, name):
    for it in items:
        if it.get("name") == name:
            return it
    raise AssertionError("no entry named %r in %r" % (name, items))


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def spillway_bin():
    path = Path(os.environ.get("SPILLWAY_BIN") or DEFAULT_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("spillway binary not found or not executable: %s\n"
                    "Build it (cmake -S . -B build && cmake --build build) or point SPILLWAY_BIN "
                    "at it. The end-to-end tests need the real binary; none is skipped."
                    % path, pytrace=False)
    return str(path.resolve())


@pytest.fixture
def workdir(request, tmp_path_factory):
    """A fresh directory for the test; removed afterwards if the test passed (kept for
    post-mortem otherwise: its path is in the failure report)."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:40]
    d = tmp_path_factory.mktemp(name)
    yield d
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def agents(spillway_bin, workdir):
    """Factory: agents(name="agent") -> Agent. All are killed (-9) on teardown."""
    made = []

    def make(name="agent"):
        a = Agent(spillway_bin, workdir, name)
        made.append(a)
        return a

    yield make
    for a in made:
        a.cleanup()


@pytest.fixture
def agent(agents):
    return agents()
