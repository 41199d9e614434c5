"""bench/evidence's driver (see bench/evidence --help): the runs, their result files, and
docs/results.md made from those files alone."""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np

METHODS = {  # name: (config keys, samples: "B" or 1)
    "ce": ({"mode": "fixed", "form": "anchored", "init": "identity"}, 1),
    "fixed": ({"mode": "fixed", "form": "anchored", "init": "identity"}, "B"),
    "gce": ({"mode": "fixed", "form": "anchored", "init": "gce"}, "B"),
    "random": ({"mode": "random", "form": "anchored", "init": "identity"}, "B"),
    "amlfs-free": ({"mode": "amlfs", "form": "free", "init": "identity"}, "B"),
    "amlfs": ({"mode": "amlfs", "form": "anchored", "init": "identity"}, "B"),
    "amlfs-es": ({"mode": "amlfs", "form": "anchored", "init": "identity",
                  "sampling": "antithetic", "shaping": "rank"}, "B"),
    "amlfs-gce": ({"mode": "amlfs", "form": "anchored", "init": "gce"}, "B"),
    "replay": ({"mode": "replay", "replay_form": "mu"}, 1),
}
SEARCHES = ("random", "amlfs-free", "amlfs", "amlfs-es", "amlfs-gce")


def die(msg, code=2):
    print(f"bench/evidence: error: {msg}", file=sys.stderr)
    sys.exit(code)


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


def run_name(method, noise, seed):
    return f"{method}-noise{round(noise * 100):d}-seed{seed}"


PRETTY = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
MODEL = {"fashion-mnist": "small-cnn", "cifar10": "resnet20"}


def prepare(args, noise):
    data = os.path.join(args.work, f"data-noise{round(noise * 100):d}.h5")
    if not os.path.exists(data):
        cmd = ["amlfs-prep", args.dataset, "--train-size", args.train_size, "--val-size",
               args.val_size, "--seed", 1, "--out", data]
        if args.src:
            cmd += ["--src", args.src]
        if noise > 0:
            cmd += ["--noise", noise, "--noise-kind", "symmetric"]
        subprocess.run(list(map(str, cmd)), check=True, stdout=subprocess.DEVNULL)
    return data


def one_run(args, method, noise, seed, data):
    name = run_name(method, noise, seed)
    result = os.path.join(args.results, name + ".json")
    if os.path.exists(result):
        return "kept"
    keys, samples = METHODS[method]
    b = args.samples if samples == "B" else 1
    cfg = {"dataset": args.dataset, "data": data, "model": args.model,
           "epochs": args.epochs, "samples": b, "intervals": 6, "sigma": 0.2,
           "policy_lr": 0.05, "seed": seed, "keep": 0,
           "jobs": args.jobs if b > 1 else 1,
           "threads": args.threads if b > 1 else args.jobs * args.threads}
    if args.device != "cpu":
        cfg["device"] = args.device
    cfg.update(keys)
    if method == "replay":
        source = os.path.join(args.work, run_name("amlfs", noise, seed))
        if not os.path.exists(os.path.join(source, "final", "eval-test.h5")):
            return "waits for its amlfs run"
        cfg["replay_run"] = source
        del cfg["samples"]
    run = os.path.join(args.work, name)
    conf = os.path.join(args.work, name + ".conf")
    with open(conf, "w") as f:
        f.write("# bench/evidence: " + name + "\n")
        for k, v in cfg.items():
            f.write(f"{k} = {v}\n")
    cmd = ["amlfs-run", "--resume", run] if os.path.exists(os.path.join(run, "config")) \
        else ["amlfs-run", "--config", conf, "--out", run]
    t0 = time.time()
    log = open(os.path.join(args.work, name + ".log"), "a")
    p = subprocess.run(cmd, stdout=log, stderr=log)
    wall = time.time() - t0
    if p.returncode != 0:
        return f"failed (exit {p.returncode}, log {log.name})"
    # early stopping: the epoch whose best sample has the highest validation reward
    best_val, best_e = [], None
    for e in range(1, args.epochs + 1):
        best_val.append(float(attr(os.path.join(run, f"epoch-{e:04d}", "rewards.h5"),
                                   "best_reward")))
    best_e = int(np.argmax(best_val)) + 1
    ckpt = os.path.join(run, "final", "checkpoint.h5") if best_e == args.epochs \
        else os.path.join(run, f"epoch-{best_e + 1:04d}", "start.h5")
    es_eval = os.path.join(run, "final", "eval-test-early.h5")
    if not os.path.exists(es_eval):
        subprocess.run(["amlfs-eval", "--checkpoint", ckpt, "--data", data, "--split", "test",
                        "--out", es_eval, "--threads", str(args.jobs * args.threads),
                        "--device", args.device.split(",")[0]],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = os.path.join(run, f"epoch-{args.epochs:04d}")
    best = int(attr(os.path.join(last, "rewards.h5"), "best"))
    with h5py.File(os.path.join(last, "thetas.h5"), "r") as f:
        theta = f["theta"][best].tolist()
    seconds = 0.0
    with open(os.path.join(run, "logs", "times.csv")) as f:
        next(f)
        for line in f:
            seconds += float(line.strip().split(",")[2])
    write_json(result, {
        "method": method, "noise": noise, "seed": seed, "run": run, "config": cfg,
        "test_top1_final": float(attr(os.path.join(run, "final", "eval-test.h5"), "top1")),
        "early_stop_epoch": best_e, "early_stop_val_top1": best_val[best_e - 1],
        "test_top1_early_stopped": float(attr(es_eval, "top1")),
        "val_top1_best_per_epoch": best_val, "model_epochs": b * args.epochs,
        "wall_seconds": round(seconds, 1), "wall_seconds_this_call": round(wall, 1),
        "theta_last_best": theta, "intervals": 6,
        "amlfs_version": attr(os.path.join(run, "final", "eval-test.h5"), "amlfs_version"),
        "commit": subprocess.run(["git", "-C", args.root, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return f"done: test {attr(os.path.join(run, 'final', 'eval-test.h5'), 'top1'):.4f}, " \
           f"early-stopped {attr(es_eval, 'top1'):.4f} (epoch {best_e}), {wall:.0f} s"


# ---- the report --------------------------------------------------------------------

def pwl(theta, m, lo, x, which):
    a, b = theta[2 * m * which: 2 * m * which + m], theta[2 * m * which + m: 2 * m * which + 2 * m]
    k = np.minimum(np.floor((x - lo) / (1.0 - lo) * m), m - 1).astype(int)
    return np.asarray(a)[k] * x + np.asarray(b)[k]


def report(args):
    files = sorted(glob.glob(os.path.join(args.results, "*.json")))
    rows = [json.load(open(f)) | {"file": os.path.relpath(f, args.root)} for f in files]
    if not rows:
        die(f"{args.results}: no result files (run bench/evidence first)")
    noises = sorted({r["noise"] for r in rows})
    cell = {}
    for r in rows:
        cell.setdefault((r["method"], r["noise"]), []).append(r)
    docs = os.path.join(args.root, "docs")
    os.makedirs(docs, exist_ok=True)
    name = args.name
    out = []
    w = out.append
    w("# Does the search pay? The evidence study\n")
    w("Made by `bench/evidence --report` from the result files in"
      f" `{os.path.relpath(args.results, args.root)}/`"
      " (one per run, listed at the end); do not edit by hand: the paragraph under"
      f" \"What the numbers show\" is kept from `docs/{name}-notes.md`.\n")
    r0 = rows[0]["config"]
    sizes = "?"
    if os.path.exists(r0["data"]):
        with h5py.File(r0["data"], "r") as f:
            sizes = f"{len(f['train/labels']):,} / {len(f['val/labels']):,}"
    dataset = PRETTY.get(r0.get("dataset"), r0.get("dataset"))
    w(f"Setting: {dataset}, {r0.get('model')}, {r0.get('epochs')} epochs, B = "
      f"{max(r['config'].get('samples', 1) for r in rows)} for the methods that keep the best of"
      " B, M = 6, sigma 0.2, policy lr 0.05; one prepared data file per noise level (training /"
      f" validation images {sizes}, `amlfs-prep --seed 1`), so every method and seed sees"
      " the same split, validation set and noisy labels. Symmetric label noise applies to the"
      " training labels only (amlfs-prep): the validation split that gives the rewards and"
      f" picks the early-stopping epoch is clean; the test split is {dataset}'s 10,000."
      " Early-stopped: the model of the epoch with the best validation reward, evaluated once"
      " on test. Mean ± sample standard deviation over the seeds.\n")
    order = [m for m in METHODS if any((m, n) in cell for n in noises)]
    for kind, key in (("final model", "test_top1_final"),
                      ("early-stopped model", "test_top1_early_stopped")):
        w(f"\n## Test top-1 (%), {kind}\n")
        w("| method | " + " | ".join(f"noise {round(n * 100)}%" for n in noises) +
          " | model-epochs | seconds, logs/times.csv rows summed (mean) |")
        w("|---|" + "---|" * (len(noises) + 2))
        for m in order:
            cells, me, wall = [], None, []
            for n in noises:
                rs = cell.get((m, n), [])
                v = [100 * r[key] for r in rs]
                me = rs[0]["model_epochs"] if rs else me
                wall += [r["wall_seconds"] for r in rs]
                cells.append("-" if not v else f"{np.mean(v):.2f} ± "
                             f"{np.std(v, ddof=1) if len(v) > 1 else 0:.2f} (n={len(v)})")
            w(f"| {m} | " + " | ".join(cells) + f" | {me} | {np.mean(wall):.0f} |")
    w("\n## Comparisons (mean over the seeds both have)\n")
    for n in noises:
        for s in ("amlfs", "amlfs-es", "amlfs-gce"):
            if (s, n) not in cell:
                continue
            parts = []
            for ctl, key, label in (("fixed", "test_top1_final", "fixed"),
                                    ("gce", "test_top1_final", "gce"),
                                    ("ce", "test_top1_early_stopped", "early-stopped ce"),
                                    ("amlfs-free", "test_top1_final", "amlfs-free")):
                a = {r["seed"]: r["test_top1_final"] for r in cell[(s, n)]}
                b = {r["seed"]: r[key] for r in cell.get((ctl, n), [])}
                seeds = sorted(set(a) & set(b))
                if not seeds:
                    continue
                d = 100 * np.mean([a[k] - b[k] for k in seeds])
                parts.append(f"{d:+.2f} vs {label} ({'beats' if d > 0 else 'does not beat'},"
                             f" {len(seeds)} seed{'s' if len(seeds) > 1 else ''})")
            if parts:
                w(f"- noise {round(n * 100)}%: {s} " + "; ".join(parts) + ".")
    target = []
    for n in noises:
        if abs(n - 0.4) < 1e-9 and ("amlfs", n) in cell:
            a = np.mean([r["test_top1_final"] for r in cell[("amlfs", n)]])
            for ctl, key in (("fixed", "test_top1_final"), ("gce", "test_top1_final"),
                             ("ce", "test_top1_early_stopped")):
                if (ctl, n) in cell:
                    b = np.mean([r[key] for r in cell[(ctl, n)]])
                    target.append(f"{ctl}{' (early-stopped)' if ctl == 'ce' else ''}: "
                                  f"{100 * (a - b):+.2f} points "
                                  f"({'met' if 100 * (a - b) >= 0.5 else 'not met'})")
    if target:
        w("\nThe target (at 40% noise the search at least 0.5 point above fixed, gce and"
          " early-stopped ce, means of the seeds run): " + "; ".join(target) + ".")
    # the plot: test top-1 against noise per method
    dat = os.path.join(docs, f"{name}.dat")
    with open(dat, "w") as f:
        for m in order:
            f.write(f"# {m}\n")
            for n in noises:
                rs = cell.get((m, n), [])
                if rs:
                    v = [100 * r["test_top1_final"] for r in rs]
                    f.write(f"{100 * n:g} {np.mean(v):.4f} {np.std(v):.4f}\n")
            f.write("\n\n")
    plots = ", ".join(f"'{name}.dat' index {i} using 1:2:3 with yerrorlines lw 2 title '{m}'"
                      for i, m in enumerate(order))
    gp = ("set terminal pngcairo size 1000,650\n"
          f"set output '{name}.png'\n"
          "set xlabel 'symmetric label noise (%)'\nset ylabel 'test top-1 (%), final model'\n"
          "set key outside right\nset grid\nset offsets 2,2,0,0\n"
          f"plot {plots}\n")
    subprocess.run(["gnuplot"], input=gp, text=True, cwd=docs, check=True)
    # the found transforms per noise level (amlfs, the last epoch's best sample)
    tdat = os.path.join(docs, f"{name}-transforms.dat")
    found = [(n, r) for n in noises for r in cell.get(("amlfs", n), [])[:1]]
    with open(tdat, "w") as f:
        x = np.linspace(0, 1, 601)
        for n, r in found:
            th, m = r["theta_last_best"], r["intervals"]
            t = pwl(th, m, 0.0, x, 0)
            tau = pwl(th, m, 0.0, np.clip(t, 0, 1), 1)
            f.write(f"# noise {n} {r['file']}\n")
            for xi, ti, ui in zip(x, t, tau):
                f.write(f"{xi:.5f} {ti:.6f} {ui:.6f}\n")
            f.write("\n\n")
    if found:
        plots = ", ".join(f"'{name}-transforms.dat' index {i} using 1:2 with lines lw 2 "
                          f"title 't, noise {round(n * 100)}%'" for i, (n, _) in enumerate(found))
        plots += ", " + ", ".join(f"'{name}-transforms.dat' index {i} using 1:3 with lines "
                                  f"lw 2 dt 2 title 'tau(t), noise {round(n * 100)}%'"
                                  for i, (n, _) in enumerate(found))
        gp = ("set terminal pngcairo size 1000,650\n"
              f"set output '{name}-transforms.png'\n"
              "set xlabel 'p_y'\nset ylabel 'value'\nset key left top\nset grid\n"
              f"plot x title 'identity' lc 'gray', {plots}\n")
        subprocess.run(["gnuplot"], input=gp, text=True, cwd=docs, check=True)
    w("\n## Plots\n")
    w(f"![test top-1 against noise]({name}.png)\n")
    if found:
        w(f"![the found t and tau(t) per noise level]({name}-transforms.png)\n")
        w("The found loss of each noise level: `t` and `tau(t(p))` of the last epoch's best"
          " sample of the first seed's amlfs run (the loss is `-log tau(t(p_y))`).\n")
    w("\n## What the numbers show\n")
    notes = os.path.join(docs, f"{name}-notes.md")
    w(open(notes).read().strip() + "\n" if os.path.exists(notes) else "(no notes yet)\n")
    w("\n## Result files\n")
    for r in rows:
        w(f"- `{r['file']}`: {r['method']}, noise {r['noise']}, seed {r['seed']}, test "
          f"{r['test_top1_final']:.4f}, early-stopped {r['test_top1_early_stopped']:.4f} "
          f"(epoch {r['early_stop_epoch']}), commit {r['commit']}")
    with open(os.path.join(docs, f"{name}.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {os.path.join(docs, name + '.md')} from {len(rows)} result files")


def main():
    ap = argparse.ArgumentParser(prog="bench/evidence")
    ap.add_argument("--root", required=True)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--noise", default="0.4,0.2,0")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--train-size", type=int, default=10000)
    ap.add_argument("--val-size", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default=None)
    ap.add_argument("--results", default=None)
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--dataset", default="fashion-mnist", choices=sorted(MODEL))
    ap.add_argument("--src", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--name", default="results")
    args = ap.parse_args()
    args.model = args.model or MODEL[args.dataset]
    if args.src:
        args.src = os.path.abspath(args.src)
    args.work = os.path.abspath(args.work or os.path.join(args.root, "runs", "evidence"))
    args.results = os.path.abspath(args.results or
                                   os.path.join(args.root, "bench", "results", "evidence"))
    if args.report:
        return report(args)
    methods = args.methods.split(",")
    for m in methods:
        if m not in METHODS:
            die(f"--methods: unknown method '{m}' (one of {', '.join(METHODS)})")
    if "replay" in methods and "amlfs" not in methods:
        print("bench/evidence: replay needs its amlfs run; it runs once that exists",
              file=sys.stderr)
    try:
        noises = [float(x) for x in args.noise.split(",")]
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        die("--noise and --seeds take comma-separated numbers")
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.results, exist_ok=True)
    # replay after amlfs: the order of METHODS
    methods = [m for m in METHODS if m in methods]
    for noise in noises:
        data = prepare(args, noise)
        for seed in seeds:
            for m in methods:
                t0 = time.time()
                status = one_run(args, m, noise, seed, data)
                print(f"{run_name(m, noise, seed)}: {status}", flush=True)


if __name__ == "__main__":
    main()
