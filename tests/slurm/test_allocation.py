"""A search inside one Slurm allocation (amlfs-submit --allocation; amlfs-run in salloc),
on a real single-node Slurm (tests/slurm/local-slurm.sh), with the tiny search of
test_slurm.py; files compared with h5diff to those of amlfs-run on this machine.

- allocation mode: one job of throttle tasks, each sample an srun job step: the same
  files as amlfs-run's and as the job-array mode's;
- amlfs-run inside salloc (one task of two CPUs) runs its samples as job steps, two at
  once: the same files;
- scontrol requeue of the allocation mid-epoch: Slurm starts it again and the run ends
  with the same files;
- USR1 (Slurm's warning before the time limit, here scancel --signal=USR1 --batch): the
  job submits its successor (afterany), the driver lets its running samples finish and
  starts no more; the same files at the end, no sample trained twice;
- a local amlfs-run --resume is refused while the allocation is queued or running;
- an allocation smaller than one sample (fewer CPUs than threads) is exit 2, one line,
  before anything is queued or written, from amlfs-submit and from amlfs-run in salloc.

Needs root and Debian's slurm-wlm and munge, as test_slurm.py. About two minutes on two
cores. Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import test_slurm as S  # noqa: E402
from test_slurm import T, run, WAIT, SUBMIT  # noqa: E402

AMLFS_RUN = os.path.join(T.WORKFLOW, "amlfs-run")


class AllocationSearch(S.LocalSlurm, unittest.TestCase):
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
        cls.local_out = {}
        # refused first, while nothing of the others is queued
        cls.too_small = {
            "submit": run([SUBMIT, "--allocation", "--config", cls.config, "--out",
                           cls.run_dir("small-submit"), "--set", "cpus_per_task=1", "--set",
                           "threads=2"], env=cls.env),
            "salloc": run(["salloc", "--quiet", "-n1", "-c1", AMLFS_RUN, "--config", cls.config,
                           "--set", "threads=2", "--out", cls.run_dir("small-salloc")],
                          env=cls.env),
            # a time limit that holds no epoch of a full Fashion-MNIST search, one sample
            # at a time (the estimate from bench/results/train.json's rate)
            "short": run([SUBMIT, "--allocation", "--out", cls.run_dir("small-short"),
                          "--set", "samples=8", "--set", "throttle=1", "--set", "threads=1",
                          "--set", "time=6"], env=cls.env),
        }
        cls.queue_after_refusals = run(["squeue", "-h", "--name", "amlfs-small-submit", "-o",
                                        "%i"], env=cls.env).stdout.split()
        for name in ("alloc", "requeued", "told"):
            cls.submit(name, "--allocation")
        # the job queued or its driver running: a local driver is refused either way
        cls.refused = run([AMLFS_RUN, "--resume", cls.run_dir("alloc")], env=cls.env)
        cls.submit("array")
        procs = {
            "local": subprocess.Popen([AMLFS_RUN, "--config", cls.config, "--out",
                                       cls.run_dir("local")], env=cls.env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
            # one task of two CPUs: two samples of one thread at once
            "salloc": subprocess.Popen(["salloc", "--quiet", "-n1", "-c2", AMLFS_RUN, "--config",
                                        cls.config, "--out", cls.run_dir("salloc")],
                                       env=cls.env, text=True, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT),
        }
        cls.requeued_status = cls.interrupt("requeued", requeue=True)
        cls.told_status = cls.interrupt("told", requeue=False)
        for name, p in procs.items():
            out, _ = p.communicate(timeout=WAIT)
            cls.local_out[name] = (p.returncode, out)

    @classmethod
    def allocation_job(cls, name, row=-1):
        with open(os.path.join(cls.run_dir(name), "logs", "slurm", "jobs.csv")) as f:
            return f.read().splitlines()[row].split(",")[4]

    @classmethod
    def interrupt(cls, name, requeue):
        """Once epoch 2 is drawn (its samples starting): scontrol requeue of the run's
        allocation, or USR1 to its batch shell. Returns amlfs-step status just after."""
        marker = os.path.join(cls.run_dir(name), "epoch-0002", "thetas.h5")
        deadline = time.monotonic() + WAIT
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        job = cls.allocation_job(name)
        if requeue:
            p = run(["scontrol", "requeue", job], env=cls.env)
            assert p.returncode == 0, p.stderr
            # a requeued job waits two minutes before it may start again: not here
            while time.monotonic() < deadline:
                state = run(["squeue", "-h", "-j", job, "-o", "%T"], env=cls.env).stdout.strip()
                # the node must have finished killing the old instance first: slurmd
                # refuses to launch a job id it is still cleaning up ("already killed,
                # do not launch batch job"), and the requeued job is then lost
                node = run(["sinfo", "-h", "-o", "%T"], env=cls.env).stdout
                if state == "PENDING" and "completing" not in node:
                    run(["scontrol", "update", f"jobid={job}", "StartTime=now"], env=cls.env)
                    break
                time.sleep(0.2)
        else:
            p = run(["scancel", "--batch", "--signal=USR1", job], env=cls.env)
            assert p.returncode == 0, p.stderr
        return run([T.WORKFLOW + "/amlfs-step", "status", cls.run_dir(name)],
                   env=cls.env).stdout.strip()

    def allocation_out(self, name):
        d = os.path.join(self.run_dir(name), "logs", "slurm")
        return "".join(self.log(name, "logs", "slurm", f) for f in sorted(os.listdir(d))
                       if f.startswith("allocation."))

    # ---- the tests ------------------------------------------------------------------
    def test_allocation_has_the_files_of_amlfs_run_and_job_arrays(self):
        self.wait_for("alloc")
        self.assertSameContent("alloc", "local")
        self.wait_for("array")
        self.assertSameContent("array", "local")
        self.assertSameContent("alloc", "array")
        rows = self.jobs_csv("alloc")
        self.assertEqual([r[1] for r in rows], ["allocation"], rows)
        p = run(["scontrol", "show", "job", rows[0][4]], env=self.env)
        for field in ("NumTasks=2 ", "CPUs/Task=1 ", "Requeue=1 "):  # throttle = 2 tasks
            self.assertIn(field, p.stdout)
        # a Slurm setting of the submission, not of the search
        self.assertIn("allocation = 1\n", self.log("alloc", "logs", "slurm", "settings"))
        self.assertIn("allocation = 0\n", self.log("alloc", "config"))
        out = self.allocation_out("alloc")
        self.assertIn(f"2 job(s) x 1 thread(s) on cpu, srun job steps of Slurm job {rows[0][4]}",
                      out)
        self.assertIn("# slurm: amlfs-run exit 0", out)
        for phase in ("1,draw,", "3,train+eval,", "3,compute,", "3,reduce,", "3,epoch,"):
            self.assertIn(phase, self.log("alloc", "logs", "times.csv"))

    def test_local_driver_refused_while_the_allocation_lives(self):
        self.assertEqual(self.refused.returncode, 2, self.refused.stderr)
        self.assertIn("is in use by", self.refused.stderr)

    def test_amlfs_run_in_salloc_runs_job_steps(self):
        code, out = self.local_out["salloc"]
        self.assertEqual(code, 0, out)
        self.assertIn("2 job(s) x 1 thread(s) on cpu, srun job steps of Slurm job", out)
        self.assertSameContent("salloc", "local")

    def test_requeued_mid_epoch(self):
        self.assertIn(self.requeued_status, ("samples 2", "reduce 2", "draw 3"))
        self.wait_for("requeued")
        self.assertSameContent("requeued", "local")
        self.assertEqual([r[1] for r in self.jobs_csv("requeued")], ["allocation"])
        self.assertIn("restarted by Slurm 1 time(s)", self.allocation_out("requeued"))

    def test_told_usr1_submits_its_successor(self):
        self.assertIn(self.told_status, ("samples 2", "reduce 2", "draw 3"))
        self.wait_for("told")
        self.assertSameContent("told", "local")
        rows = self.jobs_csv("told")
        self.assertEqual([r[1] for r in rows], ["allocation", "allocation"], rows)
        self.assertEqual(rows[1][5], rows[0][4])  # afterany the told job
        out = self.allocation_out("told")
        self.assertIn("# slurm: USR1 at", out)
        self.assertIn("amlfs-run exit 138", out)
        self.assertIn("# slurm: amlfs-run exit 0", out)
        # the samples running when it was told finished: none was started twice
        for i in range(3):
            log = self.log("told", "epoch-0002", f"sample-{i:03d}", "log")
            self.assertEqual(log.count(f" epoch 2 sample {i} on "), 1, log)

    def test_allocation_smaller_than_a_sample(self):
        for name, mentions in (("submit", "cpus_per_task = 1"), ("salloc", "CPU(s)")):
            p = self.too_small[name]
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertIn(mentions, p.stderr)
            self.assertIn("threads = 2", p.stderr)
            self.assertFalse(os.path.exists(self.run_dir("small-" + name)))
        self.assertEqual(self.queue_after_refusals, [])

    def test_time_too_short_for_an_epoch(self):
        p = self.too_small["short"]
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertIn("time = 6 leaves 60 s for epochs", p.stderr)
        self.assertIn("estimated from bench/results/train.json", p.stderr)
        self.assertFalse(os.path.exists(self.run_dir("small-short")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
