#!/usr/bin/python3
"""Archive benchmark: `spillway archive search`, `restore --verify-only` and `restore` into the
file sink over what the S3 sink uploaded to a local s3rver (objects already local to it).

    /usr/bin/python3 bench/bench_archive.py [--mib 1024] [--containers 8] [--keep]

Ships --mib MiB of docker json-file logs (bench/gen_docker.py) through the agent to s3rver
(tests/servers: `scripts/test.sh` installs it), then times each command on the archive and
prints MB/s of uncompressed NDJSON, records/s, CPU seconds and peak RSS. The restore's figure
is the RTO quoted in docs/runbook.md.
"""

import argparse, json, os, shutil, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench  # noqa: E402  (its workload generator and work folder)
from soak import KEY, S3RVER, free_port  # noqa: E402  (how the soak starts s3rver)


def timed(cmd):
    """Runs cmd: (wall s, CPU s, peak RSS MiB, stdout) of that process alone."""
    t0 = time.monotonic()
    with open(os.devnull, "w") as null:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=null, text=True)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("%s failed (%d)" % (" ".join(cmd), p.returncode))
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--containers", type=int, default=8)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(S3RVER):
        raise SystemExit("s3rver is not installed: run scripts/test.sh (or `npm ci` in tests/servers) first")
    os.makedirs(bench.WORK, exist_ok=True)
    logs, meta = bench.generate("containers-%d" % a.mib, a.mib, a.containers)
    work = os.path.join(bench.WORK, "archive")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for f in ("s3-id", "s3-key"):
        with open(os.path.join(work, f), "w") as fh:
            fh.write(KEY)
        os.chmod(os.path.join(work, f), 0o600)
    port = free_port()
    srv = subprocess.Popen(["node", S3RVER, "-d", os.path.join(work, "s3"), "-a", "127.0.0.1", "-p", str(port),
                            "--configure-bucket", "logs", "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = os.path.join(work, "spillway.yaml")
    with open(cfg, "w") as f:
        f.write("""data_dir: %(w)s/data
hostname: bench
sources:
  - { name: docker, type: docker, paths: ["%(logs)s/*/*-json.log"] }
sinks:
  - { name: archive, type: s3, endpoint: "http://127.0.0.1:%(port)d", bucket: logs, region: us-east-1,
      prefix: "{host}/%%Y/%%m/%%d/", access_key_file: %(w)s/s3-id, secret_key_file: %(w)s/s3-key }
  - { name: restored, type: file, path: %(w)s/restored.ndjson, match: ["source=none"] }
""" % {"w": work, "logs": logs, "port": port})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("s3rver did not start")
                time.sleep(0.1)
        print("shipping %d MiB of docker logs (%d records) to s3rver..." % (a.mib, meta["records_joined"]), flush=True)
        agent = subprocess.Popen([bench.BIN, "run", "-c", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while True:  # every record in an object whose manifest is there
            time.sleep(1)
            r = subprocess.run([bench.BIN, "archive", "list", "--sink", "archive", "-c", cfg, "--output", "json"],
                               capture_output=True, text=True)
            objs = [json.loads(l) for l in r.stdout.split("\n") if l]
            if sum(o.get("records", 0) for o in objs) >= meta["records_joined"] and all(o["manifest"] for o in objs):
                break
            if time.monotonic() - t0 > 1800:
                raise SystemExit("the archive did not fill in 30 minutes")
        shipped_s = time.monotonic() - t0  # within the 1 s poll
        agent.terminate()
        agent.wait(60)
        r = subprocess.run([bench.BIN, "archive", "restore", "--sink", "archive", "--dry-run", "-c", cfg],
                           capture_output=True, text=True, check=True)
        plan = r.stdout.strip().split("\n")[-1]
        nd = int(plan.split(" bytes of NDJSON")[0].rsplit(" ", 1)[1])
        packed = sum(o["bytes"] for o in objs)
        print("archive: %d objects, %.1f MB compressed, %.1f MB of NDJSON (%d records), shipped in %.0f s"
              % (len(objs), packed / 1e6, nd / 1e6, meta["records_joined"], shipped_s))
        rows = []
        for name, cmd in [
                ("search --count (regex)", ["archive", "search", "--sink", "archive", "--count", "checkout.*timeout"]),
                ("search --count ''", ["archive", "search", "--sink", "archive", "--count", ""]),
                ("restore --verify-only", ["archive", "restore", "--sink", "archive", "--verify-only"]),
                ("restore --to file", ["archive", "restore", "--sink", "archive", "--to", "restored"])]:
            wall, cpu, rss, _ = timed([bench.BIN] + cmd + ["-c", cfg])
            rows.append((name, nd / 1e6 / wall, meta["records_joined"] / wall, wall, cpu, rss))
        restored = os.path.getsize(os.path.join(work, "restored.ndjson"))
        print("\n| command | MB/s (NDJSON) | records/s | wall s | CPU s | peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print("| %s | %.0f | %.0f | %.2f | %.2f | %.0f |" % r)
        print("\nrestored file: %.1f MB (%s)" % (restored / 1e6, "equal to the archive's NDJSON" if restored == nd
                                                else "archive NDJSON is %d bytes" % nd))
    finally:
        srv.terminate()
        srv.wait(10)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
