"""packaging/monitoring: the alert rules and the Grafana dashboard only use metrics a real agent
exposes, every alert has its runbook entry, and promtool (Debian's `prometheus` package)
accepts the rules, fires each alert on the situation it describes, and lints a real scrape."""

import json
import re
import shutil
import subprocess

import pytest
import requests
import yaml

from receivers import Loki
from conftest import REPO, Agent
from test_metrics import check_exposition, val

MON = REPO / "packaging" / "monitoring"
RULES = MON / "spillway-alerts.yaml"
DASHBOARD = MON / "spillway-dashboard.json"
RUNBOOK = REPO / "docs" / "runbook.md"
NOT_METRICS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression selects (strings, label matchers, ranges and
    grouping clauses removed; a name followed by "(" is a function or an aggregation)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group(0) in NOT_METRICS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] in ".$"):
            continue  # "15m", "1e3", "$var"
        names.add(m.group(0))
    return names


def test_metric_name_extraction():
    assert metric_names('sum by (job, sink) (increase(a_total{x="y(z)"}[10m])) == 0 '
                        'and on (job) (b > 1e3 or delta(c[5m]) > 0) and d offset 5m') == \
        {"a_total", "b", "c", "d"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))") \
        == {"h_bucket"}


def rules():
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def is_loki(x):
    return (x.get("datasource") or {}).get("type") == "loki"


def dashboard_exprs():
    """The Prometheus expressions of the dashboard (its Loki logs panel and variables query
    logs, not metrics)."""
    d = json.loads(DASHBOARD.read_text())
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            if not (is_loki(t) or is_loki(p)):
                out.append((p["title"], t["expr"]))
    for a in d["annotations"]["list"]:
        out.append(("annotation " + a["name"], a["expr"]))
    for v in d["templating"]["list"]:
        if v["type"] == "query" and not is_loki(v):
            q = v["query"]["query"]
            out.append(("variable " + v["name"], re.sub(r"^label_values\((\w+),.*$", r"\1", q)))
    return out


@pytest.fixture(scope="module")
def scrape_text(spillway_bin, tmp_path_factory):
    """One /metrics scrape of an agent that has every family with samples: a file sink and a
    Loki sink (one dead letter), redaction, disk_pressure, reload enabled."""
    workdir = tmp_path_factory.mktemp("monitoring")
    loki = Loki()
    loki.reject_line = "POISON"
    agent = Agent(spillway_bin, workdir)
    try:
        d = workdir / "app"
        d.mkdir()
        agent.write_config(
            [{"name": "app", "type": "file", "paths": ["%s/*.log" % d], "labels": {"app": "web"}}],
            sinks=[{"name": "local", "type": "file", "path": str(agent.out_path)},
                   {"name": "loki", "type": "loki", "url": loki.url,
                    "batch": {"max_bytes": "64KiB", "max_wait": "100ms"}},
                   # never sends (its match keeps everything out): for the archive families
                   {"name": "archive", "type": "s3", "endpoint": "http://127.0.0.1:9", "bucket": "b",
                    "region": "us-east-1", "match": ["app=none"]}],
            extra={"redact": {"builtin": ["email"]},
                   "disk_pressure": {"path": str(workdir), "soft_percent": 80, "hard_percent": 90},
                   "log_metrics": [{"name": "http_5xx", "match": ["app=web"], "line": "^x$",
                                    "labels": ["namespace", "app"]}]})
        agent.start()
        (d / "a.log").write_bytes(b"a@b.example\nPOISON\n" + b"x\n" * 100)
        agent.wait_count(102, 30)

        def ready():
            r = requests.get("http://127.0.0.1:%d/metrics" % agent.http_port(), timeout=5)
            s = check_exposition(r.text)
            ok = val(s, "spillway_sink_dead_letters_total", sink="loki", type="loki") == 1 and \
                val(s, "spillway_sink_records_sent_total", sink="local", type="file") == 102
            return r.text if ok else None
        text = agent.wait_for(ready, 30, "a scrape with every family")
        agent.stop()
        return text
    finally:
        agent.cleanup()
        loki.stop()


def exposed(text):
    names = set()
    for line in text.split("\n"):
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def test_alert_rules_use_exposed_metrics_and_have_runbooks(scrape_text):
    have = exposed(scrape_text)
    anchors = {"#" + re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.*)$", RUNBOOK.read_text(), re.M)}
    names = set()
    rs = rules()
    assert {r["alert"] for r in rs} >= {"SpillwayNoRecordsShipped", "SpillwayBacklogTooOld",
                                       "SpillwayDeadLettersIncreasing",
                                       "SpillwayDiskOverSoftThreshold", "SpillwayRestarting"}
    for r in rs:
        used = metric_names(r["expr"])
        assert used, r["alert"]
        missing = used - have
        assert not missing, "%s uses metrics /metrics does not expose: %s" % (r["alert"], missing)
        names |= used
        url = r["annotations"]["runbook_url"]
        assert url.startswith("docs/runbook.md#"), url
        assert url[len("docs/runbook.md"):] in anchors, "no runbook heading for %s" % url
        assert r["labels"]["severity"] in ("warning", "critical")
    assert len(names) >= 7


def test_dashboard_uses_exposed_metrics(scrape_text):
    have = exposed(scrape_text)
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for where, e in exprs:
        used = metric_names(e)
        assert used, (where, e)
        assert not used - have, "%s uses %s" % (where, used - have)
    titles = " ".join(w for w, _ in exprs).lower()
    for topic in ("records in / out", "backlog", "http failures", "disk usage", "resident memory"):
        assert topic in titles, topic


PROMTOOL = shutil.which("promtool")
need_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus, "
                                                            "installed by scripts/bootstrap.sh) missing")


@need_promtool
def test_promtool_accepts_rules_and_scrape(scrape_text):
    p = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: %d rules found" % len(rules()) in p.stdout, p.stdout
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=scrape_text, capture_output=True,
                       text=True)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), p.stdout + p.stderr


@need_promtool
def test_alerts_fire_on_their_situations(tmp_path):
    """promtool's rule unit tests: each alert fires on the series it is about, and stays quiet
    when things are fine."""
    inst = 'job="spillway",instance="n1:2020"'
    # The same rules without their annotations (promtool would compare the rendered texts).
    doc = yaml.safe_load(RULES.read_text())
    for g in doc["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    bare = tmp_path / "rules.yaml"
    bare.write_text(yaml.safe_dump(doc))
    tests = {
        "rule_files": [str(bare)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                # sink "dead" ships nothing, sink "ok" ships; input keeps growing.
                {"series": 'spillway_source_records_total{%s,source="app"}' % inst, "values": "0+100x30"},
                {"series": 'spillway_source_lag_bytes{%s,source="app"}' % inst, "values": "0x30"},
                {"series": 'spillway_sink_records_sent_total{%s,sink="dead",type="loki"}' % inst, "values": "500x30"},
                {"series": 'spillway_sink_records_sent_total{%s,sink="ok",type="file"}' % inst, "values": "0+100x30"},
                {"series": 'spillway_sink_oldest_unshipped_age_seconds{%s,sink="dead",type="loki"}' % inst, "values": "0+60x30"},
                {"series": 'spillway_sink_oldest_unshipped_age_seconds{%s,sink="ok",type="file"}' % inst, "values": "1x30"},
                {"series": 'spillway_sink_dead_letters_total{%s,sink="dead",type="loki"}' % inst, "values": "0x10 1x20"},
                {"series": 'spillway_disk_used_ratio{%s,path="/var"}' % inst, "values": "0.5x5 0.85x25"},
                {"series": 'spillway_disk_used_ratio{%s,path="/data"}' % inst, "values": "0.9x30"},
                {"series": 'spillway_disk_pressure_soft_ratio{%s,path="/var"}' % inst, "values": "0.8x30"},
                {"series": 'spillway_process_start_time_seconds{%s}' % inst, "values": "100 100 400 400 700 700 1000x40"},
                {"series": 'spillway_config_last_reload_successful{%s}' % inst, "values": "1x10 0x20"},
                # 3 answers per second of 5xx from 10 minutes on; a capped metric at 20 minutes
                {"series": 'spillway_log_http_5xx_total{%s,namespace="shop",app="web"}' % inst,
                 "values": "0x10 0+180x20"},
                {"series": 'spillway_log_metric_overflow_total{%s,metric="http_5xx"}' % inst,
                 "values": "0x20 5x10"},
                # promtool's clock starts at 0: "old" is a verification 40 days before it; the
                # fresh one is at 0; one run found 2 damaged objects from 10 minutes on
                {"series": 'spillway_archive_last_verified_timestamp_seconds{%s,sink="old"}' % inst,
                 "values": "-3456000x130"},
                {"series": 'spillway_archive_last_verified_timestamp_seconds{%s,sink="fresh"}' % inst,
                 "values": "0x130"},
                {"series": 'spillway_archive_verify_failed_objects{%s,sink="fresh"}' % inst,
                 "values": "0x10 2x20"},
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "SpillwayNoRecordsShipped", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "sink": "dead",
                                    "severity": "critical"}}]},
                {"eval_time": "20m", "alertname": "SpillwayBacklogTooOld", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "sink": "dead",
                                    "severity": "warning"}}]},
                {"eval_time": "10m", "alertname": "SpillwayBacklogTooOld", "exp_alerts": []},
                {"eval_time": "15m", "alertname": "SpillwayDeadLettersIncreasing", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "sink": "dead",
                                    "severity": "warning"}}]},
                {"eval_time": "28m", "alertname": "SpillwayDeadLettersIncreasing", "exp_alerts": []},
                {"eval_time": "4m", "alertname": "SpillwayDiskOverSoftThreshold", "exp_alerts": []},
                {"eval_time": "15m", "alertname": "SpillwayDiskOverSoftThreshold", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "path": "/var",
                                    "severity": "warning"}}]},
                {"eval_time": "10m", "alertname": "SpillwayRestarting", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "severity": "warning"}}]},
                {"eval_time": "38m", "alertname": "SpillwayRestarting", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "SpillwayReloadFailed", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "severity": "warning"}}]},
                {"eval_time": "8m", "alertname": "SpillwayReloadFailed", "exp_alerts": []},
                {"eval_time": "9m", "alertname": "SpillwayLogHttp5xxRate", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "SpillwayLogHttp5xxRate", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "namespace": "shop",
                                    "app": "web", "severity": "warning"}}]},
                {"eval_time": "15m", "alertname": "SpillwayLogMetricSeriesCapped", "exp_alerts": []},
                {"eval_time": "30m", "alertname": "SpillwayArchiveNotVerified", "exp_alerts": []},
                {"eval_time": "2h", "alertname": "SpillwayArchiveNotVerified", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "sink": "old",
                                    "severity": "warning"}}]},
                {"eval_time": "5m", "alertname": "SpillwayArchiveVerifyFailed", "exp_alerts": []},
                {"eval_time": "15m", "alertname": "SpillwayArchiveVerifyFailed", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "sink": "fresh",
                                    "severity": "critical"}}]},
                {"eval_time": "22m", "alertname": "SpillwayLogMetricSeriesCapped", "exp_alerts": [
                    {"exp_labels": {"job": "spillway", "instance": "n1:2020", "metric": "http_5xx",
                                    "severity": "warning"}}]},
            ],
        }],
    }
    f = tmp_path / "alerts_test.yaml"
    f.write_text(yaml.safe_dump(tests))
    p = subprocess.run([PROMTOOL, "test", "rules", str(f)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
