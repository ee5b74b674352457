"""GET /metrics: scraped during real runs and parsed with prometheus_client's exposition parser.

Every scrape is checked like `promtool check metrics` would (names, HELP/TYPE once per family,
counters end in _total, histogram buckets cumulative and ending in +Inf, no duplicate series),
and the figures are compared with the ground truth the test wrote: records and bytes per source,
parse errors, redaction matches, records and bytes delivered, HTTP answers by class, dead letters.
"""

import os
import re
import threading
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from receivers import Loki

NAME_RE = re.compile(r"^spillway_[a-z0-9_]+$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
EXPECTED_TYPES = {"counter", "gauge", "histogram"}


def check_exposition(text):
    """Validates one scrape; returns {(sample name, ((label, value), ...)): value}."""
    assert text.endswith("\n")
    # HELP and TYPE once per family, HELP first, TYPE before any of its samples.
    typed, helped, seen_sample_of = {}, set(), set()
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helped, "HELP twice for %s" % name
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name in helped and name not in typed, line
            assert name not in seen_sample_of, "TYPE after samples of %s" % name
            typed[name] = typ
        else:
            assert not line.startswith("#") and line, "unexpected line %r" % line
            seen_sample_of.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    series = {}
    for fam in text_string_to_metric_families(text):
        assert fam.type in EXPECTED_TYPES, (fam.name, fam.type)
        assert fam.documentation, "family %s has no HELP text" % fam.name
        for s in fam.samples:
            assert NAME_RE.match(s.name), s.name
            for k in s.labels:
                assert LABEL_RE.match(k) and not k.startswith("__"), (s.name, k)
            if fam.type == "counter":
                assert s.name.endswith("_total"), "counter sample %s must end in _total" % s.name
                assert s.value >= 0, s
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in series, "duplicate series %r" % (key,)
            series[key] = s.value
        if fam.type == "histogram":
            check_histograms(fam)
    for name, typ in typed.items():
        if typ == "counter":
            assert name.endswith("_total"), name
    return series


def check_histograms(fam):
    by_labels = {}
    for s in fam.samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        by_labels.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if s.name.endswith("_bucket"):
            by_labels[key]["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            by_labels[key]["count"] = s.value
        elif s.name.endswith("_sum"):
            by_labels[key]["sum"] = s.value
    for key, h in by_labels.items():
        b = h["buckets"]
        assert b and b[-1][0] == float("inf"), (fam.name, key)
        assert [x for x, _ in b] == sorted(x for x, _ in b), (fam.name, key)
        assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), (fam.name, key, b)
        assert h["count"] == b[-1][1] and h["sum"] is not None and h["sum"] >= 0, (fam.name, key)


def scrape(port):
    r = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return check_exposition(r.text)


def val(series, name, **labels):
    return series.get((name, tuple(sorted(labels.items()))))


class Scraper(threading.Thread):
    """Scrapes every `every` seconds until stopped; checks every scrape and that counters never
    go down between scrapes."""

    def __init__(self, port, every=0.1):
        super().__init__(daemon=True)
        self.port, self.every = port, every
        self.stop_ev = threading.Event()
        self.count, self.error, self.last = 0, None, {}

    def run(self):
        while not self.stop_ev.is_set():
            try:
                cur = scrape(self.port)
                for key, v in cur.items():
                    if key[0].endswith("_total") and key in self.last and key[0] != \
                            "spillway_process_cpu_seconds_total":
                        assert v >= self.last[key], "counter %r went down: %s -> %s" % (
                            key, self.last[key], v)
                self.last = cur
                self.count += 1
            except Exception as e:  # reported by the test thread
                self.error = e
                return
            self.stop_ev.wait(self.every)

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        if self.error:
            raise self.error
        return self.count


def write_lines(path, lines):
    with open(path, "ab") as f:
        for ln in lines:
            f.write(ln)


def test_metrics_agree_with_ground_truth(agent, workdir):
    app, js = workdir / "app", workdir / "js"
    app.mkdir()
    js.mkdir()
    # A path needing every escape of the exposition format: quote, backslash, newline.
    weird = app / 'we"ird\\na\nme.log'
    files = [app / "a.log", app / "b.log", weird]
    agent.write_config(
        [{"name": "app", "type": "file", "paths": ["%s/*.log" % app]},
         {"name": "json", "type": "file", "format": "json", "paths": ["%s/*.log" % js]}],
        extra={"redact": {"builtin": ["email"]}})
    agent.start()
    port = agent.http_port()
    scraper = Scraper(port)
    scraper.start()
    n_app = n_json = n_bad = n_email = 0
    app_bytes = json_bytes = 0
    for rnd in range(20):  # about two seconds of input while scrapes run
        for i, f in enumerate(files):
            lines = []
            for k in range(50):
                if k % 10 == 0:
                    lines.append(b"round %d file %d user%d@example.com logged in\n" % (rnd, i, k))
                    n_email += 1
                else:
                    lines.append(b"round %d file %d line %d\n" % (rnd, i, k))
            write_lines(f, lines)
            n_app += len(lines)
            app_bytes += sum(map(len, lines))
        lines = [b'{"msg":"r%d","n":%d}\n' % (rnd, k) if k % 7 else b"{not json %d\n" % k
                 for k in range(70)]
        n_bad += sum(1 for k in range(70) if k % 7 == 0)
        write_lines(js / "j.log", lines)
        n_json += len(lines)
        json_bytes += sum(map(len, lines))
        time.sleep(0.1)  # pacing of the writer, not a wait for the agent
    total = n_app + n_json
    agent.wait_count(total, 60)

    def settled():
        s = scrape(port)
        want = {("spillway_source_records_total", "app"): n_app,
                ("spillway_source_records_total", "json"): n_json}
        ok = all(val(s, n, source=src) == v for (n, src), v in want.items())
        ok = ok and val(s, "spillway_sink_records_sent_total", sink="local", type="file") == total
        return s if ok else None
    s = agent.wait_for(settled, 30, "metrics to show every record in and out")
    assert scraper.finish() >= 10
    # Records and bytes in, per source; parse errors; redaction matches.
    assert val(s, "spillway_source_bytes_total", source="app") == app_bytes
    assert val(s, "spillway_source_bytes_total", source="json") == json_bytes
    assert val(s, "spillway_source_parse_errors_total", source="json") == n_bad
    assert val(s, "spillway_source_parse_errors_total", source="app") == 0
    assert val(s, "spillway_redaction_matches_total", rule="email") == n_email
    assert val(s, "spillway_source_files", source="app") == 3
    assert val(s, "spillway_source_rotations_total", source="app") == 0
    # Per file: offsets at the end, no lag; the weird path came back exactly.
    for f in files + [js / "j.log"]:
        src = "json" if f.parent == js else "app"
        size = os.path.getsize(f)
        assert val(s, "spillway_file_offset_bytes", source=src, path=str(f)) == size, f
        assert val(s, "spillway_file_size_bytes", source=src, path=str(f)) == size, f
        assert val(s, "spillway_file_lag_bytes", source=src, path=str(f)) == 0, f
        assert val(s, "spillway_file_bytes_total", source=src, path=str(f)) == size, f
    for i, f in enumerate(files):  # 20 rounds of 50 lines each
        assert val(s, "spillway_file_records_total", source="app", path=str(f)) == 1000, f
        assert val(s, "spillway_file_parse_errors_total", source="app", path=str(f)) == 0, f
    assert val(s, "spillway_file_records_total", source="json", path=str(js / "j.log")) == n_json
    assert val(s, "spillway_file_parse_errors_total", source="json", path=str(js / "j.log")) == n_bad
    assert val(s, "spillway_source_lag_bytes", source="app") == 0
    # Out: records and bytes of the file sink are what its output holds.
    out = agent.read_output()
    assert len(out) == total
    assert val(s, "spillway_sink_bytes_sent_total", sink="local", type="file") == \
        os.path.getsize(agent.out_path)
    assert val(s, "spillway_sink_backlog_records", sink="local", type="file") == 0
    assert val(s, "spillway_buffer_dropped_records_total", policy="drop_oldest") == 0
    # Process and build figures are real numbers.
    assert val(s, "spillway_build_info", version=agent.cli("version").stdout.decode().split()[-1]) == 1
    assert 1 << 20 < val(s, "spillway_process_resident_memory_bytes") < 1 << 30
    assert 0 < val(s, "spillway_process_cpu_seconds_total") < 600
    fds = len(agent.fd_targets())
    assert abs(val(s, "spillway_process_open_fds") - fds) <= 3
    assert abs(val(s, "spillway_process_start_time_seconds") - time.time()) < 120
    assert 0 < val(s, "spillway_disk_used_ratio", path=str(agent.data_dir)) < 1
    assert 0 <= val(s, "spillway_metrics_snapshot_age_seconds") < 3
    agent.stop()


def test_metrics_network_sink_classes_and_dead_letters(agent, workdir):
    loki = Loki(hold=3.0)  # a held request outlasts the sink's 2 s timeout
    try:
        # A timeout, not a reset: curl silently retries a reset keep-alive connection itself.
        loki.faults.extend(["500", "timeout"])
        loki.reject_line = "POISON"  # its batch is refused with 400: a dead letter
        d = workdir / "app"
        d.mkdir()
        agent.write_config(
            [{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
            sinks=[{"name": "loki", "type": "loki", "url": loki.url, "timeout": "2s",
                    "batch": {"max_bytes": "256KiB", "max_wait": "200ms"},
                    "retry": {"min_backoff": "50ms", "max_backoff": "200ms"}}])
        agent.start(wait_ready=False)
        port = agent.http_port()
        with open(d / "a.log", "wb") as f:
            for i in range(300):
                f.write(b"line %d\n" % i)
        agent.wait_for(lambda: loki.entries_received >= 300, 30, "the first records at Loki")
        with open(d / "a.log", "ab") as f:
            f.write(b"POISON line\n")

        def settled():
            s = scrape(port)
            lbl = {"sink": "loki", "type": "loki"}
            if val(s, "spillway_sink_dead_letters_total", **lbl) != 1:
                return None
            # Buffer figures come from the snapshot (at most a second or two behind memory).
            if val(s, "spillway_sink_records_sent_total", **lbl) != 300 or \
                    val(s, "spillway_sink_dead_letters", **lbl) != 1:
                return None
            return s
        s = agent.wait_for(settled, 30, "one dead letter and 300 records delivered")
        lbl = {"sink": "loki", "type": "loki"}
        resp = {c: s[("spillway_sink_responses_total",
                      tuple(sorted(dict(lbl, **{"class": c}).items())))]
                for c in ("2xx", "4xx", "5xx", "network")}
        assert resp["5xx"] == 1 and resp["network"] == 1 and resp["4xx"] == 1, resp
        assert resp["2xx"] >= 1
        def receiver_2xx():  # the receiver notes a status just after sending it
            with loki.lock:
                return loki.statuses.count(204) + loki.statuses.count(200)
        agent.wait_for(lambda: receiver_2xx() == resp["2xx"], 5,
                       "the receiver's 2xx count to match %d" % resp["2xx"])
        answered = sum(resp.values())
        assert val(s, "spillway_sink_requests_total", **lbl) == answered
        assert val(s, "spillway_sink_retries_total", **lbl) == 2
        assert val(s, "spillway_sink_request_duration_seconds_count", **lbl) == answered
        assert val(s, "spillway_sink_dead_letters", **lbl) == 1
        assert val(s, "spillway_sink_dead_letter_records", **lbl) == 1
        assert val(s, "spillway_sink_last_error_timestamp_seconds", **lbl) > time.time() - 120
        assert val(s, "spillway_sink_bytes_sent_total", **lbl) > 0
        assert val(s, "spillway_sink_backlog_records", **lbl) == 0
        agent.stop()
    finally:
        loki.stop()


def test_metrics_before_the_pipeline_and_methods(agent, workdir):
    d = workdir / "app"
    d.mkdir()
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    base = "http://127.0.0.1:%d" % agent.http_port()
    assert requests.post(base + "/metrics", timeout=5).status_code == 405
    r = requests.head(base + "/metrics", timeout=5)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) > 1000 and not r.content
    agent.stop()


def test_status_reads_the_running_agents_metrics(agent, workdir):
    """`spillway status` adds what only the running agent knows (read offsets, live sizes and
    lag, HTTP counters, uptime) and says when it does not answer."""
    d = workdir / "app"
    d.mkdir()
    port = free_port()
    loki = Loki()
    try:
        loki.faults.append("503")
        agent.write_config(
            [{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}],
            sinks=[{"name": "local", "type": "file", "path": str(agent.out_path)},
                   {"name": "loki", "type": "loki", "url": loki.url,
                    "batch": {"max_bytes": "64KiB", "max_wait": "100ms"},
                    "retry": {"min_backoff": "50ms", "max_backoff": "100ms"}}])
        cfg = agent.config_path.read_text().replace("127.0.0.1:0", "127.0.0.1:%d" % port)
        agent.config_path.write_text(cfg)
        agent.start()
        (d / "a.log").write_bytes(b"".join(b"line %d\n" % i for i in range(500)))
        agent.wait_count(500, 30)
        size = os.path.getsize(d / "a.log")

        def live():
            st = agent.status()
            a = st.get("agent", {})
            f = [x for x in st["files"] if x["path"] == str(d / "a.log")]
            sk = [x for x in st["sinks"] if x["name"] == "loki"]
            ok = a.get("running") is True and f and f[0].get("read_offset") == size and \
                sk and sk[0].get("failures", {}).get("5xx") == 1 and sk[0].get("requests", 0) >= 2
            return st if ok else None
        st = agent.wait_for(live, 20, "status with the agent's live figures")
        a = st["agent"]
        assert a["address"] == "127.0.0.1:%d" % port
        assert a["version"] and a["rss_bytes"] > 1 << 20 and 0 <= a["uptime_seconds"] < 120
        f = [x for x in st["files"] if x["path"] == str(d / "a.log")][0]
        assert f["live_size"] == size and f["live_lag_bytes"] == 0
        sk = [x for x in st["sinks"] if x["name"] == "loki"][0]
        assert sk["retries"] == 1 and sk["requests"] >= 2 and sk["failures"]["4xx"] == 0
        assert "requests" not in [x for x in st["sinks"] if x["name"] == "local"][0]
        text = agent.cli("status", "-c", agent.config_path).stdout.decode()
        assert "AGENT   running at 127.0.0.1:%d" % port in text
        assert re.search(r"\nloki +\d+ +1 +0 +1 +0\n", text), text
        agent.stop()
        st = agent.status()
        assert st["agent"]["running"] is False
        assert "Connection refused" in st["agent"]["reason"]
        assert [x for x in st["files"] if x["path"] == str(d / "a.log")][0]["offset"] == size
        text = agent.cli("status", "-c", agent.config_path).stdout.decode()
        assert text.startswith("AGENT   not answering: ")
    finally:
        loki.stop()


def test_rotation_counted_and_no_duplicate_series(agent, workdir):
    """rename+create: for a few seconds the renamed file is still drained under its old path
    while the new file has the same path; the scrape stays valid (one series per path, the
    active file's) and the rotation is counted."""
    d = workdir / "app"
    d.mkdir()
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    port = agent.http_port()
    live = d / "a.log"
    live.write_bytes(b"".join(b"old %d\n" % i for i in range(100)))
    agent.wait_count(100, 30)
    live.rename(d / "a.log.1")
    live.write_bytes(b"".join(b"new %d\n" % i for i in range(50)))
    new_size = os.path.getsize(live)

    def rotated():
        s = scrape(port)  # check_exposition: no duplicate series
        ok = val(s, "spillway_source_rotations_total", source="app") == 1 and \
            val(s, "spillway_source_files", source="app") == 2 and \
            val(s, "spillway_file_size_bytes", source="app", path=str(live)) == new_size
        return s if ok else None
    s = agent.wait_for(rotated, 10, "the rotation in /metrics while both files are followed")
    files = [k for k in s if k[0] == "spillway_file_size_bytes"]
    assert len(files) == 1, files
    agent.wait_count(150, 30)
    agent.stop()


def test_first_scrape_after_start_is_fresh(agent, workdir):
    """The snapshot taken at start predates what was read since: the first scrape waits for a
    new one instead of reporting 0 records shipped."""
    d = workdir / "app"
    d.mkdir()
    (d / "a.log").write_bytes(b"".join(b"line %d\n" % i for i in range(2000)))
    agent.write_config([{"name": "app", "type": "file", "paths": ["%s/*.log" % d]}])
    agent.start()
    agent.wait_count(2000, 30)
    agent.wait_for(lambda: agent.status()["sinks"][0]["backlog_records"] == 0, 20, "the ack")
    series = scrape(agent.http_port())
    assert val(series, "spillway_source_records_total", source="app") == 2000
    assert val(series, "spillway_sink_records_sent_total", sink="local", type="file") == 2000
    assert 0 <= val(series, "spillway_metrics_snapshot_age_seconds") < 1.5
    agent.stop()
