"""bench/identification's measurement (see bench/identification --help)."""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOOL = os.path.join(ROOT, "build", "rel", "bin", "amlfs-metric")
RESULT = os.path.join(ROOT, "bench", "results", "identification.json")
DIM, IDENTITIES, PROBES = 512, 80, 3530
TARGET_S, EXTRA_MB = 60.0, 1024.0  # seconds; MiB beyond the matrix (1 GiB)
BLOCK = 65536  # distractor rows generated at once


def generate(work, nd, seed):
    """The probe file (templates plus noise) and the distractor file (standard normal
    rows), chunked (1024, 512) as a feature extractor would write them."""
    rng = np.random.default_rng(seed)
    per = np.full(IDENTITIES, PROBES // IDENTITIES)
    per[:PROBES % IDENTITIES] += 1
    templates = rng.standard_normal((IDENTITIES, DIM)).astype(np.float32)
    ids = np.repeat(np.arange(IDENTITIES), per)
    probe = templates[ids] + np.float32(2.0) * rng.standard_normal((PROBES, DIM), np.float32)
    pfile, dfile = os.path.join(work, "probe.h5"), os.path.join(work, "distractors.h5")
    with h5py.File(pfile, "w") as f:
        f["probe"] = probe
        f["probe_ids"] = ids.astype(np.int32)
    with h5py.File(dfile, "w") as f:
        ds = f.create_dataset("distractors", (nd, DIM), np.float32, chunks=(1024, DIM))
        for r in range(0, nd, BLOCK):
            m = min(BLOCK, nd - r)
            ds[r:r + m] = rng.standard_normal((m, DIM), np.float32)
    trials = int(np.sum(per * (per - 1)))
    return pfile, dfile, trials


def run_tool(args, work):
    """One run of the tool: wall seconds, CPU seconds (user + system), peak RSS (MiB),
    exit status, stdout and stderr, from wait4 on that child alone."""
    with open(os.path.join(work, "out.txt"), "w+") as fo, \
            open(os.path.join(work, "err.txt"), "w+") as fe:
        t0 = time.monotonic()
        p = subprocess.Popen(args, stdout=fo, stderr=fe)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        return (wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, p.returncode,
                fo.read().strip(), fe.read().strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--distractors", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default=None)
    ap.add_argument("--repeats", type=int, default=1, help="runs on the same data")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    nd = 20_000 if a.quick else a.distractors
    work = tempfile.mkdtemp(prefix="amlfs-identification-", dir=a.work)
    try:
        t0 = time.monotonic()
        pfile, dfile, trials = generate(work, nd, a.seed)
        gen_s = time.monotonic() - t0
        out = os.path.join(work, "result.h5")
        runs = []
        for _ in range(a.repeats):
            load_before = os.getloadavg()
            wall, cpu, rss_mb, rc, stdout, stderr = run_tool(
                [TOOL, "identify", "--probe", pfile, "--distractors", dfile, "--threads",
                 str(a.threads), "--out", out], work)
            if rc != 0:
                print(f"bench/identification: amlfs-metric exit {rc}: {stderr}",
                      file=sys.stderr)
                return 1
            with h5py.File(out, "r") as f:
                rank1, got_trials = float(f.attrs["rank1"]), int(f.attrs["trials"])
            if got_trials != trials:
                print(f"bench/identification: {got_trials} trials, expected {trials}",
                      file=sys.stderr)
                return 1
            runs.append({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "peak_rss_mib": round(rss_mb, 1),
                         "load_average_before": [round(x, 2) for x in load_before],
                         "load_average_after": [round(x, 2) for x in os.getloadavg()]})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = min(runs, key=lambda r: r["wall_s"])
    wall, cpu, rss_mb = best["wall_s"], best["cpu_s"], max(r["peak_rss_mib"] for r in runs)
    load_before, load_after = best["load_average_before"], best["load_average_after"]
    matrix_mb = nd * DIM * 4 / 2**20
    limit_mb = matrix_mb + EXTRA_MB
    res = {
        "bench": "identification",
        "host": platform.node(), "cores": os.cpu_count(), "threads": a.threads,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "note": "the machine's 2 cores were shared with other jobs (the load averages "
                "before and after each run); wall_s and cpu_s are the fastest run's, "
                "peak_rss_mb the largest",
        "load_average_before": load_before, "load_average_after": load_after,
        "distractors": nd, "dim": DIM, "probes": PROBES, "identities": IDENTITIES,
        "trials": trials, "rank1": rank1, "generate_s": round(gen_s, 1),
        "wall_s": round(wall, 2), "target_s": TARGET_S, "cpu_s": round(cpu, 2),
        "cpu_s_per_thread": round(cpu / a.threads, 2),
        "peak_rss_mib": round(rss_mb, 1), "matrix_mib": round(matrix_mb, 1),
        "memory_limit_mib": round(limit_mb, 1),
        "time_ok": wall < TARGET_S, "memory_ok": rss_mb < limit_mb,
        "summary": stdout, "runs": runs,
    }
    print(f"{'distractors':>12} {'probes':>7} {'trials':>8} {'rank-1':>8} {'wall s':>8} "
          f"{'CPU s':>8} {'target s':>9} {'peak RSS MiB':>12} {'limit MiB':>9}")
    print(f"{nd:>12,} {PROBES:>7} {trials:>8} {rank1:>8.4f} {wall:>8.1f} {cpu:>8.1f} "
          f"{TARGET_S:>9.0f} {rss_mb:>12.1f} {limit_mb:>9.0f}")
    print(f"CPU s / threads = {cpu / a.threads:.1f} s, the wall time on {a.threads} cores of "
          f"its own with every thread busy")
    print(f"{a.threads} threads on {os.cpu_count()} cores, load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (shared machine); "
          f"time {'met' if res['time_ok'] else 'MISSED'}, memory "
          f"{'met' if res['memory_ok'] else 'MISSED'}")
    if not a.quick:
        with open(RESULT + ".tmp", "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
        os.replace(RESULT + ".tmp", RESULT)
        print(RESULT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
