"""Kubernetes metadata (kubernetes: section): pods of this node listed and watched over TLS from
a strict test API server (kubeapi.py), labels per chunk, relabels, exclusion by annotation and
namespace label, per-pod multiline hints, an API server outage with an agent restarted during
it, 410 Gone, token rotation and an API server that refuses the token."""

import time

import pytest

from conftest import wait_for
from kubeapi import KubeAPI, make_namespace, make_pod
import loggen
from test_metrics import scrape, val

NODE = "node-1"
LABELS = {"app": ["pod_label:app.kubernetes.io/name", "pod_label:app"],
          "team": ["pod_label:team", "namespace_label:team"],
          "owner": ["owner"], "node": ["node"]}


class Cluster:
    """The test API server and the node's /var/log/pods."""

    def __init__(self, workdir):
        self.api = KubeAPI(workdir / "kube")
        self.pods_dir = workdir / "pods"
        self.pods_dir.mkdir()
        self.ts = loggen.recent_ns(600)
        self.written = {}  # (pod, container) -> lines written, in order
        self.api.add_namespace(make_namespace("shop", labels={"team": "payments"}))
        self.api.add_namespace(make_namespace("ops", labels={"spillway.io/exclude": "true"}))
        self.api.add_namespace(make_namespace("default"))

    def pod(self, ns, name, uid, containers=("app",), node=NODE, add=True, **kw):
        if add:
            self.api.add_pod(make_pod(ns, name, uid, node, containers=containers, **kw))
        for c in containers:
            (self.pods_dir / ("%s_%s_%s" % (ns, name, uid)) / c).mkdir(parents=True, exist_ok=True)

    def write(self, ns, name, uid, n, container="app", text=None, lines=None):
        path = self.pods_dir / ("%s_%s_%s" % (ns, name, uid)) / container / "0.log"
        out = []
        key = (name, container)
        lines = lines if lines is not None else [
            "%s %s line %d" % (name, text or "msg", len(self.written.get(key, [])) + i)
            for i in range(n)]
        for line in lines:
            self.ts += 1000
            out.append(loggen.cri_line(self.ts, "stdout", "F", line))
        with open(path, "ab") as f:
            f.write(b"".join(out))
        self.written.setdefault(key, []).extend(lines)
        return lines

    def config(self, agent, labels=LABELS, wait="2s", **kube):
        k = {"enabled": True, "node_name": NODE, "api_url": self.api.url,
             "token_file": self.api.token_file, "ca_file": self.api.ca_file, "wait": wait,
             "labels": labels}
        k.update(kube)
        agent.write_config([{"name": "pods", "type": "cri",
                             "paths": [str(self.pods_dir / "*" / "*" / "*.log")]}],
                           extra={"kubernetes": k})


@pytest.fixture
def cluster(workdir):
    c = Cluster(workdir)
    yield c
    c.api.close()


def by_pod(recs):
    out = {}
    for r in recs:
        out.setdefault(r["labels"]["pod"], []).append(r)
    return out


def metrics(agent):
    return scrape(agent.http_port())


def test_records_carry_pod_labels_and_a_relabel_reaches_later_chunks(agent, cluster):
    c = cluster
    c.pod("shop", "web-7d9f8b6c5d-x2x9k", "uid-web", labels={"app.kubernetes.io/name": "web",
                                                             "pod-template-hash": "7d9f8b6c5d"},
          owner=("ReplicaSet", "web-7d9f8b6c5d"))
    c.pod("shop", "batch-28000000-q7x", "uid-batch", labels={"app": "batch", "team": "data"},
          owner=("Job", "batch-28000000"))
    c.pod("default", "db-0", "uid-db", labels={"app": "db"}, owner=("StatefulSet", "db"))
    # Another node's pod: never listed (fieldSelector), so its file goes with path labels only.
    c.pod("shop", "far-1", "uid-far", node="node-2", labels={"app": "far"})
    for name, uid, ns in (("web-7d9f8b6c5d-x2x9k", "uid-web", "shop"),
                          ("batch-28000000-q7x", "uid-batch", "shop"), ("db-0", "uid-db", "default"),
                          ("far-1", "uid-far", "shop")):
        c.write(ns, name, uid, 300)
    c.config(agent, wait="1s")
    agent.start()
    agent.wait_count(1200, 30)
    pods = by_pod(agent.read_output())
    lab = lambda p: {k: v for k, v in pods[p][0]["labels"].items() if k in LABELS}
    assert lab("web-7d9f8b6c5d-x2x9k") == {"app": "web", "team": "payments", "owner": "web", "node": NODE}
    assert lab("batch-28000000-q7x") == {"app": "batch", "team": "data", "owner": "batch-28000000", "node": NODE}
    assert lab("db-0") == {"app": "db", "owner": "db", "node": NODE}  # "default" has no team
    assert lab("far-1") == {}
    for p, recs in pods.items():
        assert len({tuple(sorted(r["labels"].items())) for r in recs}) == 1, p
        assert [r["line"] for r in recs] == c.written[(p, "app")]
    m = metrics(agent)
    assert val(m, "spillway_kubernetes_metadata_misses_total") == 1  # far-1
    assert val(m, "spillway_kubernetes_pods") == 3
    # Only this node's pods were asked for, with the token; watches ask for bookmarks and resume
    # from the list's resourceVersion.
    lists = c.api.requests(kind="list", resource="pods")
    assert lists and all(r["query"].get("fieldSelector") == "spec.nodeName=" + NODE for r in lists)
    assert all(r["auth_ok"] for r in c.api.requests())
    watches = c.api.requests(kind="watch", resource="pods")
    assert watches and all(r["query"].get("allowWatchBookmarks") == "true" and
                           r["query"].get("resourceVersion") for r in watches)
    assert c.api.requests(kind="list", resource="namespaces")

    # Relabel while running: later chunks carry the new value, none goes back to the old one.
    c.api.update_pod("shop", "web-7d9f8b6c5d-x2x9k",
                     {"metadata": {"labels": {"app.kubernetes.io/name": "web-v2"}}})
    sent = 300

    def relabelled():
        nonlocal sent
        c.write("shop", "web-7d9f8b6c5d-x2x9k", "uid-web", 20)
        sent += 20
        agent.wait_count(900 + sent, 20)
        web = by_pod(agent.read_output())["web-7d9f8b6c5d-x2x9k"]
        return web[-1]["labels"].get("app") == "web-v2"

    wait_for(relabelled, 20, "a record with the new app label")
    agent.stop()
    web = by_pod(agent.read_output())["web-7d9f8b6c5d-x2x9k"]
    apps = [r["labels"]["app"] for r in web]
    first = apps.index("web-v2")
    assert set(apps[:first]) == {"web"} and set(apps[first:]) == {"web-v2"}, apps
    assert [r["line"] for r in web] == c.written[("web-7d9f8b6c5d-x2x9k", "app")]


def test_excluded_pods_are_not_read_and_resume_at_the_end(agent, cluster):
    c = cluster
    c.pod("shop", "quiet", "uid-quiet", annotations={"spillway.io/exclude": "true"})
    c.pod("shop", "mixed", "uid-mixed", containers=("app", "sidecar"),
          annotations={"spillway.io/exclude-sidecar": "true"})
    c.pod("ops", "tool", "uid-tool")  # namespace labelled spillway.io/exclude
    c.pod("shop", "loud", "uid-loud")
    for name, uid, ns in (("quiet", "uid-quiet", "shop"), ("tool", "uid-tool", "ops"),
                          ("loud", "uid-loud", "shop"), ("mixed", "uid-mixed", "shop")):
        c.write(ns, name, uid, 200)
    c.write("shop", "mixed", "uid-mixed", 200, container="sidecar")
    c.config(agent)
    agent.start()
    agent.wait_count(400, 30)
    agent.assert_never(lambda: agent.output_count() > 400, 1.5, "records of excluded pods")
    got = {(r["labels"]["pod"], r["labels"]["container"]) for r in agent.read_output()}
    assert got == {("loud", "app"), ("mixed", "app")}
    m = metrics(agent)
    assert val(m, "spillway_kubernetes_excluded_files") == 3
    # Not a byte of the excluded files was read.
    for pod in ("quiet", "tool"):
        offs = [v for (name, labels), v in m.items()
                if name == "spillway_file_offset_bytes" and pod in dict(labels).get("path", "")]
        assert offs == [0], (pod, offs)

    # Lifting the exclusion reads what is written from then on, not the backlog.
    c.api.update_pod("shop", "quiet", {"metadata": {"annotations": {"spillway.io/exclude": None}}})
    agent.wait_for(lambda: val(metrics(agent), "spillway_kubernetes_excluded_files") == 2, 10,
                   "the exclusion lifted")
    new = c.write("shop", "quiet", "uid-quiet", 50, text="after")
    agent.wait_count(450, 20)
    agent.stop()
    quiet = [r["line"] for r in agent.read_output() if r["labels"]["pod"] == "quiet"]
    assert quiet == new


def test_multiline_and_format_hints_by_annotation(agent, cluster):
    c = cluster
    trace = ["java.lang.IllegalStateException: boom", "\tat a.B.c(B.java:1)", "\tat a.B.d(B.java:2)"]
    lines = ["INFO start"] + trace + ["INFO after"]
    c.pod("shop", "jvm", "uid-jvm", annotations={"spillway.io/multiline": "java"})
    c.pod("shop", "plain", "uid-plain")
    c.pod("shop", "api", "uid-api", annotations={"spillway.io/format": "json"})
    c.write("shop", "jvm", "uid-jvm", 0, lines=lines)
    c.write("shop", "plain", "uid-plain", 0, lines=lines)
    c.write("shop", "api", "uid-api", 0, lines=['{"level":"info","msg":"a"}', "not json", '{"msg":"b"}'])
    c.config(agent)
    agent.start()
    agent.wait_count(3 + 5 + 3, 20)
    agent.stop()
    pods = by_pod(agent.read_output())
    assert [r["line"] for r in pods["jvm"]] == ["INFO start", "\n".join(trace), "INFO after"]
    assert [r["line"] for r in pods["plain"]] == lines
    # The payload is parsed as the pod says: what does not parse is flagged like a line of a
    # json file source.
    assert [r["labels"].get("parse_error") for r in pods["api"]] == [None, "json", None]


def test_api_outage_and_restart_during_it_lose_no_record_and_no_label(agent, cluster):
    c = cluster
    c.pod("shop", "web", "uid-web", labels={"app": "web"})
    c.write("shop", "web", "uid-web", 100)
    c.config(agent)
    agent.start()
    agent.wait_count(100, 20)
    c.api.stop()  # 30 s without the API server
    t_end = time.monotonic() + 30
    c.write("shop", "web", "uid-web", 100, text="down")
    agent.wait_count(200, 20)
    agent.kill9()  # and the agent restarts while it is down: the cache comes from its buffer
    c.write("shop", "web", "uid-web", 100, text="restarted")
    agent.start()
    agent.wait_count(300, 20)
    # A pod created during the outage is unknown: after kubernetes.wait it goes with path labels.
    c.pod("shop", "new", "uid-new", labels={"app": "new"}, add=False)
    c.write("shop", "new", "uid-new", 20, text="unknown")
    agent.wait_count(320, 20)
    while time.monotonic() < t_end:
        c.write("shop", "web", "uid-web", 10, text="down")
        agent.wait_count(320 + len(c.written[("web", "app")]) - 300, 20)
        time.sleep(1)
    c.api.add_pod(make_pod("shop", "new", "uid-new", NODE, labels={"app": "new"}))
    c.api.start()
    agent.wait_for(lambda: val(metrics(agent), "spillway_kubernetes_pods") == 2, 30,
                   "the watch to resume after the outage")

    def labelled():
        c.write("shop", "new", "uid-new", 5, text="known")
        total = len(c.written[("web", "app")]) + len(c.written[("new", "app")])
        agent.wait_count(total, 20)
        return by_pod(agent.read_output())["new"][-1]["labels"].get("app") == "new"

    wait_for(labelled, 20, "the new pod's labels once the API server is back")
    m = metrics(agent)
    assert val(m, "spillway_kubernetes_metadata_misses_total") == 1
    assert val(m, "spillway_kubernetes_api_errors_total", reason="transport") >= 1
    agent.stop()
    pods = by_pod(agent.read_output())
    assert [r["line"] for r in pods["web"]] == c.written[("web", "app")]
    assert all(r["labels"].get("app") == "web" for r in pods["web"])
    assert [r["line"] for r in pods["new"]] == c.written[("new", "app")]
    apps = [r["labels"].get("app") for r in pods["new"]]
    first = apps.index("new")
    assert set(apps[:first]) == {None} and set(apps[first:]) == {"new"}
    # The pod unknown during the outage went after kubernetes.wait with its path's labels.
    assert all(r["line"].startswith("new unknown") for r in pods["new"][:20])


def test_expired_resource_version_relists_and_a_rotated_token_is_read_again(agent, cluster):
    c = cluster
    c.pod("shop", "a", "uid-a", labels={"app": "a"})
    c.config(agent)
    agent.start()
    agent.wait_for(lambda: val(metrics(agent), "spillway_kubernetes_synced") == 1, 20, "synced")
    lists = len(c.api.requests(kind="list", resource="pods"))
    # History compacted past what the agent saw: its watch gets 410 Gone and it lists again.
    c.api.expire()
    agent.wait_for(lambda: len(c.api.requests(kind="list", resource="pods")) > lists, 20, "a relist")
    m = metrics(agent)
    assert val(m, "spillway_kubernetes_api_errors_total", reason="expired") >= 1
    # The token rotates (as a projected token does): the old one is refused from now on.
    c.api.set_token("rotated-token-2")
    c.api.end_watches()
    c.pod("shop", "b", "uid-b", labels={"app": "b"})
    c.write("shop", "b", "uid-b", 10)
    agent.wait_count(10, 20)
    agent.stop()
    assert {r["labels"].get("app") for r in agent.read_output()} == {"b"}
    late = [r for r in c.api.requests() if r.get("token") == "rotated-token-2"]
    assert late and all(r["auth_ok"] for r in late)


def test_refused_token_counts_errors_and_records_keep_path_labels(agent, cluster):
    c = cluster
    c.pod("shop", "a", "uid-a", labels={"app": "a"})
    c.write("shop", "a", "uid-a", 30)
    c.api.set_token("the-real-one", write=False)  # the agent's file holds another token
    c.config(agent, wait="500ms")
    agent.start()
    agent.wait_count(30, 20)
    agent.wait_for(lambda: val(metrics(agent), "spillway_kubernetes_api_errors_total",
                               reason="http") >= 2, 20, "401s counted")
    agent.stop()
    recs = agent.read_output()
    assert [r["line"] for r in recs] == c.written[("a", "app")]
    assert all("app" not in r["labels"] for r in recs)
    assert c.api.requests(auth_ok=False) and not c.api.requests(auth_ok=True)
    assert "Unauthorized" in agent.stderr_path.read_text()


@pytest.mark.parametrize("cfg,err", [
    ({"enabled": True}, "kubernetes.node_name: required when kubernetes.enabled is true"),
    ({"enabled": True, "node_name": "n", "labels": {"app": ["pod_lable:app"]}},
     'kubernetes.labels.app: unknown source "pod_lable:app"'),
    ({"enabled": True, "node_name": "n", "labels": {"pod": ["owner"]}},
     "kubernetes.labels.pod: a label every record already has"),
    ({"enabled": True, "node_name": "n", "wait": "2m"}, "kubernetes.wait"),
    ({"enabled": True, "node_name": "n", "labels": {"app": []}}, "kubernetes.labels.app: must not be empty"),
])
def test_check_validates_the_section(agent, workdir, cfg, err):
    agent.write_config([{"name": "pods", "type": "cri", "paths": [str(workdir / "p/*/*/*.log")]}],
                       extra={"kubernetes": cfg})
    r = agent.cli("check", "-c", agent.config_path)
    assert r.returncode == 1 and err in r.stderr.decode(), r.stderr
