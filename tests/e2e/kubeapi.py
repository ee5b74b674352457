"""A strict Kubernetes API server for the end-to-end tests: pods and namespaces over TLS, on
127.0.0.1, with bearer-token auth, list + pagination, watch + bookmarks, expiry (410) and faults.

    api = KubeAPI(tmp_path / "kube")             # TLS material + token file in that directory
    api.add_pod(make_pod("default", "web-1", uid, "node-1", owner=("ReplicaSet", "web-7d9f8b6c5d")))
    ... agent configured with api.url, api.ca_file, api.token_file ...
    api.update_pod("default", "web-1", {"metadata": {"labels": {"tier": "a"}}})
    api.delete_pod("default", "web-1")
    api.stop(); api.start()                      # outage: listener closed, every stream cut
    api.expire()                                 # bump + compact + end watches: 410, relist
    api.requests(kind="watch")                   # request log: query, auth, status, events sent
    api.close()

What it answers (each rule is implemented the way the real kube-apiserver behaves; the sources
were checked with the search tool, and what was *not* verifiable is marked as modelled):

* LIST `GET /api/v1/pods`, `/api/v1/namespaces/<ns>/pods`, `/api/v1/namespaces`:
  `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"<rv>"},"items":[...]}`,
  items without kind/apiVersion (as the real server serialises list items). `limit` + `continue`:
  pages served from a consistent snapshot at the first page's resourceVersion, the list RV
  constant across pages, an empty/omitted `continue` on the last page. Checked against
  kubernetes/website content/en/docs/reference/using-api/api-concepts.md ("Efficient detection
  of changes", "Retrieving large results sets in chunks", the resourceVersion semantics tables
  for list and watch). `remainingItemCount` only when the request has no label/field selector
  (ListMeta reference text: "If the list request contained label or field selectors, then the
  number of remaining items is unknown and the field will be left unset"). Like etcd, a page can
  carry a `continue` although nothing after it matches the selector (the next page is empty).
  A continue token older than the compaction horizon: HTTP 410, reason Expired, the etcd3
  store's "The provided continue parameter is too old ..." message and a fresh "inconsistent"
  token in the Status' metadata.continue (rv -1, resumes on the current state) -- as
  handleCompactedErrorForPaging does (apiserver storage tests; kube-rs' Status test
  "expired_with_continue_token"). `resourceVersion=0` on a list is served "from the cache",
  which (classic watch cache) ignores `limit`: set `rv0_paginates = True` to change that.
* WATCH (`watch=1|true`): 200, `Transfer-Encoding: chunked`, `Content-Type: application/json`,
  one `{"type":...,"object":{full object with kind/apiVersion}}` per line, one chunk per event
  (`split_events = True` splits each event over two chunks). Events strictly after the given
  resourceVersion; without one (or with "0") synthetic ADDED events for the current state
  first ("Get State and Start at Most Recent/Any"). Selector semantics of the watch cache's
  cacheWatcher.convertToWatchEvent: old matched and new does not -> DELETED carrying the
  *previous* object content with the event's resourceVersion; new matches, old did not -> ADDED.
  BOOKMARK (`allowWatchBookmarks=true`) every `bookmark_interval` s and once right before a
  timeout close: `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":
  {"resourceVersion":"<rv>"}}}` (api-concepts.md "Watch bookmarks": "Object returned in that
  event is of the type requested by the request, but only resourceVersion field is set");
  `bookmark_style = "go"` sends what real Go servers put on the wire instead,
  `"metadata":{"resourceVersion":"..","creationTimestamp":null},"spec":{"containers":null},
  "status":{}` (recorded in kube-rs' design notes). The stream ends cleanly (last chunk) after
  timeoutSeconds, capped by `max_watch_seconds` (the server's own cap when absent).
* Expired watch resourceVersion: HTTP 200 and one `{"type":"ERROR","object":{"kind":"Status",
  "apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: X (Y)",
  "reason":"Expired","code":410}}`, then the stream ends. Checked: the cacher's comment "To match
  the uncached watch implementation, once we have passed authn/authz/admission, and successfully
  parsed a resource version, other errors must fail with a watch event of type ERROR, rather
  than a directly returned error" (newErrWatcher), watch_cache.go's
  `errors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, oldest-1))`
  and apimachinery's NewResourceExpired (Status Failure, Code 410, Reason Expired). Y here is
  the compaction horizon, X the requested RV; an RV equal to the horizon is still served.
* GET `/api/v1/namespaces/<ns>/pods/<name>` and `/api/v1/namespaces/<name>`; absent -> 404
  `{"kind":"Status",...,"message":"pods \\"x\\" not found","reason":"NotFound",
  "details":{"name":"x","kind":"pods"},"code":404}`. Also /version, /healthz, /livez, /readyz.
* Auth: `Authorization: Bearer <token>` on every request (anonymous auth off); missing or wrong
  -> 401 `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":
  "Unauthorized","reason":"Unauthorized","code":401}` (byte-identical to recorded apiserver
  answers in public scan logs). The scheme is matched case-insensitively and only the first
  word after it is the token, like the apiserver's bearer authenticator.
* Field selectors: `=`, `==`, `!=`, comma-joined, backslash escapes; the fields a real server
  accepts (Field Selectors docs page: Pod spec.nodeName, spec.restartPolicy, spec.schedulerName,
  spec.serviceAccountName, spec.hostNetwork, status.phase, status.podIP, status.podIPs,
  status.nominatedNodeName; Namespace status.phase; all metadata.name/metadata.namespace);
  anything else -> 400 BadRequest "field label not supported: <field>". Label selectors:
  `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a)`.
* Large answers: over 2 KiB chunked (no Content-Length, as Go's net/http does past its
  buffer), over 128 KiB gzipped (level 1, `Vary: Accept-Encoding`) when the client sends
  `Accept-Encoding: gzip` -- the apiserver's deferredResponseWriter, defaultGzipThresholdBytes
  = 128 * 1024 (responsewriters/writers.go). Watch streams are never compressed.
* JSON is written like Go's encoder: compact, UTF-8 unescaped, but `<`, `>`, `&`, U+2028/9
  escaped as \\u003c etc. (exercises the agent's JSON unescaping).

Modelled, not verified byte for byte: the messages of injected 429/500/503/504/403 Statuses,
the 504 "Too large resource version" answer for a resourceVersion ahead of the server, the
422 for sendInitialEvents misuse, the exact continue-token encoding (opaque to clients anyway;
shaped like etcd3's base64url JSON {"v","rv","start"}).

Test controls are thread-safe (one lock; watch streams wait on a Condition with a timeout, so a
change is pushed at once). Every wait is bounded: idle keep-alive connections are dropped after
`idle_timeout`, TLS handshakes after 5 s, injected holds after `hold` s, and watch loops end at
their deadline; `stop()` closes the listener and cuts every open connection (no final chunk),
`start()` listens again on the same port with the same state.
"""

import base64
import bisect
import copy
import datetime
import errno
import gzip
import hashlib
import ipaddress
import json
import os
import select
import socket
import ssl
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "AlreadyExists", 410: "Expired",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}

LIST_EXPIRED = "The resourceVersion for the provided list is too old."
CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the "
                    "results. Continuing with the provided token results in an inconsistent "
                    "list - objects that were created, modified, or deleted between the time the "
                    "first chunk was returned and now may show up in the list.")

VERSION = {"major": "1", "minor": "29", "gitVersion": "v1.29.4",
           "gitCommit": "55019c83b0fd51ef4ced8c29eec2c4847f896e74", "gitTreeState": "clean",
           "buildDate": "2024-04-16T15:03:11Z", "goVersion": "go1.21.9", "compiler": "gc",
           "platform": "linux/amd64"}

POD_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
              "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
              "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName")
NAMESPACE_FIELDS = ("metadata.name", "metadata.namespace", "status.phase")

RESOURCES = {
    "pods": {"kind": "Pod", "list_kind": "PodList", "namespaced": True, "fields": POD_FIELDS},
    "namespaces": {"kind": "Namespace", "list_kind": "NamespaceList", "namespaced": False,
                   "fields": NAMESPACE_FIELDS},
}

_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
               ("\u2029", "\\u2029"))


def go_json(obj):
    """JSON bytes as Go's encoding/json writes them (compact, HTML-safe escapes, raw UTF-8)."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for a, b in _GO_ESCAPES:  # these characters only ever occur inside JSON strings
        s = s.replace(a, b)
    return s.encode("utf-8")


def status_obj(code, message, reason=None, details=None, metadata=None):
    """A metav1.Status with the apiserver's key order."""
    st = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {}, "status": "Failure",
          "message": message, "reason": reason if reason is not None else REASONS.get(code, "")}
    if details:
        st["details"] = details
    st["code"] = code
    return st


def rfc3339(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def container_id(uid, container):
    """The deterministic containerd ID make_pod gives a container of a pod."""
    return "containerd://" + hashlib.sha256(("%s/%s" % (uid, container)).encode()).hexdigest()


OWNER_API = {"ReplicaSet": "apps/v1", "DaemonSet": "apps/v1", "StatefulSet": "apps/v1",
             "Deployment": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1", "Node": "v1",
             "ReplicationController": "v1"}


def owner_ref(kind, name, uid=None):
    return {"apiVersion": OWNER_API.get(kind, "apps/v1"), "kind": kind, "name": name,
            "uid": uid or str(uuid.uuid5(uuid.NAMESPACE_URL, "owner/%s/%s" % (kind, name))),
            "controller": True, "blockOwnerDeletion": True}


def make_pod(namespace, name, uid=None, node="node-1", labels=None, annotations=None,
             owner=None, containers=("app",), phase="Running", created=None):
    """A realistic v1 Pod (kind/apiVersion set; resourceVersion is assigned by add_pod).

    owner: (kind, name) or (kind, name, uid) or a full ownerReference dict.
    containers: names, or dicts {"name": .., "image": ..}; each gets a running containerStatus
    whose containerID is container_id(uid, name)."""
    uid = uid or str(uuid.uuid4())
    ts = created or rfc3339()
    h = hashlib.sha256(("%s/%s" % (namespace, name)).encode()).digest()
    pod_ip = "10.244.%d.%d" % (h[0], 1 + h[1] % 254)
    specs, statuses = [], []
    for c in containers:
        cname = c["name"] if isinstance(c, dict) else c
        image = (c.get("image") if isinstance(c, dict) else None) or \
            "registry.example.com/%s:1.4.2" % cname
        specs.append({
            "name": cname, "image": image, "resources": {},
            "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": True,
                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"})
        statuses.append({
            "name": cname, "state": {"running": {"startedAt": ts}}, "lastState": {},
            "ready": True, "restartCount": 0, "image": image,
            "imageID": "%s@sha256:%s" % (image.rsplit(":", 1)[0],
                                         hashlib.sha256(image.encode()).hexdigest()),
            "containerID": container_id(uid, cname), "started": True})
    meta = {"name": name, "namespace": namespace, "uid": uid, "creationTimestamp": ts}
    if owner is not None:
        ref = dict(owner) if isinstance(owner, dict) else owner_ref(*owner)
        if ref["kind"] == "ReplicaSet" and name.startswith(ref["name"] + "-"):
            meta["generateName"] = ref["name"] + "-"
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner is not None:
        meta["ownerReferences"] = [ref]
    meta["managedFields"] = [
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
         "time": ts, "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {"f:containers": {}}}},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": ts,
         "fieldsType": "FieldsV1", "subresource": "status",
         "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {},
                                   "f:podIP": {}, "f:podIPs": {".": {}}}}}]
    cond = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": ts}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": meta,
        "spec": {
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {
                "sources": [{"serviceAccountToken": {"expirationSeconds": 3607,
                                                     "path": "token"}}],
                "defaultMode": 420}}],
            "containers": specs, "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "nodeName": node,
            "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority"},
        "status": {"phase": phase, "conditions": cond, "hostIP": "10.0.0.10",
                   "hostIPs": [{"ip": "10.0.0.10"}], "podIP": pod_ip,
                   "podIPs": [{"ip": pod_ip}], "startTime": ts,
                   "containerStatuses": statuses, "qosClass": "BestEffort"},
    }


def make_namespace(name, labels=None, annotations=None, uid=None, created=None):
    """A v1 Namespace; like the real server it carries kubernetes.io/metadata.name=<name>."""
    lab = {"kubernetes.io/metadata.name": name}
    lab.update(labels or {})
    meta = {"name": name, "uid": uid or str(uuid.uuid4()),
            "creationTimestamp": created or rfc3339(), "labels": lab}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": meta,
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


# --------------------------------------------------------------------------------------------
# TLS material (python3-cryptography)


def _pem_write(path, data, mode=0o644):
    tmp = "%s.tmp" % path
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _write_pair(directory, name, cert, key):
    """<name>.crt and <name>.key (0600) in directory; returns their paths."""
    from cryptography.hazmat.primitives import serialization
    d = str(directory)
    crt, kpath = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    _pem_write(crt, cert.public_bytes(serialization.Encoding.PEM))
    _pem_write(kpath, key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()), 0o600)
    return crt, kpath


def generate_ca(directory, name="kubeapi-test-ca", key_type="ec"):
    """Writes <name>.crt / <name>.key (a self-signed CA) into directory; returns the paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=3))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return _write_pair(directory, name, cert, key)


def generate_server_cert(directory, ca_crt, ca_key, name="apiserver",
                         ips=("127.0.0.1",), dns=("localhost", "kubernetes",
                                                   "kubernetes.default.svc"), key_type="ec"):
    """Writes <name>.crt / <name>.key signed by the CA (serverAuth, SANs ips + dns)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    with open(ca_crt, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(ca_key, "rb") as f:
        cakey = serialization.load_pem_private_key(f.read(), password=None)
    key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    san = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=key_type != "ec",
                                         data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(cakey.public_key()),
                           critical=False)
            .sign(cakey, hashes.SHA256()))
    return _write_pair(directory, name, cert, key)


# --------------------------------------------------------------------------------------------
# selectors


class ApiError(Exception):
    """Answered as a Status with this code."""

    def __init__(self, code, message, reason=None, details=None, metadata=None, headers=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.reason, self.details, self.metadata = reason, details, metadata
        self.headers = headers or {}

    def status(self):
        return status_obj(self.code, self.message, self.reason, self.details, self.metadata)


def _split_unescaped(s, sep):
    """Splits on sep not preceded by a backslash (escapes kept)."""
    out, cur, i = [], [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def _unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\":
            if i + 1 >= len(v) or v[i + 1] not in "\\,=":
                raise ApiError(400, "invalid field selector: unescaped or invalid escape in %r" % v)
            out.append(v[i + 1])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def parse_field_selector(s, allowed):
    """'a=b,c!=d' -> [(field, op, value)], op in ('=', '!='); ApiError(400) otherwise."""
    terms = []
    if not s:
        return terms
    for part in _split_unescaped(s, ","):
        for op in ("!=", "==", "="):
            # the operator is the first unescaped occurrence
            idx, i = -1, 0
            while i < len(part):
                if part[i] == "\\":
                    i += 2
                    continue
                if part.startswith(op, i):
                    idx = i
                    break
                i += 1
            if idx >= 0:
                break
        if idx < 0:
            raise ApiError(400, "invalid selector: '%s'; can't understand '%s'" % (s, part))
        field, value = part[:idx].strip(), _unescape(part[idx + len(op):])
        if field not in allowed:
            raise ApiError(400, "field label not supported: %s" % field)
        terms.append((field, "!=" if op == "!=" else "=", value))
    return terms


def _split_top(s):
    out, cur, depth = [], [], 0
    for c in s:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur))
    return out


def parse_label_selector(s):
    """-> [(key, op, values)], op in '=', '!=', 'exists', '!exists', 'in', 'notin'."""
    terms = []
    if not s or not s.strip():
        return terms
    for part in _split_top(s):
        p = part.strip()
        if not p:
            raise ApiError(400, "unable to parse requirement: found '', expected: identifier")
        low = p.split()
        if len(low) >= 2 and low[1] in ("in", "notin"):
            rest = p[len(low[0]):].strip()[len(low[1]):].strip()
            if not (rest.startswith("(") and rest.endswith(")")):
                raise ApiError(400, "unable to parse requirement: %r" % p)
            vals = [v.strip() for v in rest[1:-1].split(",") if v.strip()]
            terms.append((low[0], low[1], vals))
        elif "!=" in p:
            k, v = p.split("!=", 1)
            terms.append((k.strip(), "!=", [v.strip()]))
        elif "==" in p:
            k, v = p.split("==", 1)
            terms.append((k.strip(), "=", [v.strip()]))
        elif "=" in p:
            k, v = p.split("=", 1)
            terms.append((k.strip(), "=", [v.strip()]))
        elif p.startswith("!"):
            terms.append((p[1:].strip(), "!exists", []))
        else:
            terms.append((p, "exists", []))
    return terms


def field_value(obj, field):
    """The string a field selector compares (booleans as true/false, missing as "")."""
    if field == "status.podIPs":
        return ",".join(i.get("ip", "") for i in obj.get("status", {}).get("podIPs") or [])
    cur = obj
    for p in field.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if cur is None and field == "spec.hostNetwork":
        return "false"
    return "" if cur is None else str(cur)


def _labels_match(terms, obj):
    lab = obj.get("metadata", {}).get("labels") or {}
    for k, op, vals in terms:
        has = k in lab
        if op == "=" and not (has and lab[k] == vals[0]):
            return False
        if op == "!=" and has and lab[k] == vals[0]:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
        if op == "in" and not (has and lab[k] in vals):
            return False
        if op == "notin" and has and lab[k] in vals:
            return False
    return True


def _parse_bool(v, name, default=False):
    if v is None:
        return default
    if v in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if v in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ApiError(400, "%s: Invalid value: %r: strconv.ParseBool: parsing %r: invalid syntax"
                   % (name, v, v))


def _parse_int(v, name, default=0):
    if v is None or v == "":
        return default
    try:
        n = int(v, 10)
    except ValueError:
        raise ApiError(400, "%s: Invalid value: %r: strconv.ParseInt: parsing %r: invalid syntax"
                       % (name, v, v))
    if n < 0:
        raise ApiError(400, "%s: Invalid value: %d: must be greater than or equal to 0"
                       % (name, n))
    return n


def _parse_rv(v):
    try:
        n = int(v, 10)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise ApiError(400, "invalid resource version: %s" % v)


def encode_continue(rv, key):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00"},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(tok):
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        d = json.loads(raw)
        if d.get("v") != "meta.k8s.io/v1" or not isinstance(d.get("rv"), int) \
                or not isinstance(d.get("start"), str) or not d["start"].endswith("\x00"):
            raise ValueError("bad fields")
        return d["rv"], d["start"][:-1]
    except (ValueError, TypeError, AttributeError) as e:
        raise ApiError(400, "invalid continue token: %s" % e)


# --------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, api, gen):
        self.api = api
        self.gen = gen
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        """TLS handshake here, in the connection's thread (a client that never completes it
        does not block the accept loop), bounded by 5 s."""
        api = self.api
        conn = request
        if not api._conn_open(request, self.gen):
            return
        try:
            if api._ssl_ctx is not None:
                request.settimeout(5.0)
                try:
                    conn = api._ssl_ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError, ValueError) as e:
                    api._tls_error(e)
                    return
                api._conn_swap(request, conn)
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            api._conn_close(conn)
            if conn is not request:
                try:
                    conn.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        """A client that goes away mid-answer, or a connection cut by stop(), is what this
        server is for: no traceback for those."""
        import sys
        e = sys.exc_info()[1]
        if not isinstance(e, (OSError, ssl.SSLError, ValueError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.timeout = self.server.api.idle_timeout  # bounds reads of an idle keep-alive
        super().setup()

    def log_message(self, *a):
        pass

    def send_response(self, code, message=None):
        """Like Go's net/http: no Server header."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_GET(self):
        self.server.api._handle(self, "GET")

    def do_POST(self):
        self.server.api._handle(self, "POST")

    def do_PUT(self):
        self.server.api._handle(self, "PUT")

    def do_PATCH(self):
        self.server.api._handle(self, "PATCH")

    def do_DELETE(self):
        self.server.api._handle(self, "DELETE")


class _Cut(Exception):
    """The connection was cut (stop(), cut_watches()) or the client went away."""


def _raw_shutdown(sock):
    """shutdown(2) on the fd, bypassing SSLSocket.shutdown (which would tear down the TLS state
    under the feet of the thread using it)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------------------------
# the server


class KubeAPI:
    """A strict test kube-apiserver. See the module docstring for the wire behaviour.

    Attributes a test may set at any time: delay (s before every answer), bookmark_interval,
    bookmark_style ("minimal" | "go"), final_bookmark, max_watch_seconds, split_events,
    rv0_paginates, hold, too_large_wait, gzip_threshold, chunk_threshold."""

    def __init__(self, directory, token=None, tls=True, port=0, start_rv=1000,
                 bookmark_interval=1.0, max_watch_seconds=60.0, idle_timeout=30.0, hold=3.0,
                 key_type="ec", start=True):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.tls = tls
        self.port = port
        self.delay = 0.0
        self.bookmark_interval = bookmark_interval
        self.bookmark_style = "minimal"
        self.final_bookmark = True
        self.max_watch_seconds = max_watch_seconds
        self.idle_timeout = idle_timeout
        self.hold = hold
        self.too_large_wait = 1.0
        self.split_events = False
        self.rv0_paginates = False
        self.gzip_threshold = 128 * 1024
        self.chunk_threshold = 2048
        self.log = []                 # request log, see requests()
        self.counts = {"list": 0, "watch": 0, "get": 0, "other": 0}
        self.tls_errors = []
        self._faults = []
        self._store = {r: {} for r in RESOURCES}
        self._hist = []               # (rv, resource, type, key, prev, obj), rv ascending
        self._hist_rvs = []
        self._rv = int(start_rv)
        self._compacted = 0
        self._gen = 0                 # bumped by stop()
        self._cut_gen = 0             # bumped by cut_watches()
        self._end_gen = 0             # bumped by end_watches()
        self._running = False
        self._conns = set()
        self._active = 0
        self._open_watches = {}
        self._next_id = 0
        self.httpd = None
        self.thread = None
        self.token_file = os.path.join(self.dir, "token")
        self._tokens = set()
        self.set_token(token or "kubeapi-test-" + uuid.uuid4().hex)
        self.ca_file = self.ca_key = self.cert_file = self.key_file = None
        self._ssl_ctx = None
        if tls:
            self.ca_file, self.ca_key = generate_ca(self.dir, "ca", key_type)
            self.cert_file, self.key_file = generate_server_cert(self.dir, self.ca_file,
                                                                 self.ca_key, "apiserver",
                                                                 key_type=key_type)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.cert_file, self.key_file)
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl_ctx = ctx
        if start:
            self.start()

    # ---------------------------------------------------------------- lifecycle

    def start(self):
        """Listens on 127.0.0.1 (ephemeral port the first time, the same port afterwards)."""
        with self.lock:
            if self._running:
                return
            gen = self._gen
        deadline = time.monotonic() + 5.0
        while True:
            try:
                httpd = _Server((HOST, self.port), _Handler, self, gen)
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)  # bounded retry of a port still held by the kernel
        self.httpd = httpd
        self.port = httpd.server_address[1]
        with self.lock:
            self._running = True
        self.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name="kubeapi-%d" % self.port)
        self.thread.start()

    def stop(self):
        """Outage: closes the listener (connection refused from now on) and cuts every open
        connection, watch streams included (no final chunk). State is kept for start()."""
        with self.cond:
            if not self._running:
                return
            self._running = False
            self._gen += 1
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            _raw_shutdown(c)
        deadline = time.monotonic() + 5.0
        with self.cond:
            while self._active > 0 and time.monotonic() < deadline:
                self.cond.wait(0.05)

    def close(self):
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    @property
    def running(self):
        return self._running

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", HOST, self.port)

    def env(self):
        """In-cluster style environment for the agent."""
        return {"KUBERNETES_SERVICE_HOST": HOST, "KUBERNETES_SERVICE_PORT": str(self.port)}

    # ---------------------------------------------------------------- auth

    def set_token(self, token, write=True, keep_old=False):
        """Rotates the accepted bearer token (the old one is refused unless keep_old) and
        atomically rewrites token_file (unless write=False)."""
        with self.lock:
            if not keep_old:
                self._tokens = set()
            self._tokens.add(token)
            self.token = token
        if write:
            _pem_write(self.token_file, token.encode(), 0o600)

    # ---------------------------------------------------------------- objects

    def _key(self, res, obj):
        m = obj.get("metadata", {})
        if RESOURCES[res]["namespaced"]:
            return "%s/%s" % (m.get("namespace"), m.get("name"))
        return m.get("name")

    def _record(self, res, typ, key, prev, obj):
        """Under the lock: a new global RV, stored and appended to history; wakes watches."""
        self._rv += 1
        rv = self._rv
        if obj is not None:
            obj["metadata"]["resourceVersion"] = str(rv)
            self._store[res][key] = obj
        else:
            del self._store[res][key]
        self._hist.append((rv, res, typ, key, prev, obj))
        self._hist_rvs.append(rv)
        self.cond.notify_all()
        return rv

    def _add(self, res, obj):
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") or (RESOURCES[res]["namespaced"] and not meta.get("namespace")):
            raise ValueError("%s needs metadata.name%s" % (
                res, " and metadata.namespace" if RESOURCES[res]["namespaced"] else ""))
        obj["kind"] = RESOURCES[res]["kind"]
        obj["apiVersion"] = "v1"
        obj = {"kind": obj.pop("kind"), "apiVersion": obj.pop("apiVersion"), **obj}
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", rfc3339())
        with self.lock:
            key = self._key(res, obj)
            if key in self._store[res]:
                raise ValueError("%s %r already exists" % (res, key))
            self._record(res, "ADDED", key, None, obj)
            return copy.deepcopy(obj)

    def _update(self, res, key, change):
        with self.lock:
            prev = self._store[res].get(key)
            if prev is None:
                raise KeyError("%s %r not found" % (res, key))
            new = copy.deepcopy(prev)
            if callable(change):
                r = change(new)
                new = r if r is not None else new
            else:
                _merge_patch(new, change)
            for f in ("name", "namespace", "uid"):
                if new.get("metadata", {}).get(f) != prev["metadata"].get(f):
                    raise ValueError("metadata.%s is immutable" % f)
            self._record(res, "MODIFIED", key, prev, new)
            return copy.deepcopy(new)

    def _delete(self, res, key, graceful):
        with self.lock:
            if key not in self._store[res]:
                raise KeyError("%s %r not found" % (res, key))
            if graceful:
                def mark(o):
                    o["metadata"]["deletionTimestamp"] = rfc3339(time.time() + 30)
                    o["metadata"]["deletionGracePeriodSeconds"] = 30
                    if res == "namespaces":
                        o["status"]["phase"] = "Terminating"
                self._update(res, key, mark)
            prev = self._store[res][key]
            rv = self._record(res, "DELETED", key, prev, None)
            last = copy.deepcopy(prev)
            last["metadata"]["resourceVersion"] = str(rv)
            return last

    def add_pod(self, pod):
        """Stores a Pod (make_pod's or any dict); returns it as stored (with its RV)."""
        return self._add("pods", pod)

    def update_pod(self, namespace, name, change):
        """change: a function mutating (or returning) the pod, or a JSON merge patch dict
        (None deletes a key). Emits MODIFIED; moving spec.nodeName makes filtered watches of the
        old node see DELETED and those of the new node ADDED."""
        return self._update("pods", "%s/%s" % (namespace, name), change)

    def delete_pod(self, namespace, name, graceful=False):
        """DELETED (graceful: first MODIFIED with deletionTimestamp). Returns the last state."""
        return self._delete("pods", "%s/%s" % (namespace, name), graceful)

    def get_pod(self, namespace, name):
        with self.lock:
            o = self._store["pods"].get("%s/%s" % (namespace, name))
            return copy.deepcopy(o) if o else None

    def pods(self):
        with self.lock:
            return [copy.deepcopy(o) for _, o in sorted(self._store["pods"].items())]

    def add_namespace(self, ns, labels=None, annotations=None):
        """ns: a Namespace dict or a name (then make_namespace(name, labels, annotations))."""
        if isinstance(ns, str):
            ns = make_namespace(ns, labels, annotations)
        return self._add("namespaces", ns)

    def update_namespace(self, name, change):
        return self._update("namespaces", name, change)

    def delete_namespace(self, name, graceful=False):
        return self._delete("namespaces", name, graceful)

    def get_namespace(self, name):
        with self.lock:
            o = self._store["namespaces"].get(name)
            return copy.deepcopy(o) if o else None

    # ---------------------------------------------------------------- resource versions

    @property
    def rv(self):
        return self._rv

    @property
    def resource_version(self):
        return str(self._rv)

    def bump(self, n=1):
        """Advances the global RV without touching pods or namespaces (other resources changed),
        so bookmarks move on and a client's last RV can then be compacted away."""
        with self.cond:
            self._rv += n
            self.cond.notify_all()
            return self._rv

    def compact(self, rv=None):
        """Every RV older than rv (default: the current one) is expired from now on: a watch
        from it gets the ERROR 410 event, a continue token from it a 410. The current RV itself
        stays valid, so bump() (or make a change) first to expire a client that is up to date.
        Returns the horizon."""
        with self.cond:
            self._compacted = max(self._compacted, self._rv if rv is None else int(rv))
            return self._compacted

    def expire(self):
        """Atomically bump(), compact() and end_watches(): every client's resourceVersion is
        expired and its open watch ends (cleanly, without a last bookmark), so its next watch
        gets the ERROR 410 event and it must list again. compact() alone, like a real
        compaction, leaves open watches streaming. Returns the horizon."""
        with self.cond:
            self._rv += 1
            self._compacted = self._rv
            self._end_gen += 1
            self.cond.notify_all()
            return self._compacted

    @property
    def compacted(self):
        return self._compacted

    # ---------------------------------------------------------------- faults

    def fail_next(self, n=1, status=500, only=None, resource=None, delay=0.0, retry_after=1):
        """The next n authenticated requests (only: "list"/"watch"/"get"; resource: "pods"/
        "namespaces") fail: status an HTTP code (answered with a Status body; 429 and 503 carry
        Retry-After), or "reset" (connection reset, no answer) or "timeout" (held `hold` s,
        then closed without an answer). delay: seconds before the failure."""
        with self.lock:
            for _ in range(n):
                self._faults.append({"status": status, "only": only, "resource": resource,
                                     "delay": delay, "retry_after": retry_after})

    def delay_next(self, n, seconds, only=None, resource=None):
        """The next n matching requests are answered normally, but only after `seconds`."""
        with self.lock:
            for _ in range(n):
                self._faults.append({"status": None, "only": only, "resource": resource,
                                     "delay": seconds, "retry_after": 0})

    def clear_faults(self):
        with self.lock:
            self._faults = []

    def _take_fault(self, kind, res):
        with self.lock:
            for i, f in enumerate(self._faults):
                if (f["only"] is None or f["only"] == kind) and \
                        (f["resource"] is None or f["resource"] == res):
                    return self._faults.pop(i)
        return None

    # ---------------------------------------------------------------- watches

    def cut_watches(self):
        """Cuts every open watch stream abruptly (no final chunk), listener untouched."""
        with self.cond:
            self._cut_gen += 1
            self.cond.notify_all()

    def end_watches(self):
        """Ends every open watch stream cleanly (final chunk), as a timeout would."""
        with self.cond:
            self._end_gen += 1
            self.cond.notify_all()

    def open_watches(self, resource=None):
        """Request-log entries of the watch streams open right now."""
        with self.lock:
            return [dict(e) for e in self._open_watches.values()
                    if resource is None or e["resource"] == resource]

    def wait_open_watches(self, n=1, timeout=10.0, resource="pods"):
        """Waits (bounded) until at least n watch streams of resource are open."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                k = sum(1 for e in self._open_watches.values()
                        if resource is None or e["resource"] == resource)
                if k >= n:
                    return k
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1fs waiting for %d open %s watch(es) "
                                         "(open: %d)" % (timeout, n, resource, k))
                self.cond.wait(min(left, 0.2))

    # ---------------------------------------------------------------- request log

    def requests(self, kind=None, resource=None, auth_ok=None):
        """Copies of request-log entries: {id, method, path, raw_query, query (first value of
        each parameter), kind ("list"/"watch"/"get"/"other"), resource, namespace, name,
        auth ("ok"/"missing"/"invalid"), auth_ok, token, headers, status (None while a stream
        is open before its headers), events (types sent on a watch), end (how a watch ended:
        "timeout", "ended", "expired", "error", "cut", "stopped", "client"), t0, t1}."""
        with self.lock:
            return [dict(e, events=list(e["events"])) for e in self.log
                    if (kind is None or e["kind"] == kind)
                    and (resource is None or e["resource"] == resource)
                    and (auth_ok is None or e["auth_ok"] == auth_ok)]

    @property
    def list_requests(self):
        return self.counts["list"]

    @property
    def watch_requests(self):
        return self.counts["watch"]

    def reset_log(self):
        with self.lock:
            self.log = []
            self.counts = {k: 0 for k in self.counts}

    # ---------------------------------------------------------------- connections

    def _conn_open(self, sock, gen):
        with self.cond:
            if gen != self._gen or not self._running:
                return False
            self._conns.add(sock)
            self._active += 1
            return True

    def _conn_swap(self, old, new):
        with self.lock:
            self._conns.discard(old)
            self._conns.add(new)
            if not self._running:  # stop() ran during the handshake
                _raw_shutdown(new)

    def _conn_close(self, sock):
        with self.cond:
            if sock in self._conns:
                self._conns.discard(sock)
            self._active -= 1
            self.cond.notify_all()

    def _tls_error(self, e):
        with self.lock:
            if self._running:  # not a handshake cut by stop()
                self.tls_errors.append("%s: %s" % (type(e).__name__, e))

    def _pause(self, seconds, gen):
        """Sleeps up to seconds; returns False if stop() ran meanwhile."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while self._gen == gen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self.cond.wait(left)
        return False

    # ---------------------------------------------------------------- request handling

    def _route(self, path):
        """-> (resource, namespace, name) or None."""
        parts = [unquote(p) for p in path.split("/") if p != ""]
        if parts[:2] != ["api", "v1"]:
            return None
        p = parts[2:]
        if p == ["pods"]:
            return ("pods", None, None)
        if p == ["namespaces"]:
            return ("namespaces", None, None)
        if len(p) == 2 and p[0] == "namespaces":
            return ("namespaces", None, p[1])
        if len(p) == 3 and p[0] == "namespaces" and p[2] == "pods":
            return ("pods", p[1], None)
        if len(p) == 4 and p[0] == "namespaces" and p[2] == "pods":
            return ("pods", p[1], p[3])
        return None

    def _handle(self, h, method):
        url = urlsplit(h.path)
        q_all = parse_qs(url.query, keep_blank_values=True)
        q = {k: v[0] for k, v in q_all.items()}  # Go's url.Values.Get: the first value
        route = self._route(url.path)
        res, ns, name = route if route else (None, None, None)
        if route is None or method != "GET":
            kind = "other"
        elif name is not None:
            kind = "get"
        else:
            kind = "watch" if q.get("watch") in ("1", "t", "T", "true", "TRUE", "True") \
                else "list"
        auth_hdr = (h.headers.get("Authorization") or "").strip()
        parts = auth_hdr.split(" ")
        token = parts[1] if len(parts) >= 2 and parts[0].lower() == "bearer" and parts[1] \
            else None
        with self.cond:
            gen = self._gen
            ok = token is not None and token in self._tokens
            self._next_id += 1
            entry = {"id": self._next_id, "method": method, "path": url.path,
                     "raw_query": url.query, "query": q, "kind": kind, "resource": res,
                     "namespace": ns, "name": name,
                     "auth": "ok" if ok else ("missing" if token is None else "invalid"),
                     "auth_ok": ok, "token": token, "headers": dict(h.headers), "status": None,
                     "events": [], "end": None, "gzip": False, "t0": time.monotonic(),
                     "t1": None}
            self.log.append(entry)
            self.counts[kind] += 1
            self.cond.notify_all()
        try:
            if method != "GET":
                n = int(h.headers.get("Content-Length") or 0)
                if 0 < n <= 1 << 20:
                    h.rfile.read(n)
                elif n:
                    h.close_connection = True
            if h.request_version == "HTTP/1.1" and not h.headers.get("Host"):
                raise ApiError(400, "missing Host header")
            if not ok:
                raise ApiError(401, "Unauthorized")
            if route is None and method == "GET":
                self._serve_misc(h, entry, url.path)
                return
            if route is None:
                raise ApiError(404, "the server could not find the requested resource",
                               details={})
            if method != "GET":
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource", details={})
            self._check_accept(h)
            f = self._take_fault(kind, res)
            if f is not None:
                if f["delay"] and not self._pause(f["delay"], gen):
                    raise _Cut("stopped")
                if f["status"] is not None:
                    self._inject(h, entry, f, gen)
                    return
            if self.delay and not self._pause(self.delay, gen):
                raise _Cut("stopped")
            if kind == "get":
                self._serve_get(h, entry, res, ns, name)
            elif kind == "watch":
                self._serve_watch(h, entry, res, ns, q, gen)
            else:
                self._serve_list(h, entry, res, ns, q, gen)
        except ApiError as e:
            self._send_json(h, entry, e.code, e.status(), e.headers)
        except _Cut as e:
            entry["end"] = entry["end"] or str(e)
            h.close_connection = True
            _raw_shutdown(h.connection)
        finally:
            entry["t1"] = time.monotonic()

    def _check_accept(self, h):
        acc = h.headers.get("Accept")
        if not acc:
            return
        for part in acc.split(","):
            bits = [b.strip() for b in part.split(";")]
            mt, params = bits[0].lower(), [b.lower().replace(" ", "") for b in bits[1:]]
            if any(p.startswith("as=") for p in params):
                continue  # Table / PartialObjectMetadata representations are not served
            if mt in ("application/json", "application/*", "*/*"):
                return
        raise ApiError(406, "only the following media types are accepted: application/json, "
                            "application/yaml, application/vnd.kubernetes.protobuf")

    def _inject(self, h, entry, f, gen):
        st = f["status"]
        if st == "reset":
            entry["end"] = "reset"
            try:
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
            except OSError:
                pass
            raise _Cut("reset")
        if st == "timeout":
            self._pause(self.hold, gen)
            raise _Cut("timeout-fault")
        code = int(st)
        hdr = {}
        details = None
        if code == 429:
            msg = "Too many requests, please try again later."
            details = {"retryAfterSeconds": f["retry_after"]}
            hdr["Retry-After"] = str(f["retry_after"])
        elif code == 500:
            msg = "Internal error occurred: injected by the test"
            details = {"causes": [{"message": "injected by the test"}]}
        elif code == 503:
            msg = "the server is currently unable to handle the request"
            hdr["Retry-After"] = str(f["retry_after"])
        elif code == 504:
            msg = "Timeout: request did not complete within requested timeout - context " \
                  "deadline exceeded"
            details = {"retryAfterSeconds": f["retry_after"]} if f["retry_after"] else None
        elif code == 403:
            msg = ('%s is forbidden: User "system:serviceaccount:kube-system:spillway" cannot '
                   '%s resource "%s" in API group "" at the cluster scope'
                   % (entry["resource"], entry["kind"], entry["resource"]))
            details = {"kind": entry["resource"]}
        elif code == 410:
            msg = LIST_EXPIRED
        else:
            msg = "injected %d" % code
        raise ApiError(code, msg, details=details, headers=hdr)

    def _headers(self, h, code, ctype="application/json", extra=None):
        h.send_response(code)
        h.send_header("Audit-Id", str(uuid.uuid4()))
        h.send_header("Cache-Control", "no-cache, private")
        h.send_header("Content-Type", ctype)
        h.send_header("X-Kubernetes-Pf-Flowschema-Uid", "7b5d3cbe-1d1c-4d8a-9d1c-5b1f0f4d0001")
        h.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", "7b5d3cbe-1d1c-4d8a-9d1c-5b1f0f4d0002")
        for k, v in (extra or {}).items():
            h.send_header(k, v)

    def _send_json(self, h, entry, code, obj, headers=None, raw=None, ctype="application/json"):
        """Like the apiserver's deferredResponseWriter behind Go's net/http: a body over
        gzip_threshold (128 KiB) is gzipped (level 1) when the client accepts gzip, and a body
        over chunk_threshold (net/http's 2 KiB buffer) goes chunked, without Content-Length."""
        body = raw if raw is not None else go_json(obj)
        headers = dict(headers or {})
        accepts = [t.split(";")[0].strip().lower()
                   for t in (h.headers.get("Accept-Encoding") or "").split(",")]
        chunked = self.chunk_threshold is not None and len(body) > self.chunk_threshold
        if self.gzip_threshold is not None and len(body) > self.gzip_threshold \
                and "gzip" in accepts:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
            entry["gzip"] = True
        self._headers(h, code, ctype, headers)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        entry["status"] = code
        try:
            if not chunked:
                h.wfile.write(body)
                return
            for i in range(0, len(body), 16384):
                piece = body[i:i + 16384]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            h.wfile.write(b"0\r\n\r\n")
        except (OSError, ValueError):
            h.close_connection = True

    def _serve_misc(self, h, entry, path):
        if path == "/version":
            return self._send_json(h, entry, 200, VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send_json(h, entry, 200, None, raw=b"ok",
                                   ctype="text/plain; charset=utf-8")
        if path == "/api":
            return self._send_json(h, entry, 200, {
                "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % (HOST, self.port)}]})
        if path == "/api/v1":
            verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                     "watch"]
            return self._send_json(h, entry, 200, {
                "kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "namespaces", "singularName": "namespace", "namespaced": False,
                     "kind": "Namespace", "verbs": verbs, "shortNames": ["ns"]},
                    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                     "verbs": verbs, "shortNames": ["po"]}]})
        raise ApiError(404, "the server could not find the requested resource", details={})

    def _serve_get(self, h, entry, res, ns, name):
        key = "%s/%s" % (ns, name) if res == "pods" else name
        with self.lock:
            obj = self._store[res].get(key)
            body = go_json(obj) if obj is not None else None
        if body is None:
            raise ApiError(404, '%s "%s" not found' % (res, name),
                           details={"name": name, "kind": res})
        self._send_json(h, entry, 200, None, raw=body)

    def _filter(self, res, ns, q):
        fterms = parse_field_selector(q.get("fieldSelector", ""), RESOURCES[res]["fields"])
        lterms = parse_label_selector(q.get("labelSelector", ""))

        def match(obj):
            if ns is not None and obj["metadata"].get("namespace") != ns:
                return False
            for f, op, v in fterms:
                if (field_value(obj, f) == v) != (op == "="):
                    return False
            return _labels_match(lterms, obj)
        return match, bool(fterms or lterms)

    def _state_at(self, res, rv):
        """Under the lock: {key: obj} of res as it was at rv (history undone backwards)."""
        state = dict(self._store[res])
        i = len(self._hist) - 1
        while i >= 0 and self._hist_rvs[i] > rv:
            _, r, typ, key, prev, _obj = self._hist[i]
            if r == res:
                if prev is None:
                    state.pop(key, None)
                else:
                    state[key] = prev
            i -= 1
        return state

    def _wait_rv(self, want, gen):
        """Waits (bounded by too_large_wait) for the global RV to reach want."""
        deadline = time.monotonic() + self.too_large_wait
        with self.cond:
            while self._rv < want and self._gen == gen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return self._rv >= want

    def _too_large(self, want):
        return status_obj(504, "Too large resource version: %d, current: %d" % (want, self._rv),
                          "Timeout", {"causes": [{"reason": "ResourceVersionTooLarge",
                                                  "message": "Too large resource version"}],
                                      "retryAfterSeconds": 1})

    def _serve_list(self, h, entry, res, ns, q, gen):
        _parse_bool(q.get("watch"), "watch")
        limit = _parse_int(q.get("limit"), "limit")
        cont = q.get("continue", "")
        rvp = q.get("resourceVersion", "")
        rvm = q.get("resourceVersionMatch", "")
        match, selective = self._filter(res, ns, q)
        if rvm and rvm not in ("Exact", "NotOlderThan"):
            raise ApiError(422, "resourceVersionMatch: Unsupported value: %r" % rvm)
        if rvm and not rvp:
            raise ApiError(422, "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                                "forbidden unless resourceVersion is provided")
        if cont and rvp not in ("", "0"):
            raise ApiError(400, "specifying resource version is not allowed when using continue")
        if rvm and cont:
            raise ApiError(422, "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                                "forbidden when continue is provided")
        start = ""
        want = None
        if cont:
            tok_rv, start = decode_continue(cont)
        elif rvp not in ("", "0"):
            want = _parse_rv(rvp)
            if want > self._rv and not self._wait_rv(want, gen):
                raise ApiError(504, self._too_large(want)["message"], "Timeout",
                               self._too_large(want)["details"], headers={"Retry-After": "1"})
        with self.lock:
            cur = self._rv
            if cont:
                if tok_rv == -1:
                    snap = cur
                elif tok_rv < self._compacted:
                    raise ApiError(410, CONTINUE_EXPIRED, "Expired",
                                   metadata={"continue": encode_continue(-1, start)})
                else:
                    snap = tok_rv
            elif want is not None and limit and rvm != "NotOlderThan":
                if want < self._compacted:  # "Exact" on a compacted RV
                    raise ApiError(410, LIST_EXPIRED, "Expired")
                snap = want
            else:
                snap = cur
                if rvp == "0" and not self.rv0_paginates:
                    limit = 0  # served from the watch cache, which ignores limit
            state = self._state_at(res, snap)
            keys = sorted(k for k in state if k > start)
            if ns is not None:
                keys = [k for k in keys if k.startswith(ns + "/")]
            items, nxt, remaining = [], None, None
            for i, k in enumerate(keys):
                o = state[k]
                if not match(o):
                    continue
                items.append(o)
                if limit and len(items) >= limit:
                    if i + 1 < len(keys):
                        nxt = encode_continue(snap, k)
                        if not selective:
                            remaining = len(keys) - i - 1
                    break
            meta = {"resourceVersion": str(snap)}
            if nxt:
                meta["continue"] = nxt
            if remaining:
                meta["remainingItemCount"] = remaining
            body = go_json({"kind": RESOURCES[res]["list_kind"], "apiVersion": "v1",
                            "metadata": meta,
                            "items": [{k: v for k, v in o.items()
                                       if k not in ("kind", "apiVersion")} for o in items]})
        self._send_json(h, entry, 200, None, raw=body)

    # ---------------------------------------------------------------- watch

    def _bookmark(self, res, rv, initial_end=False):
        kind = RESOURCES[res]["kind"]
        meta = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        if self.bookmark_style == "go":
            meta["creationTimestamp"] = None
            spec = {"containers": None} if res == "pods" else {}
            return {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1",
                                                   "metadata": meta, "spec": spec,
                                                   "status": {}}}
        return {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1",
                                               "metadata": meta}}

    def _convert(self, hist, match):
        """cacheWatcher.convertToWatchEvent for one history entry and one watcher."""
        rv, _res, typ, _key, prev, obj = hist
        cur_ok = typ != "DELETED" and match(obj)
        old_ok = prev is not None and match(prev)
        if cur_ok and not old_ok:
            return {"type": "ADDED", "object": obj}
        if cur_ok and old_ok:
            return {"type": "MODIFIED", "object": obj}
        if old_ok:
            o = dict(prev)
            o["metadata"] = dict(prev["metadata"], resourceVersion=str(rv))
            return {"type": "DELETED", "object": o}
        return None

    def _write_event(self, h, entry, ev):
        data = go_json(ev) + b"\n"
        pieces = [data[:len(data) // 2], data[len(data) // 2:]] \
            if self.split_events and len(data) > 1 else [data]
        try:
            for p in pieces:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
        except (OSError, ValueError):
            raise _Cut("client")
        entry["events"].append(ev["type"])

    def _write_last_chunk(self, h):
        try:
            h.wfile.write(b"0\r\n\r\n")
        except (OSError, ValueError):
            raise _Cut("client")

    def _client_gone(self, h):
        """A watch client sends nothing after its request: readable means it is closing."""
        try:
            r, _, _ = select.select([h.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        if self.tls:
            return True
        try:
            return socket.socket.recv(h.connection, 1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _serve_watch(self, h, entry, res, ns, q, gen):
        bookmarks = _parse_bool(q.get("allowWatchBookmarks"), "allowWatchBookmarks")
        tmo = _parse_int(q.get("timeoutSeconds"), "timeoutSeconds")
        sie = q.get("sendInitialEvents")
        send_initial = _parse_bool(sie, "sendInitialEvents") if sie is not None else None
        match, _ = self._filter(res, ns, q)
        rvp = q.get("resourceVersion", "")
        start = _parse_rv(rvp) if rvp not in ("", "0") else None
        if send_initial is not None:
            if q.get("resourceVersionMatch") != "NotOlderThan":
                raise ApiError(422, "resourceVersionMatch: Forbidden: sendInitialEvents "
                                    "requires setting resourceVersionMatch to NotOlderThan")
            if send_initial and not bookmarks:
                raise ApiError(422, "allowWatchBookmarks: Forbidden: allowWatchBookmarks must "
                                    "be set to true when sendInitialEvents is set")
        elif q.get("resourceVersionMatch"):
            raise ApiError(422, "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                                "forbidden for watch unless sendInitialEvents is provided")
        span = self.max_watch_seconds if tmo == 0 else min(tmo, self.max_watch_seconds)
        deadline = time.monotonic() + span
        error_ev = None
        if start is not None and start > self._rv and not send_initial \
                and not self._wait_rv(start, gen):
            error_ev = {"type": "ERROR", "object": self._too_large(start)}
        with self.cond:
            cur = self._rv
            cut0, end0 = self._cut_gen, self._end_gen
            initial = []
            if error_ev is None and start is not None and not send_initial \
                    and start < self._compacted:
                error_ev = {"type": "ERROR", "object": status_obj(
                    410, "too old resource version: %d (%d)" % (start, self._compacted),
                    "Expired")}
            if start is None or send_initial:
                if send_initial is not False:
                    initial = [o for _, o in sorted(self._store[res].items()) if match(o)]
                cursor = cur
            else:
                cursor = start
            self._open_watches[entry["id"]] = entry
            self.cond.notify_all()
        try:
            self._headers(h, 200, extra={"Transfer-Encoding": "chunked"})
            h.end_headers()
            entry["status"] = 200
            if error_ev is not None:
                self._write_event(h, entry, error_ev)
                self._write_last_chunk(h)
                entry["end"] = "expired" if error_ev["object"]["code"] == 410 else "error"
                return
            for o in initial:
                self._write_event(h, entry, {"type": "ADDED", "object": o})
            if send_initial and bookmarks:
                self._write_event(h, entry, self._bookmark(res, cursor, initial_end=True))
            next_bm = time.monotonic() + self.bookmark_interval
            while True:
                reason = None
                with self.cond:
                    while True:
                        if self._gen != gen:
                            reason = "stopped"
                        elif self._cut_gen != cut0:
                            reason = "cut"
                        elif self._end_gen != end0:
                            reason = "ended"
                        if reason:
                            break
                        i = bisect.bisect_right(self._hist_rvs, cursor)
                        evs = [x for x in self._hist[i:] if x[1] == res]
                        cur = self._rv
                        now = time.monotonic()
                        if evs or now >= deadline or (bookmarks and now >= next_bm):
                            break
                        wake = min(deadline, next_bm) if bookmarks else deadline
                        self.cond.wait(max(0.001, min(wake - now, 0.2)))
                        if self._client_gone(h):
                            reason = "client"
                            break
                if reason in ("stopped", "cut", "client"):
                    raise _Cut(reason)
                if reason == "ended":
                    self._write_last_chunk(h)
                    entry["end"] = "ended"
                    return
                for x in evs:
                    ev = self._convert(x, match)
                    if ev is not None:
                        self._write_event(h, entry, ev)
                cursor = max(cursor, cur)
                if now >= deadline:
                    if bookmarks and self.final_bookmark:
                        self._write_event(h, entry, self._bookmark(res, cursor))
                    self._write_last_chunk(h)
                    entry["end"] = "timeout"
                    return
                if bookmarks and now >= next_bm:
                    self._write_event(h, entry, self._bookmark(res, cursor))
                    next_bm = now + self.bookmark_interval
        finally:
            with self.cond:
                self._open_watches.pop(entry["id"], None)
                self.cond.notify_all()


def _merge_patch(target, patch):
    """RFC 7386 JSON merge patch, in place."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge_patch(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
    return target
