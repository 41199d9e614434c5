"""bench/face-study's driver (see bench/face-study): the runs, their result files, and
docs/results-face.md made from those files alone."""
import argparse
import glob
import json
import os
import subprocess
import sys

import h5py
import numpy as np

METHODS = {  # name: config keys over configs/face-small.conf
    "amlfs": {},
    "amlfs-intercepts": {"sigma_intercept": "0.2"},
    "random": {"mode": "random"},
    "random-intercepts": {"mode": "random", "sigma_intercept": "0.2"},
    "amlfs-free": {"form": "free", "sigma_intercept": "0.2"},
    "cosface": {"mode": "fixed", "loss": "cosface"},
}
SYNTH = ["--identities", "60", "--images-per-identity", "30", "--heldout", "20",
         "--probe-identities", "10", "--distractors", "500", "--size", "48x40",
         "--seed", "2019"]


def attr(path, name, obj="/"):
    with h5py.File(path, "r") as f:
        v = f[obj].attrs[name]
    return v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)


def write_json(path, data):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_seconds(run):
    """The run's own wall seconds (logs/times.csv: setup, every epoch, the final eval), so a
    finished run found again reports the time it took."""
    total = 0.0
    with open(os.path.join(run, "logs", "times.csv")) as f:
        next(f)
        for line in f:
            _, phase, sec = line.strip().split(",")
            if phase in ("setup", "epoch", "final"):
                total += float(sec)
    return total


def run_config(run):
    keys = {}
    with open(os.path.join(run, "config")) as f:
        for line in f:
            if " = " in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split(" = ", 1)
                keys[k] = v
    return keys


def result_of(run, method, seed):
    ev = os.path.join(run, "final", "eval-test.h5")
    cfg = run_config(run)
    epochs = sorted(glob.glob(os.path.join(run, "epoch-*", "rewards.h5")))
    return {
        "method": method, "seed": seed, "run": os.path.basename(run),
        "config": {k: cfg.get(k) for k in ("mode", "form", "loss", "space", "init", "sigma",
                                            "sigma_intercept", "samples", "epochs", "scale",
                                            "batch", "model", "size")},
        "test_verification": attr(ev, "accuracy"),
        "test_verification_std": attr(ev, "accuracy_std"),
        "test_tar_at_far_1e-3": attr(ev, "tar_at_far"),
        "test_rank1": attr(ev, "rank1"),
        "test_pairs": attr(ev, "pairs"), "rank1_trials": attr(ev, "trials"),
        "last_best_val_verification": attr(epochs[-1], "best_reward"),
        "epochs": len(epochs), "seconds": run_seconds(run),
    }


def run_all(a):
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.results, exist_ok=True)
    faces = os.path.join(a.work, "faces")
    if not os.path.exists(os.path.join(faces, "lfw", "pairs.txt")):
        subprocess.run(["amlfs-synth", "face", "--out", faces] + SYNTH, check=True)
    conf = os.path.join(a.root, "configs", "face-small.conf")
    for seed in a.seeds:
        data = os.path.join(a.work, f"data-{seed}.h5")
        for method in a.methods:
            out = os.path.join(a.results, f"{method}-seed{seed}.json")
            if os.path.exists(out):
                continue
            run = os.path.join(a.work, f"run-{method}-{seed}")
            sets = {"src": faces, "seed": str(seed), **METHODS[method]}
            if os.path.exists(data):
                sets["data"] = data
            cmd = ["amlfs-run", "--config", conf, "--out", run]
            if os.path.exists(os.path.join(run, "config")):
                cmd = ["amlfs-run", "--resume", run]
            else:
                for k, v in sets.items():
                    cmd += ["--set", f"{k}={v}"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"bench/face-study: error: {method} seed {seed}: {p.stderr[-2000:]}")
            if not os.path.exists(data):
                subprocess.run(["cp", os.path.join(run, "data", "data.h5"), data], check=True)
            r = result_of(run, method, seed)
            write_json(out, r)
            print(f"{method} seed {seed}: test verification {r['test_verification']:.4f}, "
                  f"TAR {r['test_tar_at_far_1e-3']:.4f}, rank-1 {r['test_rank1']:.4f} "
                  f"({r['seconds']:.0f} s)", flush=True)


def report(a):
    rows = {}
    for path in sorted(glob.glob(os.path.join(a.results, "*.json"))):
        with open(path) as f:
            r = json.load(f)
        rows.setdefault(r["method"], []).append(r)
    if not rows:
        sys.exit(f"bench/face-study: error: {a.results}: no results (run bench/face-study)")
    keys = [("test_verification", "test verification"), ("test_tar_at_far_1e-3", "TAR at FAR 1e-3"),
            ("test_rank1", "rank-1"), ("last_best_val_verification", "best val. reward, last epoch")]
    lines = ["# Face: does the search pay? (generated by `bench/face-study --report`)", "",
             "configs/face-small.conf (face-small, 48x40, cosine head s = 30, B = 8, 12 epochs, "
             "rewarded by the verification accuracy of 10 held-out identities' 600 pairs) on "
             "one folder of `amlfs-synth face` (60 training identities of 30 images; a "
             "20-identity LFW-style test set of 600 pairs; rank-1 of 10 probe identities "
             "against 500 distractors). Mean and population std over the seeds, each seed "
             "one run (its own held-out identities, data order and draws); the figures of each "
             "run are in bench/results/face-study/.", "",
             "| method | runs | " + " | ".join(k[1] for k in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    order = [m for m in METHODS if m in rows]
    for m in order:
        cells = []
        for k, _ in keys:
            v = np.array([r[k] for r in rows[m]], dtype=float)
            cells.append(f"{v.mean():.4f} ± {v.std():.4f}")
        seeds = ",".join(str(r["seed"]) for r in rows[m])
        lines.append(f"| {m} | {len(rows[m])} (seeds {seeds}) | " + " | ".join(cells) + " |")
    lines += ["", "Per run:", "", "| method | seed | test verification | TAR | rank-1 | seconds |",
              "|---|---|---|---|---|---|"]
    for m in order:
        for r in rows[m]:
            lines.append(f"| {m} | {r['seed']} | {r['test_verification']:.4f} | "
                         f"{r['test_tar_at_far_1e-3']:.4f} | {r['test_rank1']:.4f} | "
                         f"{r['seconds']:.0f} |")
    notes = os.path.join(a.root, "docs", "results-face-notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += ["", f.read().rstrip()]
    out = os.path.join(a.root, "docs", "results-face.md")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)
    print(out)


def main():
    ap = argparse.ArgumentParser(prog="bench/face-study")
    ap.add_argument("--root", required=True)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="2019,2020")
    ap.add_argument("--work")
    ap.add_argument("--results")
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    a.results = a.results or os.path.join(a.root, "bench", "results", "face-study")
    a.work = a.work or os.path.join(a.root, "bench", "work", "face-study")
    a.methods = [m for m in a.methods.split(",") if m]
    for m in a.methods:
        if m not in METHODS:
            sys.exit(f"bench/face-study: error: --methods: unknown '{m}' ({', '.join(METHODS)})")
    a.seeds = [int(s) for s in a.seeds.split(",") if s]
    report(a) if a.report else run_all(a)


if __name__ == "__main__":
    main()
