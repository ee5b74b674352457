"""Strict Loki and Elasticsearch receivers for the sink tests, on 127.0.0.1.

They follow the backends' published APIs and the answers observed from a real Loki 2.8 server
(each rule is commented where it is implemented below): they reject what a real server rejects, store what it would store (Loki deduplicates
identical (stream, timestamp, line); Elasticsearch refuses a second `create` of an _id with 409),
and inject faults on demand:

    r.faults.extend(["429", "500", "503", "reset", "timeout", "slow"])   # one per request

"429" answers with Retry-After: 1; "timeout" holds the request for `hold` seconds then drops
the connection; "reset" closes the socket without an answer; "slow" answers after 0.5 s; "413"
answers 413 (Elasticsearch: request too large). Every request is counted in `requests`.

Loki's deduplication is modelled as a real Loki does it: an entry identical to one in its
stream's open head block (same timestamp and line) is dropped; once the head block has reached
`head_block_bytes` (256 KiB, Loki's chunk_block_size) it is cut and a resent entry is stored
again. `GET /loki/api/v1/query_range` answers from what is stored, duplicates included.
"""

import gzip
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DIGITS = re.compile(r"^[0-9]+$")
MAX_LINE = 262144
WEEK_NS = 7 * 24 * 3600 * 10**9
HOUR_NS = 3600 * 10**9


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        """A client killed (kill -9) or timed out while its answer is written is what these
        receivers are for: no traceback for it."""
        import sys
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Receiver:
    """Base: a threaded HTTP server with a fault script. Subclasses implement handle()."""

    def __init__(self, port=0, hold=3.0):
        self.lock = threading.Lock()
        self.faults = []
        self.answer_delay = 0.0
        self.hold = hold
        self.requests = 0
        self.statuses = []
        self.headers_seen = []
        self.port = port
        self.httpd = None
        self.start()

    def start(self):
        recv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, body=b"", ctype="application/json", headers=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                with recv.lock:
                    recv.statuses.append(status)

            def _fault(self, faults=None):
                with recv.lock:
                    faults = recv.faults if faults is None else faults
                    f = faults.pop(0) if faults else None
                if f is None:
                    return False
                if f == "slow":
                    time.sleep(0.5)
                    return False
                if f == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    self.close_connection = True
                    return True
                if f == "timeout":
                    time.sleep(recv.hold)
                    self.close_connection = True
                    return True
                status = int(f)
                hdr = {"Retry-After": "1"} if status == 429 else {}
                self._send(status, b'{"error":"injected %d"}' % status, headers=hdr)
                return True

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                return raw

            def do_GET(self):
                with recv.lock:
                    recv.requests += 1
                if recv.get_fault(self):
                    return
                status, body = recv.get(self.path, dict(self.headers))
                self._send(status, body)

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def _handle(self, method):
                with recv.lock:
                    recv.requests += 1
                    recv.headers_seen.append(dict(self.headers))
                try:
                    raw = self._body()
                except (OSError, EOFError, ValueError) as e:
                    self._send(400, ("bad body: %s" % e).encode())
                    return
                if self._fault():
                    return
                status, body, ctype = recv.handle(method, self.path, dict(self.headers), raw)
                if recv.answer_delay:  # stored, but the client hears of it only later
                    time.sleep(recv.answer_delay)
                self._send(status, body, ctype)

        self.httpd = _Server(("127.0.0.1", self.port), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Stops listening (the sink sees connection refused) until start() again."""
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def get(self, path, headers):
        return 404, b"not found"

    def get_fault(self, handler):
        """GET requests take faults from `get_faults` (so that a test can fail questions and
        still accept data)."""
        return handler._fault(self.get_faults) if hasattr(self, "get_faults") else False


class LokiStream:
    """One stream as Loki stores it: every stored entry in arrival order, and the open head
    block against which an identical resend is dropped."""

    def __init__(self):
        self.entries = []          # [(ts, line, meta)], duplicates included
        self.head = {}             # (ts, line) -> count, in the open head block
        self.head_bytes = 0

    def push(self, ts, line, meta, block_bytes):
        """Stores the entry unless the head block holds an identical one; returns stored."""
        key = (ts, line)
        if self.head.get(key):
            return False
        self.entries.append((ts, line, meta))
        self.head[key] = self.head.get(key, 0) + 1
        self.head_bytes += len(line.encode()) + 16
        if self.head_bytes >= block_bytes:  # the block is cut: its entries no longer dedupe
            self.head = {}
            self.head_bytes = 0
        return True


SEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')


def parse_selector(q):
    """{a="x",b="y"} -> {"a": "x", "b": "y"} (Go string escapes); ValueError otherwise. Only
    equality matchers, which is all a log shipper needs to ask about its own streams."""
    q = q.strip()
    if not q.startswith("{"):
        raise ValueError("parse error : syntax error: unexpected IDENTIFIER")
    out, pos = {}, 1
    while True:
        m = SEL_RE.match(q, pos)
        if not m:
            raise ValueError("parse error at position %d" % pos)
        if m.group(2) != "=":
            raise ValueError("only = matchers are modelled")
        out[m.group(1)] = json.loads('"%s"' % m.group(3))
        pos = m.end()
        if m.group(4) == "}":
            break
    if q[pos:].strip():
        raise ValueError("only stream selectors are modelled")
    return out


class Loki(Receiver):
    """POST /loki/api/v1/push (JSON), GET /loki/api/v1/query_range.
    streams: {frozenset(labels.items()): LokiStream}."""

    def __init__(self, head_block_bytes=256 * 1024, **kw):
        self.streams = {}
        self.newest = {}
        self.entries_received = 0
        self.dropped_duplicates = 0
        self.queries = 0
        self.get_faults = []
        self.head_block_bytes = head_block_bytes
        self.reject_line = None  # a substring that makes the request fail with 400
        self.tenant = None
        # multi_tenant: every X-Scope-OrgID is a tenant of its own, as in Loki with auth on: a
        # request without one is refused, streams and queries are per tenant (lines() then gives
        # the tenant as the label "__tenant__").
        self.multi_tenant = False
        super().__init__(**kw)

    def _tenant_key(self, headers, labels):
        if not self.multi_tenant:
            return frozenset(labels.items())
        return frozenset(list(labels.items()) + [("__tenant__", headers.get("X-Scope-OrgID"))])

    def get(self, path, headers):
        url = urlsplit(path)
        if url.path != "/loki/api/v1/query_range":
            return 404, b"404 page not found"
        if self.tenant is not None and headers.get("X-Scope-OrgID") != self.tenant:
            return 401, b"no org id"
        if self.multi_tenant and not headers.get("X-Scope-OrgID"):
            return 401, b"no org id"
        qs = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            sel = parse_selector(qs.get("query", ""))
            start = int(qs.get("start", "0"))
            end = int(qs.get("end", str(time.time_ns())))
            limit = int(qs.get("limit", "100"))
            direction = qs.get("direction", "backward")
        except ValueError as e:
            return 400, str(e).encode()
        if limit > 5000:
            return 400, b"max entries limit per query exceeded, limit > max_entries_limit (5000)"
        if direction not in ("forward", "backward"):
            return 400, b"invalid direction"
        with self.lock:
            self.queries += 1
            found = []
            for key, st in self.streams.items():
                labels = dict(key)
                if self.multi_tenant:
                    if labels.pop("__tenant__") != headers.get("X-Scope-OrgID"):
                        continue
                if all(labels.get(k) == v for k, v in sel.items()):
                    found += [(ts, i, labels, line) for i, (ts, line, _) in enumerate(st.entries)
                              if start <= ts < end]
        found.sort(key=lambda x: (x[0], x[1]), reverse=direction == "backward")
        result = {}
        for ts, _, labels, line in found[:limit]:
            k = json.dumps(labels, sort_keys=True)
            result.setdefault(k, {"stream": labels, "values": []})["values"].append([str(ts), line])
        body = {"status": "success", "data": {"resultType": "streams",
                                              "result": list(result.values()), "stats": {}}}
        return 200, json.dumps(body).encode()

    def handle(self, method, path, headers, raw):
        if path != "/loki/api/v1/push":
            return 404, b"404 page not found", "text/plain"
        if method != "POST":
            return 405, b"", "text/plain"
        if not headers.get("Content-Type", "").startswith("application/json"):
            return 400, b"snappy: corrupt input", "text/plain"
        if self.tenant is not None and headers.get("X-Scope-OrgID") != self.tenant:
            return 401, b"no org id", "text/plain"
        if self.multi_tenant and not headers.get("X-Scope-OrgID"):
            return 401, b"no org id", "text/plain"
        try:
            req = json.loads(raw)
        except ValueError as e:
            return 400, ("loghttp.PushRequest.Streams: ReadObjectCB: %s" % e).encode(), "text/plain"
        errors = []
        now = time.time_ns()
        for s in req.get("streams", []):
            labels = s.get("stream")
            if not labels:
                errors.append("error at least one label pair is required per stream")
                continue
            bad = [k for k in labels if not LABEL_NAME.match(k)]
            if bad or len(labels) > 15:
                errors.append("parse error: unexpected character inside braces: %r" % bad)
                continue
            key = self._tenant_key(headers, labels)
            prev = None
            ok = []
            for v in s.get("values", []):
                if not isinstance(v, list) or len(v) not in (2, 3) or not isinstance(v[0], str) \
                        or not DIGITS.match(v[0]) or not isinstance(v[1], str):
                    errors.append("Value looks like Number/Boolean/None: %r" % (v,))
                    break
                ts = int(v[0])
                if len(v[1].encode()) > MAX_LINE:
                    errors.append("Max entry size '262144' bytes exceeded for stream %s" % labels)
                    break
                if prev is not None and ts < prev:
                    errors.append("entries out of order within a stream")
                    break
                if self.reject_line and self.reject_line in v[1]:
                    errors.append("entry rejected by the test: %r" % self.reject_line)
                    break
                if ts < now - WEEK_NS:
                    errors.append("entry for stream has timestamp too old")
                    break
                if ts < self.newest.get(key, 0) - HOUR_NS:
                    errors.append("entry too far behind")
                    break
                prev = ts
                ok.append((ts, v[1], json.dumps(v[2], sort_keys=True) if len(v) == 3 else None))
            else:
                with self.lock:  # like Loki: the good streams of a bad request are stored
                    st = self.streams.setdefault(key, LokiStream())
                    for ts, line, meta in ok:
                        self.entries_received += 1
                        if not st.push(ts, line, meta, self.head_block_bytes):
                            self.dropped_duplicates += 1
                        self.newest[key] = max(self.newest.get(key, 0), ts)
        if errors:
            return 400, "; ".join(errors).encode(), "text/plain"
        return 204, b"", "text/plain"

    def lines(self):
        """Every stored (labels dict, ts, line), as stored: a duplicate Loki kept appears twice."""
        with self.lock:
            return [(dict(k), ts, line) for k, st in self.streams.items()
                    for (ts, line, _) in st.entries]

    def metas(self):
        with self.lock:
            return {m for st in self.streams.values() for (_, _, m) in st.entries}


class Elasticsearch(Receiver):
    """POST /_bulk. docs: {(index, _id): source}. Per-item faults: item_faults maps a document's
    `message` (or, without one, a substring of the document line) to a status (applied once per _id for 429/5xx, always for other codes)."""

    def __init__(self, max_body=None, **kw):
        self.docs = {}
        self.conflicts = 0
        self.item_faults = {}
        self._faulted = set()
        self.max_body = max_body
        super().__init__(**kw)

    def get(self, path, headers):
        if path == "/":
            return 200, json.dumps({"name": "test", "version": {"number": "8.11.0"}}).encode()
        return 404, b"{}"

    def handle(self, method, path, headers, raw):
        if path.split("?")[0] != "/_bulk" or method != "POST":
            return 405, b'{"error":"Incorrect HTTP method"}', "application/json"
        ctype = headers.get("Content-Type", "")
        if not (ctype.startswith("application/x-ndjson") or ctype.startswith("application/json")):
            return 406, b'{"error":"Content-Type header is not supported"}', "application/json"
        if self.max_body and len(raw) > self.max_body:
            return 413, b'{"error":"Request Entity Too Large"}', "application/json"
        if not raw.endswith(b"\n"):
            return 400, b'{"error":{"type":"illegal_argument_exception","reason":"The bulk request must be terminated by a newline [\\\\n]"}}', "application/json"
        lines = raw.split(b"\n")[:-1]
        items = []
        errors = False
        i = 0
        while i < len(lines):
            try:
                action = json.loads(lines[i])
            except ValueError:
                return 400, b'{"error":{"type":"x_content_parse_exception"}}', "application/json"
            if not isinstance(action, dict) or len(action) != 1 or next(iter(action)) not in ("create", "index"):
                return 400, b'{"error":{"type":"illegal_argument_exception","reason":"Malformed action/metadata line"}}', "application/json"
            op, meta = next(iter(action.items()))
            if i + 1 >= len(lines):
                return 400, b'{"error":{"type":"illegal_argument_exception","reason":"source is missing"}}', "application/json"
            doc_line = lines[i + 1].decode("utf-8")
            i += 2
            index, _id = meta.get("_index"), meta.get("_id")
            try:
                doc = json.loads(doc_line, object_pairs_hook=_no_duplicates)
            except ValueError as e:
                items.append({op: {"_index": index, "_id": _id, "status": 400, "error": {
                    "type": "mapper_parsing_exception", "reason": "failed to parse: %s" % e}}})
                errors = True
                continue
            status = None
            msg = doc.get("message") if isinstance(doc, dict) else None
            for needle, st in self.item_faults.items():
                if needle == msg or (msg is None and needle in doc_line):
                    transient = st == 429 or st >= 500
                    if not transient or (index, _id) not in self._faulted:
                        status = st
                        if transient:
                            self._faulted.add((index, _id))
                    break
            if status:
                items.append({op: {"_index": index, "_id": _id, "status": status, "error": {
                    "type": "es_rejected_execution_exception" if status == 429 else "mapper_parsing_exception",
                    "reason": "injected %d" % status}}})
                errors = True
                continue
            with self.lock:
                if op == "create" and (index, _id) in self.docs:
                    self.conflicts += 1
                    items.append({op: {"_index": index, "_id": _id, "status": 409, "error": {
                        "type": "version_conflict_engine_exception",
                        "reason": "[%s]: version conflict, document already exists" % _id}}})
                    errors = True
                    continue
                self.docs[(index, _id)] = doc
            items.append({op: {"_index": index, "_id": _id, "status": 201, "result": "created"}})
        body = json.dumps({"took": 1, "errors": errors, "items": items}).encode()
        return 200, body, "application/json"


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("Duplicate field '%s'" % k)
        d[k] = v
    return d
