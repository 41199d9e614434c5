"""Checksums on every file the tools write (DESIGN.md 2, the reliability issue): the HDF5
1.10 format (superblock version 3: checksummed metadata, attributes included) and
Fletcher32 on every non-empty dataset; damage anywhere in a dataset's stored values is
found by amlfs-check and by the tools that read the file, damage to an attribute value
by amlfs-check and amlfs-reward. Files of the format before (tests/fixtures/old-format/,
written by the tools of commit 7abac7e: superblock version 0, contiguous datasets, no
checksums) still validate and still read."""
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np

from amlfs_test import ROOT, fashion_subset, run, sanitized

OLD = os.path.join(ROOT, "tests", "fixtures", "old-format")


def superblock_version(path):
    with open(path, "rb") as f:
        head = f.read(9)
    assert head[:8] == b"\x89HDF\r\n\x1a\n", path
    return head[8]


def chunk_regions(path):
    """(dataset, byte offset, size) of every stored chunk of every dataset."""
    regions = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.size:
                assert obj.chunks and obj.fletcher32, f"{path}: /{name} is not checksummed"
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    regions.append((name, info.byte_offset, info.size))
        f.visititems(visit)
    return regions


def assert_usage_error(test, p, path):
    """Exit 2 and one line on stderr that names the file."""
    test.assertEqual(p.returncode, 2, p.stderr)
    lines = p.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, p.stderr)
    test.assertIn(path, lines[0])


def damage(src, dst, pos, rng):
    shutil.copy(src, dst)
    with open(dst, "r+b") as f:
        f.seek(pos)
        old = f.read(16)
        new = old
        while new == old:
            new = rng.integers(0, 256, len(old), dtype=np.uint8).tobytes()
        f.seek(pos)
        f.write(new)


class Checksums(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="amlfs-sums-")
        cls.data = os.path.join(cls.tmp, "data.h5")
        src = fashion_subset(os.path.join(cls.tmp, "src"), 400, 100)
        p = run("amlfs-prep", "fashion-mnist", "--src", src, "--train-size", 300,
                "--val-size", 100, "--seed", 1, "--out", cls.data)
        assert p.returncode == 0, p.stderr
        cls.ckpt = os.path.join(cls.tmp, "start.h5")
        p = run("amlfs-init", "--model", "small-cnn", "--data", cls.data, "--out", cls.ckpt,
                "--epochs", 1)
        assert p.returncode == 0, p.stderr
        cls.eval = os.path.join(cls.tmp, "eval.h5")
        p = run("amlfs-eval", "--checkpoint", cls.ckpt, "--data", cls.data, "--split", "val",
                "--out", cls.eval, "--threads", 1)
        assert p.returncode == 0, p.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_new_files_are_checksummed(self):
        for path in (self.data, self.ckpt, self.eval):
            self.assertEqual(superblock_version(path), 3, path)
            chunk_regions(path)  # asserts Fletcher32 on every non-empty dataset

    def test_damaged_values_are_found(self):
        rng = np.random.default_rng(2019)
        regions = chunk_regions(self.ckpt)
        bad = os.path.join(self.tmp, "bad.h5")
        trials = 100
        for k in range(trials):
            name, off, size = regions[rng.integers(len(regions))]
            damage(self.ckpt, bad, off + int(rng.integers(0, max(1, size - 16))), rng)
            p = run("amlfs-check", bad)
            assert_usage_error(self, p, bad)
            self.assertIn("damaged", p.stderr, f"trial {k}: /{name}")
            if k < (5 if sanitized() else 20):  # the reading tool, on a subset (slower)
                out = os.path.join(self.tmp, f"eval-{k}.h5")
                q = run("amlfs-eval", "--checkpoint", bad, "--data", self.data, "--split",
                        "val", "--out", out, "--threads", 1)
                self.assertNotEqual(q.returncode, 0, f"trial {k}: amlfs-eval read /{name}")
                self.assertFalse(os.path.exists(out))
        print(f"ok: {trials} of {trials} 16-byte overwrites inside the checkpoint's datasets "
              "found by amlfs-check")

    def test_damaged_attribute_is_found(self):
        # the eval's top-1 value, found by its bytes in the object header
        with h5py.File(self.eval, "r") as f:
            top1 = float(f.attrs["top1"])
        with open(self.eval, "rb") as f:
            raw = f.read()
        pos = raw.find(np.float64(top1).tobytes())
        self.assertGreater(pos, 0, "the attribute's bytes were not found")
        self.assertEqual(raw.find(np.float64(top1).tobytes(), pos + 1), -1)
        bad = os.path.join(self.tmp, "bad-eval.h5")
        shutil.copy(self.eval, bad)
        with open(bad, "r+b") as f:
            f.seek(pos)
            f.write(np.float64(0.987654321).tobytes())
        assert_usage_error(self, run("amlfs-check", bad), bad)
        # amlfs-reward meets it as a damaged input: excluded (or refused), never used
        thetas = os.path.join(self.tmp, "thetas.h5")
        pol = os.path.join(self.tmp, "policy.h5")
        self.assertEqual(run("amlfs-init", "--policy-only", "--out", pol).returncode, 0)
        self.assertEqual(run("amlfs-sample", "--policy", pol, "--epoch", 1, "--samples", 2,
                             "--out", thetas).returncode, 0)
        rewards = os.path.join(self.tmp, "rewards.h5")
        p = run("amlfs-reward", "--thetas", thetas, "--out", rewards, self.eval, bad)
        if p.returncode == 0:
            with h5py.File(rewards, "r") as f:
                self.assertEqual(list(f["excluded"][:]), [0, 1])
                self.assertNotAlmostEqual(float(f["raw"][1]) if np.isfinite(f["raw"][1])
                                          else 0.0, 0.987654321)

    def test_old_files_still_read(self):
        for name in ("checkpoint", "eval", "policy", "rewards", "thetas"):
            path = os.path.join(OLD, name + ".h5")
            self.assertEqual(superblock_version(path), 0, path)
            p = run("amlfs-check", path)
            self.assertEqual(p.returncode, 0, p.stderr)
        out = os.path.join(self.tmp, "old-eval.h5")
        p = run("amlfs-eval", "--checkpoint", os.path.join(OLD, "checkpoint.h5"), "--data",
                self.data, "--split", "val", "--out", out, "--threads", 1)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(superblock_version(out), 3)
        nxt = os.path.join(self.tmp, "old-next.h5")
        p = run("amlfs-update", "--policy", os.path.join(OLD, "policy.h5"), "--thetas",
                os.path.join(OLD, "thetas.h5"), "--rewards", os.path.join(OLD, "rewards.h5"),
                "--out", nxt)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
