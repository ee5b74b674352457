"""Kubernetes manifests (packaging/k8s): every kustomization is rendered with `kubectl kustomize`
and the rendered objects are checked -- security context, host mounts, probes, resources,
RBAC, service-account token, scraping, tolerations, network policy -- and the config each pod
mounts is checked against the pod (listen address, mounts, secrets, the kubernetes section, sinks
and API server allowed by the network policy) and by `spillway check`."""

import functools
import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from conftest import REPO, run

K8S = REPO / "packaging" / "k8s"
DIRS = ["base"] + sorted("overlays/" + p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
NODE_AGENTS = [d for d in DIRS if d != "overlays/sidecar"]
# /var/log: the pods' logs, the links to them and the systemd journal (/var/log/journal).
HOST_LOGS = {"/var/log", "/var/lib/docker/containers"}
STATE = "/var/lib/spillway"
ALLOWED_CAPS = {"DAC_READ_SEARCH"}  # read other users' logs; nothing else is ever added
WORKLOADS = {"DaemonSet", "Deployment", "StatefulSet", "Job", "CronJob", "Pod", "ReplicaSet"}
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where the automounted token is
# The kubernetes metadata reads pods and namespaces, nothing else, and never writes.
K8S_API_GRANTS = {(r, v) for r in ("pods", "namespaces") for v in ("get", "list", "watch")}
API_SERVER_PORTS = [("TCP", 443), ("TCP", 6443)]  # the Service's port; kubeadm's endpoints


def kustomize_version():
    """(major, minor) of the kustomize inside kubectl; kubectl < 1.21 does not report it and
    embeds kustomize v2.0.3."""
    r = run(["kubectl", "version", "--client", "-o", "json"])
    if r.returncode != 0:
        return None
    info = json.loads(r.stdout)
    m = re.match(r"v?(\d+)\.(\d+)", info.get("kustomizeVersion", ""))
    if m:
        return (int(m.group(1)), int(m.group(2)))
    minor = int(re.sub(r"\D", "", info.get("clientVersion", {}).get("minor", "0")) or 0)
    return (2, 0) if minor < 21 else None


@pytest.fixture(scope="module", autouse=True)
def kubectl():
    if run(["sh", "-c", "command -v kubectl"]).returncode != 0:
        pytest.fail("kubectl not found (scripts/bootstrap.sh test installs kubernetes-client)")
    v = kustomize_version()
    if v is None or v < (4, 0):
        # Debian bookworm's own kubernetes-client (1.20) embeds kustomize v2.0.3, which predates
        # `resources:` naming directories and `patches:`; every supported kubectl has v4+.
        pytest.skip("kubectl's kustomize is %s; the manifests need kustomize >= v4 (kubectl >= "
                    "1.21)" % (".".join(map(str, v)) if v else "unknown"))


@functools.lru_cache(maxsize=None)
def render(d):
    r = run(["kubectl", "kustomize", str(K8S / d)], timeout=120)
    assert r.returncode == 0, "kubectl kustomize %s failed:\n%s" % (d, r.stderr)
    docs = [x for x in yaml.safe_load_all(r.stdout) if x]
    assert docs, "kubectl kustomize %s rendered nothing" % d
    return docs, r.stderr


def objs(d, kind=None):
    return [o for o in render(d)[0] if kind is None or o["kind"] == kind]


def pod_spec(o):
    spec = o["spec"]
    if o["kind"] == "Pod":
        return spec
    if o["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def pod_labels(o):
    return o["metadata"].get("labels", {}) if o["kind"] == "Pod" else \
        o["spec"]["template"]["metadata"].get("labels", {})


def workloads(d):
    ws = [o for o in render(d)[0] if o["kind"] in WORKLOADS]
    assert ws, "%s renders no workload" % d
    return ws


def all_containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def is_spillway(c):
    return c["image"].split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "spillway"


def spillway_container(spec):
    cs = [c for c in all_containers(spec) if is_spillway(c)]
    assert len(cs) == 1, "expected one spillway container, found %s" % [c["name"] for c in cs]
    return cs[0]


def agent_pods(d):
    """(workload, pod spec, spillway container) for every pod that runs spillway."""
    out = [(w, pod_spec(w)) for w in workloads(d)]
    out = [(w, s, spillway_container(s)) for w, s in out
           if any(is_spillway(c) for c in all_containers(s))]
    assert out, "%s has no pod running spillway" % d
    return out


def volumes(spec):
    return {v["name"]: v for v in spec.get("volumes", [])}


def mounts(c):
    return {m["mountPath"]: m for m in c.get("volumeMounts", [])}


def config_of(d, spec, c):
    """The spillway.yaml the container runs with: -c FILE inside the ConfigMap mounted there."""
    args = c.get("args", []) + c.get("command", [])
    cfg_path = args[args.index("-c") + 1] if "-c" in args else "/etc/spillway/spillway.yaml"
    mdir, fname = os.path.split(cfg_path)
    m = mounts(c).get(mdir)
    assert m, "%s: no volume mounted at %s for the config" % (d, mdir)
    vol = volumes(spec)[m["name"]]
    assert "configMap" in vol, "%s: %s is not a ConfigMap volume" % (d, mdir)
    cm = [o for o in objs(d, "ConfigMap") if o["metadata"]["name"] == vol["configMap"]["name"]]
    assert len(cm) == 1, "%s: ConfigMap %s not rendered" % (d, vol["configMap"]["name"])
    text = cm[0]["data"][fname]
    return yaml.safe_load(text), text


def kubernetes_enabled(cfg):
    return (cfg.get("kubernetes") or {}).get("enabled") is True


def token_dirs(spec, c, sas):
    """Directories of the spillway container where a service-account token is: the automount
    (SA_DIR, unless something else is mounted there) and every projected volume with a
    serviceAccountToken source."""
    out = set()
    vols = volumes(spec)
    for path, m in mounts(c).items():
        sources = vols[m["name"]].get("projected", {}).get("sources", [])
        if any("serviceAccountToken" in src for src in sources):
            out.add(path)
    auto = spec.get("automountServiceAccountToken")
    if auto is None:  # the pod's field wins over the account's, whose default is true
        auto = sas.get(spec.get("serviceAccountName", "default"), {}).get(
            "automountServiceAccountToken", True)
    if auto and SA_DIR not in mounts(c):
        out.add(SA_DIR)
    return out


def under(path, mount_paths):
    """The mount path that contains path, or None."""
    best = None
    for mp in mount_paths:
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) > len(best):
                best = mp
    return best


def literal_dir(glob):
    """The part of a glob before its first wildcard, as a directory."""
    parts = []
    for p in glob.split("/"):
        if any(ch in p for ch in "*?["):
            break
        parts.append(p)
    return "/".join(parts) or "/"


def secret_files(cfg):
    """Every *_file / ca_file value in a config: (key path, file)."""
    out = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str) and (k.endswith("_file") and k != "pid_file"):
                    out.append(("%s.%s" % (path, k), v))
                else:
                    walk(v, "%s.%s" % (path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, "%s[%d]" % (path, i))
    walk(cfg, "")
    return out


# ----------------------------------------------------------------------------------------------


def test_every_kustomization_is_tested():
    found = sorted(str(p.parent.relative_to(K8S)) for p in K8S.rglob("kustomization.yaml"))
    assert found == sorted(DIRS)


@pytest.mark.parametrize("d", DIRS)
def test_renders_cleanly(d):
    docs, stderr = render(d)
    assert "deprecated" not in stderr.lower(), "%s uses deprecated kustomize fields: %s" % (d, stderr)
    cluster_scoped = ("Namespace", "ClusterRole", "ClusterRoleBinding")
    used = set()
    for o in docs:
        assert o.get("apiVersion") and o.get("kind") and o["metadata"].get("name"), o
        if o["kind"] not in cluster_scoped:
            assert o["metadata"].get("namespace"), "%s: %s/%s has no namespace" % (
                d, o["kind"], o["metadata"]["name"])
            used.add(o["metadata"]["namespace"])
        elif o["kind"] != "Namespace":
            assert not o["metadata"].get("namespace"), "%s: cluster-scoped %s/%s has a " \
                "namespace" % (d, o["kind"], o["metadata"]["name"])
        for subject in o.get("subjects", []) if o["kind"].endswith("RoleBinding") else []:
            if subject.get("kind") == "ServiceAccount":
                used.add(subject.get("namespace"))
    ns = {o["metadata"]["name"] for o in objs(d, "Namespace")}
    assert used <= ns, "%s: objects outside the namespace it creates: %s" % (d, used - ns)


@pytest.mark.parametrize("d", DIRS)
def test_security_context(d):
    for w in workloads(d):
        spec = pod_spec(w)
        name = "%s %s" % (d, w["metadata"]["name"])
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(k), "%s sets %s" % (name, k)
        psc = spec.get("securityContext", {})
        for c in all_containers(spec):
            where = "%s/%s" % (name, c["name"])
            sc = c.get("securityContext")
            assert sc, "%s has no securityContext" % where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert not sc.get("privileged"), where
            caps = sc.get("capabilities", {})
            assert caps.get("drop") == ["ALL"], "%s must drop ALL capabilities" % where
            added = set(caps.get("add", []))
            assert added <= ALLOWED_CAPS, "%s adds %s" % (where, added - ALLOWED_CAPS)
            if added:
                assert is_spillway(c) and w["kind"] == "DaemonSet", \
                    "%s: only the node agent may add DAC_READ_SEARCH" % where
            seccomp = sc.get("seccompProfile") or psc.get("seccompProfile") or {}
            assert seccomp.get("type") == "RuntimeDefault", "%s: seccomp RuntimeDefault" % where
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            nonroot = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            if uid == 0:
                # Root only for the node agent reading the host's root-owned logs, and then with
                # exactly DAC_READ_SEARCH and nothing else.
                assert w["kind"] == "DaemonSet" and is_spillway(c), where
                assert added == {"DAC_READ_SEARCH"}, where
            else:
                assert nonroot is True and uid, "%s must run as a non-root user" % where


@pytest.mark.parametrize("d", DIRS)
def test_host_mounts(d):
    for w, spec, c in agent_pods(d):
        vols = volumes(spec)
        ms = {m["name"]: m for m in c.get("volumeMounts", [])}
        for c2 in all_containers(spec):
            for m in c2.get("volumeMounts", []):
                v = vols[m["name"]]
                if "hostPath" in v and v["hostPath"]["path"] != STATE:
                    assert m.get("readOnly") is True, "%s/%s mounts %s writable" % (
                        d, c2["name"], v["hostPath"]["path"])
        host = {v["hostPath"]["path"]: n for n, v in vols.items() if "hostPath" in v}
        if w["kind"] != "DaemonSet":
            assert not host, "%s: only the DaemonSet uses host paths" % d
            continue
        assert set(host) == HOST_LOGS | {STATE}, "%s: host paths %s" % (d, sorted(host))
        for path, n in host.items():
            assert n in ms and ms[n]["mountPath"] == path, \
                "%s: %s must be mounted at its host path (symlinks resolve)" % (d, path)
        assert not ms[host[STATE]].get("readOnly"), "%s: the buffer must be writable" % d
        assert vols[host[STATE]]["hostPath"].get("type") == "DirectoryOrCreate"
        tmp = mounts(c).get("/tmp")
        assert tmp and "emptyDir" in vols[tmp["name"]], "%s: /tmp must be an emptyDir" % d


@pytest.mark.parametrize("d", DIRS)
def test_probes_and_resources(d):
    for w, spec, c in agent_pods(d):
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        # Liveness (and startup, which restarts too) only on /health: it is answered even when
        # idle connections fill the server; /ready is 503 during every reload.
        for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready"),
                            ("startupProbe", "/health")):
            p = c.get(probe)
            if probe == "startupProbe" and p is None:
                continue
            assert p and p["httpGet"]["path"] == path, "%s: %s on %s" % (d, probe, path)
            port = p["httpGet"]["port"]
            assert ports.get(port, port) == 2020, "%s: %s port %r" % (d, probe, port)
        for c2 in all_containers(spec):
            r = c2.get("resources", {})
            for k in ("cpu", "memory"):
                assert k in r.get("requests", {}) and k in r.get("limits", {}), \
                    "%s/%s: %s request and limit" % (d, c2["name"], k)
            assert qty(r["requests"]["memory"]) <= qty(r["limits"]["memory"])
            assert qty(r["requests"]["cpu"]) <= qty(r["limits"]["cpu"])


def qty(s):
    s = str(s)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for u, f in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if s.endswith(u):
            return float(s[:-len(u)]) * f
    return float(s)


@pytest.mark.parametrize("d", DIRS)
def test_config_fits_the_pod(d):
    for w, spec, c in agent_pods(d):
        cfg, _ = config_of(d, spec, c)
        ms = mounts(c)
        writable = [p for p, m in ms.items() if not m.get("readOnly")]
        ports = [p["containerPort"] for p in c.get("ports", [])]
        # Probes and Prometheus reach the pod IP, not the container's loopback.
        assert cfg["server"]["listen"] == "0.0.0.0:2020" and 2020 in ports, d
        assert under(cfg["data_dir"], writable), "%s: data_dir %s not on a writable volume" % (
            d, cfg["data_dir"])
        for s in cfg["sources"]:
            for g in s.get("paths", [s.get("path", "/var/log/journal")]):
                assert under(literal_dir(g), ms), "%s: source path %s is not mounted" % (d, g)
        for r in cfg.get("retention", []):
            for g in r["paths"]:
                assert under(literal_dir(g), writable), "%s: retention of %s needs it writable" % (
                    d, g)
        if "disk_pressure" in cfg:
            assert under(cfg["disk_pressure"]["path"], writable), d
        secret_mounts = [p for p, m in ms.items() if "secret" in volumes(spec)[m["name"]]]
        for key, f in secret_files(cfg):
            if key.startswith(".kubernetes."):
                continue  # the service-account token and CA: test_kubernetes_api_access
            assert under(f, secret_mounts), "%s: %s = %s is not in a mounted Secret" % (d, key, f)
        env = {e["name"] for e in c.get("env", [])}
        for name, default in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}",
                                        config_of(d, spec, c)[1]):
            assert name in env or default, "%s: config uses ${%s}, not in the container's env" % (
                d, name)


@pytest.mark.parametrize("d", DIRS)
def test_config_passes_spillway_check(d, spillway_bin, tmp_path):
    for w, spec, c in agent_pods(d):
        cfg, text = config_of(d, spec, c)
        # The Secret's files, as the kubelet would mount them (content is not checked here).
        secret_mounts = [p for p, m in mounts(c).items() if "secret" in volumes(spec)[m["name"]]]
        for mp in secret_mounts:
            fake = tmp_path / "secrets" / mp.strip("/").replace("/", "_")
            fake.mkdir(parents=True, exist_ok=True)
            for _, f in secret_files(cfg):
                if f.startswith(mp + "/"):
                    (fake / f[len(mp) + 1:]).write_text("not-a-real-secret\n")
            text = text.replace(mp + "/", str(fake) + "/")
        path = tmp_path / "spillway.yaml"
        path.write_text(text)
        env = dict(os.environ, NODE_NAME="node-1", POD_NAME="demo-0", POD_NAMESPACE="demo")
        r = run([str(spillway_bin), "check", "-c", str(path)], env=env, timeout=30)
        assert r.returncode == 0, "%s: spillway check failed:\n%s" % (d, r.stderr)


def policy_for(d, labels):
    ps = [p for p in objs(d, "NetworkPolicy")
          if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()]
    assert len(ps) == 1, "%s: %d NetworkPolicies select the agent" % (d, len(ps))
    return ps[0]["spec"]


def is_api_server_rule(rule):
    """The egress rule for the Kubernetes API server: exactly TCP 443 and 6443, to any address
    or to address ranges only (its endpoints are host-network or outside the cluster: no pod or
    namespace selector matches them)."""
    ports = sorted((p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", []))
    return ports == API_SERVER_PORTS and all(set(peer) == {"ipBlock"}
                                             for peer in rule.get("to", []))


@pytest.mark.parametrize("d", DIRS)
def test_network_policy_allows_only_sinks_dns_api_and_scrape(d):
    for w, spec, c in agent_pods(d):
        pol = policy_for(d, pod_labels(w))
        cfg, _ = config_of(d, spec, c)
        assert sorted(pol["policyTypes"]) == ["Egress", "Ingress"], d
        for rule in pol.get("ingress", []):
            assert rule.get("from"), "%s: ingress from anywhere" % d
            assert [(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]] == [("TCP", 2020)]
        allowed = []
        api_rules = []
        for rule in pol["egress"]:
            assert rule.get("ports"), "%s: an egress rule allows every port" % d
            if is_api_server_rule(rule):
                api_rules.append(rule)
                continue
            assert rule.get("to"), "%s: an egress rule allows everything" % d
            for peer in rule["to"]:
                assert "ipBlock" not in peer, "%s: egress by address range" % d
                ns = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for p in rule["ports"]:
                    allowed.append((ns, p["port"]))
        if kubernetes_enabled(cfg):
            assert len(api_rules) == 1, "%s: the kubernetes section needs egress to the API " \
                "server (TCP 443 and 6443), in one rule" % d
        else:
            assert not api_rules, "%s: egress to the API server without the kubernetes section" % d
        assert ("kube-system", 53) in allowed, "%s: DNS" % d
        needed = {("kube-system", 53)}
        for s in cfg["sinks"]:
            url = s.get("url") or s.get("endpoint")
            if not url:
                continue  # file sink, or AWS S3 without endpoint (would need an ipBlock)
            u = urlparse(url)
            m = re.match(r"^[a-z0-9-]+\.([a-z0-9-]+)\.svc(\.cluster\.local)?$", u.hostname)
            assert m, "%s: sink %s is not an in-cluster service URL (%s)" % (d, s["name"], url)
            port = u.port or (443 if u.scheme == "https" else 80)
            assert (m.group(1), port) in allowed, "%s: sink %s (%s) not allowed by the policy" % (
                d, s["name"], url)
            needed.add((m.group(1), port))
        assert set(allowed) == needed, "%s: egress allows more than the sinks: %s" % (
            d, set(allowed) - needed)


def grants(d, role):
    """(resource, verb) pairs of a ClusterRole whose every rule is plain: the core group, named
    resources and verbs, no wildcard, no resourceNames, no nonResourceURLs, no aggregation."""
    name = role["metadata"]["name"]
    assert not role.get("aggregationRule"), "%s: ClusterRole %s aggregates others" % (d, name)
    out = set()
    for r in role.get("rules") or []:
        assert set(r) == {"apiGroups", "resources", "verbs"}, \
            "%s: ClusterRole %s: a rule with %s" % (d, name, sorted(r))
        for field in ("apiGroups", "resources", "verbs"):
            assert not any("*" in x for x in r[field]), "%s: wildcard in %s %s" % (d, name, field)
        assert r["apiGroups"] == [""], "%s: ClusterRole %s: only the core group" % (d, name)
        out |= {(res, v) for res in r["resources"] for v in r["verbs"]}
    return out


@pytest.mark.parametrize("d", NODE_AGENTS)
def test_least_rbac_node_agent(d):
    """The node agent reads pods and namespaces (kubernetes metadata), nothing else: one
    ClusterRole of get/list/watch on exactly those, bound to the DaemonSet's own ServiceAccount
    in the DaemonSet's namespace, and no other Role or binding."""
    (ds,) = objs(d, "DaemonSet")
    spec = pod_spec(ds)
    sa, ns = spec.get("serviceAccountName"), ds["metadata"]["namespace"]
    sas = {o["metadata"]["name"]: o for o in objs(d, "ServiceAccount")}
    assert sa in sas and sa != "default", "%s: the DaemonSet uses its own ServiceAccount" % d
    assert sas[sa]["metadata"]["namespace"] == ns, d
    assert not objs(d, "Role") and not objs(d, "RoleBinding"), "%s: no namespaced RBAC" % d
    roles = {o["metadata"]["name"]: o for o in objs(d, "ClusterRole")}
    assert len(roles) == 1, "%s: one ClusterRole, found %s" % (d, sorted(roles))
    for name, role in roles.items():
        assert grants(d, role) == K8S_API_GRANTS, "%s: ClusterRole %s grants %s, not exactly " \
            "get/list/watch on pods and namespaces" % (d, name, sorted(grants(d, role)))
    bindings = objs(d, "ClusterRoleBinding")
    assert len(bindings) == 1, "%s: one ClusterRoleBinding" % d
    for b in bindings:
        ref = b["roleRef"]
        assert (ref["apiGroup"], ref["kind"]) == ("rbac.authorization.k8s.io", "ClusterRole")
        assert ref["name"] in roles, "%s: bound to %s, not the agent's ClusterRole" % (
            d, ref["name"])
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": ns}], \
            "%s: the binding's subjects %r are not the DaemonSet's ServiceAccount %s/%s" % (
                d, b["subjects"], ns, sa)


@pytest.mark.parametrize("d", NODE_AGENTS)
def test_kubernetes_api_access(d):
    """The node agent's config enables the kubernetes section for its own node (NODE_NAME from
    spec.nodeName), and its pod has the service-account token and CA the section reads."""
    (ds,) = objs(d, "DaemonSet")
    spec = pod_spec(ds)
    c = spillway_container(spec)
    cfg, _ = config_of(d, spec, c)
    k = cfg.get("kubernetes") or {}
    assert kubernetes_enabled(cfg), "%s: kubernetes.enabled is not true" % d
    assert k.get("node_name") == "${NODE_NAME}", "%s: kubernetes.node_name %r" % (
        d, k.get("node_name"))
    env = {e["name"]: e for e in c.get("env", [])}
    assert "value" not in env["NODE_NAME"], d
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", d
    sas = {o["metadata"]["name"]: o for o in objs(d, "ServiceAccount")}
    dirs = token_dirs(spec, c, sas)
    assert dirs, "%s: no service-account token in the pod (automountServiceAccountToken is " \
        "false and no projected serviceAccountToken volume)" % d
    for key, default in (("token_file", "token"), ("ca_file", "ca.crt")):
        f = k.get(key) or SA_DIR + "/" + default
        assert under(f, dirs), "%s: kubernetes.%s = %s is not where the token is mounted (%s)" % (
            d, key, f, sorted(dirs))


def test_sidecar_has_no_api_access():
    """The sidecar knows its pod from the downward API: no RBAC, no token, no kubernetes
    section."""
    d = "overlays/sidecar"
    for kind in RBAC_KINDS:
        assert not objs(d, kind), "%s: the sidecar needs no %s" % (d, kind)
    sas = {o["metadata"]["name"]: o for o in objs(d, "ServiceAccount")}
    for w, spec, c in agent_pods(d):
        sa = spec.get("serviceAccountName")
        assert sa in sas, "%s: the pod uses its own ServiceAccount" % d
        assert sas[sa].get("automountServiceAccountToken") is False, d
        assert spec.get("automountServiceAccountToken") is False, d
        for c2 in all_containers(spec):
            assert not token_dirs(spec, c2, sas), "%s/%s has a service-account token" % (
                d, c2["name"])
        cfg, _ = config_of(d, spec, c)
        assert not kubernetes_enabled(cfg), "%s: kubernetes section enabled" % d


@pytest.mark.parametrize("d", DIRS)
def test_metrics_are_scrapable(d):
    for w, spec, c in agent_pods(d):
        ann = (w["spec"]["template"]["metadata"].get("annotations") or {})
        assert ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "2020"
        assert ann.get("prometheus.io/path") == "/metrics"
        if w["kind"] == "DaemonSet":
            svc = [s for s in objs(d, "Service") if s["spec"].get("clusterIP") == "None"
                   and s["spec"]["selector"].items() <= pod_labels(w).items()]
            assert svc and svc[0]["spec"]["ports"][0]["port"] == 2020, \
                "%s: a headless Service for /metrics" % d


@pytest.mark.parametrize("d", NODE_AGENTS)
def test_daemonset_runs_on_every_node(d):
    ds = objs(d, "DaemonSet")
    assert len(ds) == 1
    tol = pod_spec(ds[0]).get("tolerations", [])
    assert {"operator": "Exists"} in tol, "%s: must tolerate every taint" % d
    env = {e["name"]: e for e in spillway_container(pod_spec(ds[0])).get("env", [])}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


@pytest.mark.parametrize("d", NODE_AGENTS)
def test_daemonset_waits_for_the_data_dir_lock(d):
    """The buffer is on the node: during an update the new pod may start while the old one
    still shuts down. It waits for the data_dir lock (--wait-lock) within what the startup
    probe (/health, answered while waiting) allows, instead of exiting and crash-looping."""
    ds = objs(d, "DaemonSet")
    c = spillway_container(pod_spec(ds[0]))
    args = c.get("args", [])
    assert "--wait-lock" in args, "%s: run without --wait-lock: %r" % (d, args)
    wait = args[args.index("--wait-lock") + 1]
    assert wait.endswith("s") and wait[:-1].isdigit(), wait
    sp = c["startupProbe"]
    assert sp["httpGet"]["path"] == "/health"
    assert sp["periodSeconds"] * sp["failureThreshold"] >= int(wait[:-1]), (sp, wait)


def test_overlays_differ_in_resources_sinks_and_retention():
    def facts(d):
        w, spec, c = agent_pods(d)[0]
        cfg, _ = config_of(d, spec, c)
        return (c["resources"], sorted((s["name"], s["type"]) for s in cfg["sinks"]),
                (cfg["buffer"], cfg.get("disk_pressure")))
    st, pr = facts("overlays/staging"), facts("overlays/production")
    for i, what in enumerate(("resources", "sinks", "buffer and disk-pressure retention")):
        assert st[i] != pr[i], "staging and production have the same %s" % what
    assert {t for _, t in pr[1]} == {"loki", "elasticsearch", "s3"}


def test_sidecar_shares_and_relieves_the_app_volume():
    d = "overlays/sidecar"
    (w, spec, c), = agent_pods(d)
    app = [x for x in spec["containers"] if not is_spillway(x)]
    assert app, "the sidecar example has an application container"
    cfg, _ = config_of(d, spec, c)
    vols = volumes(spec)
    for a in app:
        shared = [m for m in a.get("volumeMounts", []) if "emptyDir" in vols[m["name"]]]
        assert shared, "the app writes to an emptyDir"
        for m in shared:
            mine = [x for x in c["volumeMounts"] if x["name"] == m["name"]]
            assert mine and not mine[0].get("readOnly"), "spillway must manage the app's volume"
            vol = vols[m["name"]]["emptyDir"]
            assert vol.get("sizeLimit"), "the shared volume is bounded"
            path = mine[0]["mountPath"]
            assert any(under(literal_dir(g), [path]) for s in cfg["sources"] for g in s["paths"])
            assert any(under(literal_dir(g), [path]) for r in cfg["retention"] for g in r["paths"])
            assert under(cfg["disk_pressure"]["path"], [path]), "disk pressure of that volume"
        if a.get("command", [])[:1] == ["/bin/sh"]:  # the example app's script parses
            r = run(["sh", "-n", "-c", a["args"][0]])
            assert r.returncode == 0, r.stderr
    if c in spec.get("initContainers", []):
        assert c.get("restartPolicy") == "Always", "a native sidecar keeps running"
