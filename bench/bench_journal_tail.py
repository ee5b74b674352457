#!/usr/bin/python3
"""Entries read at the journal's tail that lack a field, without and with the journald source's
tail rule (docs/journald.md, "How it reads").

journald and systemd-journal-remote make an entry visible in the file before they link it into
its data objects, and sd-journal skips a data object caught in between: an entry read at that
instant lacks every field whose value is new (typically MESSAGE). For each mode this runs
bench_journal_tail (bench/journal_tail.c), a reader polling the tail without sleeping, while
systemd-journal-remote appends batches of generated entries (tests/e2e/journalgen.py) for
--seconds; the reader then compares each entry's field count with a re-read made after the
writer stopped.

  /usr/bin/python3 bench/bench_journal_tail.py [--seconds 25] [--rounds 1]

Mode 0 reads as a plain sd-journal reader does; mode 1 applies the agent's rule (the newest
entry after a 1 ms pause, again while it shows no MESSAGE). Expect a few entries in 10^5
missing a field in mode 0 on a 2-core VM, none in mode 1.
"""
import argparse, json, os, random, shutil, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from bench import BIN, WORK  # noqa: E402  (same build directory and work dir)
import journalgen as jg  # noqa: E402  (the e2e tests' journal writer)


def run(mode, seconds, rnd):
    d = os.path.join(WORK, "journal-tail")
    shutil.rmtree(d, ignore_errors=True)
    rng = random.Random(1000 * rnd + mode)
    clock = jg.Clock(rng)
    jg.write_journal(d, "system.journal", jg.build_entries(rng, 10, clock, specials=False, rich=False))
    exe = os.path.join(os.path.dirname(BIN), "bench_journal_tail")
    reader = subprocess.Popen([exe, d, str(seconds + 5), str(mode)], stdout=subprocess.PIPE, text=True)
    written, end = 10, time.monotonic() + seconds
    while time.monotonic() < end:  # bounded: each batch is one journal-remote run
        es = jg.build_entries(rng, 200, clock, specials=False, rich=False)
        jg.write_journal(d, "system.journal", es)
        written += len(es)
    out = json.loads(reader.communicate(timeout=seconds + 120)[0])
    out["written"] = written
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    subprocess.run(["cmake", "--build", os.path.dirname(BIN), "--target", "bench_journal_tail"],
                   check=True, capture_output=True)
    rows = []
    for rnd in range(a.rounds):
        for mode in (0, 1):
            r = run(mode, a.seconds, rnd)
            print(json.dumps(r), flush=True)
            rows.append(r)
    print("\n%-28s %10s %10s %16s %18s" % ("reader", "entries", "as newest", "no MESSAGE live",
                                           "fields missing"))
    for r in rows:
        name = "tail rule (agent)" if r["settle"] else "plain sd-journal"
        print("%-28s %10d %10d %16d %18d" % (name, r["entries"], r["read_as_newest"],
                                             r["without_message_live"], r["fields_missing_live"]))


if __name__ == "__main__":
    main()
