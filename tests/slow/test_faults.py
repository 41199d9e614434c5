"""The short fault campaign (bench/faults --quick): a few SIGKILLs with resume, damaged
files between a kill and the resume, two drivers on one run directory, a full disk
(root only) and bad config values; every faulted run must end with the files of a run
never faulted, or be refused with one line naming the problem. Plain build only, run
once (tests/run.sh BUILD --slow); the full campaign is bench/faults."""
import os
import subprocess
import sys
import unittest

ROOT = os.environ.get("AMLFS_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


class Faults(unittest.TestCase):
    def test_quick_campaign(self):
        env = dict(os.environ)
        env.setdefault("AMLFS_BIN", os.path.join(ROOT, "build", "rel", "bin"))
        p = subprocess.run([os.path.join(ROOT, "bench", "faults"), "--quick", "--seed", "7"],
                           capture_output=True, text=True, env=env, timeout=1800)
        sys.stdout.write(p.stdout[-3000:])
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        self.assertIn("0 not survived", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
