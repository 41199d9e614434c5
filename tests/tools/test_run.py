"""amlfs-run, the whole search on one machine, on tiny runs (a few hundred Fashion-MNIST
images, B = 3, 2 or 3 epochs, 2 jobs of 1 thread): the run directory's files and their
schemas, the modes (amlfs, random, fixed, replay), a diverged and a failed sample, an
epoch without a finite reward, keep = N, and the bad inputs that must leave everything
as it was. The driver runs from workflow/ with this build's tools first on PATH and
named by AMLFS_BIN.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import hashlib
import os
import re
import shutil
import stat
import tempfile
import unittest

import h5py
import numpy as np

import amlfs_test as T

# A whole tiny run takes seconds; the limits only stop a driver that loops.
RUN_TIMEOUT = 240 if T.sanitized() else 120
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+): ")


def epoch_again(lines):
    """Whether the driver's stdout shows an epoch's summary twice (a driver that loops)."""
    seen = [m.group(1) for m in map(EPOCH_LINE.match, lines) if m]
    return len(seen) != len(set(seen))


def snapshot(run):
    """Every entry under run: relative path -> ('dir',), ('link', target) or
    ('file', sha256 of the content)."""
    snap = {}
    for dirpath, dirnames, names in os.walk(run):
        for n in dirnames + names:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, run)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                snap[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                snap[rel] = ("dir",)
            else:
                with open(full, "rb") as f:
                    snap[rel] = ("file", hashlib.sha256(f.read()).hexdigest())
    return snap


def epoch_dir(run, e):
    return os.path.join(run, f"epoch-{e:04d}")


def policy(run, e):
    return os.path.join(run, "policy", f"epoch-{e:04d}.h5")


def sample_dir(run, e, i):
    return os.path.join(epoch_dir(run, e), f"sample-{i:03d}")


class Run(unittest.TestCase):
    """One prepared dataset for the class, and one finished amlfs run (the reference,
    made on first use) that several tests read."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="amlfs-run-test-")
        src = T.fashion_subset(os.path.join(cls.dir, "fashion-mnist"), 600, 200)
        cls.data = os.path.join(cls.dir, "data.h5")
        p = T.run("amlfs-prep", "fashion-mnist", "--src", src, "--out", cls.data,
                  "--train-size", 300, "--val-size", 100)
        if p.returncode != 0:
            raise AssertionError(f"amlfs-prep: exit {p.returncode}: {p.stderr}")
        cls.base = {"data": cls.data, "train_size": 300, "val_size": 100, "batch": 50,
                    "samples": 3, "epochs": 3, "jobs": 2, "threads": 1, "seed": 7}
        cls._reference = None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="t-", dir=self.dir)

    def path(self, name):
        return os.path.join(self.tmp, name)

    # ---- running the driver -------------------------------------------------------------
    def config(self, name="run.conf", **keys):
        """A config file: the class's tiny settings with keys changed (None drops one)."""
        merged = dict(self.base)
        merged.update(keys)
        return T.write_config(self.path(name), merged)

    def driver(self, *args, timeout=RUN_TIMEOUT, abort=None, **env):
        return T.run_workflow("amlfs-run", *args, env=T.driver_env(**env), timeout=timeout,
                              abort=abort)

    def step(self, *args, **env):
        p = T.run_workflow("amlfs-step", *args, env=T.driver_env(**env), timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, f"amlfs-step {args}: exit {p.returncode}: {p.stderr}")
        return p

    def finished(self, p, what="amlfs-run"):
        self.assertEqual(p.returncode, 0, f"{what}: exit {p.returncode}\nstdout:\n{p.stdout}"
                         f"\nstderr:\n{p.stderr}")

    def new_run(self, name="run", **keys):
        """Runs a config of the tiny settings with keys changed into a new directory;
        asserts it finished; returns (run directory, CompletedProcess)."""
        run = self.path(name)
        p = self.driver("--config", self.config(name + ".conf", **keys), "--out", run)
        self.finished(p)
        return run, p

    def reference(self):
        """The class's finished amlfs run (3 epochs): (run directory, CompletedProcess)."""
        cls = type(self)
        if cls._reference is None:
            run = os.path.join(cls.dir, "reference")
            conf = T.write_config(os.path.join(cls.dir, "reference.conf"), cls.base)
            cls._reference = (run, T.run_workflow("amlfs-run", "--config", conf, "--out", run,
                                                  env=T.driver_env(), timeout=RUN_TIMEOUT))
        run, p = cls._reference
        self.finished(p, "the reference run")
        return run, p

    # ---- checks ---------------------------------------------------------------------------
    def all_valid(self, run):
        files = [os.path.join(run, f) for f in T.h5_files(run)]
        self.assertTrue(files)
        p = T.run("amlfs-check", *files)
        self.assertEqual(p.returncode, 0, f"amlfs-check: {p.stderr}")
        self.assertEqual(len(re.findall(r"(?m)^\S.*: [a-z-]+, valid$", p.stdout)), len(files),
                         "amlfs-check did not report every file valid")

    def no_temporaries(self, run):
        left = [os.path.join(d, n) for d, _, names in os.walk(run) for n in names
                if re.match(r"^\..*\.tmp\.", n)]
        self.assertEqual(left, [], "temporaries left in the run")

    def summary_lines(self, p, epochs):
        """One 'epoch e/E: ...' line per epoch on stdout, in order."""
        lines = [l for l in p.stdout.splitlines() if EPOCH_LINE.match(l)]
        self.assertEqual([EPOCH_LINE.match(l).groups() for l in lines],
                         [(str(e), str(epochs)) for e in range(1, epochs + 1)], p.stdout)

    def refused(self, p, *mentions):
        """Exit 2 and one stderr line 'amlfs-run: error: ...' naming each mention."""
        self.assertEqual(p.returncode, 2, f"exit {p.returncode}, want 2\nstdout:\n{p.stdout}"
                         f"\nstderr:\n{p.stderr}")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"want one stderr line, got {lines}")
        self.assertTrue(lines[0].startswith("amlfs-run: error: "), lines[0])
        for m in mentions:
            self.assertIn(m, lines[0])

    def nothing_made(self, out):
        """A refused run leaves no trace under its --out (a config there would make the
        corrected command be refused as another config's run)."""
        if os.path.exists(out):
            self.assertEqual(sorted(os.listdir(out)), [], f"{out}: a refused run left files")

    # ---- the amlfs run ---------------------------------------------------------------------
    def test_amlfs_run_files_valid(self):
        run, p = self.reference()
        self.summary_lines(p, 3)
        expected = ["config", "data/data.h5", "logs/times.csv", "final/checkpoint.h5",
                    "final/eval-test.h5"]
        expected += [f"policy/epoch-{e:04d}.h5" for e in range(1, 5)]
        for e in range(1, 4):
            expected += [f"epoch-{e:04d}/{n}.h5" for n in ("start", "thetas", "rewards")]
            expected += [f"epoch-{e:04d}/sample-{i:03d}/{n}" for i in range(3)
                         for n in ("checkpoint.h5", "eval.h5", "log")]
        for rel in expected:
            self.assertTrue(os.path.isfile(os.path.join(run, rel)), f"{rel} missing")
        self.assertFalse(os.path.exists(os.path.join(run, "epoch-0004")))
        self.assertFalse(os.path.exists(os.path.join(run, "STOPPED")))
        self.all_valid(run)
        self.no_temporaries(run)
        self.assertEqual(T.attr(os.path.join(run, "final/eval-test.h5"), "split"), "test")
        for e in range(1, 4):
            thetas = os.path.join(epoch_dir(run, e), "thetas.h5")
            self.assertEqual(T.read(thetas, "theta").shape, (3, 24))
            self.assertEqual(T.attr(thetas, "epoch"), e)
            self.assertEqual(T.attr(os.path.join(epoch_dir(run, e), "rewards.h5"), "finite"), 3)
        with open(os.path.join(run, "logs/times.csv")) as f:
            rows = [l.strip().split(",") for l in f if l.strip()]
        self.assertEqual(rows[0], ["epoch", "phase", "seconds"])
        for e in range(1, 4):
            self.assertTrue([r for r in rows[1:] if r[0] == str(e)], f"no times of epoch {e}")
        for r in rows[1:]:
            self.assertGreaterEqual(float(r[2]), 0.0, r)
        with open(os.path.join(run, "config")) as f:
            config = f.read()
        for line in ("samples = 3", "epochs = 3", "jobs = 2", "threads = 1", "mode = amlfs",
                     "device = cpu"):
            self.assertIn(line + "\n", config)

    def test_amlfs_mu_moves(self):
        run, _ = self.reference()
        applied = 0
        for e in range(1, 4):
            before, after = policy(run, e), policy(run, e + 1)
            self.assertEqual(T.attr(after, "epoch"), e + 1)
            moved = not np.array_equal(T.read(before, "mu"), T.read(after, "mu"))
            last = T.attr(after, "last_update")
            if last == "applied":
                applied += 1
                self.assertTrue(moved, f"epoch {e}: update applied, mu unchanged")
            else:
                self.assertTrue(last.startswith("skipped"), last)
                self.assertFalse(moved, f"epoch {e}: update {last}, mu changed")
            self.assertEqual(T.attr(after, "adam_step"), applied)
        self.assertGreater(applied, 0, "mu never moved")

    def test_config_records_threads_isa_and_device(self):
        """DESIGN 2: the resolved config is saved with threads, the CPU ISA oneDNN used and
        the device."""
        run, _ = self.reference()
        with open(os.path.join(run, "config")) as f:
            config = f.read()
        self.assertIn("threads = 1\n", config)
        self.assertIn("device = cpu\n", config)
        device = T.attr(os.path.join(sample_dir(run, 1, 0), "checkpoint.h5"), "device")
        isa = re.search(r"ISA ([A-Za-z0-9_]+)", device)
        self.assertTrue(isa, device)
        self.assertIn(isa.group(1), config, "the CPU ISA oneDNN used is not in RUN/config")

    def test_driver_uses_the_tools_of_amlfs_bin(self):
        """The tests (and a user with several builds) choose the tools: with AMLFS_BIN
        naming a folder that is also first on PATH, the driver calls the tools there, not
        the ones of the source tree's bin/ (here: --resume of a finished run, which checks
        its files with amlfs-check)."""
        run, _ = self.reference()
        wrappers = self.path("wrappers")
        os.makedirs(wrappers)
        log = self.path("called")
        for tool in sorted(os.listdir(T.BIN)):
            real = os.path.join(T.BIN, tool)
            if not tool.startswith("amlfs-") or tool in ("amlfs-run", "amlfs-step") or \
                    not os.access(real, os.X_OK):
                continue
            w = os.path.join(wrappers, tool)
            with open(w, "w") as f:
                f.write(f'#!/bin/sh\necho {tool} >> "{log}"\nexec "{real}" "$@"\n')
            os.chmod(w, 0o755)
        env = T.driver_env()
        env["PATH"] = wrappers + os.pathsep + env["PATH"]
        env["AMLFS_BIN"] = wrappers
        p = T.run_workflow("amlfs-run", "--resume", run, env=env, timeout=RUN_TIMEOUT)
        self.finished(p, "--resume of a finished run")
        called = ""
        if os.path.exists(log):
            with open(log) as f:
                called = f.read()
        self.assertIn("amlfs-check", called,
                      "amlfs-run ignored AMLFS_BIN and PATH and ran another amlfs-check")

    def test_set_without_config(self):
        """--set alone, no --config: the defaults and the keys set, resolved as amlfs-config
        resolves them, the run finished."""
        run = self.path("set-only")
        keys = dict(self.base, epochs=1)
        sets = [a for k, v in keys.items() for a in ("--set", f"{k}={v}")]
        p = self.driver("--out", run, *sets)
        self.finished(p)
        self.summary_lines(p, 1)
        want = T.must("amlfs-config", *sets).stdout
        with open(os.path.join(run, "config")) as f:
            got = "".join(l for l in f if not l.startswith("#"))
        self.assertEqual(got, want)
        self.assertIn("epochs = 1\n", got)
        self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))

    def test_compute_seconds_from_the_stats_sidecars(self):
        """Each sample's train and eval write --stats sidecars (images, seconds) into
        logs/epoch-E/ (wall-clock times live in logs/ only); logs/times.csv's compute of
        an epoch is their seconds summed."""
        run, _ = self.reference()
        with open(os.path.join(run, "logs/times.csv")) as f:
            compute = {r[0]: float(r[2]) for r in (l.strip().split(",") for l in f)
                       if r[1:2] == ["compute"]}
        for e in range(1, 4):
            total = 0.0
            for i in range(3):
                for name, images in (("train", 300), ("eval", 100)):
                    self.assertFalse(os.path.exists(os.path.join(sample_dir(run, e, i),
                                                                 name + ".stats")))
                    with open(os.path.join(run, "logs", f"epoch-{e:04d}",
                                           f"sample-{i:03d}.{name}.stats")) as f:
                        stats = dict(l.strip().split("=", 1) for l in f if l.strip())
                    self.assertEqual(sorted(stats), ["images", "seconds"], name)
                    self.assertEqual(int(stats["images"]), images, name)
                    self.assertGreaterEqual(float(stats["seconds"]), 0.0)
                    total += float(stats["seconds"])
            self.assertAlmostEqual(compute[str(e)], total, delta=0.0011)

    # ---- amlfs-step status and the reduced markers -----------------------------------------
    def copy_of_reference(self, name):
        ref, _ = self.reference()
        run = self.path(name)
        shutil.copytree(ref, run, symlinks=True)
        return run

    def status(self, run, env=None):
        p = T.run_workflow("amlfs-step", "status", run, env=env or T.driver_env(),
                           timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def counting_checks(self):
        """An environment whose amlfs-check logs each file it is asked about; the log."""
        wrappers, log = self.path("wrappers"), self.path("checked")
        os.makedirs(wrappers)
        w = os.path.join(wrappers, "amlfs-check")
        with open(w, "w") as f:
            f.write(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{T.BIN}/amlfs-check" "$@"\n')
        os.chmod(w, 0o755)
        env = T.driver_env()
        env["PATH"] = wrappers + os.pathsep + env["PATH"]
        return env, log

    def test_status_trusts_the_markers_of_finished_epochs(self):
        run = self.copy_of_reference("marked")
        for e in range(1, 4):
            self.assertTrue(os.path.isfile(os.path.join(epoch_dir(run, e), ".reduced")), e)
        env, log = self.counting_checks()
        self.assertEqual(self.status(run, env), "done")
        with open(log) as f:
            checked = sorted(os.path.relpath(l.strip(), run) for l in f)
        # the last reduced epoch's next start and policy, and the result: O(1) per epoch
        self.assertEqual(checked, ["final/checkpoint.h5", "final/eval-test.h5",
                                   "policy/epoch-0004.h5"])
        # finished epochs' files, removed or damaged after their markers: still done
        os.remove(os.path.join(epoch_dir(run, 1), "rewards.h5"))
        with open(os.path.join(epoch_dir(run, 2), "start.h5"), "r+b") as f:
            f.truncate(100)
        os.remove(policy(run, 2))
        self.assertEqual(self.status(run), "done")

    def test_status_checks_what_the_next_step_reads(self):
        run = self.copy_of_reference("next-input")
        # the run as it was after epoch 2's reduction
        shutil.rmtree(os.path.join(run, "final"))
        os.remove(policy(run, 4))
        os.remove(os.path.join(epoch_dir(run, 3), "rewards.h5"))
        os.remove(os.path.join(epoch_dir(run, 3), ".reduced"))
        self.assertEqual(self.status(run), "reduce 3")
        # the next step's input damaged: epoch 2's outputs are no longer trusted
        with open(policy(run, 3), "r+b") as f:
            f.truncate(100)
        self.assertEqual(self.status(run), "reduce 2")
        os.remove(os.path.join(epoch_dir(run, 3), "start.h5"))
        self.assertEqual(self.status(run), "reduce 2")
        # and the driver finishes it with the files of the run never stopped
        ref, _ = self.reference()
        p = self.driver("--resume", run)
        self.finished(p, "--resume after the damage")
        self.assertEqual(T.h5_files(run), T.h5_files(ref))
        for f in T.h5_files(run):
            if f.startswith("data/"):
                continue
            with open(os.path.join(run, f), "rb") as a, open(os.path.join(ref, f), "rb") as b:
                self.assertEqual(a.read(), b.read(), f)

    def test_status_without_markers_validates_and_writes_them(self):
        """A run reduced before the markers existed (or stopped between a reduction and
        its marker): status validates its epochs' outputs and marks them."""
        run = self.copy_of_reference("unmarked")
        for e in range(1, 4):
            os.remove(os.path.join(epoch_dir(run, e), ".reduced"))
        before = {f: snapshot(run)[f] for f in T.h5_files(run)}
        self.assertEqual(self.status(run), "done")
        for e in range(1, 4):
            self.assertTrue(os.path.isfile(os.path.join(epoch_dir(run, e), ".reduced")), e)
        self.assertEqual({f: snapshot(run)[f] for f in T.h5_files(run)}, before)
        self.no_temporaries(run)
        # an unmarked epoch is checked in full
        os.remove(os.path.join(epoch_dir(run, 2), ".reduced"))
        os.remove(os.path.join(epoch_dir(run, 2), "rewards.h5"))
        self.assertEqual(self.status(run), "reduce 2")

    # ---- the other modes ------------------------------------------------------------------
    def test_random_mode_mu_never_moves(self):
        run, p = self.new_run(mode="random", epochs=2)
        self.summary_lines(p, 2)
        self.all_valid(run)
        mu1 = T.read(policy(run, 1), "mu")
        np.testing.assert_array_equal(T.read(policy(run, 1), "mu_init"), mu1)
        for e in (2, 3):
            np.testing.assert_array_equal(T.read(policy(run, e), "mu"), mu1,
                                          f"random mode: mu of epoch {e} moved")
            self.assertEqual(T.attr(policy(run, e), "adam_step"), 0)
        for e in (1, 2):
            theta = T.read(os.path.join(epoch_dir(run, e), "thetas.h5"), "theta")
            self.assertEqual(theta.shape, (3, 24))
            self.assertFalse(np.array_equal(theta[0], theta[1]), "random mode drew copies")
        self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))

    def test_fixed_mode_trains_copies_of_one_loss(self):
        run, p = self.new_run(mode="fixed", epochs=2)
        self.summary_lines(p, 2)
        self.all_valid(run)
        mu1 = T.read(policy(run, 1), "mu")
        for e in (1, 2):
            theta = T.read(os.path.join(epoch_dir(run, e), "thetas.h5"), "theta")
            self.assertEqual(theta.shape, (3, 24))
            for i in range(3):
                np.testing.assert_array_equal(theta[i], mu1, f"epoch {e} row {i}")
            np.testing.assert_array_equal(T.read(policy(run, e + 1), "mu"), mu1)
        self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))

    def replay(self, form):
        source, _ = self.reference()
        run, p = self.new_run(f"replay-{form}", mode="replay", replay_run=source,
                              replay_form=form, samples=None)
        self.summary_lines(p, 3)
        self.all_valid(run)
        with open(os.path.join(run, "config")) as f:
            self.assertIn("samples = 1\n", f.read())
        self.assertEqual(T.attr(policy(run, 1), "mode"), "replay")
        return source, run

    def test_replay_final_mu(self):
        source, run = self.replay("mu")
        final_mu = T.read(policy(source, 4), "mu")
        final_theta = T.theta_of_policy(policy(source, 4))
        for e in (1, 2, 3):
            thetas = os.path.join(epoch_dir(run, e), "thetas.h5")
            draw, theta = T.read(thetas, "draw"), T.read(thetas, "theta")
            self.assertEqual(theta.shape, (1, 24))
            np.testing.assert_array_equal(draw[0], final_mu, f"epoch {e}")
            np.testing.assert_allclose(theta[0], final_theta, rtol=1e-13, atol=1e-13,
                                       err_msg=f"epoch {e}")
        self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))

    def test_replay_schedule_of_best_thetas(self):
        source, run = self.replay("schedule")
        for e in (1, 2, 3):
            best = T.attr(os.path.join(epoch_dir(source, e), "rewards.h5"), "best")
            want = T.read(os.path.join(epoch_dir(source, e), "thetas.h5"), "theta")[best]
            theta = T.read(os.path.join(epoch_dir(run, e), "thetas.h5"), "theta")
            self.assertEqual(theta.shape, (1, 24))
            np.testing.assert_array_equal(theta[0], want, f"epoch {e}")
        self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))

    def test_keep_removes_old_sample_checkpoints(self):
        run, p = self.new_run(keep=1, epochs=3)
        self.summary_lines(p, 3)
        for e in (1, 2):
            for i in range(3):
                self.assertFalse(os.path.exists(os.path.join(sample_dir(run, e, i),
                                                             "checkpoint.h5")),
                                 f"keep = 1: epoch {e} sample {i}'s checkpoint kept")
                self.assertTrue(os.path.isfile(os.path.join(sample_dir(run, e, i), "eval.h5")))
        for i in range(3):
            self.assertTrue(os.path.isfile(os.path.join(sample_dir(run, 3, i), "checkpoint.h5")))
        for e in (1, 2, 3):
            self.assertTrue(os.path.isfile(os.path.join(epoch_dir(run, e), "start.h5")))
        self.all_valid(run)
        # the pruned run is complete: resuming it does nothing
        before = {f: snapshot(run)[f] for f in T.h5_files(run)}
        q = self.driver("--resume", run)
        self.finished(q, "--resume of a finished keep = 1 run")
        self.assertEqual({f: snapshot(run)[f] for f in T.h5_files(run)}, before)

    def test_keep_after_a_crash_before_pruning(self):
        """A run that crashed after the last broadcast but before its pruning (the state
        made here step by step): --resume still removes what keep = 1 says."""
        ref, _ = self.reference()
        run = self.path("keep-crash")
        os.makedirs(run)
        with open(os.path.join(ref, "config")) as f:
            config = re.sub(r"^epochs = .*$", "epochs = 2", f.read(), flags=re.M)
            # the free form, whose theta rows the test sets directly
            config = re.sub(r"^form = .*$", "form = free", config, flags=re.M)
            config = re.sub(r"^keep = .*$", "keep = 1", config, flags=re.M)
        with open(os.path.join(run, "config"), "w") as f:
            f.write(config)
        self.step("setup", run)
        for e in (1, 2):
            self.step("draw", run, e)
            for i in range(3):
                self.step("sample", run, e, i)
            if e == 1:
                self.step("reduce", run, e)
        # epoch 2's reduce by hand, without the pruning that ends it
        d = epoch_dir(run, 2)
        evals = [os.path.join(sample_dir(run, 2, i), "eval.h5") for i in range(3)]
        ckpts = [os.path.join(sample_dir(run, 2, i), "checkpoint.h5") for i in range(3)]
        os.makedirs(os.path.join(run, "final"))
        for tool, *args in (
                ("amlfs-reward", "--thetas", f"{d}/thetas.h5", "--metric", "top1", "--out",
                 f"{d}/rewards.h5", *evals),
                ("amlfs-update", "--policy", policy(run, 2), "--thetas", f"{d}/thetas.h5",
                 "--rewards", f"{d}/rewards.h5", "--out", policy(run, 3)),
                ("amlfs-broadcast", "--rewards", f"{d}/rewards.h5", "--out",
                 os.path.join(run, "final/checkpoint.h5"), *ckpts)):
            p = T.run(tool, *args)
            self.assertEqual(p.returncode, 0, f"{tool}: {p.stderr}")
        self.assertTrue(os.path.isfile(os.path.join(sample_dir(run, 1, 0), "checkpoint.h5")))
        p = self.driver("--resume", run)
        self.finished(p, "--resume")
        self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))
        for i in range(3):
            self.assertFalse(os.path.exists(os.path.join(sample_dir(run, 1, i), "checkpoint.h5")),
                             f"keep = 1: epoch 1 sample {i}'s checkpoint kept after --resume")
            self.assertTrue(os.path.isfile(os.path.join(sample_dir(run, 2, i), "checkpoint.h5")))

    # ---- failures inside an epoch -----------------------------------------------------------
    def test_diverged_and_failed_samples_recorded(self):
        """Sample 1 of epoch 1 gets a theta whose loss overflows (t = 1 everywhere, tau's
        slopes and biases 1e308: -log tau = -inf at every p), sample 2's job fails
        (AMLFS_STEP_FAIL); the epoch goes on with sample 0, the run finishes, the rewards
        record both."""
        ref, _ = self.reference()
        run = self.path("diverge")
        os.makedirs(run)
        with open(os.path.join(ref, "config")) as f:
            config = re.sub(r"^epochs = .*$", "epochs = 2", f.read(), flags=re.M)
            # the free form, whose theta rows the test sets directly
            config = re.sub(r"^form = .*$", "form = free", config, flags=re.M)
        with open(os.path.join(run, "config"), "w") as f:
            f.write(config)
        self.step("setup", run)
        self.step("draw", run, 1)
        thetas = os.path.join(epoch_dir(run, 1), "thetas.h5")
        m = 6
        with h5py.File(thetas, "r+") as f:
            theta = f["theta"][()]
            theta[1] = np.concatenate([np.zeros(m), np.ones(m), np.full(m, 1e308),
                                       np.full(m, 1e308)])
            T.set_theta(f, theta)
        self.assertEqual(T.run("amlfs-check", thetas).returncode, 0)
        p = self.driver("--resume", run, AMLFS_STEP_FAIL="1/2")
        self.finished(p)
        self.summary_lines(p, 2)
        self.assertIn("fail", p.stderr)
        rewards = os.path.join(epoch_dir(run, 1), "rewards.h5")
        np.testing.assert_array_equal(T.read(rewards, "excluded"), [0, 3, 1])
        raw = T.read(rewards, "raw")
        self.assertTrue(np.isfinite(raw[0]) and np.isnan(raw[1]) and np.isnan(raw[2]), raw)
        self.assertEqual(T.attr(rewards, "finite"), 1)
        self.assertEqual(T.attr(rewards, "best"), 0)
        self.assertNotEqual(T.attr(rewards, "update_skipped"), "")
        self.assertTrue(T.attr(policy(run, 2), "last_update").startswith("skipped"))
        s1 = sample_dir(run, 1, 1)
        self.assertEqual(T.attr(os.path.join(s1, "checkpoint.h5"), "status"), "diverged")
        self.assertEqual(T.attr(os.path.join(s1, "eval.h5"), "status"), "diverged")
        self.assertFalse(os.path.exists(os.path.join(sample_dir(run, 1, 2), "eval.h5")))
        self.assertTrue(os.path.isfile(os.path.join(sample_dir(run, 1, 2), "log")))
        self.assertEqual(T.attr(os.path.join(epoch_dir(run, 2), "rewards.h5"), "finite"), 3)
        self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))
        self.all_valid(run)

    def test_no_finite_reward_stops_then_resume_goes_on(self):
        run = self.path("stops")
        conf = self.config("stops.conf", epochs=2)
        with self.subTest("the run stops"):
            p = self.driver("--config", conf, "--out", run, abort=epoch_again,
                            AMLFS_STEP_FAIL="1/0 1/1 1/2")
            self.assertEqual(p.returncode, 1, f"exit {p.returncode}, want 1\nstdout:\n"
                             f"{p.stdout[-1500:]}\nstderr:\n{p.stderr[-1500:]}")
            stopped = os.path.join(run, "STOPPED")
            self.assertTrue(os.path.isfile(stopped), "no RUN/STOPPED")
            with open(stopped) as f:
                why = f.read()
            self.assertIn("epoch 1", why)
            self.assertIn("finite", why)
            self.assertLessEqual(len([l for l in p.stdout.splitlines() if EPOCH_LINE.match(l)]),
                                 1, "epoch 1 ran again and again")
            self.assertFalse(os.path.exists(os.path.join(epoch_dir(run, 2), "start.h5")))
        with self.subTest("--resume after the fix"):
            q = self.driver("--resume", run, abort=epoch_again)
            self.finished(q, "--resume after the failures were fixed")
            self.assertFalse(os.path.exists(os.path.join(run, "STOPPED")))
            self.assertEqual(T.attr(os.path.join(epoch_dir(run, 1), "rewards.h5"), "finite"), 3)
            self.assertTrue(os.path.isfile(os.path.join(run, "final/eval-test.h5")))
            self.all_valid(run)

    # ---- bad input ------------------------------------------------------------------------
    def test_bad_config_values_refused(self):
        cases = [
            ("unknown key in the file", {"colour": "red"}, [], ["colour"]),
            ("unknown key in --set", {}, ["--set", "colour=red"], ["colour"]),
            ("sigma out of range", {"sigma": -1}, [], ["sigma"]),
            ("B = 1 in amlfs mode", {"samples": 1}, [], ["samples"]),
            ("jobs = 0", {"jobs": 0}, [], ["jobs"]),
            ("jobs = 0 by --set", {}, ["--set", "jobs=0"], ["jobs"]),
            ("not a number", {"lr": "fast"}, [], ["lr"]),
            ("unknown mode", {"mode": "greedy"}, [], ["mode"]),
            ("replay without a source", {"mode": "replay"}, [], ["replay_run"]),
            ("antithetic with an odd B", {"sampling": "antithetic"}, [], ["antithetic"]),
            ("keep < 0", {"keep": -1}, [], ["keep"]),
            ("unknown form", {"form": "banana"}, [], ["form", "banana"]),
            ("sigma_intercept < 0", {"sigma_intercept": -0.1}, [], ["sigma_intercept"]),
            ("slope_floor < 0 by --set", {}, ["--set", "slope_floor=-1"], ["slope_floor"]),
            ("unknown init", {"init": "huber"}, [], ["init", "huber"]),
        ]
        for n, (what, keys, extra, mentions) in enumerate(cases):
            with self.subTest(what):
                out = self.path(f"bad-{n}")
                p = self.driver("--config", self.config(f"bad-{n}.conf", **keys), "--out", out,
                                *extra)
                self.refused(p, *mentions)
                self.nothing_made(out)

    def test_missing_data_set_refused(self):
        cases = [
            ("fashion-mnist src", {"data": None, "src": "/nonexistent"}),
            ("cifar10 src", {"data": None, "dataset": "cifar10", "src": "/nonexistent"}),
            ("prepared file", {"data": "/nonexistent/data.h5"}),
        ]
        for n, (what, keys) in enumerate(cases):
            with self.subTest(what):
                out = self.path(f"nodata-{n}")
                p = self.driver("--config", self.config(f"nodata-{n}.conf", **keys), "--out", out)
                self.refused(p, "/nonexistent")
                self.nothing_made(out)

    def test_replay_of_a_source_that_cannot_serve_refused(self):
        """Caught before anything runs: a replay_run that is no run, and a schedule longer
        than the replayed run."""
        source, _ = self.reference()
        started = lambda lines: any(EPOCH_LINE.match(l) for l in lines)  # noqa: E731
        for n, (what, keys, mentions) in enumerate((
                ("not a run", {"replay_run": self.tmp}, [self.tmp]),
                ("schedule longer than the source",
                 {"replay_run": source, "replay_form": "schedule", "epochs": 4}, ["epoch"]))):
            with self.subTest(what):
                out = self.path(f"replay-bad-{n}")
                conf = self.config(f"replay-bad-{n}.conf", mode="replay", samples=None, **keys)
                p = self.driver("--config", conf, "--out", out, abort=started)
                self.refused(p, *mentions)
                self.nothing_made(out)

    def test_bad_usage_refused(self):
        conf = self.config()
        for what, args in (("no --out", ["--config", conf]),
                           ("missing config file", ["--config", self.path("none.conf"),
                                                    "--out", self.path("x")]),
                           ("resume of a non-run", ["--resume", self.tmp]),
                           ("resume with --set", ["--resume", self.tmp, "--set", "seed=2"]),
                           ("unknown option", ["--colour"])):
            with self.subTest(what):
                self.refused(self.driver(*args))

    def test_other_config_on_existing_run_refused(self):
        run, _ = self.reference()
        before = snapshot(run)
        p = self.driver("--config", self.config(seed=8), "--out", run)
        self.refused(p, "seed")
        self.assertEqual(snapshot(run), before, "a refused config changed the run")
        p = self.driver("--config", self.config(), "--out", run, "--set", "sigma=0.3")
        self.refused(p, "sigma")
        self.assertEqual(snapshot(run), before, "a refused config changed the run")

    def test_same_config_on_finished_run_resumes(self):
        run, _ = self.reference()
        before = {f: snapshot(run)[f] for f in T.h5_files(run)}
        p = self.driver("--config", os.path.join(self.dir, "reference.conf"), "--out", run)
        self.finished(p, "the same config again")
        self.assertEqual({f: snapshot(run)[f] for f in T.h5_files(run)}, before,
                         "a finished run's files were rewritten")

    def test_help(self):
        p = self.driver("--help")
        self.finished(p, "--help")
        self.assertIn("--resume", p.stdout)
        p = self.driver("--help-config")
        self.finished(p, "--help-config")
        for key in ("keep", "replay_run", "replay_form", "jobs", "samples", "sigma", "mode"):
            self.assertRegex(p.stdout, rf"(?m)^\s+{key}\s", key)


if __name__ == "__main__":
    unittest.main(verbosity=2)
