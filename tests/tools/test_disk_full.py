"""A full file system is said as such: a tool writing onto a tmpfs too small for its
output exits 1 with one line naming the file and "no space left on device", and leaves
neither the file nor its temporary. Needs root to mount the tmpfs: skipped (with a note)
otherwise."""
import os
import shutil
import subprocess
import tempfile
import unittest

from amlfs_test import fashion_subset, run


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="amlfs-full-")
        self.small = os.path.join(self.tmp, "small")
        os.makedirs(self.small)
        if os.geteuid() != 0:
            self.skipTest("not root: no tmpfs to fill (run as root to check disk-full messages)")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", self.small],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {p.stderr.strip()}")

    def tearDown(self):
        subprocess.run(["umount", self.small], capture_output=True)
        shutil.rmtree(self.tmp)

    def test_no_space_named(self):
        src = fashion_subset(os.path.join(self.tmp, "src"), 200, 50)
        data = os.path.join(self.tmp, "data.h5")
        p = run("amlfs-prep", "fashion-mnist", "--src", src, "--train-size", 100,
                "--val-size", 50, "--out", data)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = os.path.join(self.small, "start.h5")
        p = run("amlfs-init", "--model", "small-cnn", "--data", data, "--out", out,
                "--epochs", 1)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(out, lines[0])
        self.assertIn("no space left on device", lines[0])
        self.assertEqual(os.listdir(self.small), [], "the output or its temporary was left")
        print(f"ok: {lines[0]}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
