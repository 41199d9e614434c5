"""The search on a real single-node Slurm (tests/slurm/local-slurm.sh: munged, slurmctld and
slurmd from Debian, configured for this machine in a temporary directory): tiny searches
of 3 epochs with B = 3 through job arrays and chained reductions (slurm/amlfs-submit),
their files compared with h5diff to those of amlfs-run with the same config.

- a plain run: the same content as amlfs-run's; amlfs-report works on it;
- failed tasks (the test hook AMLFS_TASK_KILL): one killed once and retried, one killed
  on every attempt and left out of its epoch (recorded in rewards.h5), one whose whole
  job is killed and submitted again: the same content as amlfs-run's with that one
  sample failing (AMLFS_STEP_FAIL);
- scancel of a whole run, then amlfs-submit --resume; a copy of the cancelled run
  resumed with amlfs-run; a run started by amlfs-run, killed, resumed with amlfs-submit:
  each the same content as a run never stopped;
- an epoch with no finite reward stops the run (RUN/STOPPED, the reduction's log);
- --resume is refused while the run's jobs are queued; bad Slurm settings are exit 2,
  before Slurm is asked anything.

Needs root and the Debian packages slurm-wlm and munge (make deps); where the daemons
cannot start, the test fails with their log lines. About a minute on two cores.
Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import amlfs_test as T  # noqa: E402

SUBMIT = os.path.join(T.ROOT, "slurm", "amlfs-submit")
LOCAL_SLURM = os.path.join(HERE, "local-slurm.sh")
WAIT = 240  # seconds a run may take to finish
CONFIG = {  # a tiny search: 300 training and 100 validation images, batch 50
    "train_size": 300, "val_size": 100, "batch": 50, "lr": 0.002, "samples": 3,
    "epochs": 3, "threads": 1, "jobs": 2, "seed": 7,
}
SLURM_KEYS = {"throttle": 2, "retries": 1, "reduce_time": "10:00"}


def run(cmd, env=None, timeout=120):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                          timeout=timeout)


class LocalSlurm:
    """What the Slurm test classes share: one local Slurm for the class, the tiny data
    set and config, the run directories and the helpers that wait for and compare runs."""
    local_out = {}

    @classmethod
    def start_slurm(cls):
        cls.t0 = time.monotonic()
        cls.dir = tempfile.mkdtemp(prefix="amlfs-slurm-")
        cls.slurm = os.path.join(cls.dir, "slurm")
        cpus = max(os.cpu_count() or 1, 6)  # tasks of one thread, several runs at once
        # the daemons are stopped however the test ends (a SIGTERM included)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        atexit.register(run, [LOCAL_SLURM, "stop", cls.slurm])
        p = run([LOCAL_SLURM, "start", cls.slurm, cpus], timeout=90)
        if p.returncode != 0:
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise RuntimeError("the local Slurm did not start:\n" + p.stdout + p.stderr)

    @classmethod
    def tiny_config(cls):
        """The environment, the data set and the tiny search's config file (cls.config)."""
        cls.env = T.driver_env(SLURM_CONF=os.path.join(cls.slurm, "slurm.conf"))
        cls.env.pop("AMLFS_TASK_KILL", None)
        d = cls.dir
        src = T.fashion_subset(os.path.join(d, "fashion"), n_train=600, n_test=500)
        data = os.path.join(d, "data.h5")
        p = run([os.path.join(T.BIN, "amlfs-prep"), "fashion-mnist", "--src", src, "--out", data,
                 "--train-size", 300, "--val-size", 100, "--seed", 7])
        assert p.returncode == 0, p.stderr
        # the Slurm keys in the config file once amlfs-run knows them (amlfs-run
        # --prepare), else given to amlfs-submit alone
        p = run([T.WORKFLOW + "/amlfs-run", "--help"], env=cls.env)
        keys = dict(CONFIG, data=data)
        cls.slurm_sets = []
        if "--prepare" in p.stdout:
            keys.update(SLURM_KEYS)
        else:
            for k, v in SLURM_KEYS.items():
                cls.slurm_sets += ["--set", f"{k}={v}"]
        cls.config = T.write_config(os.path.join(d, "tiny.conf"), keys)

    @classmethod
    def run_dir(cls, name):
        return os.path.join(cls.dir, name)

    @classmethod
    def submit(cls, name, *args, **hooks):
        """amlfs-submit of the tiny config into run NAME (args: more options)."""
        p = run([SUBMIT, *args, "--config", cls.config, "--out", cls.run_dir(name)]
                + cls.slurm_sets, env=dict(cls.env, **hooks))
        assert p.returncode == 0, f"amlfs-submit {name}: exit {p.returncode}: {p.stderr}"
        return p

    @classmethod
    def tearDownClass(cls):
        p = run([LOCAL_SLURM, "stop", cls.slurm], timeout=120)
        if p.returncode != 0:
            print(p.stdout + p.stderr, file=sys.stderr)
        print(f"\n[slurm tests: {time.monotonic() - cls.t0:.0f} s]", file=sys.stderr)
        shutil.rmtree(cls.dir, ignore_errors=True)

    # ---- helpers --------------------------------------------------------------------
    def jobs_of(self, name):
        """The run's jobs in the queue (squeue, by the run's job name)."""
        p = run(["squeue", "-h", "--name", "amlfs-" + name, "-o", "%i"], env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def status(self, name):
        p = run([T.WORKFLOW + "/amlfs-step", "status", self.run_dir(name)], env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def slurm_logs(self, name):
        """The run's Slurm job logs and jobs.csv, for failure messages."""
        d = os.path.join(self.run_dir(name), "logs", "slurm")
        text = []
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, f), errors="replace") as fh:
                text.append(f"---- {f}\n{fh.read()[-3000:]}")
        p = run([LOCAL_SLURM, "logs", self.slurm])
        return "\n".join(text) + "\n" + p.stdout[-6000:]

    def wait_for(self, name, until="done"):
        """Waits until the run's step status is `until` (or it stopped) and no job of it
        is left in the queue."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            stopped = os.path.exists(os.path.join(self.run_dir(name), "STOPPED"))
            if (self.status(name) == until or stopped) and not self.jobs_of(name):
                return
            time.sleep(0.5)
        self.fail(f"{name}: not {until} after {WAIT} s (status {self.status(name)}, jobs "
                  f"{self.jobs_of(name)})\n{self.slurm_logs(name)}")

    def assertSameContent(self, name, ref):
        a, b = self.run_dir(ref), self.run_dir(name)
        self.assertEqual(self.local_out.get(ref, (0, ""))[0], 0, self.local_out.get(ref))
        files = T.h5_files(a)
        self.assertEqual(files, T.h5_files(b), f"{name}: not the HDF5 files of {ref}")
        self.assertIn("final/eval-test.h5", files)
        for f in files:
            p = run(["h5diff", os.path.join(a, f), os.path.join(b, f)])
            self.assertEqual(p.returncode, 0, f"{name}/{f} differs from {ref}'s:\n"
                             f"{p.stdout[-2000:]}{p.stderr[-500:]}")
        with open(os.path.join(a, "config")) as fa, open(os.path.join(b, "config")) as fb:
            self.assertEqual(fa.read(), fb.read(), f"{name}/config")

    def jobs_csv(self, name):
        with open(os.path.join(self.run_dir(name), "logs", "slurm", "jobs.csv")) as f:
            rows = [line.rstrip("\n").split(",") for line in f][1:]
        return rows

    def log(self, name, *parts):
        with open(os.path.join(self.run_dir(name), *parts)) as f:
            return f.read()


class SlurmSearch(LocalSlurm, unittest.TestCase):
    """One Slurm and every run for the whole class: the runs are submitted together in
    setUpClass and each test waits for its own."""

    @classmethod
    def setUpClass(cls):
        cls.start_slurm()
        try:
            cls.prepare()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def prepare(cls):
        cls.tiny_config()
        # on Slurm, all at once: plain, failing tasks, to be cancelled, no finite reward
        cls.submit_out = {}
        cls.submit_out["plain"] = cls.submit("plain")
        cls.refused = run([SUBMIT, "--resume", cls.run_dir("plain")], env=cls.env)
        cls.submit_out["failing"] = cls.submit(
            "failing", AMLFS_TASK_KILL="1/2:1 2/1:2 3/0:job")
        cls.submit_out["cancelled"] = cls.submit("cancelled")
        cls.submit_out["stopping"] = cls.submit(
            "stopping", AMLFS_TASK_KILL="2/0:2 2/1:2 2/2:2")
        # here, meanwhile: the references, and a run killed in epoch 2
        refs = {
            "local": subprocess.Popen([T.WORKFLOW + "/amlfs-run", "--config", cls.config,
                                       "--out", cls.run_dir("local")], env=cls.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True),
            "local-failing": subprocess.Popen(
                [T.WORKFLOW + "/amlfs-run", "--config", cls.config, "--out",
                 cls.run_dir("local-failing")], env=dict(cls.env, AMLFS_STEP_FAIL="2/1"),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        }
        cls.cancel_run("cancelled")
        cls.local_out = {}
        for name, p in refs.items():
            out, _ = p.communicate(timeout=WAIT)
            cls.local_out[name] = (p.returncode, out)
        cls.killed_local_run()

    @classmethod
    def cancel_run(cls, name):
        """scancel of the whole run, by its job name, once epoch 2 has been drawn, again
        until nothing of it is queued (a reduction being cancelled may just have
        submitted the next epoch)."""
        marker = os.path.join(cls.run_dir(name), "epoch-0002", "thetas.h5")
        deadline = time.monotonic() + WAIT
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        cls.cancelled_jobs, quiet = [], 0
        while quiet < 4 and time.monotonic() < deadline:
            jobs = run(["squeue", "-h", "--name", "amlfs-" + name, "-o", "%i"],
                       env=cls.env).stdout.split()
            if jobs:
                cls.cancelled_jobs += jobs
                run(["scancel", "--name", "amlfs-" + name], env=cls.env)
                quiet = 0
            else:
                quiet += 1
            time.sleep(0.5)
        cls.cancelled_status = run([T.WORKFLOW + "/amlfs-step", "status", cls.run_dir(name)],
                                   env=cls.env).stdout.strip()

    @classmethod
    def killed_local_run(cls):
        """amlfs-run started, killed (its whole session) once epoch 2 has begun, then
        resumed on Slurm."""
        run_dir = cls.run_dir("local-then-slurm")
        p = subprocess.Popen([T.WORKFLOW + "/amlfs-run", "--config", cls.config, "--out",
                              run_dir], env=cls.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        marker = os.path.join(run_dir, "epoch-0002", "thetas.h5")
        deadline = time.monotonic() + WAIT
        while not os.path.exists(marker) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        T.kill_session(p.pid)
        p.wait()
        cls.killed_status = run([T.WORKFLOW + "/amlfs-step", "status", run_dir], env=cls.env)
        cls.submit_out["local-then-slurm"] = run([SUBMIT, "--resume", run_dir], env=cls.env)

    # ---- the tests ------------------------------------------------------------------
    def test_plain_run_has_amlfs_runs_content(self):
        self.wait_for("plain")
        self.assertSameContent("plain", "local")
        kinds = [(r[1], r[2], r[3]) for r in self.jobs_csv("plain")]
        self.assertEqual(kinds, [("samples", "1", "0"), ("reduce", "1", "0"),
                                 ("samples", "2", "0"), ("reduce", "2", "0"),
                                 ("samples", "3", "0"), ("reduce", "3", "0"),
                                 ("final", "", "0")])
        rows = self.jobs_csv("plain")
        for e in range(3):  # each reduction depended on its epoch's array
            self.assertEqual(rows[2 * e + 1][5], rows[2 * e][4])
        p = run(["scontrol", "show", "job", rows[0][4]], env=self.env)
        self.assertIn("ArrayTaskThrottle=2", p.stdout)
        with open(os.path.join(self.run_dir("plain"), "logs", "slurm", "settings")) as f:
            settings = f.read()
        for line in ("throttle = 2", "retries = 1", "reduce_time = 10:00", "gres = none",
                     "cpus_per_task = 1"):
            self.assertIn(line + "\n", settings)
        for i in range(3):
            log = self.log("plain", "epoch-0002", f"sample-{i:03d}", "log")
            self.assertIn("# slurm: attempt 1 of 2: job ", log)
            self.assertTrue(log.rstrip().endswith("# slurm: done"), log)
        final = [f for f in os.listdir(os.path.join(self.run_dir("plain"), "logs", "slurm"))
                 if f.startswith("final.")]
        self.assertEqual(len(final), 1)
        self.assertIn("done; the best model", self.log("plain", "logs", "slurm", final[0]))
        times = self.log("plain", "logs", "times.csv")
        for phase in ("1,draw,", "3,train+eval,", "3,reduce,", "3,epoch,"):
            self.assertIn(phase, times)
        p = run([os.path.join(T.BIN, "amlfs-report"), self.run_dir("plain")], env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.run_dir("plain"), "report",
                                                    "index.html")))

    def test_resume_refused_while_queued(self):
        self.assertEqual(self.refused.returncode, 2, self.refused.stderr)
        self.assertIn("has jobs in the queue", self.refused.stderr)

    def test_failed_tasks_retried_then_left_out(self):
        self.wait_for("failing")
        self.assertSameContent("failing", "local-failing")
        # killed once, then done on its retry
        log = self.log("failing", "epoch-0001", "sample-002", "log")
        self.assertIn("attempt 1 killed by the test hook", log)
        self.assertIn("attempt 1 of 2: failed, exit 137", log)
        self.assertIn("attempt 2 of 2: exit 0", log)
        self.assertTrue(log.rstrip().endswith("# slurm: done"), log)
        # killed on both attempts: left out, recorded as missing in rewards.h5
        log = self.log("failing", "epoch-0002", "sample-001", "log")
        self.assertEqual(log.count("killed by the test hook"), 2, log)
        self.assertIn("# slurm: left out: 2 attempt(s) failed", log)
        rewards = os.path.join(self.run_dir("failing"), "epoch-0002", "rewards.h5")
        self.assertEqual(list(T.read(rewards, "excluded")), [0, 1, 0])
        self.assertEqual(T.attr(rewards, "finite"), 2)
        # the whole job killed: submitted again by the reduction, then done
        log = self.log("failing", "epoch-0003", "sample-000", "log")
        self.assertIn("kills this job", log)
        self.assertIn("the job ended without a verdict; submitted again (1 of 1)", log)
        self.assertTrue(log.rstrip().endswith("# slurm: done"), log)
        rounds = [(r[1], r[2], r[3], r[6]) for r in self.jobs_csv("failing")]
        self.assertIn(("samples", "3", "1", "0"), rounds)
        self.assertEqual(list(T.read(os.path.join(self.run_dir("failing"), "epoch-0003",
                                                  "rewards.h5"), "excluded")), [0, 0, 0])

    def test_cancelled_run_resumed(self):
        name = "cancelled"
        self.assertTrue(self.cancelled_jobs, "nothing was queued to cancel\n" + self.slurm_logs(name))
        self.assertNotEqual(self.cancelled_status, "done")
        self.assertFalse(self.jobs_of(name))
        copy = self.run_dir("cancelled-then-local")
        shutil.copytree(self.run_dir(name), copy, symlinks=True)
        resumed_at = len(self.jobs_csv(name))
        p = run([SUBMIT, "--resume", self.run_dir(name), "--set", "throttle=1"], env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # the copy, resumed here
        p = T.run_workflow("amlfs-run", "--resume", copy, env=self.env, timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertSameContent("cancelled-then-local", "local")
        self.wait_for(name)
        self.assertSameContent(name, "local")
        # the new throttle holds for the arrays the reductions submitted after the resume
        arrays = [r[4] for r in self.jobs_csv(name)[resumed_at:] if r[1] == "samples"]
        self.assertTrue(arrays)
        for job in arrays:
            p = run(["scontrol", "show", "job", job], env=self.env)
            self.assertIn("ArrayTaskThrottle=1", p.stdout)

    def test_local_run_resumed_on_slurm(self):
        self.assertIn(self.killed_status.stdout.strip(), ("samples 2", "reduce 2", "draw 3"))
        p = self.submit_out["local-then-slurm"]
        self.assertEqual(p.returncode, 0, p.stderr)
        self.wait_for("local-then-slurm")
        self.assertSameContent("local-then-slurm", "local")

    def test_no_finite_reward_stops_the_run(self):
        name = "stopping"
        self.wait_for(name)
        stopped = self.log(name, "STOPPED")
        self.assertIn("epoch 2", stopped)
        reduce_logs = [f for f in os.listdir(os.path.join(self.run_dir(name), "logs", "slurm"))
                       if f.startswith("epoch-0002-reduce.")]
        self.assertEqual(len(reduce_logs), 1)
        self.assertIn("amlfs-reduce: epoch 2: the run stops:",
                      self.log(name, "logs", "slurm", reduce_logs[0]))
        self.assertEqual(T.attr(os.path.join(self.run_dir(name), "epoch-0002", "rewards.h5"),
                                "finite"), 0)
        self.assertFalse(os.path.exists(os.path.join(self.run_dir(name), "epoch-0003",
                                                     "thetas.h5")))
        self.assertEqual([r[1] for r in self.jobs_csv(name)], ["samples", "reduce"] * 2)
        p = run([SUBMIT, "--status", self.run_dir(name)], env=self.env)
        self.assertIn("stopped: epoch 2", p.stdout)

    def test_bad_slurm_settings(self):
        for sets, mentions in ((["--set", "retries=x"], "retries"),
                               (["--set", "time=soon"], "time"),
                               (["--set", "nosuchkey=1"], "nosuchkey")):
            out = self.run_dir("bad-" + mentions)
            p = run([SUBMIT, "--config", self.config, "--out", out] + sets, env=self.env)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(mentions, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(out, "epoch-0001")))
        # refused before Slurm is asked anything: the same where no cluster answers
        nowhere = dict(self.env, SLURM_CONF=os.path.join(self.run_dir("no-cluster"), "slurm.conf"))
        p = run([SUBMIT, "--config", self.config, "--out", self.run_dir("bad-nowhere"), "--set",
                 "mem=lots"], env=nowhere)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("mem = 'lots'", p.stderr)
        bad = T.write_config(self.run_dir("bad.conf"), dict(CONFIG, nosuchkey=1))
        p = run([SUBMIT, "--config", bad, "--out", self.run_dir("bad")], env=self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{bad}:", p.stderr)
        self.assertIn("nosuchkey", p.stderr)
        p = run([SUBMIT, "--resume", self.run_dir("plain"), "--set", "lr=1"], env=self.env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("Slurm keys only", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
