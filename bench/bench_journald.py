#!/usr/bin/python3
"""journald source benchmark: the agent reading a systemd journal, against sd-journal's own speed.

Generates once (cached in bench/.work/journal/) a deterministic journal of 256 MiB of MESSAGE
bytes as real journal files: the journal export format (systemd.io/JOURNAL_EXPORT_FORMATS) of
12 units' entries (kubelet, nginx, an app's JSON, postgres, sshd and cron over syslog, logind
over the native protocol, ...: messages of 60-400 bytes, priorities 3-7, _PID/_COMM/_EXE/
_CMDLINE/cgroup fields as journald stores them, one boot, one host) piped through
systemd-journal-remote, which writes the journal files; every 64 MiB of messages the file is
renamed to system@SEQNUMID-SEQNUM-REALTIME.journal as journald rotates (journal-remote also
rotates by itself at its default limits: about every 85 MiB of file here, so 12 files of
838 MiB in all; generating takes about a minute on 2 cores). Then, from a warm page cache:

  (a) bench_journal_read (bench/journal_read.c), a plain sd-journal reader reading per entry what
      the agent reads (6 fields, the timestamp, a cursor per 1000 entries), --runs times each way:
      get_data (one sd_journal_get_data per field) and enumerate (sd_journal_enumerate_data over
      all of the entry's fields); the bound of the journald source;
  (b) the agent, `spillway run` with the journal as its only source and no sinks (everything
      stays in the buffer), from a fresh data_dir until every entry is in the buffer's chunks:
      wall seconds, MB/s of MESSAGE bytes, CPU seconds (utime + stime from /proc) per GB of
      MESSAGE bytes and per thread, peak RSS (VmHWM), and its rate as a share of the plain
      reader's. Peak RSS counts the journal files' pages sd-journal maps (file-backed, in the
      page cache, ~345 MiB here): the plain reader's own peak RSS is printed for comparison.

  /usr/bin/python3 bench/bench_journald.py [--mib 256] [--runs 3] [--repeat 1] [--no-agent]

Needs systemd-journal-remote and libsystemd (pkg-config libsystemd). MB = 10^6 bytes of MESSAGE
values (without the "MESSAGE=" prefix).
"""
import argparse, json, math, os, random, shutil, signal, sqlite3, struct, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import BIN, WORK, proc_stats  # noqa: E402  (same binary, work dir and /proc figures)
from bench_scrape import thread_cpu  # noqa: E402  (CPU seconds per kind of thread)

REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "5d1f6bd1a2f54a4b9b0e36c1f1d3e7a1"
MACHINE_ID = "2a6c4bfa5c0e4d7fa6b5ce9e0a1b7d3c"
HOST = "node-07.bench"
T0 = 1764979200000000  # 2025-12-06T00:00:00Z in µs: the first entry's __REALTIME_TIMESTAMP
BOOT_RT = T0 - 86400 * 10**6  # booted a day earlier: __MONOTONIC_TIMESTAMP = realtime - this
PRIOS = (7, 6, 5, 4, 3)
PRIO_W = (2, 84, 4, 7, 3)

# unit, identifier, transport, weight, median message length, _COMM, _EXE, _CMDLINE, _PID, _UID
UNITS = [
    ("kubelet.service", "kubelet", "stdout", 20, 230, "kubelet", "/usr/bin/kubelet",
     "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf", 1187, 0),
    ("nginx.service", "nginx", "stdout", 18, 200, "nginx", "/usr/sbin/nginx",
     "nginx: worker process", 2211, 33),
    ("shop-api.service", "shop-api", "stdout", 18, 240, "shop-api", "/opt/shop/bin/shop-api",
     "/opt/shop/bin/shop-api --config /etc/shop/api.yaml", 3012, 998),
    ("shop-worker.service", "shop-worker", "stdout", 10, 150, "shop-worker", "/opt/shop/bin/shop-worker",
     "/opt/shop/bin/shop-worker --queue orders --concurrency 8", 3040, 998),
    ("containerd.service", "containerd", "stdout", 8, 190, "containerd", "/usr/bin/containerd",
     "/usr/bin/containerd", 902, 0),
    ("postgresql@15-main.service", "postgres", "stdout", 8, 210, "postgres", "/usr/lib/postgresql/15/bin/postgres",
     "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf",
     1540, 106),
    ("docker.service", "dockerd", "stdout", 4, 160, "dockerd", "/usr/bin/dockerd",
     "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock", 1033, 0),
    ("redis-server.service", "redis-server", "stdout", 3, 90, "redis-server", "/usr/bin/redis-server",
     "/usr/bin/redis-server 127.0.0.1:6379", 811, 107),
    ("ssh.service", "sshd", "syslog", 4, 110, "sshd", "/usr/sbin/sshd", "sshd: deploy [priv]", 0, 0),
    ("cron.service", "CRON", "syslog", 3, 95, "cron", "/usr/sbin/cron", "/usr/sbin/CRON -f -P", 0, 0),
    ("NetworkManager.service", "NetworkManager", "journal", 2, 130, "NetworkManager",
     "/usr/sbin/NetworkManager", "/usr/sbin/NetworkManager --no-daemon", 640, 0),
    ("systemd-logind.service", "systemd-logind", "journal", 2, 75, "systemd-logind",
     "/lib/systemd/systemd-logind", "/lib/systemd/systemd-logind", 655, 0),
]

WORDS = ("order cart user session item payment invoice shipment region zone cache hit miss retry "
         "timeout upstream backend queue worker batch commit rollback index table query plan "
         "latency bytes status token scope tenant shard replica leader follower lease sync "
         "snapshot volume mount image layer digest pull push node pod container namespace").split()


def _filler(rng, size=1 << 20):
    """A long text of key=value pairs; a tail is a slice of it at a random offset."""
    out, n = [], 0
    while n < size:
        w = "%s_%s=%s" % (rng.choice(WORDS), rng.choice(WORDS),
                          rng.choice((str(rng.randrange(100000)), rng.choice(WORDS), "%08x" % rng.getrandbits(32))))
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


class _Gen(object):
    """Deterministic entries in the export format, one unit's fields as journald stores them."""

    def __init__(self, seed=20251206):
        self.rng = rng = random.Random(seed)
        self.fill = _filler(rng)
        self.rt = T0
        self.units = []
        for (unit, ident, transport, weight, median, comm, exe, cmdline, pid, uid) in UNITS:
            base = ("_BOOT_ID=%s\n_MACHINE_ID=%s\n_HOSTNAME=%s\n_TRANSPORT=%s\n_UID=%d\n_GID=%d\n"
                    "_COMM=%s\n_EXE=%s\n_CMDLINE=%s\n_CAP_EFFECTIVE=%s\n_SELINUX_CONTEXT=unconfined\n"
                    "_SYSTEMD_CGROUP=/system.slice/%s\n_SYSTEMD_UNIT=%s\n_SYSTEMD_SLICE=system.slice\n"
                    "_SYSTEMD_INVOCATION_ID=%032x\nSYSLOG_IDENTIFIER=%s\n" % (
                        BOOT_ID, MACHINE_ID, HOST, transport, uid, uid, comm, exe, cmdline,
                        "1ffffffffff" if uid == 0 else "0", unit, unit, rng.getrandbits(128), ident))
            if transport == "stdout":
                base += "_STREAM_ID=%032x\nSYSLOG_FACILITY=3\n_PID=%d\n" % (rng.getrandbits(128), pid)
            elif transport == "journal":
                base += "SYSLOG_FACILITY=3\n_PID=%d\nCODE_FILE=src/%s/main.c\nCODE_FUNC=%s_dispatch\n" % (
                    pid, ident, ident.replace("-", "_").lower())
            else:
                base += "SYSLOG_FACILITY=%d\n" % (10 if ident == "sshd" else 9)
            blocks = {p: base + "PRIORITY=%d\n" % p for p in PRIOS}
            self.units.append((unit, ident, transport, median, blocks, getattr(self, "_m_" + ident.replace("-", "_").lower())))
        self.weights = [u[3] for u in UNITS]

    # Each _m_* returns a message of about n bytes (n drawn per unit, 60-400); _pad cuts or pads.
    def _pad(self, m, n):
        if len(m) >= n:
            return m[:n].rstrip()
        off = self.rng.randrange(len(self.fill) - 500)
        off = self.fill.find(" ", off) + 1
        return m + " " + self.fill[off:off + n - len(m) - 1].rstrip()

    def _ts(self):
        s, us = divmod(self.rt, 10**6)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%06dZ" % us

    def _m_kubelet(self, n, p):
        r = self.rng
        s, us = divmod(self.rt, 10**6)
        msg = r.choice(('"SyncLoop (PLEG): event for pod"', '"Probe failed" probeType="Readiness"',
                        '"RemoveContainer" containerID="containerd://%016x"' % r.getrandbits(64),
                        '"Volume mounted" volume="kube-api-access-%05x"' % r.getrandbits(20)))
        return self._pad('%s1206 %s.%06d    1187 %s:%d] %s pod="shop/api-7d9f8b6c5d-%05x" podUID="%032x"' % (
            "IIIWE"[min(4, max(0, 6 - p + 1))], time.strftime("%H:%M:%S", time.gmtime(s)), us,
            r.choice(("kubelet.go", "prober.go", "pod_workers.go", "kuberuntime_manager.go")),
            r.randrange(100, 3000), msg, r.getrandbits(20), r.getrandbits(128)), n)

    def _m_nginx(self, n, p):
        r = self.rng
        path = r.choice(("/api/v1/orders/%d" % r.randrange(10**6), "/static/app.%08x.js" % r.getrandbits(32),
                         "/api/v1/cart", "/healthz", "/api/v1/products?page=%d" % r.randrange(50)))
        m = '10.%d.%d.%d - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s"' % (
            r.randrange(256), r.randrange(256), r.randrange(256), self._ts(), r.choice(("GET", "GET", "POST", "PUT")),
            path, 200 if p >= 6 else (404 if p == 5 else 502), r.randrange(100, 90000),
            r.choice(("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                      "curl/7.88.1", "kube-probe/1.31", "Go-http-client/1.1")))
        return self._pad(m, n)

    def _m_shop_api(self, n, p):
        r = self.rng
        m = '{"level":"%s","ts":"%s","logger":"http","msg":"request completed","method":"%s","path":"/v1/%s/%d",' \
            '"status":%d,"duration_ms":%.1f,"request_id":"%032x"' % (
                {7: "debug", 6: "info", 5: "info", 4: "warn", 3: "error"}[p], self._ts(),
                r.choice(("GET", "POST")), r.choice(("cart", "orders", "users", "products")), r.randrange(10**6),
                200 if p >= 5 else 500, r.random() * 200, r.getrandbits(128))
        if len(m) + 12 < n:
            m = self._pad(m + ',"extra":"', n - 2) + '"'
        return m + "}"

    def _m_shop_worker(self, n, p):
        r = self.rng
        return self._pad("job=%s id=%d attempt=%d state=%s took=%dms" % (
            r.choice(("send-email", "charge-card", "reserve-stock", "export")), r.randrange(10**7),
            r.randrange(1, 4), "failed" if p <= 4 else "done", r.randrange(2000)), n)

    def _m_containerd(self, n, p):
        r = self.rng
        return self._pad('time="%s" level=%s msg="%s" id=%064x namespace=k8s.io' % (
            self._ts(), "info" if p >= 6 else "warning" if p >= 4 else "error",
            r.choice(("StartContainer returns successfully", "shim disconnected", "cleaning up dead shim",
                      "PullImage \\\"registry.local/shop/api:1.%d\\\"" % r.randrange(90))), r.getrandbits(256)), n)

    def _m_postgres(self, n, p):
        r = self.rng
        return self._pad("[%d] shop@shop %s:  duration: %.3f ms  statement: SELECT o.id, o.total FROM orders o "
                         "WHERE o.user_id = %d AND" % (
                             r.randrange(2000, 60000), "LOG" if p >= 5 else "WARNING" if p == 4 else "ERROR",
                             r.random() * 900, r.randrange(10**6)), n)

    def _m_dockerd(self, n, p):
        r = self.rng
        return self._pad('time="%s" level=%s msg="%s"' % (
            self._ts(), "info" if p >= 6 else "warning", r.choice((
                "ignoring event", "Container failed to exit within 10s of signal 15 - using the force",
                "loading plugin", "API listen on /run/docker.sock"))), n)

    def _m_redis_server(self, n, p):
        r = self.rng
        return self._pad("811:M 06 Dec 2025 %s * %s" % (
            self._ts()[11:23], r.choice(("1 changes in 3600 seconds. Saving...", "Background saving started by pid %d"
                                         % r.randrange(1000, 99999), "DB saved on disk"))), n)

    def _m_sshd(self, n, p):
        r = self.rng
        return self._pad("Accepted publickey for %s from 10.0.%d.%d port %d ssh2: ED25519 SHA256:%s" % (
            r.choice(("deploy", "root", "ops")), r.randrange(256), r.randrange(256), r.randrange(1024, 65536),
            "%043x" % r.getrandbits(172)), n)

    def _m_cron(self, n, p):
        r = self.rng
        return self._pad(r.choice(("pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
                                   "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
                                   "pam_unix(cron:session): session closed for user root")), n)

    def _m_networkmanager(self, n, p):
        r = self.rng
        return self._pad("<info>  [%d.%04d] dhcp4 (eth0): state changed new lease, address=10.0.%d.%d" % (
            self.rt // 10**6, r.randrange(10000), r.randrange(256), r.randrange(256)), n)

    def _m_systemd_logind(self, n, p):
        r = self.rng
        s = r.randrange(100, 9999)
        return self._pad(r.choice(("New session %d of user deploy." % s, "Session %d logged out. Waiting for "
                                   "processes to exit." % s, "Removed session %d." % s)), n)

    def piece(self, want_bytes):
        """Export text of entries until want_bytes of MESSAGE; yields (text, entries, message bytes)
        in blocks of 5000 entries."""
        r = self.rng
        done = 0
        while done < want_bytes:
            out, nb = [], 0
            for ui, p in zip(r.choices(range(len(self.units)), self.weights, k=5000),
                             r.choices(PRIOS, PRIO_W, k=5000)):
                unit, ident, transport, median, blocks, make = self.units[ui]
                self.rt += r.randrange(1, 5000)
                n = min(400, max(60, int(median * math.exp(r.gauss(0, 0.35)))))
                m = make(n, p)
                extra = ""
                if transport == "journal":
                    extra = "CODE_LINE=%d\n_SOURCE_REALTIME_TIMESTAMP=%d\n" % (r.randrange(100, 3000), self.rt - 20)
                elif transport == "syslog":
                    pid = r.randrange(2000, 60000)
                    extra = "_PID=%d\nSYSLOG_PID=%d\n_SOURCE_REALTIME_TIMESTAMP=%d\nSYSLOG_TIMESTAMP=%s \n" % (
                        pid, pid, self.rt - 50, time.strftime("%b %e %H:%M:%S", time.gmtime(self.rt // 10**6)))
                out.append("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n%s%sMESSAGE=%s\n\n" % (
                    self.rt, self.rt - BOOT_RT, blocks[p], extra, m))
                nb += len(m.encode())
                if done + nb >= want_bytes:
                    break
            done += nb
            yield "".join(out), len(out), nb


def rotate(d):
    """Renames d/system.journal as journald does when it rotates: system@SEQNUMID-SEQNUM-REALTIME
    (the file's seqnum ID, first seqnum and first realtime, from its header)."""
    cur = os.path.join(d, "system.journal")
    if not os.path.exists(cur):
        return
    with open(cur, "rb") as f:
        h = f.read(200)
    if h[:8] != b"LPKSHHRH":
        raise SystemExit("%s is not a journal file" % cur)
    seqnum_id = h[72:88].hex()
    head_seqnum, = struct.unpack_from("<Q", h, 168)
    head_rt, = struct.unpack_from("<Q", h, 184)
    os.rename(cur, os.path.join(d, "system@%s-%016x-%016x.journal" % (seqnum_id, head_seqnum, head_rt)))


def generate(mib, piece_mib=64):
    name = "journal" if (mib, piece_mib) == (256, 64) else "journal-%dm-%dm" % (mib, piece_mib)
    top = os.path.join(WORK, name)
    meta_path = os.path.join(top, "workload.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            m = json.load(f)
        if m.get("mib") == mib and m.get("piece_mib") == piece_mib:
            return os.path.join(top, "files"), m
    if not os.access(REMOTE, os.X_OK):
        raise SystemExit("%s is missing: apt-get install systemd-journal-remote" % REMOTE)
    shutil.rmtree(top, ignore_errors=True)
    tmp = os.path.join(top, "files.tmp")
    os.makedirs(tmp)
    print("generating %d MiB of journal messages ..." % mib, flush=True)
    t0 = time.monotonic()
    cpu0 = os.times()
    gen = _Gen()
    entries = msg_bytes = export_bytes = 0
    left = mib << 20
    while left > 0:
        # One journal-remote per piece, fed the export stream on stdin (its `-` input), writing
        # a fresh system.journal that is then rotated.
        p = subprocess.Popen([REMOTE, "-o", os.path.join(tmp, "system.journal"), "-"],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        for text, n, nb in gen.piece(min(left, piece_mib << 20)):
            data = text.encode()
            p.stdin.write(data)
            export_bytes += len(data)
            entries += n
            msg_bytes += nb
            left -= nb
        p.stdin.close()
        err = p.stderr.read().decode()
        if p.wait() != 0:
            raise SystemExit("systemd-journal-remote failed (%d): %s" % (p.returncode, err[-2000:]))
        rotate(tmp)
    cpu1 = os.times()
    files = sorted(os.listdir(tmp))
    m = {"mib": mib, "piece_mib": piece_mib, "entries": entries, "message_bytes": msg_bytes,
         "export_bytes": export_bytes, "files": files,
         "journal_bytes": sum(os.path.getsize(os.path.join(tmp, f)) for f in files),
         "gen_seconds": round(time.monotonic() - t0, 1),
         "gen_cpu_s": round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system) +
                            (cpu1.children_user - cpu0.children_user) +
                            (cpu1.children_system - cpu0.children_system), 1)}
    os.rename(tmp, os.path.join(top, "files"))
    with open(meta_path, "w") as f:
        json.dump(m, f)
    return os.path.join(top, "files"), m


def reader_binary():
    """build/bench_journal_read if CMake knows the target; otherwise gcc into bench/.work."""
    exe = os.path.join(os.path.dirname(BIN), "bench_journal_read")
    src = os.path.join(ROOT, "bench", "journal_read.c")
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        in_cmake = "bench_journal_read" in f.read()
    if in_cmake:
        if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            subprocess.run(["cmake", "--build", os.path.dirname(BIN), "--target", "bench_journal_read"],
                           check=True, capture_output=True)
        return exe
    exe = os.path.join(WORK, "journal_read")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libsystemd"], check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run(["gcc", "-O2", "-std=c11", "-Wall", "-Wextra", src] + flags + ["-o", exe], check=True)
    return exe


def read_plain(exe, d, enumerate_):
    r = subprocess.run([exe] + (["--enumerate"] if enumerate_ else []) + [d],
                       check=True, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def buffered(db):
    """Records and record bytes in the buffer's chunks (the agent has no sinks: all stay)."""
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=1)
        try:
            return c.execute("SELECT COALESCE(SUM(records),0), COALESCE(SUM(raw_bytes),0) FROM chunks").fetchone()
        finally:
            c.close()
    except sqlite3.Error:
        return 0, 0


def write_config(d):
    state = os.path.join(WORK, "journald-state")
    cfg = os.path.join(WORK, "journald.yaml")
    with open(cfg, "w") as f:
        f.write("data_dir: %s\nhostname: bench\n"
                "buffer: { max_bytes: 4GiB }\n"
                "sources:\n  - { name: system, type: journald, path: %s }\n"
                "sinks: []\n"
                "log: { level: warn }\nserver: { listen: \"\" }\n" % (state, d))
    return cfg, state


def run_agent(cfg, state, meta, timeout=900):
    shutil.rmtree(state, ignore_errors=True)
    log = os.path.join(WORK, "journald.log")
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "run", "-c", cfg], stderr=open(log, "w"))
    db = os.path.join(state, "spillway.db")
    want = meta["entries"]
    n = nbytes = 0
    while time.monotonic() < t0 + timeout:
        n, nbytes = buffered(db)
        if n >= want or p.poll() is not None:
            break
        time.sleep(0.1)  # polling interval of the progress probe, bounded by the deadline
    elapsed = time.monotonic() - t0
    if p.poll() is not None:
        raise SystemExit("the agent exited (%d) after %d of %d entries: see %s" % (p.returncode, n, want, log))
    cpu, hwm = proc_stats(p.pid)
    threads = thread_cpu(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    if n < want:
        raise SystemExit("only %d of %d entries in the buffer after %.0f s: see %s" % (n, want, elapsed, log))
    return {"seconds": elapsed, "cpu_s": cpu, "hwm": hwm, "threads": threads, "records": n, "record_bytes": nbytes,
            "db_bytes": os.path.getsize(db)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256, help="MiB of MESSAGE bytes in the journal")
    ap.add_argument("--piece-mib", type=int, default=64, help="MiB of MESSAGE bytes per journal file before rotating")
    ap.add_argument("--runs", type=int, default=3, help="runs of the plain reader in each mode")
    ap.add_argument("--repeat", type=int, default=1, help="agent runs (median reported)")
    ap.add_argument("--no-agent", action="store_true", help="only the plain reader")
    ap.add_argument("--keep", action="store_true", help="keep the agent's data_dir")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    d, meta = generate(a.mib, a.piece_mib)
    mb = meta["message_bytes"] / 1e6
    gb = meta["message_bytes"] / 1e9
    print("journal: %d entries, %.1f MB of MESSAGE (avg %.0f B), %d files, %.0f MiB on disk "
          "(%.0f MB export stream); generated in %.1f s (%.1f CPU s incl. journal-remote)" % (
              meta["entries"], mb, meta["message_bytes"] / meta["entries"], len(meta["files"]),
              meta["journal_bytes"] / 2**20, meta["export_bytes"] / 1e6, meta["gen_seconds"], meta["gen_cpu_s"]),
          flush=True)
    exe = reader_binary()
    for f in meta["files"]:  # warm the page cache: every figure is from memory
        with open(os.path.join(d, f), "rb") as fh:
            while fh.read(1 << 24):
                pass
    rows = []
    plain = {}
    for mode in ("get_data", "enumerate"):
        plain[mode] = []
    for _ in range(max(1, a.runs)):  # interleaved: drifts of the VM hit both alike
        for mode in ("get_data", "enumerate"):
            r = read_plain(exe, d, mode == "enumerate")
            if r["entries"] != meta["entries"] or r["message_bytes"] != meta["message_bytes"]:
                raise SystemExit("reader saw %d entries / %d bytes, the workload has %d / %d" % (
                    r["entries"], r["message_bytes"], meta["entries"], meta["message_bytes"]))
            plain[mode].append(r)
            print(json.dumps(r), flush=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    for mode in ("get_data", "enumerate"):
        rs = plain[mode]
        secs, cpu = med([r["seconds"] for r in rs]), med([r["cpu_s"] for r in rs])
        rows.append(("sd-journal " + mode, secs, cpu, med([r["max_rss_MiB"] for r in rs]) * 2**20, len(rs)))
    base = min(rows, key=lambda r: r[1])
    if not a.no_agent:
        cfg, state = write_config(d)
        chk = subprocess.run([BIN, "check", "-c", cfg], capture_output=True, text=True)
        if chk.returncode != 0:
            print("agent skipped: `spillway check` refuses the config (%d): %s" % (
                chk.returncode, (chk.stderr or chk.stdout).strip()[-600:]), flush=True)
        else:
            runs = []
            for _ in range(max(1, a.repeat)):
                r = run_agent(cfg, state, meta)
                runs.append(r)
                print(json.dumps({"agent_seconds": round(r["seconds"], 2), "cpu_s": r["cpu_s"],
                                  "peak_rss_MiB": round(r["hwm"] / 2**20, 1), "records": r["records"],
                                  "cpu_s_by_thread": {k: round(v, 2) for k, v in sorted(r["threads"].items())},
                                  "record_MB": round(r["record_bytes"] / 1e6, 1),
                                  "db_MiB": round(r["db_bytes"] / 2**20, 1)}), flush=True)
            rows.append(("spillway (no sinks)", med([r["seconds"] for r in runs]), med([r["cpu_s"] for r in runs]),
                         med([r["hwm"] for r in runs]), len(runs)))
            if not a.keep:
                shutil.rmtree(state, ignore_errors=True)
    print("\njournald bench: %d entries, %.1f MB of MESSAGE in %d journal files (%.0f MiB), %d CPUs" % (
        meta["entries"], mb, len(meta["files"]), meta["journal_bytes"] / 2**20, os.cpu_count()))
    print("%-22s %5s %9s %9s %11s %9s %10s %12s %10s" % (
        "reader", "runs", "seconds", "MB/s", "entries/s", "CPU s", "CPU s/GB", "peak RSS", "vs best"))
    for name, secs, cpu, hwm, n in rows:
        print("%-22s %5d %9.2f %9.1f %11d %9.2f %10.2f %12s %9.0f%%" % (
            name, n, secs, mb / secs, meta["entries"] / secs, cpu, cpu / gb,
            "%.1f MiB" % (hwm / 2**20) if hwm else "-", base[1] / secs * 100))
    g, e = rows[0], rows[1]
    print("enumerate_data vs get_data: %.2fx the speed (%s is faster)" % (
        g[1] / e[1], "enumerate" if e[1] < g[1] else "get_data"))


if __name__ == "__main__":
    main()
