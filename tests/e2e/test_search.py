"""`spillway search` against ground truth: the records the test wrote (docker, CRI, a plain file)
filtered by the test itself with Python's re, and `grep -P` over the raw plain file.

One corpus is ingested once for the module (file sink, keep_shipped so shipped chunks stay);
every query then runs on the real database, with the agent stopped and while it runs.
"""

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time

import pytest

import loggen
from conftest import HOST, Agent, wait_for
from loggen import CriContainer, DockerContainer, Feed, fmt_ts, parse_ts

NS = loggen.NS
B0 = loggen.BASE_NS


def search(binary, *args, timeout=60):
    p = subprocess.run([binary, "search"] + [str(a) for a in args], capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p


def search_json(binary, *args):
    p = search(binary, "--output", "json", *args)
    assert p.returncode in (0, 1), "search %r failed (%d): %s" % (args, p.returncode, p.stderr.decode())
    recs = [json.loads(l) for l in p.stdout.decode().split("\n") if l]
    assert (p.returncode == 0) == bool(recs), "exit code %d with %d results" % (p.returncode, len(recs))
    return recs


class Corpus:
    """Records of every file as (ts_ns, stream, labels, line); plain-file records get their
    times from the search results (the agent stamps them when read)."""

    def __init__(self, workdir, binary):
        self.rng = random.Random(6006)
        self.workdir = workdir
        self.recs = []
        croot, proot, aroot = workdir / "containers", workdir / "pods", workdir / "app"
        for d in (croot, proot, aroot):
            d.mkdir()
        feeds = []
        for name in ("web-0", "web-1", None):
            c = DockerContainer.create(croot, self.rng, name)
            wl = loggen.docker_workload(self.rng, 2500, loggen.Clock(self.rng), long_ratio=0.002,
                                        long_sizes=[20000, 70001])
            feeds.append(Feed.of(c.path, wl))
            self.recs += [(parse_ts(ts), s, c.labels(HOST, "docker"), line) for ts, s, line in wl.exp]
        for ns, pod in (("prod", "api-1"), ("dev", "worker-7")):
            c = CriContainer.create(proot, self.rng, ns, pod, "main")
            wl = loggen.cri_workload(self.rng, 2500, loggen.Clock(self.rng), long_ratio=0.002,
                                     long_sizes=[20000])
            feeds.append(Feed.of(c.path, wl))
            self.recs += [(parse_ts(ts), s, c.labels(HOST, "pods"), line) for ts, s, line in wl.exp]
        self.plain = aroot / "plain.log"
        self.plain_lines = [loggen.rand_text(self.rng, 5, 200) for _ in range(2000)]
        self.plain.write_text("".join(l + "\n" for l in self.plain_lines))
        for f in feeds:
            f.feed_all()
        self.n_containers = len(self.recs)
        self.total = self.n_containers + len(self.plain_lines)

        self.agent = Agent(binary, workdir, "search")
        self.agent.write_config(
            [{"name": "docker", "type": "docker", "paths": ["%s/*/*-json.log" % croot]},
             {"name": "pods", "type": "cri", "paths": ["%s/*/*/*.log" % proot]},
             {"name": "app", "type": "file", "paths": ["%s/*.log" % aroot]}],
            buffer={"max_bytes": "1GiB", "keep_shipped": {"max_age": "24h"},
                    "chunk": {"max_records": 300, "max_bytes": "1MiB", "max_wait": "200ms"}})
        self.agent.start()
        self.agent.wait_count(self.total, 60)
        self.agent.stop()
        self.config = str(self.agent.config_path)


@pytest.fixture(scope="module")
def corpus(spillway_bin, tmp_path_factory):
    c = Corpus(tmp_path_factory.mktemp("search_corpus"), spillway_bin)
    yield c
    c.agent.cleanup()


def label_ok(labels, spec):
    m = re.match(r"^([^=!]+)(=~|!~|!=|=)(.*)$", spec)
    k, op, v = m.groups()
    have = labels.get(k, "")
    if op == "=":
        return have == v
    if op == "!=":
        return have != v
    full = re.fullmatch(v, have) is not None
    return full if op == "=~" else not full


# (regex, python flags, extra CLI args, label specs, stream)
QUERIES = [
    ("timeout", 0, [], [], None),
    ("^GET", 0, [], [], None),
    ("commit$", 0, [], [], None),
    ("retry|rollback", 0, [], [], None),
    ("中文", 0, [], [], None),
    ("😀 ", 0, [], [], None),
    (r"\d{9}", re.ASCII, [], [], None),
    (r"\bdb query\b", re.ASCII, [], [], None),
    ("LATENCY", re.IGNORECASE, ["-i"], [], None),
    ('"level": "error"', 0, [], [], None),
    (r"\\u00e9 literal", 0, [], [], None),
    ("cr\rhere", 0, [], [], None),
    ("x{3}yz", 0, [], [], None),
    ("", 0, [], ["container_name=web-1"], None),
    ("session", 0, [], [], "stderr"),
    ("worker", 0, [], ["namespace=prod"], None),
    ("queue", 0, [], ["container_name=~web-[01]"], None),
    ("job", 0, [], ["source!=docker"], None),
    ("ok started", 0, [], ["pod!~api.*"], None),
    ("(?<=user )session", 0, [], [], None),
    ("hit(?! miss)", 0, [], [], None),
    ("^$", 0, [], [], None),
    ("^LONG", 0, [], [], None),
    ("(?>ti)meout", 0, [], [], None),
    (r"\Aconnected", re.ASCII, [], [], None),
    ("failed.*done", 0, [], ["source=app"], None),
    ("Привет|naïve", 0, [], [], "stdout"),
]


def expected(corpus, plain_ts, regex, flags, labels, stream, since=None, until=None):
    rx = re.compile(regex, flags)
    out = []
    for ts, s, lab, line in corpus.recs + plain_ts:
        if stream and s != stream:
            continue
        if since is not None and ts < since or until is not None and ts >= until:
            continue
        if not all(label_ok(lab, l) for l in labels):
            continue
        if rx.search(line):
            out.append((ts, s, json.dumps(lab, sort_keys=True), line))
    return out


def got(recs):
    return [(parse_ts(r["ts"]), r["stream"], json.dumps(r["labels"], sort_keys=True), r["line"])
            for r in recs]


def plain_records(corpus, binary):
    """The plain file's records with the times the agent gave them (all lines, in order)."""
    recs = search_json(binary, "-c", corpus.config, "--label", "source=app", "")
    assert [r["line"] for r in recs] == corpus.plain_lines
    return [(parse_ts(r["ts"]), r["stream"], r["labels"], r["line"]) for r in recs]


def test_queries_equal_ground_truth(corpus, spillway_bin):
    plain = plain_records(corpus, spillway_bin)
    nonempty = 0
    for regex, flags, extra, labels, stream in QUERIES:
        args = ["-c", corpus.config] + extra
        for l in labels:
            args += ["--label", l]
        if stream:
            args += ["--stream", stream]
        res = got(search_json(spillway_bin, *(args + ["--", regex])))
        want = expected(corpus, plain, regex, flags, labels, stream)
        times = [r[0] for r in res]
        assert times == sorted(times), "results of %r are not in time order" % regex
        assert sorted(res) == sorted(want), "query %r %r %r: %d results, expected %d" % (
            regex, labels, stream, len(res), len(want))
        nonempty += bool(want)
    assert nonempty >= 22  # the queries really select something


def test_time_windows_and_limit(corpus, spillway_bin):
    plain = plain_records(corpus, spillway_bin)
    ts = sorted(r[0] for r in corpus.recs)
    lo, hi = ts[len(ts) // 3], ts[len(ts) // 3 + len(ts) // 20]  # about 5 % of the records
    for regex in ("timeout", "", "^POST"):
        res = got(search_json(spillway_bin, "-c", corpus.config, "--since", fmt_ts(lo),
                              "--until", fmt_ts(hi), regex))
        want = expected(corpus, plain, regex, 0, [], None, lo, hi)
        assert sorted(res) == sorted(want) and len(want) > 0
    # --limit: the first N in time order
    res = got(search_json(spillway_bin, "-c", corpus.config, "--limit", 25, "--label", "source=docker",
                          "request"))
    want = sorted(expected(corpus, plain, "request", 0, ["source=docker"], None))
    assert [r[0] for r in res] == [w[0] for w in want[:25]]
    # relative --since: only the plain file's records were stamped in the last hour
    res = got(search_json(spillway_bin, "-c", corpus.config, "--since", "1h", ""))
    assert sorted(res) == sorted(expected(corpus, plain, "", 0, [], None, time.time_ns() - 3600 * NS))
    # --count agrees, and exit codes follow grep
    p = search(spillway_bin, "-c", corpus.config, "--count", "timeout")
    assert p.returncode == 0 and int(p.stdout) == len(expected(corpus, plain, "timeout", 0, [], None))
    p = search(spillway_bin, "-c", corpus.config, "no such words anywhere")
    assert p.returncode == 1 and p.stdout == b""


def test_plain_file_equals_grep(corpus, spillway_bin):
    env = dict(os.environ, LC_ALL="C.UTF-8")
    for regex in ("timeout", "^GET", "commit$", "中文|Ω", r"\d{9}", "(?<=user )session", "^$"):
        g = subprocess.run(["grep", "-aP", regex, str(corpus.plain)], capture_output=True, env=env)
        want = g.stdout.decode().split("\n")[:-1]
        p = search(spillway_bin, "-c", corpus.config, "--label", "source=app", "--output", "json", "--", regex)
        assert [json.loads(l)["line"] for l in p.stdout.decode().split("\n") if l] == want, regex
        assert p.returncode == g.returncode


def test_text_output_and_bad_usage(corpus, spillway_bin):
    p = search(spillway_bin, "-c", corpus.config, "--label", "container_name=web-0", "--limit", 1, "")
    line = p.stdout.decode()
    first = min((r for r in corpus.recs if r[2].get("container_name") == "web-0"), key=lambda r: r[0])
    assert line.startswith(fmt_ts(first[0]) + " host=%s,source=docker,container_id=" % HOST)
    assert line.endswith(" %s %s\n" % (first[1], first[3]))
    for bad, msg in ((["(unclosed"], "missing closing parenthesis"),
                     (["--since", "yesterday", "x"], "--since"),
                     (["--label", "novalue", "x"], "label matcher"),
                     (["--stream", "stdin", "x"], "--stream"),
                     (["--label", "a=~(", "x"], "label matcher")):
        p = search(spillway_bin, "-c", corpus.config, *bad)
        assert p.returncode == 2 and msg in p.stderr.decode(), (bad, p.stderr)


def test_missing_corrupt_and_copied_database(corpus, spillway_bin, workdir):
    p = search(spillway_bin, "--db", workdir / "nothing-here", "x")
    assert p.returncode == 2 and "cannot open" in p.stderr.decode()
    junk = workdir / "junk.db"
    junk.write_bytes(b"this is not a database\n" * 1000)
    p = search(spillway_bin, "--db", junk, "x")
    assert p.returncode == 2 and "not a spillway database" in p.stderr.decode()
    # a copy of the stopped agent's database answers like the original
    db = corpus.agent.data_dir / "spillway.db"
    copy = workdir / "copy.db"
    copy.write_bytes(db.read_bytes())
    a = search(spillway_bin, "--db", copy, "--output", "json", "timeout")
    b = search(spillway_bin, "-c", corpus.config, "--output", "json", "timeout")
    assert a.returncode == 0 and a.stdout == b.stdout
    # a damaged schema page: a clear error and exit 2
    data = bytearray(db.read_bytes())
    broken = workdir / "broken.db"
    broken.write_bytes(bytes(data[:100]) + b"\xa5" * 8000 + bytes(data[8100:]))
    p = search(spillway_bin, "--db", broken, "")
    assert p.returncode == 2 and b"spillway search:" in p.stderr, (p.returncode, p.stderr)
    # damaged data pages anywhere: an error (exit 2) or, where the damage hit nothing that is
    # read, the normal answer; never a crash. Chunk data carries zstd checksums, so a damaged
    # chunk is reported, never printed as garbage.
    for seed in range(5):
        rng = random.Random(seed)
        d = bytearray(data)
        for _ in range(20):
            at = rng.randrange(16384, len(d) - 64)
            d[at:at + 64] = bytes(rng.getrandbits(8) for _ in range(64))
        broken.write_bytes(bytes(d))
        p = search(spillway_bin, "--db", broken, "--output", "json", "timeout")
        assert p.returncode in (0, 1, 2) and b"Sanitizer" not in p.stderr, (seed, p.returncode, p.stderr[-2000:])
        if p.returncode != 2:
            assert p.stdout == b.stdout
        else:
            assert p.stderr.strip()
    half = workdir / "half.db"
    half.write_bytes(db.read_bytes()[: len(data) // 2])
    p = search(spillway_bin, "--db", half, "")
    assert p.returncode == 2 and p.stderr.strip()


def test_follow_prints_new_records(agent, workdir, spillway_bin):
    app = workdir / "app"
    app.mkdir()
    log = app / "a.log"
    log.write_text("before needle 0\nnothing\n")
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % app]}],
                       buffer={"keep_shipped": {"max_age": "1h"},
                               "chunk": {"max_records": 100, "max_bytes": "1MiB", "max_wait": "100ms"}})
    agent.start()
    agent.wait_count(2, 15)
    f = subprocess.Popen([spillway_bin, "search", "-c", str(agent.config_path), "--follow",
                          "--output", "json", "needle"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = []
        os.set_blocking(f.stdout.fileno(), False)

        def read_until(n):
            def have():
                chunk = f.stdout.read()
                if chunk:
                    lines.extend(chunk.decode().splitlines())
                return len(lines) >= n
            wait_for(have, 15, "%d lines from search --follow (have %r)" % (n, lines))

        read_until(1)
        with open(log, "a") as w:
            for i in range(1, 6):
                w.write("after needle %d\nplain %d\n" % (i, i))
                w.flush()
                time.sleep(0.1)
        read_until(6)
        assert [json.loads(l)["line"] for l in lines] == ["before needle 0"] + [
            "after needle %d" % i for i in range(1, 6)]
    finally:
        f.send_signal(signal.SIGTERM)
        f.wait(10)


def test_keep_shipped_history_and_default(agents, workdir, spillway_bin):
    app = workdir / "app"
    app.mkdir()
    (app / "a.log").write_text("".join("line %d of the history\n" % i for i in range(3000)))
    srcs = [{"name": "app", "type": "file", "paths": ["%s/*.log" % app]}]
    chunk = {"max_records": 100, "max_bytes": "1MiB", "max_wait": "100ms"}
    # default: delivered chunks are deleted, so nothing shipped is searchable
    a = agents("nohist")
    a.write_config(srcs, buffer={"chunk": chunk})
    a.start()
    a.wait_count(3000, 30)
    a.wait_for(lambda: a.status()["buffer"]["chunks"] == 0, 10, "shipped chunks to be deleted")
    a.stop()
    p = search(spillway_bin, "-c", a.config_path, "history")
    assert p.returncode == 1
    # by age: kept while young, deleted once older than max_age
    b = agents("aged")
    b.write_config(srcs, buffer={"chunk": chunk, "keep_shipped": {"max_age": "8s"}})
    b.start()
    b.wait_count(3000, 30)
    p = search(spillway_bin, "-c", b.config_path, "--count", "history")
    assert p.returncode == 0 and int(p.stdout) == 3000
    def all_history():
        st = b.status()["buffer"]
        return st["history_chunks"] == st["chunks"] >= 30 and st["history_bytes"] == st["bytes"] > 0
    b.wait_for(all_history, 10, "status to show every chunk as shipped history")
    b.wait_for(lambda: b.status()["buffer"]["chunks"] == 0, 30, "history older than 8 s to go")
    b.stop()


def test_search_during_ingest_sees_committed_and_does_not_block(agents, workdir, spillway_bin):
    """Searches run in a loop while a big backlog is ingested: every search sees at least the
    records committed before it started, and ingest throughput stays within 10 % of a run
    without searches (searches niced, one thread: they must not hold the writer up)."""
    rng = random.Random(77)
    croot = workdir / "containers"
    croot.mkdir()
    n = 60000
    wls = []
    for i in range(2):
        c = DockerContainer.create(croot, rng, "busy-%d" % i)
        wl = loggen.docker_workload(rng, n, loggen.Clock(rng), long_ratio=0.0)
        wls.append((c, wl))
    total = 2 * n

    def run(name, with_searches):
        for c, wl in wls:
            c.path.write_bytes(b"".join(wl.phys))
        a = agents(name)
        a.write_config([{"name": "docker", "type": "docker", "paths": ["%s/*/*-json.log" % croot]}],
                       buffer={"keep_shipped": {"max_age": "1h"},
                               "chunk": {"max_records": 2000, "max_bytes": "1MiB", "max_wait": "200ms"}})
        dbpath = str(a.data_dir / "spillway.db")
        t0 = time.monotonic()
        a.start(wait_ready=False)
        checks = 0
        while a.output_count() < total:
            assert time.monotonic() - t0 < 120 * (3 if os.environ.get("SPILLWAY_SANITIZED") else 1)
            if not with_searches:
                time.sleep(0.02)
                continue
            try:
                con = sqlite3.connect("file:%s?mode=ro" % dbpath, uri=True, timeout=10)
                before = con.execute("SELECT COALESCE(SUM(records),0) FROM chunks").fetchone()[0]
                con.close()
            except sqlite3.OperationalError:
                continue  # not created yet
            p = subprocess.run(["nice", "-n", "19", spillway_bin, "search", "-c", str(a.config_path),
                                "--threads", "1", "--count", ""], capture_output=True, timeout=60)
            assert p.returncode in (0, 1), p.stderr
            assert int(p.stdout) >= before, "search saw %s records, %d were committed before it" % (
                p.stdout, before)
            checks += 1
        elapsed = time.monotonic() - t0
        a.stop()
        return elapsed, checks

    base1, _ = run("base1", False)
    busy, checks = run("busy", True)
    base2, _ = run("base2", False)
    assert checks >= 3, "too few searches ran during ingest (%d)" % checks
    if os.environ.get("SPILLWAY_SANITIZED") != "1":  # sanitizer timing says nothing
        base = (base1 + base2) / 2
        assert busy <= base * 1.10 + 0.3, "ingest took %.2fs with searches, %.2fs without" % (busy, base)


def http_get(port, path, timeout=30):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), body


def test_http_api_matches_cli(corpus, spillway_bin):
    import socket
    import urllib.parse
    a = corpus.agent
    a.start()
    try:
        port = a.http_port()
        for params in ([("q", "timeout")], [("q", "^GET"), ("label", "source=pods")],
                       [("q", ""), ("label", "container_name=~web-.*"), ("stream", "stderr")],
                       [("q", "request"), ("since", fmt_ts(B0 + 10 * NS)), ("until", fmt_ts(B0 + 20 * NS))],
                       [("q", "LATENCY"), ("case_insensitive", "true"), ("limit", "7")]):
            if "limit" not in dict(params):
                params = params + [("limit", "100000")]
            status, ctype, body = http_get(port, "/api/v1/search?" + urllib.parse.urlencode(params))
            assert status == 200 and ctype == "application/x-ndjson"
            lines = body.decode().split("\n")
            assert lines[-1] == ""
            summary = json.loads(lines[-2])["summary"]
            args = []
            for k, v in params:
                args += {"q": ["--"], "label": ["--label"], "stream": ["--stream"], "since": ["--since"],
                         "until": ["--until"], "limit": ["--limit"], "case_insensitive": ["-i"]}[k]
                if k not in ("q", "case_insensitive"):
                    args.append(v)
            q = dict(params)["q"]
            args = [x for x in args if x != "--"] + ["--", q]
            cli = search(spillway_bin, "-c", corpus.config, "--output", "json", *args).stdout.decode()
            assert "\n".join(lines[:-2]) + "\n" == cli or (not cli and len(lines) == 2), params
            assert summary["matches"] == len(lines) - 2 and not summary["timed_out"]
        # the default limit is 1000 and the summary says the answer was cut
        status, _, body = http_get(port, "/api/v1/search?q=")
        lines = body.decode().split("\n")
        assert len(lines) == 1002 and json.loads(lines[-2])["summary"]["limited"] is True
        for bad, why in (("q=(x", "missing closing parenthesis"), ("q=x&since=never", "since"),
                         ("q=x&label=nope", "label matcher"), ("since=1h", "missing q"),
                         ("q=x&limit=0", "limit"), ("q=x&bogus=1", "unknown parameter"),
                         ("q=%zz", "malformed")):
            status, ctype, body = http_get(port, "/api/v1/search?" + bad)
            assert status == 400 and why in json.loads(body)["error"], (bad, body)
        # clients that stop reading or go away do not stall the agent
        slow = socket.create_connection(("127.0.0.1", port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(b"GET /api/v1/search?q=&limit=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
        gone = socket.create_connection(("127.0.0.1", port))
        gone.sendall(b"GET /api/v1/search?q=&limit=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
        gone.recv(100)
        gone.close()
        t0 = time.monotonic()
        assert http_get(port, "/health", timeout=5)[0] == 200
        assert time.monotonic() - t0 < 2
        slow.close()
        assert a.running()
    finally:
        a.stop()
    # server.enable_search: false takes the endpoint away (404), the CLI still answers
    cfg = corpus.agent.config_path.read_text()
    try:
        corpus.agent.config_path.write_text(cfg.replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:0\n  enable_search: false")
                                            .replace('listen: "127.0.0.1:0"', 'listen: "127.0.0.1:0"\n  enable_search: false'))
        assert "enable_search: false" in corpus.agent.config_path.read_text()
        a.start()
        status, _, _ = http_get(a.http_port(), "/api/v1/search?q=timeout")
        assert status == 404
        a.stop()
    finally:
        corpus.agent.config_path.write_text(cfg)


def test_match_limit_skips_records_not_the_search(agent, workdir, spillway_bin):
    """A catastrophic regex ((a+)+$ over many a's then b) hits PCRE2's match limit on some
    records: those are skipped and counted, the records it can decide are still answered (CLI:
    a note on stderr with the count, exit 0; HTTP: "match_limit_skipped" in the summary)."""
    import urllib.parse
    d = workdir / "app"
    d.mkdir()
    bad = "a" * 40 + "b"
    lines = ["aaaa first", "aaaa", bad, "plain", bad, bad, "tail aaa"]
    (d / "a.log").write_text("".join(l + "\n" for l in lines))
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
                       buffer={"max_bytes": "1GiB", "keep_shipped": {"max_age": "24h"},
                               "chunk": {"max_records": 5000, "max_bytes": "1MiB",
                                         "max_wait": "200ms"}})
    agent.start()
    agent.wait_count(len(lines), 30)
    status, _, body = http_get(agent.http_port(), "/api/v1/search?" +
                               urllib.parse.urlencode({"q": "(a+)+$"}))
    out = body.decode().split("\n")
    assert status == 200 and out[-1] == ""
    assert [json.loads(l)["line"] for l in out[:-2]] == ["aaaa", "tail aaa"]
    summary = json.loads(out[-2])["summary"]
    assert summary["match_limit_skipped"] == 3 and summary["matches"] == 2, summary
    assert "error" not in summary
    agent.stop()
    p = search(spillway_bin, "-c", agent.config_path, "--output", "json", "(a+)+$")
    assert p.returncode == 0, p.stderr
    assert [json.loads(l)["line"] for l in p.stdout.decode().split("\n") if l] == ["aaaa", "tail aaa"]
    assert "3 records skipped" in p.stderr.decode() and "match limit" in p.stderr.decode(), p.stderr
