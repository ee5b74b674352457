"""Deterministic log workloads for spillway's end-to-end tests, and the records they must become.

Everything here is driven by a seeded random.Random, so a failing run can be reproduced exactly.
The generators return both the physical bytes to write and the EXPECTED records, as tuples
(ts, stream, line) where ts is the RFC 3339 string with 9 fraction digits that spillway's file
sink must print.

Formats (as the container runtimes write them):
  docker json-file  {"log":"text\\n","stream":"stdout","time":"<RFC3339Nano>"} -- dockerd splits a
                    line longer than 16 KiB into 16384-byte pieces of the log text; only the last
                    piece ends in "\\n" (if the text is a multiple of 16384 bytes the last piece is
                    just "\\n"). Each piece has its own time; the record's ts is the first piece's.
  CRI               "<RFC3339Nano> <stdout|stderr> <P|F> <content>" -- P pieces are joined with the
                    next F piece of the same stream; content is verbatim.
"""

import bisect
import calendar
import codecs
import collections
import itertools
import json
import time
from pathlib import Path

DOCKER_SPLIT = 16384
# 2026-11-23T15:33:52Z
BASE_NS = 1_795_448_032 * 1_000_000_000
NS = 1_000_000_000

# --------------------------------------------------------------------------------------------
# timestamps


def fmt_ts(ns):
    """The sink's format: UTC, always 9 fraction digits."""
    s, frac = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%09dZ" % frac


def go_rfc3339nano(ns, offset_min=0):
    """Go's time.RFC3339Nano as dockerd/containerd write it: trailing zeros of the fraction
    trimmed (no fraction at all when it is zero), 'Z' or a +hh:mm offset."""
    s, frac = divmod(ns, NS)
    local = time.gmtime(s + offset_min * 60)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    if frac:
        out += ("." + "%09d" % frac).rstrip("0")
    if offset_min == 0:
        return out + "Z"
    sign = "+" if offset_min > 0 else "-"
    o = abs(offset_min)
    return out + "%s%02d:%02d" % (sign, o // 60, o % 60)


def parse_ts(s):
    """Sink ts string -> ns (for read-time windows)."""
    assert len(s) == 30 and s.endswith("Z"), s
    secs = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs * NS + int(s[20:29])


# --------------------------------------------------------------------------------------------
# text


WORDS = ("GET POST PUT request response handled user session cache miss hit retry timeout "
         "connected closed upstream downstream worker queue job done failed ok started "
         "listening shutdown payload bytes latency db query commit rollback").split()
UNICODE = ["é", "ß", "ñ", "中文", "日本語", "Ω", "😀", "🚀", "€", "\u2028", "naïve", "Привет"]
ODD = ['"quoted"', "back\\slash", "C:\\temp\\new", "tab\there", "\x1b[31mred\x1b[0m",
       "<tag>&amp;", "cr\rhere", "\\u00e9 literal", "{not json", "  two  spaces  ", "/slash/"]


def rand_text(rng, lo=5, hi=400):
    """A realistic one-line message (no '\\n'), mixing ASCII words, unicode, escapes."""
    n = rng.randint(lo, hi)
    parts = []
    size = 0
    while size < n:
        r = rng.random()
        if r < 0.80:
            w = rng.choice(WORDS)
        elif r < 0.90:
            w = rng.choice(UNICODE)
        elif r < 0.97:
            w = rng.choice(ODD)
        else:
            w = str(rng.randint(0, 10**9))
        parts.append(w)
        size += len(w) + 1
    return " ".join(parts)


def rand_json_app_line(rng):
    """A JSON line an application would print (itself put inside docker's "log")."""
    obj = {
        "level": rng.choice(["debug", "info", "warn", "error"]),
        "ts": go_rfc3339nano(BASE_NS + rng.randint(0, 10**12)),
        "msg": rand_text(rng, 5, 120),
        "path": "C:\\Users\\app\\log",
        "quote": 'he said "hi"',
        "n": rng.randint(-10**6, 10**6),
    }
    if rng.random() < 0.3:
        obj["nested"] = {"list": [1, 2.5, None, True, "x\ty"], "uni": rng.choice(UNICODE)}
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5)


def long_ascii(rng, n, tag=""):
    """ASCII text of exactly n bytes (long lines are split by byte count; ASCII keeps the
    pieces valid UTF-8, as dockerd would otherwise mangle a split character)."""
    head = "LONG%s[%d] \"q\" \\b " % (tag, n)
    body = "abcdefghijklmnopqrstuvwxyz0123456789-_=+/ "
    k = max(0, n - len(head))
    s = head + (body * (k // len(body) + 1))[:k]
    return s[:n]


def rand_message(rng, long_ratio=0.0, long_sizes=None):
    """One log message for a container: plain text, JSON, empty, or (rarely) > 16 KiB."""
    r = rng.random()
    if r < long_ratio:
        sizes = long_sizes or [16383, 16384, 16385, 20000, 32768, 40000, 70001]
        return long_ascii(rng, rng.choice(sizes))
    r = rng.random()
    if r < 0.45:
        return rand_text(rng)
    if r < 0.95:
        return rand_json_app_line(rng)
    if r < 0.97:
        return ""
    return rand_text(rng, 1000, 4000)


# --------------------------------------------------------------------------------------------
# docker json-file


# dockerd's encoder (jsonlog/jsonlogbytes.go): \" \\ \n \r \t, other controls as \u00XX,
# <>& as \u003c \u003e \u0026, U+2028/2029 escaped, everything else raw UTF-8.
_DOCKER_ESC = {i: "\\u%04x" % i for i in range(0x20)}
_DOCKER_ESC.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r",
                    ord("\t"): "\\t", ord("<"): "\\u003c", ord(">"): "\\u003e",
                    ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def docker_escape(s, ascii_only=False):
    if ascii_only:
        return json.dumps(s, ensure_ascii=True)[1:-1]
    return s.translate(_DOCKER_ESC)


def docker_entry(log, stream, ts_ns, ascii_only=False, attrs=None):
    """One physical json-file line (bytes, with its '\\n')."""
    s = '{"log":"%s","stream":"%s"' % (docker_escape(log, ascii_only), stream)
    if attrs:
        s += ',"attrs":' + json.dumps(attrs, separators=(",", ":"))
    s += ',"time":"%s"}\n' % go_rfc3339nano(ts_ns)
    return s.encode("utf-8")


def docker_pieces(text):
    """dockerd's split: 16384-byte pieces of the text, the last one with the '\\n'."""
    b = text.encode("utf-8")
    if len(b) < DOCKER_SPLIT:
        return [text + "\n"]
    out = [b[i:i + DOCKER_SPLIT].decode("utf-8") for i in range(0, len(b), DOCKER_SPLIT)]
    if len(b) % DOCKER_SPLIT == 0:
        out.append("\n")  # dockerd's buffer was full exactly at the line end
    else:
        out[-1] += "\n"
    return out


def recent_ns(ago_s=7200):
    """A whole second `ago_s` before now: a start for workloads a receiver checks against the
    wall clock (Loki refuses entries older than a week, so a fixed BASE_NS stops working)."""
    return (int(time.time()) - ago_s) * NS


class Clock:
    """Strictly increasing nanosecond timestamps with random gaps."""

    def __init__(self, rng, start_ns=BASE_NS):
        self.rng = rng
        self.ns = start_ns

    def tick(self):
        self.ns += self.rng.randint(1, 3_000_000)
        if self.rng.random() < 0.05:
            self.ns -= self.ns % 1000  # some with trailing zeros (Go trims them)
        if self.rng.random() < 0.01:
            self.ns -= self.ns % NS  # and some on whole seconds (no fraction at all)
            self.ns += NS
        return self.ns


Workload = collections.namedtuple("Workload", "phys exp rec_ends")
Workload.__doc__ = """phys: physical lines (bytes, each with its newline); exp: expected records
(ts, stream, line) in file order; rec_ends[i]: number of physical lines up to and including the
last piece of record i."""


def docker_workload(rng, n, clock=None, long_ratio=0.003, stderr_ratio=0.25, long_sizes=None):
    """n logical lines for one container -> Workload."""
    clock = clock or Clock(rng)
    phys = []
    exp = []
    ends = []
    for _ in range(n):
        msg = rand_message(rng, long_ratio, long_sizes)
        stream = "stderr" if rng.random() < stderr_ratio else "stdout"
        ascii_only = rng.random() < 0.1
        attrs = {"tag": "web"} if rng.random() < 0.02 else None
        first = None
        for piece in docker_pieces(msg):
            ts = clock.tick()
            if first is None:
                first = ts
            phys.append(docker_entry(piece, stream, ts, ascii_only, attrs))
        exp.append((fmt_ts(first), stream, msg))
        ends.append(len(phys))
    return Workload(phys, exp, ends)


def new_container_id(rng):
    return "%064x" % rng.getrandbits(256)


class DockerContainer:
    """<root>/<64 hex id>/<id>-json.log, with config.v2.json {"Name": "/<name>"} unless name is
    None."""

    def __init__(self, root, cid, name):
        self.root = Path(root)
        self.id = cid
        self.name = name
        self.dir = self.root / cid
        self.path = self.dir / ("%s-json.log" % cid)

    @classmethod
    def create(cls, root, rng, name, create_log=True):
        c = cls(root, new_container_id(rng), name)
        c.dir.mkdir(parents=True, exist_ok=True)
        if name is not None:
            cfg = {"ID": c.id, "Created": "2026-11-23T15:00:00.000000000Z", "Path": "/app",
                   "Args": ["--serve"], "Name": "/" + name,
                   "Config": {"Hostname": c.id[:12], "Image": "example/web:1",
                              "Labels": {"com.example": "x"}},
                   "State": {"Running": True, "Pid": 4242}}
            (c.dir / "config.v2.json").write_text(json.dumps(cfg))
        if create_log:
            c.path.touch()
        return c

    def key(self):
        return ("docker", self.id)

    def labels(self, host, source):
        lab = {"host": host, "source": source, "container_id": self.id}
        if self.name is not None:
            lab["container_name"] = self.name
        return lab


# --------------------------------------------------------------------------------------------
# CRI


def cri_line(ts_ns, stream, tag, content, offset_min=0):
    return ("%s %s %s %s\n" % (go_rfc3339nano(ts_ns, offset_min), stream, tag, content)).encode(
        "utf-8")


def _split_points(rng, text):
    """Where a runtime might split a line: for long ones every 16 KiB, else sometimes randomly."""
    b = text.encode("utf-8")
    if len(b) > DOCKER_SPLIT:
        pieces = [b[i:i + DOCKER_SPLIT] for i in range(0, len(b), DOCKER_SPLIT)]
        return [p.decode("utf-8") for p in pieces]
    if len(text) >= 4 and rng.random() < 0.03:
        k = rng.randint(1, 3)
        cuts = sorted(rng.sample(range(1, len(text)), min(k, len(text) - 1)))
        out, prev = [], 0
        for c in cuts:
            out.append(text[prev:c])
            prev = c
        out.append(text[prev:])
        return out
    return [text]


def cri_workload(rng, n, clock=None, long_ratio=0.003, stderr_ratio=0.25, long_sizes=None):
    """n logical lines for one CRI container log -> Workload."""
    clock = clock or Clock(rng)
    phys = []
    exp = []
    ends = []
    for _ in range(n):
        msg = rand_message(rng, long_ratio, long_sizes)
        if rng.random() < 0.03:
            msg = "   indented " + msg + "  "  # content is verbatim, leading spaces included
        stream = "stderr" if rng.random() < stderr_ratio else "stdout"
        offset = rng.choice([0, 0, 0, 0, 120, -300])  # CRI-O writes local offsets
        pieces = _split_points(rng, msg)
        first = None
        for i, p in enumerate(pieces):
            ts = clock.tick()
            if first is None:
                first = ts
            tag = "F" if i == len(pieces) - 1 else "P"
            phys.append(cri_line(ts, stream, tag, p, offset))
        exp.append((fmt_ts(first), stream, msg))
        ends.append(len(phys))
    return Workload(phys, exp, ends)


class CriContainer:
    """<root>/<ns>_<pod>_<uid>/<container>/0.log"""

    def __init__(self, root, ns, pod, uid, container, n=0):
        self.root = Path(root)
        self.ns, self.pod, self.uid, self.container = ns, pod, uid, container
        self.dir = self.root / ("%s_%s_%s" % (ns, pod, uid)) / container
        self.path = self.dir / ("%d.log" % n)

    @classmethod
    def create(cls, root, rng, ns, pod, container, create_log=True):
        h = "%032x" % rng.getrandbits(128)
        uid = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
        c = cls(root, ns, pod, uid, container)
        c.dir.mkdir(parents=True, exist_ok=True)
        if create_log:
            c.path.touch()
        return c

    def key(self):
        return ("cri", self.ns, self.pod, self.uid, self.container)

    def labels(self, host, source):
        return {"host": host, "source": source, "namespace": self.ns, "pod": self.pod,
                "pod_uid": self.uid, "container": self.container}


# --------------------------------------------------------------------------------------------
# writing progressively


class Feed:
    """Appends a list of physical lines to a file bit by bit, possibly cutting a line in the
    middle (the rest follows with the next call), as a real writer racing a reader would."""

    def __init__(self, path, phys, rec_ends=None):
        self.path = Path(path)
        self.blob = b"".join(phys)
        self.ends = list(itertools.accumulate(len(p) for p in phys))
        self.rec_ends = rec_ends
        self.pos = 0  # bytes written so far

    @classmethod
    def of(cls, path, workload):
        return cls(path, workload.phys, workload.rec_ends)

    @property
    def records_done(self):
        """Logical records whose every piece has been written (needs rec_ends)."""
        return bisect.bisect_right(self.rec_ends, self.lines_done)

    @property
    def done(self):
        return self.pos >= len(self.blob)

    @property
    def lines_done(self):
        """Complete physical lines written so far."""
        return bisect.bisect_right(self.ends, self.pos)

    def feed(self, nlines, rng=None, cut_ratio=0.0):
        """Writes up to nlines more complete physical lines; with probability cut_ratio it then
        also writes a random prefix of the following line. Returns the bytes written."""
        target = min(len(self.ends), self.lines_done + nlines)
        end = self.ends[target - 1] if target else 0
        if rng is not None and target < len(self.ends) and rng.random() < cut_ratio:
            end = rng.randint(end, self.ends[target] - 1)
        end = max(end, self.pos)
        if end == self.pos:
            return 0
        with open(self.path, "ab") as f:
            f.write(self.blob[self.pos:end])
        n = end - self.pos
        self.pos = end
        return n

    def feed_all(self):
        return self.feed(len(self.ends))


# --------------------------------------------------------------------------------------------
# checking


def rec_tuple(rec):
    return (rec["ts"], rec["stream"], rec["line"])


def file_key(rec):
    lab = rec["labels"]
    if "container_id" in lab:
        return ("docker", lab["container_id"])
    if "pod_uid" in lab:
        return ("cri", lab.get("namespace"), lab.get("pod"), lab["pod_uid"], lab.get("container"))
    return ("file", lab.get("filename"))


def _short(x, n=160):
    r = repr(x)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def diff_sequences(expected, actual, what):
    """Returns None if equal, else a readable description of how actual differs."""
    if expected == actual:
        return None
    msg = ["%s: expected %d records, got %d" % (what, len(expected), len(actual))]
    ce = collections.Counter(expected)
    ca = collections.Counter(actual)
    missing = ce - ca
    extra = ca - ce
    if missing:
        msg.append("  %d missing (lost), e.g. %s" % (sum(missing.values()),
                                                    _short(next(iter(missing)))))
    if extra:
        dups = sum(v for k, v in extra.items() if k in ce)
        alien = sum(v for k, v in extra.items() if k not in ce)
        msg.append("  %d duplicated, %d unexpected, e.g. %s" % (dups, alien,
                                                              _short(next(iter(extra)))))
    if not missing and not extra:
        msg.append("  same records, different order")
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e != a:
            msg.append("  first difference at index %d:\n    expected %s\n    got      %s"
                       % (i, _short(e, 300), _short(a, 300)))
            break
    return "\n".join(msg)


def check_exactly_once(expected_by_key, labels_by_key, records, allow_other_keys=False):
    """expected_by_key: {file key: [(ts, stream, line), ...]} in file order.
    labels_by_key: {file key: exact labels dict}. Asserts every file's records appear exactly
    once, in order, byte-exact, with exactly those labels."""
    got = collections.defaultdict(list)
    problems = []
    bad_labels = 0
    for rec in records:
        k = file_key(rec)
        got[k].append(rec_tuple(rec))
        want = labels_by_key.get(k)
        if want is not None and rec["labels"] != want:
            bad_labels += 1
            if bad_labels <= 3:
                problems.append("labels of a record of %s: expected %s, got %s"
                                % (_short(k), want, rec["labels"]))
    if bad_labels > 3:
        problems.append("... %d records with wrong labels in all" % bad_labels)
    for k, exp in expected_by_key.items():
        act = got.get(k, [])
        d = diff_sequences(exp, act, "file %s" % _short(k, 100))
        if d:
            # Narrow it down: is it only the interleaving of stdout and stderr?
            per_stream_ok = all(
                [t for t in exp if t[1] == s] == [t for t in act if t[1] == s]
                for s in ("stdout", "stderr", "file"))
            if per_stream_ok:
                d += "\n  (each stream is exactly right on its own: only the stdout/stderr " \
                     "interleaving differs from file order)"
            problems.append(d)
    if not allow_other_keys:
        others = set(got) - set(expected_by_key)
        for k in sorted(others, key=repr)[:5]:
            problems.append("records from an unexpected file %s: %d, e.g. %s"
                            % (_short(k), len(got[k]), _short(got[k][0])))
    assert not problems, "\n".join(problems)


def _per_byte_replace(err):
    # Python reports each maximal invalid subpart; the contract wants one U+FFFD per byte.
    return ("\ufffd" * (err.end - err.start), err.end)


codecs.register_error("spillway_per_byte", _per_byte_replace)


def invalid_utf8_replaced(b):
    """Expected text for bytes with invalid UTF-8: each byte that is not part of a valid UTF-8
    sequence becomes U+FFFD (b"\xe2\x82A" -> "\ufffd\ufffdA")."""
    return b.decode("utf-8", "spillway_per_byte")
