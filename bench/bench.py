#!/usr/bin/python3
"""spillway ingest benchmark: tail -> parse -> durable SQLite buffer -> file sink.

Generates a deterministic docker json-file workload (bench/gen_docker.py), runs the real binary
on it from a cold start, and prints throughput (MB/s of input, records/s), CPU seconds per GB of
input and peak RSS (VmHWM). Default scenarios: 8 containers x 256 MiB total (throughput), 100
files (memory while tailing many files), and 8 pods' CRI logs to Loki without and with
Kubernetes metadata and the java multiline hint (cri, cri-k8s).

  /usr/bin/python3 bench/bench.py [--sinks] [--redact] [--only a,b] [--mib 256] [--keep]

--sinks adds the same workload shipped to loopback Loki and Elasticsearch endpoints (gzip and
none); --mib 1024 shows the steady state; --only picks scenarios (files100-loki: the 100 files
shipped to Loki; cri and cri-k8s: 8 pods' CRI logs with 1 % Java stack traces shipped to Loki,
without and with Kubernetes metadata from a test API server and the pods' java multiline hint;
cri-preset: the java preset alone; process: the throughput workload through 5 filters, the
extraction of 2 JSON fields and 2 log metrics, none of which removes a record, so it reads, keeps
and ships the same records as throughput: compare the two). Every scenario runs at default
settings.
"""
import argparse, json, os, shutil, signal, sqlite3, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", ".work")
BIN = os.environ.get("SPILLWAY_BIN", os.path.join(ROOT, "build", "spillway"))
CLK = os.sysconf("SC_CLK_TCK")
# Extra `buffer:` / network sink keys for experiments, e.g.
# SPILLWAY_BENCH_BUFFER="recent_in_memory: 64MiB" SPILLWAY_BENCH_SINK="concurrency: 4".
EXTRA_SINK = (", " + os.environ["SPILLWAY_BENCH_SINK"]) if os.environ.get("SPILLWAY_BENCH_SINK") else ""
EXTRA_BUFFER = (", " + os.environ["SPILLWAY_BENCH_BUFFER"]) if os.environ.get("SPILLWAY_BENCH_BUFFER") else ""


def generate(name, mib, containers, secret_ratio=0.0, cri=False):
    out = os.path.join(WORK, name)
    meta = out + ".json"
    if os.path.exists(meta):
        with open(meta) as f:
            m = json.load(f)
        if m.get("mib") == mib and m.get("containers") == containers and \
                m.get("secret_ratio", 0.0) == secret_ratio and "records_joined" in m:
            return out, m
    shutil.rmtree(out, ignore_errors=True)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_docker.py"), "--out", out,
                        "--containers", str(containers), "--size", "%dMiB" % mib,
                        "--secret-ratio", str(secret_ratio)] +
                       (["--cri", "--trace-ratio", "0.01"] if cri else []),
                       check=True, capture_output=True, text=True)
    m = json.loads(r.stdout)
    m.update(mib=mib, containers=containers, secret_ratio=secret_ratio)
    with open(meta, "w") as f:
        json.dump(m, f)
    return out, m


def proc_stats(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK
    hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return cpu, hwm


def shipped(db):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=1)
        try:
            row = c.execute("SELECT sent_records FROM sinks WHERE name='out'").fetchone()
            return row[0] if row else 0
        finally:
            c.close()
    except sqlite3.Error:
        return 0


ALL_PACKS = ["email", "bearer_token", "jwt", "aws_access_key", "aws_secret_key", "credit_card",
             "password_kv", "url_credentials", "private_key", "ipv4", "ipv6"]


class _Sink(object):
    """A loopback Loki or Elasticsearch endpoint (bench/recv.c, built as bench_recv) that reads
    every request body and accepts it (204 / {"errors":false}). It is C and single-threaded, so
    it costs next to no CPU and the figures are the agent's (a Python receiver on 2 cores
    competes with the agent)."""

    def __init__(self, kind):
        exe = os.path.join(os.path.dirname(BIN), "bench_recv")
        if not os.path.exists(exe):
            subprocess.run(["cmake", "--build", os.path.dirname(BIN), "--target", "bench_recv"],
                           check=True, capture_output=True)
        self.p = subprocess.Popen([exe], stdout=subprocess.PIPE, text=True)
        self.url = "http://127.0.0.1:%d" % int(self.p.stdout.readline())
        self.bytes = 0

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        out = self.p.communicate(timeout=10)[0]
        self.bytes = json.loads(out.strip().splitlines()[-1])["bytes"]


class _Feeder(threading.Thread):
    """Writes the workload's files into a fresh directory at `rate` bytes/s in total (whole
    lines, round-robin over the files), as containers logging at a steady pace would: the
    agent keeps up, so the figures are those of an agent at work rather than catching up."""

    def __init__(self, wl, meta, rate):
        threading.Thread.__init__(self, daemon=True)
        self.src = wl
        self.dst = wl + "-steady"
        shutil.rmtree(self.dst, ignore_errors=True)
        self.files = []
        for path in meta["files"]:
            rel = os.path.relpath(path, wl)
            os.makedirs(os.path.dirname(os.path.join(self.dst, rel)), exist_ok=True)
            with open(path, "rb") as f:
                data = f.read()
            self.files.append([open(os.path.join(self.dst, rel), "ab"), data, 0])
        self.rate = rate

    def run(self):
        t0 = time.monotonic()
        sent = 0
        piece = 64 * 1024
        while any(pos < len(data) for _, data, pos in self.files):
            for ent in self.files:
                out, data, pos = ent
                if pos >= len(data):
                    continue
                end = data.find(b"\n", min(pos + piece, len(data)) - 1)
                end = len(data) if end < 0 else end + 1
                out.write(data[pos:end])
                out.flush()
                sent += end - pos
                ent[2] = end
            ahead = sent / self.rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)  # paces the writer; the agent is measured, not this thread
        for out, _, _ in self.files:
            out.close()


class _Kube(object):
    """cri-k8s: the test API server of the end-to-end tests (tests/e2e/kubeapi.py) knowing the
    workload's 8 pods plus 102 others of the node (110, the kubelet's default maximum), each
    with labels, annotations and an owner like a Deployment's pods."""

    def __init__(self, wl, meta):
        sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
        import kubeapi
        self.api = kubeapi.KubeAPI(os.path.join(WORK, "kube"))
        self.api.add_namespace(kubeapi.make_namespace("bench", labels={"team": "shop"}))
        pods = [os.path.basename(os.path.dirname(os.path.dirname(f))) for f in meta["files"]]
        pods += ["bench_filler-%d_ffffffff-0000-4000-8000-%012d" % (i, i) for i in range(110 - len(pods))]
        for d in pods:
            ns, name, uid = d.split("_")
            self.api.add_pod(kubeapi.make_pod(
                ns, name, uid, "bench", labels={"app.kubernetes.io/name": name.rsplit("-", 1)[0],
                                                "pod-template-hash": "7d9f8b6c5d", "team": "shop"},
                annotations={"spillway.io/multiline": "java",
                             "kubectl.kubernetes.io/restartedAt": "2026-11-23T15:00:00Z"},
                owner=("ReplicaSet", name.rsplit("-", 1)[0] + "-7d9f8b6c5d")))

    def yaml(self):
        return ("kubernetes: { enabled: true, node_name: bench, api_url: \"%s\", token_file: %s, "
                "ca_file: %s, labels: { app: [pod_label:app.kubernetes.io/name], team: [pod_label:team, "
                "namespace_label:team], owner: [owner], node: [node] } }\n"
                % (self.api.url, self.api.token_file, self.api.ca_file))

    def close(self):
        self.api.close()


def run(name, wl, meta, timeout=600, redact=False, sink=None, binary=None, rate=0):
    feeder = _Feeder(wl, meta, rate) if rate else None
    if feeder:
        wl = feeder.dst
    state = os.path.join(WORK, name + "-state")
    out = os.path.join(WORK, name + "-out.ndjson")
    shutil.rmtree(state, ignore_errors=True)
    if os.path.exists(out):
        os.unlink(out)
    cfg = os.path.join(WORK, name + ".yaml")
    recv = None
    sink_yaml = "{ name: out, type: file, path: %s }" % out
    if sink:
        kind, comp = sink
        recv = _Sink(kind)
        sink_yaml = "{ name: out, type: %s, url: \"%s\", compression: %s%s }" % (kind, recv.url, comp, EXTRA_SINK)
    kube = _Kube(wl, meta) if name == "cri-k8s" else None
    source = "{ name: docker, type: docker, paths: [\"%s/*/*-json.log\"]%s }" % (
        wl, ", extract: { format: json, fields: { level: level, logger: logger }, normalize_level: true }"
        if name == "process" else "")
    if name.startswith("cri"):
        source = "{ name: pods, type: cri, paths: [\"%s/*/*/*.log\"]%s }" % (
            wl, ", multiline: { preset: java }" if name == "cri-preset" else "")
    with open(cfg, "w") as f:
        f.write("data_dir: %s\nhostname: bench\n"
                "buffer: { max_bytes: 4GiB%s }\n"
                "sources:\n  - %s\n"
                "sinks:\n  - %s\n"
                "log: { level: warn }\nserver: { listen: \"0\" }\n" % (state, EXTRA_BUFFER, source, sink_yaml))
        if redact:
            f.write("redact: { builtin: [%s] }\n" % ", ".join(ALL_PACKS))
        if kube:
            f.write(kube.yaml())
        if name == "process":
            f.write(PROCESS_YAML)
    # With the pods' java hint, each stack trace is one record.
    want = meta["records_joined"] if kube or name == "cri-preset" else meta["records"]
    t0 = time.monotonic()
    p = subprocess.Popen([binary or BIN, "run", "-c", cfg], stderr=subprocess.PIPE)
    db = os.path.join(state, "spillway.db")
    if feeder:
        while not os.path.exists(db) and time.monotonic() < t0 + 30:
            time.sleep(0.05)  # the agent is up: what it finds from now on is new data
        feeder.start()
    deadline = t0 + timeout
    done = 0
    while time.monotonic() < deadline:
        done = shipped(db)
        if done >= want or p.poll() is not None:
            break
        time.sleep(0.05)  # polling interval of the progress probe, bounded by the deadline
    elapsed = time.monotonic() - t0
    cpu, hwm = proc_stats(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    if recv:
        recv.close()
    if kube:
        kube.close()
    if done < want:
        raise SystemExit("%s: only %d of %d records shipped in %.0fs" % (name, done, want, elapsed))
    mb = meta["bytes"] / 1e6
    res = {
        "scenario": name, "input_MB": round(mb, 1), "records": want, "files": len(meta["files"]),
        "seconds": round(elapsed, 2), "MB_per_s": round(mb / elapsed, 1),
        "records_per_s": int(want / elapsed), "cpu_s": round(cpu, 2),
        "cpu_s_per_GB": round(cpu / (meta["bytes"] / 1e9), 2),
        "peak_rss_MiB": round(hwm / 2**20, 1),
        "db_MiB": round(os.path.getsize(db) / 2**20, 1) if os.path.exists(db) else 0,
    }
    return res


# `process`: what extraction, filters and log metrics cost per record (docs/processing.md).
PROCESS_YAML = """filters:
  - { name: no-healthz, action: drop, match: ["source=docker"], line: 'GET /healthz' }
  - { name: no-trace, action: drop, match: ["level=trace"] }
  - { name: http-sample, action: sample, match: ["logger=http"], keep_one_in: 1 }
  - { name: noisy, action: rate_limit, per: [container_name], records_per_second: 100000000, burst: 100000000 }
  - { name: only-errors, action: keep, match: ["source=batch"], line: 'ERROR|FATAL' }
log_metrics:
  - { name: errors, match: ["level=error"], labels: [container_name, level] }
  - { name: http_5xx, match: ["logger=http"], line: '"status": 5\\d\\d', labels: [container_name] }
"""

SCENARIOS = ["throughput", "loki-gzip", "loki-none", "elas-gzip", "elas-none", "secrets-plain",
             "secrets-redact", "files100", "files100-loki", "steady-loki", "steady-elas", "cri",
             "cri-preset", "cri-k8s", "process"]
DEFAULT = ["throughput", "files100", "cri", "cri-k8s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256,
                    help="size of the 8-container workload (1024 shows the steady state)")
    ap.add_argument("--containers", type=int, default=8)
    ap.add_argument("--files100-mib", type=int, default=64)
    ap.add_argument("--keep", action="store_true", help="keep bench/.work")
    ap.add_argument("--sinks", action="store_true",
                    help="also ship the throughput workload to loopback Loki and Elasticsearch endpoints")
    ap.add_argument("--redact", action="store_true",
                    help="also run the throughput scenario with every redaction pack enabled")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each scenario N times and report the median of each figure "
                         "(CPU time on a shared VM varies by 20 %% from run to run)")
    ap.add_argument("--baseline", metavar="BIN",
                    help="another spillway binary (e.g. built from an older commit) run on every "
                         "scenario in turn with this one, so both are measured in the same run")
    ap.add_argument("--steady-rate", type=int, default=32, metavar="MIB_S",
                    help="steady-*: the workload is written at this rate while the agent runs")
    ap.add_argument("--only", default="",
                    help="comma-separated scenarios to run instead: " + ", ".join(SCENARIOS))
    a = ap.parse_args()
    want = [x for x in a.only.split(",") if x] if a.only else \
        DEFAULT[:1] + (SCENARIOS[1:5] if a.sinks else []) + (SCENARIOS[5:7] if a.redact else []) + DEFAULT[1:]
    for x in want:
        if x not in SCENARIOS:
            raise SystemExit("unknown scenario %r (known: %s)" % (x, ", ".join(SCENARIOS)))
    os.makedirs(WORK, exist_ok=True)
    results = []
    for x in want:
        if x.startswith("files100"):
            wl, meta = generate("wl-100f", a.files100_mib, 100)
        elif x.startswith("cri"):
            # CRI logs of 8 pods, 1 % of records Java stack traces: cri-k8s adds what the
            # kubernetes section and the multiline preset cost (with 110 pods known).
            wl, meta = generate("wl-%dc-cri" % a.containers, a.mib, a.containers, cri=True)
        elif x.startswith("secrets"):
            # 5 % of lines carry a secret, without and with every pack on: the slowdown
            # redaction costs the whole pipeline.
            wl, meta = generate("wl-%dc-secrets" % a.containers, a.mib, a.containers, 0.05)
        else:
            wl, meta = generate("wl-%dc" % a.containers if a.mib == 256 else "wl-%dc-%dm" % (a.containers, a.mib),
                                a.mib, a.containers)
        sink = None
        if x.startswith(("loki", "elas")):
            sink = ("loki" if x.startswith("loki") else "elasticsearch", x.split("-")[1])
        elif x == "files100-loki":
            sink = ("loki", "gzip")
        elif x.startswith("steady"):
            sink = ("loki" if x == "steady-loki" else "elasticsearch", "none")
        elif x.startswith("cri"):
            # Shipped to Loki, as from a Kubernetes node: the pod labels are per stream there (a
            # file sink would write them into every record and measure its own output instead).
            sink = ("loki", "none")
        runs, base = [], []
        for _ in range(max(1, a.repeat)):  # interleaved: drifts of the VM hit both alike
            if a.baseline:
                base.append(run(x, wl, meta, redact=(x == "secrets-redact"), sink=sink, binary=a.baseline,
                                rate=a.steady_rate << 20 if x.startswith("steady") else 0))
            runs.append(run(x, wl, meta, redact=(x == "secrets-redact"), sink=sink,
                            rate=a.steady_rate << 20 if x.startswith("steady") else 0))
        for rs, label in ((base, "base:"), (runs, "")):
            if not rs:
                continue
            res = dict(rs[0])
            for k in ("seconds", "MB_per_s", "records_per_s", "cpu_s", "cpu_s_per_GB", "peak_rss_MiB", "db_MiB"):
                res[k] = sorted(r[k] for r in rs)[len(rs) // 2]
            res["runs"] = len(rs)
            res["scenario"] = label + x
            results.append(res)
    for r in results:
        print(json.dumps(r))
    print("\n%-19s %10s %10s %12s %10s %12s %12s" % ("scenario", "input MB", "MB/s", "records/s", "CPU s", "CPU s/GB", "peak RSS"))
    for r in results:
        print("%-19s %10.1f %10.1f %12d %10.2f %12.2f %9.1f MiB" % (
            r["scenario"], r["input_MB"], r["MB_per_s"], r["records_per_s"], r["cpu_s"], r["cpu_s_per_GB"], r["peak_rss_MiB"]))
    if not a.keep:
        for name in os.listdir(WORK):
            if name.endswith("-state") or name.endswith(".ndjson"):
                p = os.path.join(WORK, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)


if __name__ == "__main__":
    main()
