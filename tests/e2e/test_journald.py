"""The journald source (sources[].type: journald): real journal files, written by systemd's own
writer (systemd-journal-remote, see journalgen.py), rotated and vacuumed as journald does, read
by the agent; what it must ship is computed from journalctl's reading of the same files
(journalctl -a -o json), mapped through the contract below -- never from the generator's list.

Contract of a record made from an entry (file sink, NDJSON):
  line   MESSAGE exactly (invalid UTF-8 bytes -> one U+FFFD each plus label invalid_utf8="true";
         NUL, controls and newlines kept); no MESSAGE -> "".
  ts     __REALTIME_TIMESTAMP (µs) as RFC 3339 UTC with 9 fraction digits.
  stream "file".
  labels in this order: host (_HOSTNAME, else the agent's hostname), source, unit
         (_SYSTEMD_UNIT), identifier (SYSLOG_IDENTIFIER), level (PRIORITY 0-7 -> emerg ... debug;
         absent unless a single digit 0-7), boot_id (_BOOT_ID), then the configured `fields`
         (lower case, leading '_' removed), then the source's static labels; a label whose field
         the entry lacks is absent. invalid_utf8 may sit anywhere.
  multiline: {preset: java} joins a java trace's consecutive entries of one stream (same labels)
         into one record: messages joined with "\\n", the first entry's ts.
"""

import collections
import json
import os
import random
import re
import threading
import time
import urllib.request

import pytest

import journalgen as jg
import loggen
from conftest import HOST, SLOW, LineCounter, poll

FIXED_ORDER = ["host", "source", "unit", "identifier", "level", "boot_id"]


# --------------------------------------------------------------------------------------------
# the contract, applied to journalctl's entries


def label_name(field):
    return field.lstrip("_").lower()


def _one(v, name):
    assert not isinstance(v, list), "field %s occurs several times in an entry: the generator " \
                                    "does not make such entries (%r)" % (name, v)
    return v


def expected_record(j, source="system", fields=(), static=None, host=HOST):
    """The record the contract makes of journalctl's entry j (field -> bytes)."""
    msg = _one(j.get("MESSAGE", b""), "MESSAGE")
    try:
        line, bad = msg.decode("utf-8"), False
    except UnicodeDecodeError:
        line, bad = loggen.invalid_utf8_replaced(msg), True
    labels = {"host": _one(j["_HOSTNAME"], "_HOSTNAME").decode() if "_HOSTNAME" in j else host,
              "source": source}
    if "_SYSTEMD_UNIT" in j:
        labels["unit"] = _one(j["_SYSTEMD_UNIT"], "_SYSTEMD_UNIT").decode()
    if "SYSLOG_IDENTIFIER" in j:
        labels["identifier"] = _one(j["SYSLOG_IDENTIFIER"], "SYSLOG_IDENTIFIER").decode()
    prio = j.get("PRIORITY")
    if isinstance(prio, bytes) and len(prio) == 1 and b"0" <= prio <= b"7":
        labels["level"] = jg.LEVELS[int(prio)]
    labels["boot_id"] = _one(j["_BOOT_ID"], "_BOOT_ID").decode()
    for f in fields:
        if f in j:
            labels[label_name(f)] = _one(j[f], f).decode()
    labels.update(static or {})
    if bad:
        labels["invalid_utf8"] = "true"
    ts = loggen.fmt_ts(jg.realtime_us(j) * 1000)
    return {"ts": ts, "labels": labels, "line": line}


def rkey(rec):
    """A record as a hashable, comparable value: (ts, labels sorted, line)."""
    return (rec["ts"], tuple(sorted(rec["labels"].items())), rec["line"])


def _short(x, n=200):
    r = repr(x)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def check_records(expected, got, what, fields=(), static=(), order_by="labels"):
    """Exact equality as multisets of (ts, labels, line), and the same order within each stream
    (order_by="labels": records of one label set, the agent's unit of ordering; a unit's lines of
    different levels or pids are different streams and may come out interleaved differently)
    or within each unit (order_by="unit", stricter: journal order across a unit's streams);
    every record's labels in the contract's order, stream "file"."""
    problems = []
    order = FIXED_ORDER + [label_name(f) for f in fields] + list(static)
    bad_order = [r["labels"] for r in got
                 if [k for k in r["labels"] if k != "invalid_utf8"] !=
                 [k for k in order if k in r["labels"]]]
    if bad_order:
        problems.append("%d records have labels outside the order %s (or unknown labels), "
                        "e.g. %s" % (len(bad_order), order, _short(bad_order[0], 400)))
    streams = collections.Counter(r["stream"] for r in got)
    if set(streams) - {"file"}:
        problems.append("stream must be \"file\" for journal records, got %s" % dict(streams))
    d = loggen.diff_sequences(sorted(map(rkey, expected)), sorted(map(rkey, got)), what)
    if d:
        problems.append(d)
    else:
        def key(r):
            return r["labels"].get("unit") if order_by == "unit" else \
                tuple(sorted(r["labels"].items()))
        per_e, per_g = collections.defaultdict(list), collections.defaultdict(list)
        for r in expected:
            per_e[key(r)].append((r["ts"], r["line"]))
        for r in got:
            per_g[key(r)].append((r["ts"], r["line"]))
        for u in per_e:
            d = loggen.diff_sequences(per_e[u], per_g[u], "%s: order within %s %s"
                                      % (what, order_by, _short(u, 300)))
            if d:
                problems.append(d)
    assert not problems, "\n".join(problems)


def src(path, name="system", **kw):
    s = {"name": name, "type": "journald", "path": str(path)}
    s.update(kw)
    return s


def metric(port, name, **labels):
    """The value of one series of GET /metrics (None if absent)."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    want = sorted(labels.items())
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)', line)
        if not m or m.group(1) != name:
            continue
        got = sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(kv in got for kv in want):
            return float(m.group(3))
    return None


def journal_open(agent, d):
    """Whether the agent has a journal file under d open (an fd or a mapping)."""
    d = str(d)
    if any(t.startswith(d) and ".journal" in t for t in agent.fd_targets()):
        return True
    try:
        with open("/proc/%d/maps" % agent.pid) as f:
            return any(d in l and ".journal" in l for l in f)
    except OSError:
        return False


def kubelet_entry(clock, rng, msg):
    u = jg.BY_NAME["kubelet.service"]
    return jg.make_entry(clock, u, msg, rng, ident="kubelet", prio=6)


# --------------------------------------------------------------------------------------------
# a. everything, once, with the right labels


def test_every_entry_once_with_labels(agent, workdir):
    t0 = time.monotonic()
    rng = random.Random(101)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    first = jg.build_entries(rng, 1600, clock)  # every special kind, 2 x 100 KiB among them
    jg.write_journal(d, "system.journal", first[:900])
    jg.rotate(d)
    clock.reboot()  # the second file is another boot: another boot_id
    jg.write_journal(d, "system.journal", first[900:])
    before = jg.journalctl_json(d)
    assert len(before) == len(first), "journalctl does not see what was written"

    fields = ["_PID", "_COMM", "_TRANSPORT"]
    static = {"env": "e2e", "team": "infra"}
    agent.write_config([src(d, fields=fields, labels=static)])
    agent.start()
    agent.wait_count(len(before), timeout=30 * SLOW)

    # More while it runs: appends to the current file, a rotation, a fresh file.
    more = jg.build_entries(rng, 1400, clock)
    jg.write_journal(d, "system.journal", more[:300])
    jg.write_journal(d, "system.journal", more[300:700])
    agent.wait_count(len(before) + 100, timeout=30 * SLOW)
    jg.rotate(d)
    jg.write_journal(d, "system.journal", more[700:1100])
    jg.write_journal(d, "system.journal", more[1100:])
    entries = jg.journalctl_json(d)
    assert len(entries) == len(first) + len(more)
    assert len(list(d.glob("system@*.journal"))) == 2

    expected = [expected_record(j, "system", fields, static) for j in entries]
    agent.wait_count(len(expected), timeout=30 * SLOW, exact_recount=True)
    port = agent.http_port()
    n_read = agent.wait_for(
        lambda: [v for v in [metric(port, "spillway_journal_entries_read_total",
                                    source="system")] if (v or 0) >= len(expected)], 10,
        "spillway_journal_entries_read_total{source=\"system\"} >= %d" % len(expected))[0]
    agent.stop()
    got = agent.read_output()
    check_records(expected, got, "journal records", fields, static)

    # the hard cases, named (the multiset check above has them already; this says which)
    got_keys = collections.Counter(map(rkey, got))
    specials = [j for j in entries if "SPECIAL" in j]
    assert len(specials) == 2 * len(jg.special_messages(rng))
    for j in specials:
        rec = expected_record(j, "system", fields, static)
        assert got_keys[rkey(rec)] == 1, "special entry %s (%s): expected once, got %d times" \
            % (j["SPECIAL"].decode(), _short(rec["line"], 80), got_keys[rkey(rec)])
    assert any(r["labels"].get("invalid_utf8") == "true" for r in got)
    assert any(r["line"] == "" for r in got), "entries without MESSAGE must be empty records"
    assert any(len(r["line"]) == 100 * 1024 for r in got)
    assert len({r["labels"]["boot_id"] for r in got}) == 2

    st = json.dumps(agent.status())
    assert '"system"' in st and "cursor" in st, \
        "spillway status does not show the journal source with its cursor: %s" % st[:2000]
    print("entries %d, entries_read metric %s, %.1fs" % (len(expected), n_read,
                                                        time.monotonic() - t0))


# --------------------------------------------------------------------------------------------
# b. filters


FILTERS = {
    "units": ({"units": ["kubelet.service", "containerd.service"]},
              lambda u, i: u in ("kubelet.service", "containerd.service")),
    "exclude": ({"exclude_units": ["cron.service", "sshd.service"]},
                lambda u, i: u not in ("cron.service", "sshd.service")),
    "idents": ({"identifiers": ["kubelet", "sshd"]},
               lambda u, i: i in ("kubelet", "sshd")),
    # units AND identifiers: session-3.scope's sudo, containerd's own lines and kubelet outside
    # a unit are out
    "both": ({"units": ["kubelet.service", "containerd.service", "session-3.scope"],
              "identifiers": ["kubelet", "containerd-shim"]},
             lambda u, i: u in ("kubelet.service", "containerd.service", "session-3.scope")
             and i in ("kubelet", "containerd-shim")),
    # exclude_units AND identifiers: kubelet in kubelet.service and outside any unit, not in
    # the login session
    "exclude_ident": ({"exclude_units": ["session-3.scope"], "identifiers": ["kubelet"]},
                      lambda u, i: u != "session-3.scope" and i == "kubelet"),
}


def check_filtered(exp, got, phase, name, problems):
    """check_records for filter `name`, its failure collected in problems (every filter is
    checked before the test fails)."""
    units = collections.Counter(r["labels"].get("unit") for r in got)
    try:
        check_records(exp, got, "%s, filter %s %s (units shipped: %s)"
                      % (phase, name, FILTERS[name][0], dict(units)))
    except AssertionError as e:
        problems.append(str(e).split("\nassert ")[0][:1500])


def test_unit_and_identifier_filters(agents, workdir):
    rng = random.Random(202)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    es = jg.build_entries(rng, 1500, clock, specials=False)
    jg.write_journal(d, "system.journal", es[:1000])
    jg.rotate(d)
    jg.write_journal(d, "system.journal", es[1000:])

    def selected(entries, name):
        keep = FILTERS[name][1]
        out = []
        for j in entries:
            u = j["_SYSTEMD_UNIT"].decode() if "_SYSTEMD_UNIT" in j else None
            i = j["SYSLOG_IDENTIFIER"].decode() if "SYSLOG_IDENTIFIER" in j else None
            if keep(u, i):
                out.append(expected_record(j, name))
        return out

    def quiet(a, n, secs=0.5):
        """At least n records and no new one for secs (a filter that lets too much through
        shows its surplus before the check)."""
        last = {"n": -1, "t": 0.0}

        def pred():
            c, now = a.output_count(), time.monotonic()
            if c != last["n"]:
                last.update(n=c, t=now)
            return c >= n and now - last["t"] >= secs
        return pred

    runs = {}
    for name, (conf, _) in FILTERS.items():
        a = agents(name)
        a.write_config([src(d, name=name, **conf)])
        a.start()
        runs[name] = a
    entries = jg.journalctl_json(d)
    problems, first = [], {}
    for name, a in runs.items():  # a fresh start: the journal is read from its head
        exp = selected(entries, name)
        assert 0 < len(exp) < len(entries), "filter %s selects nothing or everything" % name
        a.wait_for(quiet(a, len(exp)), 20 * SLOW, "%d records of %s" % (len(exp), name))
        a.stop()
        got = first[name] = a.read_output()
        check_filtered(exp, got, "fresh start", name, problems)

    # Restarted (resuming at their cursors), entries written while they run.
    for a in runs.values():
        a.start()
    more = jg.build_entries(rng, 600, clock, specials=False)
    jg.write_journal(d, "system.journal", more)
    new = jg.journalctl_json(d)[len(entries):]
    assert len(new) == len(more)
    for name, a in runs.items():
        exp = selected(new, name)
        n1 = len(first[name])
        a.wait_for(quiet(a, n1 + len(exp)), 20 * SLOW,
                   "%d records of %s" % (n1 + len(exp), name))
        a.stop()
        check_filtered(exp, a.read_output()[n1:], "after a restart", name, problems)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# c. kill -9, ten times


def java_start(line):
    return line.startswith("Exception in thread ")


def java_cont(line):
    return (line[:1] in (" ", "\t") or line.startswith("Caused by: ")
            or re.match(r"^\.\.\. \d+ (more|common frames omitted)", line) is not None)


def group_java(records):
    """The java preset over records in journal order: a trace start opens a group of its stream
    (its labels), continuation lines of the same stream join it."""
    out, open_ = [], {}
    for r in records:
        k = tuple(sorted(r["labels"].items()))
        if k in open_ and java_cont(r["line"]):
            g = out[open_[k]]
            g["line"] += "\n" + r["line"]
            continue
        out.append(dict(r, labels=dict(r["labels"])))
        if java_start(r["line"]):
            open_[k] = len(out) - 1
        else:
            open_.pop(k, None)
    return out


class JournalWriter(threading.Thread):
    """Runs ("write", entries) and ("rotate",) ops against the journal directory, writing only
    while fewer than `allow` entries are written and staying at most `lag` entries ahead of the
    sink's record count (so that kills land while data flows)."""

    def __init__(self, d, ops, out_path, lag=12_000):
        super().__init__(daemon=True)
        self.d, self.ops, self.lag = d, ops, lag
        self.allow = 0
        self.written = 0
        self.rotations = 0
        self.counter = LineCounter(out_path)
        self.halt = threading.Event()
        self.error = None

    def idle(self):
        return self.written >= self.allow or not self.is_alive()

    def run(self):
        try:
            for op in self.ops:
                if op[0] == "rotate":
                    jg.rotate(self.d)
                    self.rotations += 1
                    continue
                ok = poll(lambda: self.halt.is_set() or (
                    self.written < self.allow
                    and self.counter.count() >= self.written - self.lag), timeout=60)
                if self.halt.is_set():
                    return
                if not ok:
                    self.error = "no progress for 60 s (written %d, allowed %d, sink %d)" % (
                        self.written, self.allow, self.counter.count())
                    return
                jg.write_journal(self.d, "system.journal", op[1])
                self.written += len(op[1])
        except Exception as e:
            self.error = repr(e)


C_TOTAL = 60_000
C_TRACES = 120
KILLS = 10


def _kill_ops(rng, entries):
    """Batches of 500..4000 entries, several ending right after a java trace (so that a group
    is pending when the batch has been read), with two rotations."""
    spans, start = [], None  # [start, end) of each trace
    for i, e in enumerate(entries):
        m = e.get("MESSAGE", b"")
        if e.get("_SYSTEMD_UNIT") == b"app.service" and m.startswith(b"Exception in thread"):
            start = i
        elif start is not None and m.startswith(b"\t... "):
            spans.append((start, i + 1))
            start = None
    cuts, pos = [], 0
    while pos < len(entries):
        nxt = min(pos + rng.randint(500, 4000), len(entries))
        ends = [e for s, e in spans if pos < e <= nxt]
        if ends and rng.random() < 0.5:
            nxt = ends[-1]
        # never inside a trace: its lines reach the journal together (a writer that stalls
        # mid-trace for longer than the multiline timeout splits it, legitimately)
        nxt = next((e for s, e in spans if s < nxt < e), nxt)
        cuts.append(nxt)
        pos = nxt
    ops, prev = [], 0
    rot = {cuts[len(cuts) // 3], cuts[2 * len(cuts) // 3]}
    for c in cuts:
        ops.append(("write", entries[prev:c]))
        if c in rot:
            ops.append(("rotate",))
        prev = c
    return ops


@pytest.mark.slow
def test_kill9_ten_times_loses_and_repeats_nothing(agent, workdir):
    t_begin = time.monotonic()
    budget = 120 * SLOW
    rng = random.Random(9_010)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    entries = jg.build_entries(rng, C_TOTAL, clock, specials=False, rich=False,
                               traces=C_TRACES, app_lines=600)
    ops = _kill_ops(rng, entries)
    jg.write_journal(d, "system.journal", ops[0][1])  # the journal exists before the agent
    agent.write_config(
        [src(d, multiline={"preset": "java", "timeout": "1s"})],
        buffer={"max_bytes": "1GiB", "when_full": "block",
                "chunk": {"max_records": 500, "max_bytes": "1MiB", "max_wait": "200ms"}})
    writer = JournalWriter(d, ops[1:], agent.out_path)
    writer.written = len(ops[0][1])
    n_all = len(entries)
    agent.start()
    writer.start()
    log = []
    try:
        for i in range(KILLS):
            assert time.monotonic() - t_begin < budget - 30, "kill loop too slow: %s" % log
            t_kill = time.monotonic()
            writer.allow = n_all * (i + 1) // KILLS
            r = rng.random()
            if r < 0.3:
                base, step = writer.written, rng.randint(1, 3000)
                how = "after %d more entries written" % step
                agent.wait_for(lambda: writer.written >= base + step or writer.idle(), 30,
                               "writer progress before kill %d" % (i + 1))
            else:
                base, step = agent.output_count(), rng.randint(1, 6000)
                how = "after %d more records shipped" % step
                quiet = {"n": -1, "t": time.monotonic()}

                def progressed():
                    n = agent.output_count()
                    now = time.monotonic()
                    if n != quiet["n"]:
                        quiet.update(n=n, t=now)
                    # ...or once it has caught up with all that is written
                    return n >= base + step or (writer.idle() and now - quiet["t"] > 0.7)
                agent.wait_for(progressed, 30, "progress before kill %d (%s)" % (i + 1, how))
            agent.kill9()
            log.append((i + 1, how, agent.output_count_full(), writer.written,
                        round(time.monotonic() - t_kill, 2)))
            assert writer.error is None, writer.error
            if rng.random() < 0.2:  # and sometimes again before it has even started up
                agent.start(wait_ready=False)
                agent.kill9()
                log.append((i + 1, "right after exec"))
            agent.start()
        writer.allow = n_all
        writer.join(timeout=max(10, budget - 20 - (time.monotonic() - t_begin)))
        assert not writer.is_alive(), "writer did not finish in time"
        assert writer.error is None, writer.error
        assert writer.rotations == 2
        journal = jg.journalctl_json(d)
        assert len(journal) == n_all, "journalctl sees %d entries, %d written" % (
            len(journal), n_all)
        expected = group_java([expected_record(j) for j in journal])
        agent.wait_count(len(expected), exact_recount=True, interval=0.25,
                         timeout=max(10, budget - (time.monotonic() - t_begin)))
        agent.stop()
    finally:
        writer.halt.set()
        writer.join(timeout=10)

    print("kills (n, moment, sink lines, entries written, seconds):", log)
    got = agent.read_output()
    traces = [r for r in expected if "\n" in r["line"]]
    assert len(traces) == C_TRACES
    got_lines = collections.Counter(r["line"] for r in got)
    broken = [t["line"].split("\n")[0] for t in traces if got_lines[t["line"]] != 1]
    assert not broken, "%d of %d java traces are not exactly one whole record, e.g. %r " \
        "(pieces seen: %s)" % (len(broken), len(traces), broken[0],
                               [l for l in got_lines if l.startswith(broken[0][:40])][:3])
    dups = [k for k, n in collections.Counter(map(rkey, got)).items() if n > 1]
    assert not dups, "%d records shipped more than once, e.g. %s" % (len(dups), _short(dups[0]))
    check_records(expected, got, "records after %d kills" % KILLS)


def test_kill9_while_a_trace_is_pending(agent, workdir):
    """The deterministic case of the kill loop: the agent has read the first lines of a trace
    (held back, waiting for more) when it is killed; after the restart the rest of the trace
    arrives. The trace is one whole record, once, and nothing before it is repeated."""
    rng = random.Random(606)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    head = jg.build_entries(rng, 400, clock, specials=False, rich=False, app_lines=50)
    trace = [jg.make_entry(clock, jg.APP, line, rng, prio=3) for line in jg.java_trace(rng)]
    jg.write_journal(d, "system.journal", head + trace[:3])
    agent.write_config([src(d, multiline={"preset": "java", "timeout": "10s"})])
    agent.start()
    agent.wait_count(len(head), timeout=20 * SLOW)
    port = agent.http_port()
    agent.wait_for(lambda: (metric(port, "spillway_journal_entries_read_total",
                                   source="system") or 0) >= len(head) + 3, 10,
                   "the agent to read the first 3 lines of the trace")
    assert agent.output_count_full() == len(head), "the trace's first lines were shipped " \
        "before the trace was complete (multiline timeout 10s)"
    agent.kill9()
    agent.start()
    closing = jg.make_entry(clock, jg.APP, "ERROR [main] after the trace", rng, prio=3)
    jg.write_journal(d, "system.journal", trace[3:] + [closing])
    journal = jg.journalctl_json(d)
    expected = group_java([expected_record(j) for j in journal])
    assert len(expected) == len(head) + 2
    agent.wait_count(len(expected), timeout=20 * SLOW, exact_recount=True)
    agent.stop()
    got = agent.read_output()
    whole = "\n".join(e.message.decode() for e in trace)
    assert [r["line"] for r in got].count(whole) == 1, \
        "the trace is not exactly one whole record: %s" % [
            r["line"] for r in got if r["labels"].get("unit") == "app.service"][-3:]
    check_records(expected, got, "records around a kill with a trace pending")


def test_config_changed_after_kill9_loses_nothing(agent, workdir):
    """Killed with a trace pending, restarted with other `units` and `fields` (other positions,
    other stream keys) such that the last entry read no longer matches: the stored per-stream
    positions no longer apply, so the agent reads again from the earliest one, as new:
    duplicates allowed (and announced), no loss; the trace is one whole record."""
    rng = random.Random(707)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    head = jg.build_entries(rng, 300, clock, specials=False, rich=False, app_lines=40)
    trace = [jg.make_entry(clock, jg.APP, line, rng, prio=3) for line in jg.java_trace(rng)]
    last = kubelet_entry(clock, rng, "after the first lines of the trace")
    jg.write_journal(d, "system.journal", head + trace[:3] + [last])
    agent.write_config([src(d, multiline={"preset": "java", "timeout": "10s"})])
    agent.start()
    agent.wait_count(len(head) + 1, timeout=20 * SLOW)
    port = agent.http_port()
    agent.wait_for(lambda: (metric(port, "spillway_journal_entries_read_total",
                                   source="system") or 0) >= len(head) + 4, 10,
                   "the agent to read the first 3 lines of the trace and the entry after")
    agent.kill9()
    agent.write_config([src(d, units=["app.service"], fields=["_PID"],
                            multiline={"preset": "java", "timeout": "10s"})])
    agent.start()
    closing = jg.make_entry(clock, jg.APP, "ERROR [main] after the trace", rng, prio=3)
    jg.write_journal(d, "system.journal", trace[3:] + [closing])
    whole = "\n".join(e.message.decode() for e in trace)
    agent.wait_for(lambda: any(r["line"] == closing.message.decode() for r in agent.read_output()),
                   20 * SLOW, "the entry after the trace")
    agent.stop()
    got = agent.read_output()
    assert [r["line"] for r in got].count(whole) == 1, \
        "the trace is not exactly one whole record: %s" % [
            r["line"] for r in got if r["labels"].get("unit") == "app.service"][-3:]
    assert [r for r in got if r["line"] == whole][0]["labels"].get("pid"), "new fields not applied"
    lines = collections.Counter(r["line"] for r in got)
    lost = [e for e in head + [last] if lines[e.message.decode() if e.message is not None else ""] == 0]
    assert not lost, "%d entries lost across the configuration change" % len(lost)
    assert re.search(r"changed since an unclean stop: up to \d+ entries may be read twice",
                     agent.stderr_tail(20000)), "the possible duplicates were not announced"


def test_java_trace_interleaved_with_other_units(agent, workdir):
    """A trace's entries are consecutive in their stream, not in the journal: other units log
    between its lines (as on any busy host); it is still one record."""
    rng = random.Random(303)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    es = []
    for k in range(30):
        es.append(jg.make_entry(clock, jg.APP, "INFO  [main] request %d done" % k, rng, prio=6))
        for line in jg.java_trace(rng):
            es.append(jg.make_entry(clock, jg.APP, line, rng, prio=3))
            for _ in range(rng.randint(0, 2)):
                es.append(jg.make_entry(clock, rng.choice(jg.UNITS[:6]), jg.short_text(rng),
                                        rng))
    jg.write_journal(d, "system.journal", es)
    journal = jg.journalctl_json(d)
    expected = group_java([expected_record(j) for j in journal])
    assert sum("\n" in r["line"] for r in expected) == 30
    agent.write_config([src(d, multiline={"preset": "java", "timeout": "300ms"})])
    agent.start()
    agent.poll(lambda: agent.output_count() >= len(expected), 15 * SLOW)
    agent.stop()
    check_records(expected, agent.read_output(), "java traces between other units' entries")


# --------------------------------------------------------------------------------------------
# d. read_from: tail, then a graceful restart


def test_read_from_tail_and_resume_after_stop(agent, workdir):
    rng = random.Random(404)
    clock = jg.Clock(rng)
    root = workdir / "journal"
    d = root / jg.machine_id()  # /var/log/journal/<machine-id>/ as journald lays it out
    old = jg.build_entries(rng, 500, clock, specials=False)
    jg.write_journal(d, "system.journal", old[:300])
    jg.rotate(d)
    jg.write_journal(d, "system.journal", old[300:])
    agent.write_config([src(root, read_from="tail")])
    agent.start()
    agent.poll(lambda: journal_open(agent, d), 5 * SLOW)
    # The moment the agent takes its tail is not observable from outside: probe entries are
    # appended until one arrives. Those before the first that arrives may have been there
    # when it looked; everything after must arrive.
    probes = []
    for k in range(20):
        p = kubelet_entry(clock, rng, "probe %d" % k)
        jg.write_journal(d, "system.journal", [p])
        probes.append(p)
        if agent.poll(lambda: agent.output_count() >= 1, 1.0):
            break
    assert agent.output_count() >= 1, "nothing read from a journal with read_from: tail " \
        "after 20 entries appended (stderr: %s)" % agent.stderr_tail(1000)
    after = jg.build_entries(rng, 300, clock, specials=False)
    jg.write_journal(d, "system.journal", after)
    agent.wait_count(1 + 300, timeout=20 * SLOW)
    agent.stop()
    first_run = agent.read_output()
    old_keys = {rkey(expected_record(j)) for j in jg.journalctl_json(root)[:len(old)]}
    n_old = sum(rkey(r) in old_keys for r in first_run)
    assert n_old == 0, "read_from: tail shipped %d of the %d entries that were in the journal " \
                       "before the first start" % (n_old, len(old))
    seen = [int(r["line"][6:]) for r in first_run if r["line"].startswith("probe ")]
    assert seen, "no probe entry shipped"
    first = min(seen)
    n_final = (len(probes) - first) + 300 + 300 + 100

    down = jg.build_entries(rng, 300, clock, specials=False)  # written while it is stopped
    jg.write_journal(d, "system.journal", down[:150])
    jg.rotate(d)
    jg.write_journal(d, "system.journal", down[150:])
    agent.start()
    agent.wait_count(n_final - 100, timeout=20 * SLOW, exact_recount=True)
    live = jg.build_entries(rng, 100, clock, specials=False)
    jg.write_journal(d, "system.journal", live)
    agent.wait_count(n_final, timeout=20 * SLOW, exact_recount=True)
    agent.stop()

    journal = jg.journalctl_json(root)
    assert len(journal) == len(old) + len(probes) + len(after) + len(down) + len(live)
    n_skip = len(old) + first
    expected = [expected_record(j) for j in journal[n_skip:]]
    got = agent.read_output()
    n_old = sum(rkey(r) in old_keys for r in got)
    assert n_old == 0, "read_from: tail shipped %d entries that were in the journal before " \
                       "the first start" % n_old
    check_records(expected, got, "read_from tail, then a restart (first probe read: %d)" % first)


# --------------------------------------------------------------------------------------------
# e. vacuumed while down


# The wording of the agent's log line about the gap. ADJUST to the C side's final text if it
# differs: the test needs a log line naming the journal and saying entries are no longer there,
# or the metric spillway_journal_gaps_total >= 1.
GAP_LOG_RE = re.compile(r"journal.*no longer|no longer.*journal", re.I)


def test_vacuumed_while_down(agent, workdir):
    rng = random.Random(505)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    a = jg.build_entries(rng, 300, clock, specials=False)
    b1 = jg.build_entries(rng, 200, clock, specials=False)
    jg.write_journal(d, "system.journal", a)
    file_a = jg.rotate(d)
    jg.write_journal(d, "system.journal", b1)
    agent.write_config([src(d)])
    agent.start()
    agent.wait_count(500, timeout=20 * SLOW)
    agent.stop()
    first_run = agent.read_output()
    assert len(first_run) == 500

    b2 = jg.build_entries(rng, 200, clock, specials=False)  # never read: vacuumed below
    jg.write_journal(d, "system.journal", b2)
    file_b = jg.rotate(d)
    c = jg.build_entries(rng, 300, clock, specials=False)
    jg.write_journal(d, "system.journal", c)
    journal = jg.journalctl_json(d)
    assert len(journal) == 1000
    keep = journal[:500] + journal[700:]  # A, the part of B read before, C
    lost = {rkey(expected_record(j)) for j in journal[500:700]}
    os.unlink(file_b)  # journald's vacuum deletes the oldest archived files; here the one the
    #                    agent was in (file A, older, stays: it must not be read again)
    assert file_a.exists()
    assert len(jg.journalctl_json(d)) == 600

    agent.start()
    agent.wait_count(800, timeout=20 * SLOW, exact_recount=True)
    port = agent.http_port()
    gaps = poll(lambda: metric(port, "spillway_journal_gaps_total", source="system"), 3)
    agent.stop()
    got = agent.read_output()
    n_lost = sum(rkey(r) in lost for r in got)
    assert n_lost == 0, "%d entries of the deleted file were shipped?" % n_lost
    check_records([expected_record(j) for j in keep], got,
                  "after the file holding the position was vacuumed")

    stderr = agent.stderr_path.read_text(errors="replace")  # the second run's
    gap_logged = [l for l in stderr.splitlines() if GAP_LOG_RE.search(l)]
    assert gap_logged or (gaps or 0) >= 1, \
        "the gap is neither logged (no line matching %r) nor counted " \
        "(spillway_journal_gaps_total{source=\"system\"} = %r); stderr:\n%s" % (
            GAP_LOG_RE.pattern, gaps, stderr[-3000:])


# --------------------------------------------------------------------------------------------
# f. config checks


def test_invalid_config(agent, workdir):
    d = workdir / "journal"
    d.mkdir()

    def check(source):
        agent.write_config([source])
        r = agent.cli("check", "-c", agent.config_path)
        return r.returncode, r.stdout.decode("utf-8", "replace"), \
            r.stderr.decode("utf-8", "replace")

    rc, out, err = check(src(d, units=[], fields=["_PID", "_COMM", "CONTAINER_NAME"],
                             identifiers=["kubelet"], exclude_units=["cron.service"],
                             read_from="tail", multiline={"preset": "java"}))
    assert rc == 0, "a valid journald source is refused (%d): %s" % (rc, err)
    assert "%s: ok" % agent.config_path in out, out

    prefix = "%s: sources[0]." % agent.config_path
    for bad, key in [
        (dict(src(d), paths=[str(d / "*.journal")]), "paths"),
        (src(d, fields=["pid"]), "fields"),
        (src(d, fields=["_PID", "_comm"]), "fields"),
        (src(d, fields=["_PID", "_PID"]), "fields"),
        (src(d, read_from="middle"), "read_from"),
    ]:
        rc, out, err = check(bad)
        assert rc == 1, "check accepted %s (rc %d, stdout %r)" % (bad, rc, out)
        assert any(l.startswith(prefix + key + ":") for l in err.splitlines()), \
            "no line starting %r for %s:\n%s" % (prefix + key + ":", bad, err)


# --------------------------------------------------------------------------------------------
# redaction, search, status


def test_redaction_search_and_status(agent, workdir):
    """Journal records go through redaction (message and label values), are found by
    `spillway search --label unit=...`, and `status` reports the committed cursor: as many
    entries as were read, no lag once caught up."""
    rng = random.Random(606)
    clock = jg.Clock(rng)
    d = workdir / "journal"
    kube = jg.BY_NAME["kubelet.service"]
    entries = [kubelet_entry(clock, rng, "pull ok %d" % i) for i in range(50)]
    entries.append(kubelet_entry(clock, rng, "login by alice.smith@example.com failed"))
    entries.append(jg.make_entry(clock, kube, "identifier with a secret", rng,
                                 ident="bob.jones@example.org", prio=4))
    entries += [jg.make_entry(clock, jg.BY_NAME["sshd.service"], "accepted key %d" % i, rng, prio=6)
                for i in range(30)]
    jg.write_journal(d, "system.journal", entries)
    agent.write_config([src(d)], extra={"redact": {"builtin": ["email"]}})
    agent.start()
    agent.wait_count(len(entries), timeout=20 * SLOW)
    got = agent.read_output()
    raw = agent.read_raw()
    assert b"example.com" not in raw and b"example.org" not in raw, \
        "an e-mail address reached the sink unredacted"
    line = [r for r in got if r["line"].startswith("login by")]
    assert [r["line"] for r in line] == ["login by [REDACTED:email] failed"], line
    ident = [r for r in got if r["line"] == "identifier with a secret"]
    assert len(ident) == 1 and ident[0]["labels"]["identifier"] == "[REDACTED:email]" and \
        ident[0]["labels"]["level"] == "warning", ident

    # search by a journal label, over the buffer (the file sink keeps history: no sinks but it)
    p = agent.cli("search", "-c", agent.config_path, "--label", "unit=sshd.service",
                  "--output", "json", "--limit", "1000", ".")
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    found = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    assert sorted(r["line"] for r in found) == sorted("accepted key %d" % i for i in range(30)), \
        "search --label unit=sshd.service found %d records: %s" % (len(found), _short(found))

    st = agent.status()
    js = [j for j in st.get("journals", []) if j["source"] == "system"]
    assert len(js) == 1, "status has no journal entry for the source: %s" % _short(st, 600)
    j = js[0]
    assert j["entries"] == len(entries), j
    assert j["lag_seconds"] == 0 and j["position_time"] == j["newest_time"] != "", j
    assert j["cursor"].startswith("s=") and ";i=" in j["cursor"], j
    assert not [f for f in st.get("files", []) if f.get("source") == "system"], \
        "the journal's state is listed as a file: %s" % st["files"]
    port = agent.http_port()
    assert metric(port, "spillway_journal_entries_read_total", source="system") == len(entries)
    assert metric(port, "spillway_journal_lag_seconds", source="system") == 0
    agent.stop()
