"""amlfs-run killed and resumed: a tiny run (B = 3, 3 epochs, 2 jobs of 1 thread) is
started again and again and SIGKILLed, all its processes at once (the driver, GNU
Parallel and its jobs, the tools), at points across the run: while the epoch-1 model is
initialised, while amlfs-sample draws, while the B samples train (as one starts, and when
the first checkpoint of the epoch is written), while a sample is evaluated, while the
rewards are written, while amlfs-update writes the next policy, while the best model is
broadcast, during the final test evaluation, and twice in one run. Each is then finished
with amlfs-run --resume, and every HDF5 file must equal (h5diff) the same file of a run
never stopped, and the two runs must hold the same files (logs and report aside).

Plain build only, run once (tests/run.sh BUILD --slow): /usr/bin/python3 with h5py and
numpy, h5diff from hdf5-tools."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import amlfs_test as T  # noqa: E402

TIMEOUT = 180  # one driver call; a tiny run takes seconds


def session_processes(sid, foreign):
    """(pid, argv) of the processes of session sid; foreign caches the pids seen outside
    it, so a poll reads little."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        if pid in foreign:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            if int(st[st.rindex(")") + 2:].split()[3]) != sid:
                foreign.add(pid)
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (OSError, ValueError, IndexError):
            continue
        found.append((pid, argv))
    return found


def tool(name, *words):
    """A kill point: the tool NAME runs with each of words in its command line."""
    def hit(processes, run):
        for _, argv in processes:
            if argv and os.path.basename(argv[0]) == name:
                line = " " + " ".join(argv) + " "
                if all(w in line for w in words):
                    return True
        return False
    hit.__doc__ = " ".join((name,) + words)
    return hit


def first_checkpoint(e):
    """A kill point: the first sample checkpoint of epoch e exists (the others train)."""
    def hit(processes, run):
        d = os.path.join(run, f"epoch-{e:04d}")
        return any(os.path.exists(os.path.join(d, f"sample-{i:03d}", "checkpoint.h5"))
                   for i in range(3))
    hit.__doc__ = f"the first checkpoint of epoch {e}"
    return hit


# Where to kill, in the order of a run. The short tools (sample, reward, update,
# broadcast: milliseconds) are taken in whatever epoch the poll first sees them.
POINTS = [
    ("setup", [tool("amlfs-init", "--model")]),
    ("draw", [tool("amlfs-sample")]),
    ("train starts", [tool("amlfs-train-epoch", "epoch-0002/")]),
    ("train, first checkpoint", [first_checkpoint(2)]),
    ("eval", [tool("amlfs-eval", "--split val", "epoch-0003/")]),
    ("reward", [tool("amlfs-reward")]),
    ("update", [tool("amlfs-update")]),
    ("broadcast", [tool("amlfs-broadcast")]),
    ("final test eval", [tool("amlfs-eval", "--split test")]),
    ("twice: train of epoch 1, then update of epoch 3",
     [tool("amlfs-train-epoch", "epoch-0001/"), tool("amlfs-update", "policy/epoch-0003.h5")]),
]


def killed_at(args, point, run):
    """Starts amlfs-run args in a session of its own, polls until point says so, then
    SIGKILLs the whole session. Returns (hit, what the poll saw running, temporaries
    left); hit is False when the driver ended first."""
    p = subprocess.Popen([os.path.join(T.WORKFLOW, "amlfs-run")] + args,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=T.driver_env(), start_new_session=True)
    foreign, hit, seen = set(), False, set()
    deadline = time.monotonic() + TIMEOUT
    polls = 0
    while p.poll() is None and time.monotonic() < deadline:
        polls += 1
        if polls % 2000 == 0:
            foreign.clear()  # pids are reused, rarely
        procs = session_processes(p.pid, foreign)
        if point(procs, run):
            T.kill_session(p.pid)
            hit = True
            seen = {os.path.basename(a[0]) for _, a in procs if a}
            break
        time.sleep(0.001)  # the short tools live some 10 ms: still seen, at less CPU
    T.kill_session(p.pid)
    p.wait()
    temporaries = [n for _, _, names in os.walk(run) for n in names if ".tmp." in n]
    return hit, seen, temporaries


def compared_files(run):
    """The files a finished run must share with a run never stopped: all but the logs
    (logs/, each sample's log), the report and the lock (which names its driver)."""
    files = set()
    for dirpath, _, names in os.walk(run):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), run)
            if rel.startswith(("logs" + os.sep, "report" + os.sep)) or n in ("log", ".lock"):
                continue
            files.add(rel)
    return files


class Resume(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="amlfs-resume-test-")
        src = T.fashion_subset(os.path.join(cls.dir, "fashion-mnist"), 600, 200)
        data = os.path.join(cls.dir, "data.h5")
        p = T.run("amlfs-prep", "fashion-mnist", "--src", src, "--out", data,
                  "--train-size", 300, "--val-size", 100)
        if p.returncode != 0:
            raise AssertionError(f"amlfs-prep: exit {p.returncode}: {p.stderr}")
        # the same threads and jobs as every killed run: same bytes
        cls.conf = T.write_config(os.path.join(cls.dir, "tiny.conf"), {
            "data": data, "train_size": 300, "val_size": 100, "batch": 50, "samples": 3,
            "epochs": 3, "jobs": 2, "threads": 1, "seed": 11})
        cls.reference = os.path.join(cls.dir, "reference")
        t0 = time.monotonic()
        cls.reference_run = T.run_workflow("amlfs-run", "--config", cls.conf, "--out",
                                           cls.reference, timeout=TIMEOUT)
        cls.reference_seconds = time.monotonic() - t0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def same_as_reference(self, run):
        ref_files, files = compared_files(self.reference), compared_files(run)
        self.assertEqual(sorted(files - ref_files), [], "files only in the resumed run")
        self.assertEqual(sorted(ref_files - files), [], "files missing from the resumed run")
        differ = []
        for rel in sorted(f for f in files if f.endswith(".h5")):
            p = subprocess.run(["h5diff", os.path.join(self.reference, rel),
                                os.path.join(run, rel)], capture_output=True, text=True)
            if p.returncode != 0:
                differ.append(f"{rel}: h5diff exit {p.returncode}: "
                              f"{(p.stdout + p.stderr).strip()[:300]}")
        self.assertEqual(differ, [], "HDF5 files differ from the run never stopped")
        for rel in sorted(f for f in files if not f.endswith(".h5")):
            if os.path.islink(os.path.join(run, rel)):
                continue
            with open(os.path.join(self.reference, rel), "rb") as a, \
                    open(os.path.join(run, rel), "rb") as b:
                self.assertEqual(a.read(), b.read(), f"{rel} differs")

    def test_killed_anywhere_then_resumed_equals_never_stopped(self):
        ref = self.reference_run
        self.assertEqual(ref.returncode, 0, f"the reference run: {ref.stderr}")
        print(f"\nreference run: {self.reference_seconds:.1f} s", file=sys.stderr)
        self.assertTrue(os.path.isfile(os.path.join(self.reference, "final", "eval-test.h5")))
        for n, (name, points) in enumerate(POINTS):
            with self.subTest(name):
                t0 = time.monotonic()
                run = os.path.join(self.dir, f"killed-{n}")
                args = ["--config", self.conf, "--out", run]
                notes = []
                for k, point in enumerate(points):
                    hit, seen, temporaries = killed_at(args, point, run)
                    self.assertTrue(hit, f"kill point '{point.__doc__}' never reached: the "
                                    "run ended first")
                    notes.append(f"killed at {point.__doc__} (running: "
                                 f"{', '.join(sorted(s for s in seen if s.startswith('amlfs-')))};"
                                 f" {len(temporaries)} temporaries left)")
                    args = ["--resume", run]
                p = T.run_workflow("amlfs-run", "--resume", run, timeout=TIMEOUT)
                self.assertEqual(p.returncode, 0, f"--resume: exit {p.returncode}\n{p.stderr}")
                self.assertFalse(os.path.exists(os.path.join(run, "STOPPED")))
                self.same_as_reference(run)
                print(f"{name}: {'; '.join(notes)}; resumed, same files; "
                      f"{time.monotonic() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
