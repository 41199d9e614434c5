"""bench/faults's campaign (see bench/faults --help): faults injected into small real
searches, each faulted run compared file by file with one never faulted."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import amlfs_test as T  # noqa: E402

CONFIG = {"dataset": "fashion-mnist", "samples": 4, "epochs": 3, "jobs": 2, "threads": 1,
          "seed": 11, "val_size": 100}
TIMEOUT = 300

# bad config values: (--set, why it is bad); each must be refused before RUN exists
BAD_VALUES = [
    ("epochs=", "empty"), ("batch=", "empty"), ("lr=", "empty"), ("model=", "empty"),
    ("dataset=", "empty"), ("seed=", "empty"), ("threads=", "empty"), ("samples=", "empty"),
    ("jobs=", "empty"), ("sigma=", "empty"), ("epochs=0", "out of range"),
    ("epochs=-3", "negative"), ("samples=0", "out of range"), ("noise=1.5", "out of range"),
    ("lr=abc", "not a number"), ("model=vgg", "unknown model"),
    ("dataset=imagenet", "unknown dataset"), ("val_size=70000", "larger than the data set"),
    ("train_size=100000", "larger than the data set"), ("threads=0", "out of range"),
    ("device=gpu", "not a device"), ("intervals=0", "out of range"),
    ("form=banana", "unknown form"), ("sigma_intercept=-1", "negative"),
    ("momentum=1.5", "out of range"), ("keep=-1", "negative"), ("unknown_key=1", "unknown"),
]


def result_files(run):
    """Every file of a run that a result depends on: the HDF5 files and the config (the
    logs, the report and the sample logs carry times)."""
    files = set(T.h5_files(run))
    if os.path.exists(os.path.join(run, "config")):
        files.add("config")
    return files


def same_run(run, ref):
    """'' when run holds exactly ref's result files with the same bytes, else why not."""
    a, b = result_files(run), result_files(ref)
    if a != b:
        return f"files differ: only in the run {sorted(a - b)[:3]}, only in the reference {sorted(b - a)[:3]}"
    diff = [f for f in sorted(a) if subprocess.run(
        ["cmp", "-s", os.path.join(run, f), os.path.join(ref, f)]).returncode != 0]
    # a file whose bytes differ only where HDF5 keeps nothing (16 bytes overwritten in
    # unused space): it validates, and every value, attribute and header equals the
    # reference's (h5dump, less its first line, which names the file)
    diff = [f for f in diff if f == "config" or not unused_bytes_only(
        os.path.join(run, f), os.path.join(ref, f))]
    if diff:
        return f"{len(diff)} files differ, e.g. {diff[0]}"
    leftovers = [os.path.join(d, n) for d, _, ns in os.walk(run) for n in ns if ".tmp." in n]
    return f"temporaries left: {leftovers[:2]}" if leftovers else ""


def unused_bytes_only(path, ref):
    def content(p):
        out = subprocess.run(["h5dump", p], capture_output=True, text=True)
        return out.returncode, out.stdout.split("\n", 1)[-1]
    ok = T.run("amlfs-check", path).returncode == 0
    return ok and content(path) == content(ref)


def one_line_naming(stderr, what):
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    return bool(lines) and what in lines[-1]


class Campaign:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="amlfs-faults-", dir=args.work)
        src = T.fashion_subset(os.path.join(self.work, "src"), 700, 200)
        self.data = os.path.join(self.work, "data.h5")
        T.must("amlfs-prep", "fashion-mnist", "--src", src, "--train-size", 600,
               "--val-size", 100, "--seed", 1, "--out", self.data)
        self.conf = T.write_config(os.path.join(self.work, "run.conf"),
                                   dict(CONFIG, data=self.data))
        # the bad values' config prepares its own data (the sizes are checked against the
        # data set then; a prepared data file has its own)
        self.conf_src = T.write_config(os.path.join(self.work, "src.conf"),
                                       dict(CONFIG, src=src, train_size=600))
        self.ref = os.path.join(self.work, "ref")
        t0 = time.monotonic()
        p = T.run_workflow("amlfs-run", "--config", self.conf, "--out", self.ref,
                           timeout=TIMEOUT)
        self.ref_seconds = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"bench/faults: the reference run failed: {p.stderr[-500:]}")
        self.rows = []
        self.n = 0

    def fresh(self):
        self.n += 1
        return os.path.join(self.work, f"run-{self.n:03d}")

    def record(self, case, ok, detail=""):
        self.rows.append({"case": case, "ok": bool(ok), "detail": detail})
        if not ok:
            print(f"  FAULT NOT SURVIVED: {case}: {detail}", flush=True)

    def start(self, *args):
        return subprocess.Popen([os.path.join(T.WORKFLOW, "amlfs-run")] + list(args),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=T.driver_env(), start_new_session=True)

    def resume(self, run):
        return T.run_workflow("amlfs-run", "--resume", run, timeout=TIMEOUT)

    # ---- SIGKILL of the driver or of every process, then resume -------------------
    def kills(self, n):
        for i in range(n):
            run = self.fresh()
            p = self.start("--config", self.conf, "--out", run)
            time.sleep(self.rng.uniform(0.2, self.ref_seconds))
            whole = i % 2 == 1
            if whole:
                T.kill_session(p.pid)
            else:
                os.kill(p.pid, signal.SIGKILL)
            p.wait()
            p.stderr.close()
            r = self.resume(run) if os.path.exists(os.path.join(run, "config")) else \
                T.run_workflow("amlfs-run", "--config", self.conf, "--out", run, timeout=TIMEOUT)
            why = same_run(run, self.ref) if r.returncode == 0 else f"resume exit {r.returncode}: {r.stderr.strip()[-200:]}"
            self.record("SIGKILL " + ("every process" if whole else "the driver"), not why, why)
            shutil.rmtree(run, ignore_errors=True)

    # ---- a file damaged between a kill and the resume -----------------------------
    def corruptions(self, n):
        kinds = ["truncate", "overwrite", "junk", "empty"]
        for i in range(n):
            run = self.fresh()
            p = self.start("--config", self.conf, "--out", run)
            time.sleep(self.rng.uniform(0.3 * self.ref_seconds, 0.9 * self.ref_seconds))
            T.kill_session(p.pid)
            p.wait()
            p.stderr.close()
            if not os.path.exists(os.path.join(run, "config")):
                continue
            # what the resumed run reads next: the files of the first epoch not reduced
            # (no .reduced marker: a marked epoch's files are vouched for, DESIGN.md 2),
            # its policy among them, or once every epoch is, the final model's
            pending = sorted(d for d in os.listdir(run) if d.startswith("epoch-") and
                             not os.path.exists(os.path.join(run, d, ".reduced")))
            if pending:
                e = int(pending[0].split("-")[1])
                victims = [f for f in T.h5_files(run) if f.startswith(pending[0]) or
                           f == f"policy/epoch-{e:04d}.h5"]
            else:
                victims = [f for f in T.h5_files(run) if f.startswith("final/")]
            if not victims:
                shutil.rmtree(run, ignore_errors=True)
                continue
            victim = os.path.join(run, self.rng.choice(victims))
            kind = kinds[i % len(kinds)]
            size = os.path.getsize(victim)
            if kind == "truncate":
                os.truncate(victim, self.rng.randrange(0, max(1, size)))
            elif kind == "overwrite":
                with open(victim, "r+b") as f:
                    f.seek(self.rng.randrange(0, max(1, size - 16)))
                    f.write(bytes(self.rng.randrange(256) for _ in range(16)))
            elif kind == "junk":
                with open(victim, "wb") as f:
                    f.write(os.urandom(self.rng.randrange(1, 4096)))
            else:
                open(victim, "wb").close()
            r = self.resume(run)
            rel = os.path.relpath(victim, run)
            if r.returncode == 0:
                why = same_run(run, self.ref)
                self.record(f"{kind} {rel.split('/')[-1]}: redone", not why, why)
            else:
                named = one_line_naming(r.stderr, rel.split("/")[-1])
                self.record(f"{kind} {rel.split('/')[-1]}: refused", named,
                            "" if named else f"exit {r.returncode} without naming it: "
                            f"{r.stderr.strip()[-200:]}")
            shutil.rmtree(run, ignore_errors=True)

    # ---- two drivers on one run directory ------------------------------------------
    def concurrent(self, n):
        for i in range(n):
            run = self.fresh()
            a = self.start("--config", self.conf, "--out", run)
            time.sleep(self.rng.uniform(0.5, 0.6 * self.ref_seconds))
            second = ["--resume", run] if i % 2 == 0 else ["--config", self.conf, "--out", run]
            b = T.run_workflow("amlfs-run", *second, timeout=TIMEOUT)
            a_err = a.communicate(timeout=TIMEOUT)[1]
            if a.returncode != 0:
                self.record("two drivers", False, f"the first exit {a.returncode}: {a_err[-200:]}")
            elif b.returncode == 0 and not why_done(b):
                self.record("two drivers", False, "the second was not refused")
            else:
                why = same_run(run, self.ref)
                refused = b.returncode == 2 and "in use" in b.stderr
                # the second may come after the first ended (no overlap): then it finds
                # the run finished and says so, and the files are the reference's
                after = b.returncode == 0 and why_done(b)
                self.record("two drivers: the second refused (or after the first), the first identical",
                            (refused or after) and not why,
                            why or ("" if refused else
                                    "no overlap: the second started after the first ended"
                                    if after else
                                    f"second: exit {b.returncode} {b.stderr.strip()[-200:]}"))
            T.kill_session(a.pid)
            shutil.rmtree(run, ignore_errors=True)

    # ---- disk full -----------------------------------------------------------------
    def disk_full(self, n):
        if os.geteuid() != 0:
            self.record_skip("disk full", "not root: no tmpfs can be mounted")
            return
        for i in range(n):
            mnt = os.path.join(self.work, f"tmpfs-{i}")
            os.makedirs(mnt)
            size_kib = self.rng.randrange(9 * 1024, 22 * 1024)
            m = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", mnt],
                               capture_output=True, text=True)
            if m.returncode != 0:
                self.record_skip("disk full", m.stderr.strip())
                return
            run = os.path.join(mnt, "run")
            r = T.run_workflow("amlfs-run", "--config", self.conf, "--out", run, timeout=TIMEOUT)
            if r.returncode == 0:
                self.record(f"disk full ({size_kib} KiB): finished in the space", not same_run(run, self.ref))
            else:
                said = "no space left on device" in r.stderr.lower()
                moved = self.fresh()
                shutil.copytree(run, moved, symlinks=True)
                q = self.resume(moved)
                why = same_run(moved, self.ref) if q.returncode == 0 else f"resume exit {q.returncode}"
                self.record(f"disk full ({size_kib} KiB): ENOSPC named, resumed identical",
                            said and not why,
                            why or ("" if said else f"not named: {r.stderr.strip()[-200:]}"))
                shutil.rmtree(moved, ignore_errors=True)
            subprocess.run(["umount", mnt], capture_output=True)

    def record_skip(self, case, why):
        self.rows.append({"case": case, "ok": None, "detail": f"skipped: {why}"})
        print(f"  skipped: {case}: {why}", flush=True)

    # ---- bad config values ---------------------------------------------------------
    def bad_values(self, limit):
        cases = BAD_VALUES[:limit] + [("samples=3", "odd B with antithetic sampling")]
        for setting, why in cases:
            run = self.fresh()
            extra = ["--set", "sampling=antithetic"] if setting == "samples=3" else []
            r = T.run_workflow("amlfs-run", "--config", self.conf_src, "--out", run,
                               "--set", setting, *extra, timeout=TIMEOUT)
            lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
            ok = r.returncode == 2 and len(lines) == 1 and not os.path.exists(run)
            self.record(f"--set {setting} ({why})", ok,
                        "" if ok else f"exit {r.returncode}, {len(lines)} lines, RUN "
                        f"{'exists' if os.path.exists(run) else 'absent'}: {' | '.join(lines)[-200:]}")
            shutil.rmtree(run, ignore_errors=True)


def why_done(p):
    return "done" in p.stderr or "done" in p.stdout


def main():
    ap = argparse.ArgumentParser(prog="bench/faults")
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--corruptions", type=int, default=24)
    ap.add_argument("--concurrent", type=int, default=10)
    ap.add_argument("--disk-full", type=int, default=6)
    ap.add_argument("--bad-values", type=int, default=len(BAD_VALUES))
    ap.add_argument("--quick", action="store_true",
                    help="a few trials of each (what make test runs)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default=None)
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "faults.json"))
    args = ap.parse_args()
    if args.quick:
        args.kills, args.corruptions, args.concurrent, args.disk_full = 4, 4, 2, 1
        args.bad_values = 8
    t0 = time.time()
    c = Campaign(args)
    print(f"bench/faults: reference run {c.ref_seconds:.1f} s; faults into copies of it", flush=True)
    for name, n in (("kills", args.kills), ("corruptions", args.corruptions),
                    ("concurrent", args.concurrent), ("disk_full", args.disk_full),
                    ("bad_values", args.bad_values)):
        if n > 0:
            print(f"bench/faults: {name} ({n})", flush=True)
            getattr(c, name)(n)
    groups = {}
    for r in c.rows:
        key = r["case"].split(":")[0].split(" (")[0] if not r["case"].startswith("--set") else "bad config values"
        g = groups.setdefault(key, {"trials": 0, "survived": 0, "skipped": 0})
        if r["ok"] is None:
            g["skipped"] += 1
            continue
        g["trials"] += 1
        g["survived"] += bool(r["ok"])
    print("\n| fault | trials | survived |")
    print("|---|---|---|")
    for k, g in groups.items():
        print(f"| {k} | {g['trials']} | {g['survived']}" + (f" ({g['skipped']} skipped)" if g["skipped"] else "") + " |")
    bad = [r for r in c.rows if r["ok"] is False]
    late = sum(1 for r in c.rows if r["ok"] and r["detail"].startswith("no overlap"))
    if late:
        print(f"(two drivers: {late} of the second drivers started after the first had ended)")
    print(f"\n{len(c.rows)} trials, {len(bad)} not survived, {time.time() - t0:.0f} s")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    if not args.quick:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"bench": "faults", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "config": CONFIG, "groups": groups, "trials": c.rows,
                       "seconds": round(time.time() - t0, 1)}, f, indent=1)
        os.replace(args.json + ".tmp", args.json)
        print(f"wrote {args.json}")
    shutil.rmtree(c.work, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
