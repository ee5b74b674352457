#!/usr/bin/python3
"""spillway archive compression benchmark.

1. Compression of the bench workload (bench/gen_docker.py: docker json-file logs, 8 containers,
   concatenated into one file) through spillway's own streaming code (bench_compress, one core)
   at zstd levels 1, 3 and 9, against `gzip -6`: MB/s (MiB of input per CPU second) and ratio.
2. `spillway rotate` of a 1 GiB log (the workload repeated): rename + zstd level 3, wall time,
   MB/s and peak RSS (VmHWM of the process, polled every 10 ms while it runs).

Targets: >= 200 MB/s on one core at level 3 with ratio >= 8:1; rotation memory < 16 MiB.
The ratio depends entirely on the workload: gen_docker's lines draw words from a small
vocabulary, repeat JSON keys and reuse a pool of 8192 payloads, so they compress better than
many real logs (long-distance matching finds the reused payloads); say so when quoting the
figures.

  /usr/bin/python3 bench/bench_compress.py [--mib 256] [--rotate-gib 1] [--keep]
"""
import argparse, json, os, resource, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", ".work")
BUILD = os.environ.get("SPILLWAY_BUILD", os.path.join(ROOT, "build"))
BIN = os.environ.get("SPILLWAY_BIN", os.path.join(BUILD, "spillway"))
MiB = 1 << 20


def workload(mib):
    out = os.path.join(WORK, "compress-%dMiB.log" % mib)
    if os.path.exists(out) and os.path.getsize(out) > 0:
        return out
    gen = os.path.join(WORK, "compress-gen")
    shutil.rmtree(gen, ignore_errors=True)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_docker.py"), "--out", gen,
                        "--containers", "8", "--size", "%dMiB" % mib], check=True, capture_output=True, text=True)
    files = json.loads(r.stdout)["files"]
    with open(out + ".tmp", "wb") as o:
        for f in files:
            with open(f if os.path.isabs(f) else os.path.join(gen, f), "rb") as i:
                shutil.copyfileobj(i, o, 4 * MiB)
    os.rename(out + ".tmp", out)
    shutil.rmtree(gen, ignore_errors=True)
    return out


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_levels(path, levels):
    subprocess.run(["cmake", "--build", BUILD, "--target", "bench_compress"], check=True, capture_output=True)
    tool = os.path.join(BUILD, "bench_compress")
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    r = subprocess.run(pin + [tool, path] + [str(l) for l in levels], check=True, capture_output=True, text=True)
    return [json.loads(l) for l in r.stdout.splitlines()]


def bench_gzip(path):
    out = os.path.join(WORK, "compress.gz")
    with open(path, "rb") as f:  # page cache warm, like the zstd runs
        while f.read(4 * MiB):
            pass
    c0, w0 = child_cpu(), time.monotonic()
    with open(out, "wb") as o:
        subprocess.run(["gzip", "-6", "-c", path], stdout=o, check=True)
    cpu, wall = child_cpu() - c0, time.monotonic() - w0
    n, z = os.path.getsize(path), os.path.getsize(out)
    os.unlink(out)
    return {"level": "gzip -6", "in": n, "out": z, "wall_s": wall, "cpu_s": cpu, "mb_s": n / MiB / cpu,
            "ratio": n / z}


def bench_rotate(path, gib):
    d = os.path.join(WORK, "rotate")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "logs"))
    live = os.path.join(d, "logs", "big.log")
    size = os.path.getsize(path)
    with open(live, "wb") as o:
        written = 0
        while written < gib << 30:
            with open(path, "rb") as i:
                shutil.copyfileobj(i, o, 4 * MiB)
            written += size
    n = os.path.getsize(live)
    cfg = os.path.join(d, "c.yaml")
    with open(cfg, "w") as f:
        f.write("data_dir: %s/state\nlog: { level: warn }\nretention:\n"
                "  - { name: big, paths: [\"%s\"], rotate: { max_size: 1MiB }, compress: { level: 3 } }\n"
                % (d, live))
    old = os.path.getmtime(live) - 10  # nobody writes it: no need to wait for a writer to let go
    os.utime(live, (old, old))
    cpu0 = child_cpu()
    w0 = time.monotonic()
    p = subprocess.Popen([BIN, "rotate", "-c", cfg], stdout=subprocess.DEVNULL)
    hwm = 0
    while p.poll() is None:  # VmHWM of the process itself (ru_maxrss would include the RSS the
        try:                 # forked child inherits from this Python process before its exec)
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.01)
    wall = time.monotonic() - w0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert p.returncode == 0, "spillway rotate failed"
    z = live + ".1.zst"
    out = os.path.getsize(z)
    ok = subprocess.run(["zstd", "-t", "-q", z]).returncode == 0
    shutil.rmtree(d, ignore_errors=True)
    return {"in": n, "out": out, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime - cpu0, "mb_s": n / MiB / wall,
            "ratio": n / out, "peak_rss_mib": hwm / 1024.0, "zstd_t_ok": ok}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rotate-gib", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the generated workload in bench/.work")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    path = workload(a.mib)
    rows = bench_levels(path, [1, 3, 9]) + [bench_gzip(path)]
    print("Compression of %s (%.0f MiB, bench/gen_docker.py docker json-file logs), one core:" %
          (os.path.basename(path), os.path.getsize(path) / MiB))
    print("  %-8s %12s %10s %10s %9s" % ("codec", "out bytes", "CPU s", "MiB/s", "ratio"))
    for r in rows:
        name = "zstd %d" % r["level"] if isinstance(r["level"], int) else r["level"]
        print("  %-8s %12d %10.2f %10.1f %8.1f:1" % (name, r["out"], r["cpu_s"], r["mb_s"], r["ratio"]))
    if a.rotate_gib:
        r = bench_rotate(path, a.rotate_gib)
        print("spillway rotate of a %.2f GiB log (rename + zstd 3): %.1f s wall, %.1f s CPU, %.0f MiB/s, "
              "ratio %.1f:1, peak RSS %.1f MiB, zstd -t %s" % (r["in"] / (1 << 30), r["wall_s"], r["cpu_s"],
              r["mb_s"], r["ratio"], r["peak_rss_mib"], "ok" if r["zstd_t_ok"] else "FAILED"))
    print(json.dumps({"levels": rows, "rotate": r if a.rotate_gib else None}))
    if not a.keep:
        os.unlink(path)


if __name__ == "__main__":
    main()
