"""Real systemd journal files for spillway's end-to-end tests of the journald source.

Entries are built deterministically (a seeded random.Random) and written with systemd's own
writer, systemd-journal-remote, which reads the journal export format
(https://systemd.io/JOURNAL_EXPORT_FORMATS/) and writes a journal file exactly as journald does
(compact format, zstd-compressed large fields, its own seqnum id per file). What a test expects is
read back with journalctl (journalctl_json), not taken from the generator's own list.

    rng = random.Random(1)
    clock = Clock(rng)
    entries = build_entries(rng, 1000, clock)
    write_journal(d, "system.journal", entries)     # appends (creates on first use)
    rotate(d)                                        # system.journal -> system@...journal
    got = journalctl_json(d)                         # [{field: bytes}], journal order

Things found out about the tools (systemd 252):
  - systemd-journal-remote -o FILE appends to FILE when it exists; FILE must end in .journal
    (with --split-mode=none); it keeps the trusted fields (_BOOT_ID, _SYSTEMD_UNIT, _PID, ...)
    of the export stream as given, ignores __CURSOR, and gives every new file a fresh random
    seqnum id with seqnums from 1; it prints "Finishing after writing N entries" on stderr.
  - a field with an empty value ("Binary field with zero length") is dropped: an entry whose
    MESSAGE is empty has no MESSAGE at all. build_entries never makes one (it leaves MESSAGE
    out instead, explicitly).
  - journalctl -o json prints a value that is not valid UTF-8 or holds a control character
    other than TAB and LF (NUL, ESC, CR, DEL ...) as a JSON array of byte numbers; a field that
    occurs several times in one entry as an array of its values; without -a (--all) a value
    longer than 4096 bytes is printed as null. Key order is the hash order, not the written one.
  - a new file is 8 MiB (fallocated, mostly sparse).
"""

import json
import os
import random
import struct
import subprocess
import tempfile
from pathlib import Path

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
JOURNALCTL = "journalctl"

# 2026-11-23T15:33:52Z, as loggen.BASE_NS
BASE_US = 1_795_448_032 * 1_000_000

# journal file header (src/libsystemd/sd-journal/journal-def.h)
_SIGNATURE = b"LPKSHHRH"
_OFF_STATE = 16
_OFF_SEQNUM_ID = 72
_OFF_N_ENTRIES = 152
_OFF_HEAD_SEQNUM = 168
_OFF_HEAD_REALTIME = 184
STATE_OFFLINE, STATE_ONLINE, STATE_ARCHIVED = 0, 1, 2

LEVELS = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]


def machine_id():
    """This host's machine id: journal-remote stamps it into every file it writes (and journald
    keeps its files in /var/log/journal/<machine-id>/)."""
    return Path("/etc/machine-id").read_text().strip()


def _b(v):
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, int):
        return str(v).encode()
    raise TypeError("journal field values are bytes or str, not %r" % type(v))


class Entry(dict):
    """One journal entry: field name (str) -> value (bytes; str and int are stored encoded),
    plus its timestamps (realtime_us: __REALTIME_TIMESTAMP, monotonic_us: __MONOTONIC_TIMESTAMP).
    _BOOT_ID is an ordinary field."""

    def __init__(self, fields=(), realtime_us=0, monotonic_us=0):
        super().__init__()
        self.realtime_us = realtime_us
        self.monotonic_us = monotonic_us
        for k, v in dict(fields).items():
            self[k] = v

    def __setitem__(self, k, v):
        super().__setitem__(k, _b(v))

    def update(self, *a, **kw):
        for k, v in dict(*a, **kw).items():
            self[k] = v

    @property
    def message(self):
        return self.get("MESSAGE")

    def export(self):
        """The entry in the journal export format (ending with the empty line)."""
        out = [b"__REALTIME_TIMESTAMP=%d\n" % self.realtime_us,
               b"__MONOTONIC_TIMESTAMP=%d\n" % self.monotonic_us]
        for k, v in self.items():
            name = k.encode("ascii")
            if not v:
                raise ValueError("field %s is empty: journal-remote would drop it" % k)
            if _simple(v):
                out.append(name + b"=" + v + b"\n")
            else:
                out.append(name + b"\n" + struct.pack("<Q", len(v)) + v + b"\n")
        out.append(b"\n")
        return b"".join(out)

    def __repr__(self):
        short = {k: (v if len(v) <= 60 else v[:60] + b"...(%d bytes)" % len(v))
                 for k, v in self.items()}
        return "Entry(rt=%d, %r)" % (self.realtime_us, short)


def _simple(v):
    """KEY=value is fine for printable UTF-8 without newline; everything else goes binary."""
    if b"\n" in v:
        return False
    try:
        s = v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c == "\t" or (c >= " " and c != "\x7f") for c in s)


def export_stream(entries):
    return b"".join(e.export() for e in entries)


def new_boot_id(rng):
    return "%032x" % rng.getrandbits(128)


class Clock:
    """Strictly increasing realtime and monotonic timestamps (µs) with random gaps, and the boot
    id they belong to; reboot() starts a new boot (new _BOOT_ID, monotonic from a few seconds)."""

    def __init__(self, rng, start_us=BASE_US, boot_id=None):
        self.rng = rng
        self.realtime_us = start_us
        self.monotonic_us = rng.randint(5_000_000, 50_000_000)
        self.boot_id = boot_id or new_boot_id(rng)

    def tick(self, max_gap_us=3000):
        d = self.rng.randint(1, max_gap_us)
        self.realtime_us += d
        self.monotonic_us += d
        return self.realtime_us, self.monotonic_us

    def reboot(self):
        self.boot_id = new_boot_id(self.rng)
        self.realtime_us += self.rng.randint(30_000_000, 90_000_000)
        self.monotonic_us = self.rng.randint(2_000_000, 9_000_000)


# --------------------------------------------------------------------------------------------
# what a host logs


class Unit:
    """A systemd unit (None: entries of no unit) with the identifiers, comm and pid its entries
    carry and its usual priorities."""

    def __init__(self, name, idents, comm, pid, prios, transport="stdout"):
        self.name, self.idents, self.comm, self.pid = name, idents, comm, pid
        self.prios, self.transport = prios, transport


UNITS = [
    Unit("kubelet.service", ["kubelet"], "kubelet", 1042, [6, 6, 6, 6, 4, 3, 7]),
    Unit("containerd.service", ["containerd", "containerd-shim"], "containerd", 871,
         [6, 6, 6, 4, 3]),
    Unit("sshd.service", ["sshd"], "sshd", 655, [6, 6, 5, 4], transport="syslog"),
    Unit("cron.service", ["CRON", "cron"], "cron", 612, [6, 6, 5], transport="syslog"),
    Unit("systemd-logind.service", ["systemd-logind"], "systemd-logind", 598, [6, 5]),
    Unit("docker.service", ["dockerd"], "dockerd", 930, [6, 6, 4, 3]),
    Unit("init.scope", ["systemd"], "systemd", 1, [6, 6, 5, 4]),
    # someone ran kubelet by hand in a login session: identifier kubelet outside kubelet.service
    Unit("session-3.scope", ["sudo", "kubelet"], "sudo", 24567, [5, 6, 6, 2], transport="syslog"),
    # the kernel: no unit, no _PID
    Unit(None, ["kernel"], None, None, [6, 6, 4, 3, 2, 0, 1, 7], transport="kernel"),
    # syslog(3) from a process outside any unit (logger in a cron-less shell...)
    Unit(None, ["logger", "kubelet"], "logger", 31337, [5, 6], transport="syslog"),
]
APP = Unit("app.service", ["java"], "java", 2001, [6, 6, 6, 4])
BY_NAME = {u.name: u for u in UNITS + [APP] if u.name}

WORDS = ("GET POST request response handled user session cache miss hit retry timeout "
         "connected closed upstream worker queue job done failed ok started listening "
         "shutdown payload bytes latency pod volume mount sync image pull").split()


def short_text(rng, lo=3, hi=14):
    """An ASCII one-line message not starting with blanks (never a java continuation)."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def rich_text(rng):
    """A one-line message with unicode, quotes, escapes and controls (loggen's text)."""
    import loggen
    s = loggen.rand_text(rng, 5, 300)
    return s.lstrip() or "x"


def java_trace(rng, n_frames=None):
    """One java stack trace as the lines a service writes to stdout, one journal entry each."""
    n = n_frames or rng.randint(2, 6)
    k = rng.randint(1000, 9999)
    lines = ['Exception in thread "main" java.lang.IllegalStateException: boom %d' % k]
    lines += ["\tat com.x.Y.f%d(Y.java:%d)" % (i, 12 + i) for i in range(n)]
    lines.append("Caused by: java.io.IOException: disk %d gone" % k)
    lines += ["\tat com.x.Z.g%d(Z.java:%d)" % (i, 40 + i) for i in range(rng.randint(1, 3))]
    lines.append("\t... %d more" % n)
    return lines


def special_messages(rng):
    """Messages that are hard to carry: (tag, bytes)."""
    return [
        ("invalid-utf8", b"bad \xff\xfe utf8 \xc3\x28 end"),
        ("invalid-utf8-lone", b"\x80"),
        ("truncated-utf8", b"cut euro \xe2\x82"),
        ("nul", b"nul\x00inside\x00"),
        ("nul-and-invalid", b"\x00\xff"),
        ("newlines", b"first line\nsecond line\n\tthird indented\n\nafter empty"),
        ("trailing-newline", b"ends with newline\n"),
        ("unicode", "h\u00e9llo \u4e2d\u6587 \U0001F600 \u2028 \u0428\u0442".encode()),
        ("controls", b"esc \x1b[31mred\x1b[0m cr\rhere del\x7f bell\x07"),
        ("json-looking", b'{"level":"info","msg":"not parsed","n":1}'),
        ("quotes", b'say "hi" \\ back\\slash \\u00e9'),
        ("long-100k", long_ascii(rng, 100 * 1024)),
        ("long-100k-utf8", ("\u00e9" * (50 * 1024)).encode()),
        ("long-5000", long_ascii(rng, 5000)),
    ]


def long_ascii(rng, n):
    head = b"LONG[%d] " % n
    body = b"abcdefghijklmnopqrstuvwxyz0123456789-_=+/ "
    k = n - len(head)
    return head + (body * (k // len(body) + 1))[:k]


def make_entry(clock, unit, message, rng, hostname="node-1", ident=None, prio="default",
               extra=None):
    """An entry of unit (a Unit) logged now. message None: no MESSAGE field. prio "default": one
    of the unit's usual priorities; None: no PRIORITY; anything else is written as given."""
    rt, mono = clock.tick()
    e = Entry(realtime_us=rt, monotonic_us=mono)
    if message is not None:
        e["MESSAGE"] = message
    if prio == "default":
        prio = rng.choice(unit.prios)
    if prio is not None:
        e["PRIORITY"] = prio
    e["SYSLOG_IDENTIFIER"] = ident or rng.choice(unit.idents)
    if unit.transport == "kernel":
        e["SYSLOG_FACILITY"] = 0
    elif unit.transport == "syslog":
        e["SYSLOG_FACILITY"] = rng.choice([3, 4, 10])
    e["_TRANSPORT"] = unit.transport
    if unit.pid is not None:
        e["_PID"] = unit.pid
        e["_UID"] = 0
        e["_GID"] = 0
    if unit.comm is not None:
        e["_COMM"] = unit.comm
        e["_EXE"] = "/usr/bin/" + unit.comm
    if unit.name is not None:
        e["_SYSTEMD_UNIT"] = unit.name
        e["_SYSTEMD_CGROUP"] = "/system.slice/" + unit.name
        e["_SYSTEMD_SLICE"] = "system.slice"
    e["_BOOT_ID"] = clock.boot_id
    e["_MACHINE_ID"] = machine_id()
    if hostname is not None:
        e["_HOSTNAME"] = hostname
    if extra:
        e.update(extra)
    return e


def build_entries(rng, n, clock=None, hostname="node-1", units=None, specials=True,
                  rich=True, traces=0, app_lines=0):
    """About n entries (exactly n unless traces add their lines on top): a mix over `units`
    (default UNITS), each a short or (rich=True) loggen-style message. specials=True adds each
    of special_messages() once at a seeded place, plus entries without MESSAGE, without PRIORITY,
    with a PRIORITY that is not 0-7, and without _HOSTNAME. traces: that many java stack traces
    of APP (each entry one line, consecutive in the journal), between app_lines ordinary APP
    lines. Realtime timestamps strictly increase."""
    clock = clock or Clock(rng)
    units = units or UNITS
    plan = ["plain"] * n
    odd = []
    if specials:
        odd = ["special:%d" % i for i in range(len(special_messages(random.Random(0))))]
        odd += ["no-message", "no-message", "no-priority", "no-priority", "no-priority",
                "bad-priority:8", "bad-priority:12", "bad-priority:info", "bad-priority:-1",
                "bad-priority: 3", "no-hostname", "no-hostname", "no-hostname-kernel"]
    odd += ["app"] * app_lines + ["trace"] * traces
    assert len(odd) <= n, "n=%d is too small for %d special entries" % (n, len(odd))
    for i, slot in enumerate(rng.sample(range(n), len(odd))):
        plan[slot] = odd[i]
    specs = special_messages(rng)
    out = []
    for what in plan:
        u = rng.choice(units)
        msg = rich_text(rng) if rich and rng.random() < 0.5 else short_text(rng)
        if what == "plain":
            out.append(make_entry(clock, u, msg, rng, hostname))
        elif what.startswith("special:"):
            tag, m = specs[int(what[8:])]
            out.append(make_entry(clock, u, m, rng, hostname, extra={"SPECIAL": tag}))
        elif what == "no-message":
            out.append(make_entry(clock, u, None, rng, hostname,
                                  extra={"CODE_FILE": "src/x.c", "CODE_LINE": 42}))
        elif what == "no-priority":
            out.append(make_entry(clock, u, msg, rng, hostname, prio=None))
        elif what.startswith("bad-priority:"):
            out.append(make_entry(clock, u, msg, rng, hostname, prio=what[13:]))
        elif what == "no-hostname":
            out.append(make_entry(clock, u, msg, rng, None))
        elif what == "no-hostname-kernel":
            out.append(make_entry(clock, UNITS[8], msg, rng, None))
        elif what == "app":
            out.append(make_entry(clock, APP, "INFO  [main] " + short_text(rng), rng, hostname,
                                  prio=6))
        elif what == "trace":
            for line in java_trace(rng):
                out.append(make_entry(clock, APP, line, rng, hostname, prio=3))
        else:
            raise AssertionError(what)
    return out


# --------------------------------------------------------------------------------------------
# files


def write_journal(d, name, entries, compress=True):
    """Appends entries to the journal file d/name (created if missing) with
    systemd-journal-remote; returns its path. Fails unless journal-remote wrote all of them."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    assert name.endswith(".journal"), name
    entries = list(entries)
    fd, tmp = tempfile.mkstemp(prefix="journalgen-", suffix=".export")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(export_stream(entries))
        p = subprocess.run([JOURNAL_REMOTE, "--split-mode=none",
                            "--compress=%s" % ("yes" if compress else "no"),
                            "-o", str(path), tmp],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    finally:
        os.unlink(tmp)
    err = p.stderr.decode("utf-8", "replace")
    want = "Finishing after writing %d entries" % len(entries)
    assert p.returncode == 0 and want in err, \
        "systemd-journal-remote -o %s failed (rc %d; expected %r): %s" % (
            path, p.returncode, want, err[-2000:])
    return path


def header(path):
    """The few header fields rotate() and the tests need."""
    with open(path, "rb") as f:
        h = f.read(200)
    assert h[:8] == _SIGNATURE, "%s is not a journal file" % path
    return {
        "state": h[_OFF_STATE],
        "seqnum_id": h[_OFF_SEQNUM_ID:_OFF_SEQNUM_ID + 16].hex(),
        "n_entries": struct.unpack_from("<Q", h, _OFF_N_ENTRIES)[0],
        "head_seqnum": struct.unpack_from("<Q", h, _OFF_HEAD_SEQNUM)[0],
        "head_realtime": struct.unpack_from("<Q", h, _OFF_HEAD_REALTIME)[0],
    }


def rotate(d, name="system.journal"):
    """Rotates d/name as journald does: marks it archived in its header and renames it to
    <base>@<seqnum id>-<head seqnum>-<head realtime>.journal, so that the next write_journal
    starts a fresh d/name. Returns the new path."""
    d = Path(d)
    path = d / name
    h = header(path)
    with open(path, "r+b") as f:
        f.seek(_OFF_STATE)
        f.write(bytes([STATE_ARCHIVED]))
    base = name[:-len(".journal")]
    new = d / ("%s@%s-%016x-%016x.journal" % (base, h["seqnum_id"], h["head_seqnum"],
                                              h["head_realtime"]))
    assert not new.exists(), new
    os.rename(path, new)
    return new


# --------------------------------------------------------------------------------------------
# reading back with journalctl


def _value(v, name):
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, list) and all(isinstance(x, int) for x in v):
        return bytes(v)  # not printable UTF-8: an array of byte numbers
    if v is None:
        raise AssertionError("journalctl printed %s as null (a value > 4096 bytes without -a?)"
                             % name)
    raise AssertionError("unexpected JSON for field %s: %.200r" % (name, v))


def journalctl_json(where, extra_args=()):
    """Every entry journalctl sees, in its (merged, journal) order, as dicts field -> bytes
    (a field present several times -> a list of bytes). where: a directory (--directory, which
    also reads machine-id subdirectories) or a list of journal files (--file each)."""
    if isinstance(where, (str, Path)):
        src = ["--directory", str(where)]
    else:
        src = [a for p in where for a in ("--file", str(p))]
    p = subprocess.run([JOURNALCTL, "-a", "-o", "json", "--no-pager", "-q"] + src +
                       list(extra_args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=120)
    assert p.returncode == 0, "journalctl failed (%d): %s" % (
        p.returncode, p.stderr.decode("utf-8", "replace")[-2000:])
    out = []
    for line in p.stdout.split(b"\n"):
        if not line:
            continue
        obj = json.loads(line)
        e = {}
        for k, v in obj.items():
            if isinstance(v, list) and v and not all(isinstance(x, int) for x in v):
                e[k] = [_value(x, k) for x in v]  # several values
            else:
                e[k] = _value(v, k)
        out.append(e)
    return out


def realtime_us(j):
    return int(j["__REALTIME_TIMESTAMP"])
