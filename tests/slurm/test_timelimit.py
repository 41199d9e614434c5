"""A search longer than its allocation's real Slurm time limit (amlfs-submit --allocation,
time = 1 minute), on the local single-node Slurm of test_slurm.py: Slurm itself tells each
allocation (USR1, sbatch --signal=B:USR1@signal_time) that its limit is near, the job
submits its successor and drains; the chain of allocations ends with the files of
amlfs-run on this machine (compared with h5diff, as the other Slurm tests do).

When Slurm sends the signal: slurmctld checks the time limits of running jobs once every
30 s (its PERIODIC_TIMEOUT, a constant, not a slurm.conf setting; here the warnings came at
checks exactly 30 s apart) and sends the warning at the first check where
now + signal_time + 30 >= the job's end; sbatch(1) documents "up to 60 seconds earlier
than specified". The signal never comes late, only early. With time = 1 (60 s) and
signal_time = 20 the allocation is told between about 10 and 40 s after it started (at
worst, the documented 60 s, right at its start), and keeps at least 20 s to finish its
running samples (each a few seconds here) before the limit ends it. A smaller
signal_time would leave too little room to drain on two busy cores; a larger one (45 s)
would have every allocation told at its first check, 0 to 30 s after its start, before
it had done much. The limit itself is enforced by the same check (0 to 30 s after the
end) with KillWait = 2 s: an allocation that did not drain in time ends TIMEOUT, and the
samples it cut short are done again by its successor. Either end is accepted; which one
each allocation had is printed with the figures.

Needs root and Debian's slurm-wlm and munge, as test_slurm.py. About three to five
minutes on two cores (the allocations are minutes of Slurm time: a slow test).
Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import datetime
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import test_slurm as S  # noqa: E402
from test_slurm import T, run, SUBMIT  # noqa: E402

AMLFS_RUN = os.path.join(T.WORKFLOW, "amlfs-run")
LIMIT_MIN = 1       # the allocation's time limit, minutes (Slurm's granularity)
SIGNAL_TIME = 20    # seconds before it that Slurm tells the job (see above)
CHAIN_WAIT = 600    # seconds the chain of allocations may take to finish the search
# samples of a few seconds (12000 training images of Fashion-MNIST, one thread), twelve
# epochs of B = 3, two at a time: about 80 s of work, two to four allocations
CONFIG = dict(S.CONFIG, train_size=12000, val_size=100, epochs=12)
KEYS = dict(S.SLURM_KEYS, time=LIMIT_MIN, signal_time=SIGNAL_TIME)


def utc(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


class TimeLimitedSearch(S.LocalSlurm, unittest.TestCase):
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
        cls.env = T.driver_env(SLURM_CONF=os.path.join(cls.slurm, "slurm.conf"))
        cls.env.pop("AMLFS_TASK_KILL", None)
        d = cls.dir
        n = CONFIG["train_size"] + CONFIG["val_size"]
        src = T.fashion_subset(os.path.join(d, "fashion"), n_train=n, n_test=500)
        data = os.path.join(d, "data.h5")
        p = run([os.path.join(T.BIN, "amlfs-prep"), "fashion-mnist", "--src", src, "--out", data,
                 "--train-size", CONFIG["train_size"], "--val-size", CONFIG["val_size"],
                 "--seed", CONFIG["seed"]])
        assert p.returncode == 0, p.stderr
        # the Slurm keys in the config file: the local run's config is the same
        cls.config = T.write_config(os.path.join(d, "limited.conf"),
                                    dict(CONFIG, data=data, **KEYS))
        cls.t_submit = time.monotonic()
        cls.submitted = run([SUBMIT, "--allocation", "--config", cls.config, "--out",
                             cls.run_dir("limited")], env=cls.env)
        assert cls.submitted.returncode == 0, cls.submitted.stderr
        # meanwhile, here: the reference
        t = time.monotonic()
        p = subprocess.run([AMLFS_RUN, "--config", cls.config, "--out", cls.run_dir("local")],
                           env=cls.env, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=CHAIN_WAIT)
        cls.local_out = {"local": (p.returncode, p.stdout)}
        cls.local_seconds = time.monotonic() - t
        # the chain: done, and nothing of it left in the queue
        name, cls.chain_seconds = "limited", None
        deadline = cls.t_submit + CHAIN_WAIT
        while time.monotonic() < deadline:
            status = run([T.WORKFLOW + "/amlfs-step", "status", cls.run_dir(name)],
                         env=cls.env).stdout.strip()
            queued = run(["squeue", "-h", "--name", "amlfs-" + name, "-o", "%i"],
                         env=cls.env).stdout.split()
            if (status == "done" or os.path.exists(os.path.join(cls.run_dir(name), "STOPPED"))) \
                    and not queued:
                cls.chain_seconds = time.monotonic() - cls.t_submit
                break
            time.sleep(1)

    # ---- helpers --------------------------------------------------------------------
    def allocations(self):
        """The run's allocation jobs, in order: (job, depends_on) from jobs.csv."""
        rows = self.jobs_csv("limited")
        self.assertEqual({r[1] for r in rows}, {"allocation"}, rows)
        return [(r[4], r[5]) for r in rows]

    def jobcomp(self):
        """Slurm's own record of each ended job (JobCompType=jobcomp/filetxt): job id ->
        its fields (JobState, StartTime, EndTime, TimeLimit...)."""
        jobs = {}
        with open(os.path.join(self.slurm, "jobcomp.txt")) as f:
            for line in f:
                fields = dict(re.findall(r"(\w+)=(\S*)", line))
                if "JobId" in fields:
                    jobs[fields["JobId"]] = fields
        return jobs

    # ---- the test -------------------------------------------------------------------
    def test_time_limit_shorter_than_the_search(self):
        name = "limited"
        self.assertIsNotNone(self.chain_seconds,
                             f"the chain did not finish the search in {CHAIN_WAIT} s\n"
                             + self.slurm_logs(name))
        code, out = self.local_out["local"]
        self.assertEqual(code, 0, out)
        self.assertFalse(os.path.exists(os.path.join(self.run_dir(name), "STOPPED")))
        self.assertSameContent(name, "local")

        jobs = self.allocations()
        for (job, after), (before, _) in zip(jobs[1:], jobs):
            self.assertEqual(after, before, jobs)  # each the successor of the one before
        self.assertEqual(jobs[0][1], "")
        comp = self.jobcomp()
        logs_dir = os.path.join(self.run_dir(name), "logs", "slurm")
        ran = [j for j, _ in jobs if os.path.exists(os.path.join(logs_dir, f"allocation.{j}.out"))]
        self.assertEqual(ran, [j for j, _ in jobs][:len(ran)], "a job ran after one that did not")
        self.assertGreaterEqual(len(ran), 2, f"one allocation held the whole search: {jobs}")
        figures = []
        if len(ran) < len(jobs):
            # the last one told submitted a successor, then finished the search: cancelled
            self.assertEqual(len(jobs) - len(ran), 1, jobs)
            self.assertIn(f"the search is done: successor job {jobs[-1][0]} cancelled",
                          self.log(name, "logs", "slurm", f"allocation.{ran[-1]}.out"))
            figures.append(f"  job {jobs[-1][0]}: cancelled before it started (the search "
                           "was done)")
        for i, job in enumerate(ran):
            log = self.log(name, "logs", "slurm", f"allocation.{job}.out")
            c = comp.get(job)
            self.assertIsNotNone(c, f"job {job}: not in jobcomp.txt\n{self.slurm_logs(name)}")
            # the real limit: one minute, Slurm's; this test sends no signal
            self.assertIn(c["TimeLimit"], (str(LIMIT_MIN), f"00:{LIMIT_MIN:02d}:00"), c)
            self.assertIn(c["JobState"], ("COMPLETED", "TIMEOUT"), f"job {job}: {c}\n{log}")
            held = (datetime.datetime.fromisoformat(c["EndTime"])
                    - datetime.datetime.fromisoformat(c["StartTime"])).total_seconds()
            # the limit is enforced within a check period (30 s) and KillWait after it
            self.assertLessEqual(held, LIMIT_MIN * 60 + 30 + 2 + 5, c)
            started = re.findall(r"# slurm: allocation job \d+ on .*, (\S+Z)$", log, re.M)
            self.assertEqual(len(started), 1, log)
            told = [(utc(t) - utc(started[0])).total_seconds()
                    for t in re.findall(r"# slurm: USR1 at (\S+Z):", log)]
            if job != ran[-1]:
                # told by Slurm before its limit (never late; up to 60 s early), once
                self.assertEqual(len(told), 1, f"job {job}: not told once\n{log}")
                self.assertLess(told[0], LIMIT_MIN * 60, log)
                self.assertGreaterEqual(told[0], LIMIT_MIN * 60 - SIGNAL_TIME - 60 - 1, log)
                if c["JobState"] == "COMPLETED":  # drained in time: stopped, as told
                    self.assertIn("# slurm: amlfs-run exit 138", log)
                figures.append(f"  job {job}: {c['JobState']}, held {held:.0f} s, told by "
                               f"Slurm {told[0]:.0f} s after its start")
            else:
                self.assertIn("# slurm: amlfs-run exit 0", log)
                self.assertEqual(c["JobState"], "COMPLETED", log)
                figures.append(f"  job {job}: {c['JobState']}, held {held:.0f} s, finished "
                               f"the search" + (f" (told {told[0]:.0f} s after its start)"
                                                if told else ""))
        timeouts = sum(comp[j]["JobState"] == "TIMEOUT" for j in ran)
        if timeouts == 0:
            # every allocation drained: no sample was started twice
            for e in range(1, CONFIG["epochs"] + 1):
                for s in range(CONFIG["samples"]):
                    log = self.log(name, f"epoch-{e:04d}", f"sample-{s:03d}", "log")
                    self.assertEqual(log.count(f" epoch {e} sample {s} on "), 1, log)
        print(f"\n[time limit: {len(ran)} allocation(s) of {LIMIT_MIN} min, signal_time "
              f"{SIGNAL_TIME} s; the search in {self.chain_seconds:.0f} s from submission "
              f"(amlfs-run here, meanwhile: {self.local_seconds:.0f} s); the files equal "
              f"amlfs-run's]\n" + "\n".join(figures), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
