"""Self-test of the test Kubernetes API server (kubeapi.py): no spillway binary involved. Every
request goes over TLS verified with the server's own CA, as the agent's will."""

import json
import socket
import ssl
import threading

import pytest
import requests

from conftest import wait_for
from kubeapi import (CONTINUE_EXPIRED, KubeAPI, container_id, generate_ca, make_namespace,
                     make_pod)

UNAUTHORIZED = (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                b'"message":"Unauthorized","reason":"Unauthorized","code":401}')


@pytest.fixture
def api(tmp_path):
    a = KubeAPI(tmp_path / "kube", bookmark_interval=0.3, max_watch_seconds=10)
    yield a
    a.close()


class Client:
    def __init__(self, api, token=None):
        self.api = api
        self.s = requests.Session()
        self.token = token

    def get(self, path, token=None, **params):
        tok = token if token is not None else (self.token or self.api.token)
        hdr = {"Authorization": "Bearer " + tok} if tok else {}
        # verify per request: a Session's verify loses to $REQUESTS_CA_BUNDLE
        return self.s.get(self.api.url + path, params=params, headers=hdr, timeout=5,
                          verify=self.api.ca_file)

    def list(self, path="/api/v1/pods", **params):
        r = self.get(path, **params)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/json"
        return r.json()

    def watch(self, path="/api/v1/pods", **params):
        params["watch"] = "1"
        return Watch(self.s, self.api.url + path, params, self.token or self.api.token,
                     self.api.ca_file)


class Watch:
    """Reads a watch stream in a thread: events (parsed lines), ended (clean end), error."""

    def __init__(self, session, url, params, token, ca_file):
        self.events, self.ended, self.error = [], False, None
        self.cond = threading.Condition()
        self.resp = session.get(url, params=params, headers={"Authorization": "Bearer " + token},
                                stream=True, timeout=(3, 5), verify=ca_file)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            for line in self.resp.iter_lines(chunk_size=1):
                if line:
                    with self.cond:
                        self.events.append(json.loads(line))
            with self.cond:
                self.ended = True
        except Exception as e:  # a cut stream: urllib3 ProtocolError / ChunkedEncodingError
            with self.cond:
                self.error = e

    def types(self, skip_bookmarks=True):
        with self.cond:
            return [e["type"] for e in self.events
                    if not (skip_bookmarks and e["type"] == "BOOKMARK")]

    def wait_types(self, want, timeout=2.5):
        return wait_for(lambda: self.types()[:len(want)] == want and self.types(),
                        timeout, "watch events %s (got %s)" % (want, self.types()))

    def close(self):
        """Closes the stream now: shutdown(2) wakes the reader thread blocked in recv (closing
        the response alone would wait for its lock, i.e. for the read timeout)."""
        sock = getattr(getattr(self.resp.raw, "_connection", None), "sock", None)
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self.t.join(timeout=5)
        self.resp.close()


def pod_names(lst):
    return [i["metadata"]["name"] for i in lst["items"]]


# --------------------------------------------------------------------------------------------


def test_list_paginates_from_a_consistent_snapshot(api):
    for i in range(5):
        api.add_pod(make_pod("default", "a%d" % i, None, "node-1"))
    for i in range(2):
        api.add_pod(make_pod("default", "b%d" % i, None, "node-2"))
    c = Client(api)
    sel = "spec.nodeName=node-1"
    p1 = c.list(fieldSelector=sel, limit=2)
    assert p1["kind"] == "PodList" and p1["apiVersion"] == "v1"
    assert pod_names(p1) == ["a0", "a1"]
    assert all("kind" not in i and "apiVersion" not in i for i in p1["items"])
    assert "remainingItemCount" not in p1["metadata"]  # a selector: the count is unknown
    rv = p1["metadata"]["resourceVersion"]
    assert rv == api.resource_version and p1["metadata"]["continue"]
    api.add_pod(make_pod("default", "a5", None, "node-1"))  # after the snapshot
    api.delete_pod("default", "a3")
    p2 = c.list(fieldSelector=sel, limit=2, **{"continue": p1["metadata"]["continue"]})
    assert pod_names(p2) == ["a2", "a3"] and p2["metadata"]["resourceVersion"] == rv
    p3 = c.list(fieldSelector=sel, limit=2, **{"continue": p2["metadata"]["continue"]})
    # like etcd, a full page may carry a token although only non-matching keys follow
    assert pod_names(p3) == ["a4"] and p3["metadata"]["resourceVersion"] == rv
    while p3["metadata"].get("continue"):
        p3 = c.list(fieldSelector=sel, limit=2, **{"continue": p3["metadata"]["continue"]})
        assert p3["items"] == []
    fresh = c.list(fieldSelector=sel, limit=500)
    assert pod_names(fresh) == ["a0", "a1", "a2", "a4", "a5"]
    assert "continue" not in fresh["metadata"]
    assert fresh["metadata"]["resourceVersion"] == api.resource_version != rv
    whole = c.list(limit=3)
    assert pod_names(whole) == ["a0", "a1", "a2"] and whole["metadata"]["remainingItemCount"] == 4
    ns = c.list("/api/v1/namespaces/default/pods", fieldSelector="spec.nodeName=node-2")
    assert pod_names(ns) == ["b0", "b1"]
    lists = api.requests(kind="list")
    assert len(lists) == api.list_requests >= 6
    assert lists[0]["query"]["fieldSelector"] == sel and lists[0]["query"]["limit"] == "2"
    assert "spec.nodeName%3Dnode-1" in lists[0]["raw_query"]
    assert all(e["auth_ok"] and e["status"] == 200 for e in lists)


def test_expired_continue_is_410_with_an_inconsistent_token(api):
    for i in range(4):
        api.add_pod(make_pod("default", "p%d" % i, None, "node-1"))
    c = Client(api)
    p1 = c.list(limit=2)
    api.add_pod(make_pod("default", "p9", None, "node-1"))
    api.compact()
    r = c.get("/api/v1/pods", limit=2, **{"continue": p1["metadata"]["continue"]})
    assert r.status_code == 410
    st = r.json()
    assert {k: st[k] for k in ("kind", "apiVersion", "status", "reason", "code", "message")} == {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired",
        "code": 410, "message": CONTINUE_EXPIRED}
    rest = c.list(limit=10, **{"continue": st["metadata"]["continue"]})
    assert pod_names(rest) == ["p2", "p3", "p9"]  # the remainder, on the current state
    old_exact = c.get("/api/v1/pods", limit=2, resourceVersion=p1["metadata"]["resourceVersion"])
    assert old_exact.status_code == 410 and old_exact.json()["reason"] == "Expired"
    bad = c.get("/api/v1/pods", limit=2, **{"continue": "not-a-token"})
    assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest"


def test_watch_sends_changes_in_order_then_bookmarks(api):
    api.add_pod(make_pod("default", "p1", "uid-1", "node-1"))
    c = Client(api)
    rv = c.list(fieldSelector="spec.nodeName=node-1")["metadata"]["resourceVersion"]
    w = c.watch(fieldSelector="spec.nodeName=node-1", resourceVersion=rv,
                allowWatchBookmarks="true", timeoutSeconds=5)
    try:
        assert w.resp.status_code == 200
        assert w.resp.headers["Transfer-Encoding"] == "chunked"
        assert w.resp.headers["Content-Type"] == "application/json"
        api.wait_open_watches(1, timeout=2)
        api.add_pod(make_pod("default", "p2", "uid-2", "node-1", labels={"app": "a&b"}))
        api.update_pod("default", "p2", {"metadata": {"labels": {"tier": "web"}}})
        last = api.delete_pod("default", "p2")
        w.wait_types(["ADDED", "MODIFIED", "DELETED"])
        wait_for(lambda: any(e["type"] == "BOOKMARK" for e in w.events[3:]), 2, "a bookmark")
        ev = w.events
        objs = [e["object"] for e in ev if e["type"] != "BOOKMARK"]
        assert all(o["kind"] == "Pod" and o["apiVersion"] == "v1" for o in objs)
        assert [o["metadata"]["name"] for o in objs] == ["p2"] * 3
        rvs = [int(o["metadata"]["resourceVersion"]) for o in objs]
        assert rvs == sorted(rvs) and rvs[0] > int(rv)
        assert objs[1]["metadata"]["labels"] == {"app": "a&b", "tier": "web"}
        assert objs[2]["metadata"]["resourceVersion"] == last["metadata"]["resourceVersion"]
        bm = next(e for e in ev[3:] if e["type"] == "BOOKMARK")
        assert bm == {"type": "BOOKMARK", "object": {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"resourceVersion": api.resource_version}}}
        assert objs[0]["status"]["containerStatuses"][0]["containerID"] == \
            container_id("uid-2", "app")
        e = api.requests(kind="watch")[0]
        assert e["query"]["fieldSelector"] == "spec.nodeName=node-1"
        assert e["query"]["allowWatchBookmarks"] == "true" and e["auth_ok"]
        assert e["events"][:3] == ["ADDED", "MODIFIED", "DELETED"] and api.watch_requests == 1
    finally:
        w.close()


def test_go_style_escapes_on_the_wire(api):
    api.add_pod(make_pod("default", "p", None, "node-1", annotations={"x": "<a&b> é"}))
    r = Client(api).get("/api/v1/namespaces/default/pods/p")
    assert b'"x":"\\u003ca\\u0026b\\u003e \xc3\xa9"' in r.content
    assert r.json()["metadata"]["annotations"]["x"] == "<a&b> é"


def test_watch_field_selector_turns_a_move_into_deleted_and_added(api):
    api.add_pod(make_pod("default", "mover", None, "node-1"))
    c = Client(api)
    w1 = c.watch(fieldSelector="spec.nodeName=node-1", resourceVersion=api.resource_version)
    w2 = c.watch(fieldSelector="spec.nodeName=node-2", resourceVersion=api.resource_version)
    try:
        api.wait_open_watches(2, timeout=2)
        api.add_pod(make_pod("default", "other", None, "node-2"))
        api.update_pod("default", "mover", {"spec": {"nodeName": "node-2"}})
        w1.wait_types(["DELETED"])
        w2.wait_types(["ADDED", "ADDED"])
        gone = w1.events[0]["object"]
        # the previous content, with the resourceVersion of the move
        assert gone["spec"]["nodeName"] == "node-1"
        assert gone["metadata"]["resourceVersion"] == api.resource_version
        assert [e["object"]["metadata"]["name"] for e in w2.events] == ["other", "mover"]
        api.update_pod("default", "mover", lambda p: p["spec"].update(nodeName="node-1"))
        w1.wait_types(["DELETED", "ADDED"])
        w2.wait_types(["ADDED", "ADDED", "DELETED"])
        assert w1.types() == ["DELETED", "ADDED"]
    finally:
        w1.close()
        w2.close()


def test_watch_without_resource_version_starts_with_the_state(api):
    api.add_pod(make_pod("kube-system", "a", None, "node-1"))
    api.add_pod(make_pod("default", "b", None, "node-1"))
    api.add_pod(make_pod("default", "c", None, "node-9"))
    w = Client(api).watch(fieldSelector="spec.nodeName=node-1")
    try:
        w.wait_types(["ADDED", "ADDED"])
        assert sorted(e["object"]["metadata"]["name"] for e in w.events) == ["a", "b"]
    finally:
        w.close()


def test_expired_watch_is_one_error_event_on_a_200(api):
    api.add_pod(make_pod("default", "p", None, "node-1"))
    c = Client(api)
    old = c.list()["metadata"]["resourceVersion"]
    assert api.compact() == int(old)  # the current RV itself stays valid
    w = c.watch(resourceVersion=old, allowWatchBookmarks="true")
    try:
        wait_for(lambda: w.types(skip_bookmarks=False), 2, "a bookmark")
        assert w.types() == [] and w.error is None and not w.ended
    finally:
        w.close()
    api.bump()
    horizon = api.compact()
    w = c.watch(resourceVersion=old, allowWatchBookmarks="true")
    try:
        assert w.resp.status_code == 200
        wait_for(lambda: w.ended, 2, "the stream to end after the ERROR event")
        assert w.events == [{"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: %s (%d)" % (old, horizon),
            "reason": "Expired", "code": 410}}]
        assert api.requests(kind="watch")[-1]["end"] == "expired"
    finally:
        w.close()


def test_watch_ends_cleanly_after_timeout_seconds_with_a_last_bookmark(api):
    w = Client(api).watch(resourceVersion=api.resource_version, allowWatchBookmarks="1",
                          timeoutSeconds=1)
    try:
        wait_for(lambda: w.ended, 2.5, "the stream to end at timeoutSeconds")
        assert w.error is None and w.events and w.events[-1]["type"] == "BOOKMARK"
        assert api.requests(kind="watch")[0]["end"] == "timeout"
    finally:
        w.close()


def test_missing_or_wrong_token_is_401_and_rotation_refuses_the_old_one(api):
    c = Client(api)
    r = c.get("/api/v1/pods", token="")
    assert r.status_code == 401 and r.content == UNAUTHORIZED
    assert r.headers["Content-Type"] == "application/json"
    assert c.get("/api/v1/pods", token="nope").content == UNAUTHORIZED
    r = c.s.get(api.url + "/api/v1/pods", headers={"Authorization": "Basic " + api.token},
                verify=api.ca_file, timeout=5)
    assert r.status_code == 401
    old = api.token
    with open(api.token_file) as f:
        assert f.read() == old
    assert c.get("/api/v1/pods", token=old).status_code == 200
    api.set_token("rotated-token")
    with open(api.token_file) as f:
        assert f.read() == "rotated-token"
    assert c.get("/api/v1/pods", token=old).status_code == 401
    assert c.get("/api/v1/pods", token="rotated-token").status_code == 200
    assert c.get("/api/v1/namespaces", token="").status_code == 401
    auth = [(e["auth"], e["status"]) for e in api.requests()]
    assert auth == [("missing", 401), ("invalid", 401), ("missing", 401), ("ok", 200),
                    ("invalid", 401), ("ok", 200), ("missing", 401)]


def test_stop_cuts_watches_and_start_serves_the_same_state_on_the_same_port(api):
    api.add_pod(make_pod("default", "p", None, "node-1"))
    c = Client(api)
    rv = api.resource_version
    port = api.port
    w = c.watch(resourceVersion=rv, allowWatchBookmarks="true")
    try:
        api.wait_open_watches(1, timeout=2)
        api.stop()
        wait_for(lambda: w.error is not None or w.ended, 2, "the watch to be cut")
        assert w.error is not None and not w.ended  # cut, not a clean last chunk
        assert api.requests(kind="watch")[0]["end"] == "stopped"
        assert api.open_watches() == []
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        w.close()
    api.update_pod("default", "p", {"metadata": {"labels": {"during": "outage"}}})
    api.start()
    assert api.port == port
    lst = c.list()
    assert pod_names(lst) == ["p"] and lst["metadata"]["resourceVersion"] == api.resource_version
    w = c.watch(resourceVersion=rv)
    try:
        w.wait_types(["MODIFIED"])  # the change made during the outage is replayed
        assert w.events[0]["object"]["metadata"]["labels"] == {"during": "outage"}
    finally:
        w.close()


def test_cut_watches_and_end_watches(api):
    c = Client(api)
    w1 = c.watch(resourceVersion=api.resource_version)
    try:
        api.wait_open_watches(1, timeout=2)
        api.end_watches()
        wait_for(lambda: w1.ended, 2, "a clean end")
    finally:
        w1.close()
    w2 = c.watch(resourceVersion=api.resource_version)
    try:
        api.wait_open_watches(1, timeout=2)
        api.cut_watches()
        wait_for(lambda: w2.error is not None, 2, "a cut stream")
        assert c.list()["items"] == []  # the listener is untouched
    finally:
        w2.close()


def test_tls_is_verified_with_the_servers_ca(api, tmp_path):
    assert requests.get(api.url + "/version", verify=api.ca_file, timeout=5,
                        headers={"Authorization": "Bearer " + api.token}).json()["major"] == "1"
    r = requests.get("https://localhost:%d/healthz" % api.port, verify=api.ca_file, timeout=5,
                     headers={"Authorization": "Bearer " + api.token})
    assert r.status_code == 200 and r.text == "ok"
    other, _ = generate_ca(tmp_path, "other-ca")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(api.url + "/version", verify=other, timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(api.url + "/version", verify=True, timeout=5)
    ctx = ssl.create_default_context(cafile=api.ca_file)
    with socket.create_connection(("127.0.0.1", api.port), timeout=2) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            assert t.selected_alpn_protocol() in (None, "http/1.1")
    wait_for(lambda: len(api.tls_errors) >= 2, 2, "the server to see the failed handshakes")


def test_faults_and_delays(api):
    c = Client(api)
    api.fail_next(1, 429, only="list")
    api.fail_next(1, 500, only="watch")
    r = c.get("/api/v1/pods")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["reason"] == "TooManyRequests" and r.json()["kind"] == "Status"
    assert c.get("/api/v1/pods").status_code == 200
    r = c.get("/api/v1/pods", watch="true")
    assert r.status_code == 500 and r.json()["reason"] == "InternalError"
    api.fail_next(1, "reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        c.get("/api/v1/pods")
    api.delay_next(1, 0.4)
    r = c.get("/api/v1/pods")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.35
    assert [e["status"] for e in api.requests()] == [429, 200, 500, None, 200]


def test_get_namespaces_and_bad_requests(api):
    api.add_namespace("team-a", labels={"team": "a"}, annotations={"owner": "x"})
    api.add_pod(make_pod("team-a", "web-7d9f8b6c5d-x2x4q", "uid-w", "node-1",
                         labels={"app": "web"}, owner=("ReplicaSet", "web-7d9f8b6c5d"),
                         containers=("app", "sidecar")))
    c = Client(api)
    p = c.get("/api/v1/namespaces/team-a/pods/web-7d9f8b6c5d-x2x4q").json()
    assert p["kind"] == "Pod" and p["metadata"]["uid"] == "uid-w"
    ref = p["metadata"]["ownerReferences"][0]
    assert {k: ref[k] for k in ("apiVersion", "kind", "name", "controller",
                                "blockOwnerDeletion")} == {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5d",
        "controller": True, "blockOwnerDeletion": True}
    assert [x["name"] for x in p["spec"]["containers"]] == ["app", "sidecar"]
    r = c.get("/api/v1/namespaces/team-a/pods/nope")
    assert r.status_code == 404 and r.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"}, "code": 404}
    nl = c.list("/api/v1/namespaces")
    assert nl["kind"] == "NamespaceList" and pod_names(nl) == ["team-a"]
    assert nl["items"][0]["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a",
                                                    "team": "a"}
    w = c.watch("/api/v1/namespaces", resourceVersion=nl["metadata"]["resourceVersion"],
                allowWatchBookmarks="true")
    try:
        api.add_namespace(make_namespace("team-b"))
        api.update_namespace("team-a", {"metadata": {"annotations": {"owner": "y"}}})
        api.delete_namespace("team-b", graceful=True)
        w.wait_types(["ADDED", "MODIFIED", "MODIFIED", "DELETED"])
        assert w.events[1]["object"]["kind"] == "Namespace"
        assert w.events[1]["object"]["metadata"]["annotations"] == {"owner": "y"}
        assert w.events[2]["object"]["status"]["phase"] == "Terminating"
    finally:
        w.close()
    assert c.get("/api/v1/namespaces/team-a").json()["metadata"]["name"] == "team-a"
    r = c.get("/api/v1/pods", fieldSelector="spec.bogus=1")
    assert r.status_code == 400 and r.json()["message"] == "field label not supported: spec.bogus"
    assert c.get("/api/v1/pods", watch="maybe").status_code == 400
    assert c.get("/api/v1/pods", limit="-1").status_code == 400
    assert c.get("/api/v1/nodes").status_code == 404
    assert pod_names(c.list(labelSelector="app=web")) == ["web-7d9f8b6c5d-x2x4q"]
    assert pod_names(c.list(labelSelector="app notin (web)")) == []


def _read_chunked(f):
    """(chunks, trailer_ok) of one chunked body read from a file object, strictly framed."""
    chunks = []
    for _ in range(10000):
        size_line = f.readline()
        assert size_line.endswith(b"\r\n"), size_line
        n = int(size_line[:-2], 16)
        if n == 0:
            assert f.readline() == b"\r\n"
            return chunks
        data = f.read(n)
        assert len(data) == n and f.read(2) == b"\r\n"
        chunks.append(data)
    raise AssertionError("no last chunk")


def test_raw_wire_chunking_split_events_go_bookmarks_and_keep_alive(api):
    api.add_pod(make_pod("default", "p", None, "node-1"))
    api.split_events = True
    api.bookmark_style = "go"
    rv = api.resource_version
    ctx = ssl.create_default_context(cafile=api.ca_file)
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s, \
            ctx.wrap_socket(s, server_hostname="localhost") as t:
        f = t.makefile("rb")
        req = ("GET /api/v1/pods?fieldSelector=spec.nodeName%%3Dnode-1&watch=1&resourceVersion=%s"
               "&allowWatchBookmarks=true&timeoutSeconds=1 HTTP/1.1\r\nHost: localhost\r\n"
               "Authorization: Bearer %s\r\nAccept: application/json\r\n\r\n" % (rv, api.token))
        t.sendall(req.encode())
        assert f.readline() == b"HTTP/1.1 200 OK\r\n"
        hdrs = {}
        for _ in range(50):
            line = f.readline()
            if line == b"\r\n":
                break
            k, v = line.decode().split(":", 1)
            hdrs[k.lower()] = v.strip()
        assert hdrs["transfer-encoding"] == "chunked" and "content-length" not in hdrs
        assert hdrs["content-type"] == "application/json"
        api.update_pod("default", "p", {"metadata": {"labels": {"a": "b"}}})
        chunks = _read_chunked(f)
        body = b"".join(chunks)
        assert body.endswith(b"\n") and all(c.count(b"\n") <= 1 for c in chunks)
        assert len(chunks) == 2 * body.count(b"\n")  # every event split over two chunks
        events = [json.loads(x) for x in body.splitlines()]
        assert [e["type"] for e in events][0] == "MODIFIED" and events[-1]["type"] == "BOOKMARK"
        assert events[-1]["object"] == {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"resourceVersion": api.resource_version, "creationTimestamp": None},
            "spec": {"containers": None}, "status": {}}
        # the connection is reusable after a watch ended cleanly
        t.sendall(("GET /api/v1/namespaces/default/pods/p HTTP/1.1\r\nHost: localhost\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % api.token).encode())
        assert f.readline() == b"HTTP/1.1 200 OK\r\n"
    assert api.tls_errors == []


def test_server_notices_a_client_that_closes_an_idle_watch(api):
    w = Client(api).watch(resourceVersion=api.resource_version)  # no bookmarks: nothing sent
    api.wait_open_watches(1, timeout=2)
    w.close()
    wait_for(lambda: api.open_watches() == [], 1.5, "the server to drop the closed watch")
    assert api.requests(kind="watch")[0]["end"] == "client"


def test_initial_events_and_too_large_resource_version(api):
    api.add_pod(make_pod("default", "p", None, "node-1"))
    api.too_large_wait = 0.2
    c = Client(api)
    w = c.watch(sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
                allowWatchBookmarks="true")
    try:
        wait_for(lambda: len(w.events) >= 2, 2, "the initial state and its bookmark")
        assert w.events[0]["type"] == "ADDED"
        assert w.events[1]["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"}
    finally:
        w.close()
    assert c.get("/api/v1/pods", watch="1", sendInitialEvents="true").status_code == 422
    future = str(api.rv + 100)
    w = c.watch(resourceVersion=future)
    try:
        wait_for(lambda: w.ended, 2, "the stream to end")
        assert w.events[0]["type"] == "ERROR" and w.events[0]["object"]["code"] == 504
    finally:
        w.close()
    r = c.get("/api/v1/pods", resourceVersion=future)
    assert r.status_code == 504 and r.json()["reason"] == "Timeout"


def test_big_lists_go_chunked_and_gzipped_like_the_apiserver(api):
    for i in range(60):
        api.add_pod(make_pod("default", "p%02d" % i, None, "node-1"))
    c = Client(api)
    r = c.get("/api/v1/pods")  # requests sends Accept-Encoding: gzip, deflate
    assert r.status_code == 200 and len(r.json()["items"]) == 60
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["Vary"] == "Accept-Encoding"
    assert r.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in r.headers
    r = c.s.get(api.url + "/api/v1/pods", verify=api.ca_file, timeout=5, headers={
        "Authorization": "Bearer " + api.token, "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in r.headers and len(r.json()["items"]) == 60
    small = c.get("/api/v1/pods", limit=1)
    assert "Content-Encoding" not in small.headers
    assert small.headers["Transfer-Encoding"] == "chunked"  # a pod is more than 2 KiB
    assert "Transfer-Encoding" not in c.get("/api/v1/namespaces").headers
    assert [e["gzip"] for e in api.requests()] == [True, False, False, False]


def test_expire_ends_open_watches_and_their_resource_version(api):
    c = Client(api)
    rv = c.list()["metadata"]["resourceVersion"]
    w = c.watch(resourceVersion=rv, allowWatchBookmarks="true")
    try:
        api.wait_open_watches(1, timeout=2)
        horizon = api.expire()
        wait_for(lambda: w.ended, 2, "the watch to end")
        assert all(int(e["object"]["metadata"]["resourceVersion"]) < horizon for e in w.events)
    finally:
        w.close()
    w = c.watch(resourceVersion=rv)
    try:
        wait_for(lambda: w.ended, 2, "the ERROR event")
        assert [e["object"]["code"] for e in w.events] == [410]
    finally:
        w.close()
