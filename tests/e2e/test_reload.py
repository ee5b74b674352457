"""Live reload (SIGHUP, POST /-/reload) under load: sources and sinks added and removed, a
redaction rule changed, nothing lost or repeated; an invalid config is refused with its key
path and the running one goes on."""

import re
import signal
import threading
import time

import requests

from conftest import to_yaml
from test_metrics import scrape, val

SEQ_RE = re.compile(r"^a seq (\d+) ")


class Appender(threading.Thread):
    """Appends "a seq N tok-N key-N" lines to path, a few hundred per 10 ms, until stopped."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.seq = path, 0
        self.stop_ev = threading.Event()

    def run(self):
        with open(self.path, "ab") as f:
            while not self.stop_ev.is_set():
                f.write(b"".join(b"a seq %d tok-%d key-%d\n" % (n, n, n)
                                 for n in range(self.seq, self.seq + 200)))
                f.flush()
                self.seq += 200
                self.stop_ev.wait(0.01)  # the writer's pace

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        return self.seq


def config(agent, dirs, sources, sinks, rule, reload_http=False):
    srcs = [{"name": n, "type": "file", "paths": ["%s/*.log" % dirs[n]]} for n in sources]
    snks = [{"name": n, "type": "file", "path": str(agent.dir / "out" / ("%s.ndjson" % n))}
            for n in sinks]
    cfg = agent.config_dict(srcs, sinks=snks, extra={"redact": {"rules": [dict(rule)]}})
    cfg["server"]["enable_reload"] = reload_http
    agent.config_path.write_text(to_yaml(cfg))
    return cfg


def lines_of(agent, sink):
    path = agent.dir / "out" / ("%s.ndjson" % sink)
    saved = agent.out_path
    agent.out_path = path
    try:
        return [r["line"] for r in agent.read_output()]
    finally:
        agent.out_path = saved


def runs(agent):
    return agent.stderr_path.read_text(errors="replace").count('"msg":"spillway ')


TOK = {"name": "tok", "pattern": "tok-[0-9]+", "replace": "[TOK]"}
KEY = {"name": "tok", "pattern": "key-[0-9]+", "replace": "[KEY]"}


def test_reload_under_load(agent, workdir):
    dirs = {n: workdir / n for n in ("a", "b", "c")}
    for d in dirs.values():
        d.mkdir()
    config(agent, dirs, ["a", "b"], ["one"], TOK)
    agent.start(wait_ready=False)
    base = "http://127.0.0.1:%d" % agent.http_port()
    agent.wait_for(lambda: requests.get(base + "/ready", timeout=2).status_code == 200, 10, "ready")
    app = Appender(dirs["a"] / "app.log")
    app.start()
    (dirs["b"] / "b.log").write_bytes(b"".join(b"b old %d\n" % i for i in range(500)))
    (dirs["c"] / "c.log").write_bytes(b"".join(b"c early %d\n" % i for i in range(300)))
    agent.wait_for(lambda: sum(ln.startswith("b old") for ln in lines_of(agent, "one")) == 500,
                   30, "source b's lines in sink one")
    # Every seq up to here is in sink one, redacted by the old rule.
    before = max(int(SEQ_RE.match(ln).group(1)) for ln in lines_of(agent, "one") if ln.startswith("a "))
    # The new config: source b removed, c added, sink two added, rule tok now masks key-N.
    config(agent, dirs, ["a", "c"], ["one", "two"], KEY)
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: runs(agent) == 2, 20, "the reloaded pipeline to run")
    after = app.seq  # written after the new pipeline runs: read by it
    with open(dirs["b"] / "b.log", "ab") as f:  # b is no longer a source: never shipped
        f.write(b"".join(b"b late %d\n" % i for i in range(100)))
    with open(dirs["c"] / "c.log", "ab") as f:
        f.write(b"".join(b"c late %d\n" % i for i in range(300)))
    time.sleep(1.0)  # keep writing under the new config for a while (load, not a wait)
    last = app.finish()
    agent.wait_for(lambda: sum(ln.startswith("a ") for ln in lines_of(agent, "one")) >= last,
                   60, "every line of a in sink one")
    agent.wait_for(lambda: sum(ln.startswith("c ") for ln in lines_of(agent, "two")) >= 600,
                   30, "source c's lines in sink two")
    s = agent.wait_for(lambda: (lambda s: s if val(s, "spillway_config_reloads_total",
                                                    result="success") == 1 else None)(
        scrape(agent.http_port())), 10, "the reload counted")
    assert val(s, "spillway_config_last_reload_successful") == 1
    agent.stop()

    one, two = lines_of(agent, "one"), lines_of(agent, "two")
    # Sink one: every a line exactly once, across the reload.
    seqs = [int(SEQ_RE.match(ln).group(1)) for ln in one if ln.startswith("a ")]
    assert sorted(seqs) == list(range(last)), "a lines lost or repeated in sink one"
    assert sorted(ln for ln in one if ln.startswith("b ")) == sorted("b old %d" % i for i in range(500))
    assert sorted(ln for ln in one if ln.startswith("c ")) == sorted(
        ["c early %d" % i for i in range(300)] + ["c late %d" % i for i in range(300)])
    # The rule: old before the reload, new after; each line redacted by exactly one of them.
    for ln in one:
        m = SEQ_RE.match(ln)
        if not m:
            continue
        n = int(m.group(1))
        old = ln == "a seq %d [TOK] key-%d" % (n, n)
        new = ln == "a seq %d tok-%d [KEY]" % (n, n)
        assert old or new, ln
        assert old if n <= before else True, ln
        assert new if n >= after else True, ln
    # Sink two (added): the buffer's backlog at its start and everything after, exactly once:
    # its a lines are a gapless range up to the last one.
    seqs2 = sorted(int(SEQ_RE.match(ln).group(1)) for ln in two if ln.startswith("a "))
    assert seqs2 and seqs2 == list(range(seqs2[0], last)) and seqs2[0] <= after, seqs2[:3]
    assert sorted(ln for ln in two if ln.startswith("c ")) == sorted(
        ["c early %d" % i for i in range(300)] + ["c late %d" % i for i in range(300)])
    assert not [ln for ln in one + two if ln.startswith("b late")]


def test_invalid_reload_keeps_the_running_config(agent, workdir):
    dirs = {"a": workdir / "a"}
    dirs["a"].mkdir()
    cfg = config(agent, dirs, ["a"], ["one"], TOK, reload_http=True)
    agent.start(wait_ready=False)
    base = "http://127.0.0.1:%d" % agent.http_port()
    agent.wait_for(lambda: requests.get(base + "/ready", timeout=2).status_code == 200, 10, "ready")
    app = Appender(dirs["a"] / "app.log")
    app.start()
    good = agent.config_path.read_text()
    # An unknown sink type and a bad pattern: both reported with their key paths.
    cfg["sinks"][0]["type"] = "nope"
    cfg["redact"]["rules"][0]["pattern"] = "tok-[0-9"
    agent.config_path.write_text(to_yaml(cfg))
    r = requests.post(base + "/-/reload", timeout=5)
    assert r.status_code == 202 and r.json() == {"status": "reloading"}
    agent.wait_for(lambda: "configuration unchanged" in agent.stderr_tail(100000), 10,
                   "the reload to be refused")
    err = agent.stderr_tail(100000)
    assert re.search(r'reload refused: [^"]*agent\.yaml: sinks\[0\]\.type: ', err), err[-2000:]
    assert re.search(r'reload refused: [^"]*agent\.yaml: redact\.rules\[0\]\.pattern: ', err), err[-2000:]
    assert runs(agent) == 1
    assert requests.get(base + "/ready", timeout=2).status_code == 200
    # data_dir cannot change while running: refused too.
    agent.config_path.write_text(good.replace(str(agent.data_dir), str(agent.data_dir) + "-x"))
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: "data_dir: cannot change on reload" in agent.stderr_tail(100000), 10,
                   "the data_dir change to be refused")
    # The old pipeline still runs: lines keep arriving, once each.
    mark = app.seq
    agent.wait_for(lambda: sum(ln.startswith("a ") for ln in lines_of(agent, "one")) > mark + 1000,
                   30, "lines still shipped after the refused reloads")
    last = app.finish()
    agent.wait_for(lambda: sum(ln.startswith("a ") for ln in lines_of(agent, "one")) >= last, 30,
                   "every line")
    s = scrape(agent.http_port())
    assert val(s, "spillway_config_reloads_total", result="failure") == 2
    assert val(s, "spillway_config_reloads_total", result="success") == 0
    assert val(s, "spillway_config_last_reload_successful") == 0
    # A valid one is applied again through HTTP.
    agent.config_path.write_text(good)
    assert requests.post(base + "/-/reload", timeout=5).status_code == 202
    agent.wait_for(lambda: runs(agent) == 2, 20, "the reload to run")
    agent.wait_for(lambda: requests.get(base + "/ready", timeout=2).status_code == 200, 10, "ready")
    s = scrape(agent.http_port())
    assert val(s, "spillway_config_reloads_total", result="success") == 1
    assert val(s, "spillway_config_last_reload_successful") == 1
    agent.stop()
    seqs = [int(SEQ_RE.match(ln).group(1)) for ln in lines_of(agent, "one") if ln.startswith("a ")]
    assert sorted(seqs) == list(range(last))


def test_reload_endpoint_is_off_by_default(agent, workdir):
    d = workdir / "a"
    d.mkdir()
    agent.write_config([{"name": "a", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    base = "http://127.0.0.1:%d" % agent.http_port()
    assert requests.post(base + "/-/reload", timeout=5).status_code == 404
    assert requests.get(base + "/-/reload", timeout=5).status_code == 404
    assert runs(agent) == 1
    agent.stop()


def test_reload_that_cannot_start_restores_the_previous_config(agent, workdir):
    """A config that validates but cannot run (its file sink's directory cannot be created) is
    replaced by the previous one: lines keep flowing to the old sink, exactly once."""
    dirs = {"a": workdir / "a"}
    dirs["a"].mkdir()
    cfg = config(agent, dirs, ["a"], ["one"], TOK)
    agent.start(wait_ready=False)
    base = "http://127.0.0.1:%d" % agent.http_port()
    agent.wait_for(lambda: requests.get(base + "/ready", timeout=2).status_code == 200, 10, "ready")
    app = Appender(dirs["a"] / "app.log")
    app.start()
    cfg["sinks"][0]["path"] = "/proc/1/no-such-dir/out.ndjson"
    agent.config_path.write_text(to_yaml(cfg))
    assert agent.cli("check", "-c", agent.config_path).returncode == 0  # valid, cannot run
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: "restoring the previous one" in agent.stderr_tail(100000), 20,
                   "the failed start to be noticed")
    agent.wait_for(lambda: runs(agent) == 2, 20, "the previous config to run again")
    mark = app.seq
    agent.wait_for(lambda: sum(ln.startswith("a ") for ln in lines_of(agent, "one")) > mark, 30,
                   "lines shipped after the restore")
    last = app.finish()
    agent.wait_for(lambda: sum(ln.startswith("a ") for ln in lines_of(agent, "one")) >= last, 30,
                   "every line")
    s = scrape(agent.http_port())
    assert val(s, "spillway_config_reloads_total", result="failure") == 1
    assert val(s, "spillway_config_last_reload_successful") == 0
    assert requests.get(base + "/ready", timeout=2).status_code == 200
    agent.stop()
    seqs = [int(SEQ_RE.match(ln).group(1)) for ln in lines_of(agent, "one") if ln.startswith("a ")]
    assert sorted(seqs) == list(range(last))


def test_reload_with_a_network_sink_under_load(agent, workdir):
    """The in-process restart of a Loki sink (its requests in flight are cancelled and sent again
    by the new pipeline, from the committed cursor): Loki, which deduplicates identical entries,
    ends with every line exactly once; the file sink, which is exact, too."""
    from receivers import Loki
    loki = Loki()
    try:
        d = workdir / "a"
        d.mkdir()
        cfg = agent.config_dict(
            [{"name": "a", "type": "file", "paths": ["%s/*.log" % d]}],
            sinks=[{"name": "one", "type": "file", "path": str(agent.dir / "out" / "one.ndjson")},
                   {"name": "loki", "type": "loki", "url": loki.url, "concurrency": 2,
                    "batch": {"max_bytes": "64KiB", "max_wait": "100ms"}}])
        agent.config_path.write_text(to_yaml(cfg))
        agent.start(wait_ready=False)
        base = "http://127.0.0.1:%d" % agent.http_port()
        agent.wait_for(lambda: requests.get(base + "/ready", timeout=2).status_code == 200, 10, "ready")
        app = Appender(d / "app.log")
        app.start()
        for n in range(3):  # three reloads while lines keep coming; the last one adds a label
            agent.wait_for(lambda: loki.entries_received > (n + 1) * 2000, 30, "Loki receiving")
            if n == 2:
                cfg["sinks"][1]["labels"] = {"reloaded": "yes"}
                agent.config_path.write_text(to_yaml(cfg))
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_for(lambda: runs(agent) == n + 2, 20, "reload %d to run" % (n + 1))
        time.sleep(0.5)  # more lines under the last config (load, not a wait)
        last = app.finish()

        def loki_seqs():
            return [int(SEQ_RE.match(line).group(1)) for _, _, line in loki.lines()]
        agent.wait_for(lambda: len(set(loki_seqs())) >= last, 60, "every line at Loki")
        agent.wait_for(lambda: sum(ln.startswith("a ") for ln in lines_of(agent, "one")) >= last,
                       30, "every line in the file sink")
        agent.stop()
        # Per stream (labels), each line once; lines shipped after the last reload carry its label.
        by_stream = {}
        for labels, _, line in loki.lines():
            by_stream.setdefault(tuple(sorted(labels.items())), []).append(line)
        for stream, ls in by_stream.items():
            assert len(ls) == len(set(ls)), "duplicates in stream %r" % (stream,)
        assert sorted(set(loki_seqs())) == list(range(last))
        assert any(("reloaded", "yes") in s for s in by_stream)
        seqs = [int(SEQ_RE.match(ln).group(1)) for ln in lines_of(agent, "one") if ln.startswith("a ")]
        assert sorted(seqs) == list(range(last))
    finally:
        loki.stop()


def test_idle_http_client_does_not_delay_a_reload(agent, workdir):
    """A client holding a connection without finishing its request (cut at 5 s with 408) does not
    hold the reload back: it is applied in well under a second, and the client still gets its
    408."""
    import socket
    dirs = {"a": workdir / "a"}
    dirs["a"].mkdir()
    config(agent, dirs, ["a"], ["one"], TOK)
    agent.start(wait_ready=False)
    port = agent.http_port()
    base = "http://127.0.0.1:%d" % port
    agent.wait_for(lambda: requests.get(base + "/ready", timeout=2).status_code == 200, 10, "ready")
    slow = socket.create_connection(("127.0.0.1", port), timeout=10)
    slow.sendall(b"GET /hea")
    t0 = time.monotonic()
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: runs(agent) == 2, 10, "the reload to run")
    assert time.monotonic() - t0 < 2.0
    assert slow.recv(64).startswith(b"HTTP/1.1 408 ")
    slow.close()
    agent.stop()
