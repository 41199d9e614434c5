"""The workflow's hand-overs, on one tiny finished run (300 training images, B = 2,
2 epochs, 1 job of 1 thread): epoch-(e+1)/start.h5 is the bytes of the best sample's
checkpoint of epoch e and final/checkpoint.h5 those of the last epoch's best; and invalid
files (truncated, junk, a valid file of the wrong epoch) met by a resumed run at a
sample's eval and checkpoint are made again, so that the resumed run ends with the files
of the run never disturbed (every HDF5 file byte-identical). Run with /usr/bin/python3."""
import filecmp
import hashlib
import os
import shutil
import tempfile
import unittest

import amlfs_test as T

TIMEOUT = 240 if T.sanitized() else 120


def digest(run):
    out = {}
    for rel in T.h5_files(run):
        with open(os.path.join(run, rel), "rb") as f:
            out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


class Workflow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="amlfs-workflow-test-")
        src = T.fashion_subset(os.path.join(cls.dir, "fashion-mnist"), 600, 100)
        cls.data = os.path.join(cls.dir, "data.h5")
        T.must("amlfs-prep", "fashion-mnist", "--src", src, "--out", cls.data,
               "--train-size", 300, "--val-size", 100)
        cls.conf = T.write_config(os.path.join(cls.dir, "run.conf"), {
            "data": cls.data, "train_size": 300, "val_size": 100, "batch": 50, "samples": 2,
            "epochs": 2, "jobs": 1, "threads": 1, "seed": 5})
        cls.ref = os.path.join(cls.dir, "reference")
        p = T.run_workflow("amlfs-run", "--config", cls.conf, "--out", cls.ref,
                           env=T.driver_env(), timeout=TIMEOUT)
        if p.returncode != 0:
            raise AssertionError(f"the reference run: exit {p.returncode}: {p.stderr}")
        cls.files = digest(cls.ref)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def e(self, run, e, *rest):
        return os.path.join(run, f"epoch-{e:04d}", *rest)

    def best(self, run, e):
        return int(T.attr(self.e(run, e, "rewards.h5"), "best"))

    def test_start_and_final_are_the_best_checkpoints(self):
        b1 = self.best(self.ref, 1)
        self.assertTrue(filecmp.cmp(self.e(self.ref, 2, "start.h5"),
                                    self.e(self.ref, 1, f"sample-{b1:03d}", "checkpoint.h5"),
                                    shallow=False), f"epoch-0002/start.h5 is not sample {b1}'s")
        b2 = self.best(self.ref, 2)
        self.assertTrue(filecmp.cmp(os.path.join(self.ref, "final", "checkpoint.h5"),
                                    self.e(self.ref, 2, f"sample-{b2:03d}", "checkpoint.h5"),
                                    shallow=False), f"final/checkpoint.h5 is not sample {b2}'s")
        # the two samples differ, so "the bytes of the best" says which one
        self.assertFalse(filecmp.cmp(self.e(self.ref, 1, "sample-000", "checkpoint.h5"),
                                     self.e(self.ref, 1, "sample-001", "checkpoint.h5"),
                                     shallow=False))

    def resumed(self, damage, drop):
        """A copy of the reference run with the files of `drop` removed and `damage`
        (path relative to the run -> bytes, or a path of the run to copy) written; resumed;
        its HDF5 files must be the reference's."""
        run = tempfile.mkdtemp(prefix="r-", dir=self.dir)
        shutil.rmtree(run)
        shutil.copytree(self.ref, run, symlinks=True)
        for rel in drop:
            full = os.path.join(run, rel)
            if os.path.isdir(full):
                shutil.rmtree(full)
            elif os.path.exists(full):
                os.remove(full)
        for rel, content in damage.items():
            if isinstance(content, bytes):
                with open(os.path.join(run, rel), "wb") as f:
                    f.write(content)
            else:
                shutil.copyfile(os.path.join(self.ref, content), os.path.join(run, rel))
        p = T.run_workflow("amlfs-run", "--resume", run, env=T.driver_env(), timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, f"resume: exit {p.returncode}: {p.stderr}")
        got = digest(run)
        self.assertEqual(sorted(got), sorted(self.files))
        differ = [rel for rel in got if got[rel] != self.files[rel]]
        self.assertEqual(differ, [], "files of the resumed run differ from the reference's")
        shutil.rmtree(run, ignore_errors=True)

    def variants(self, rel, wrong_epoch):
        with open(os.path.join(self.ref, rel), "rb") as f:
            good = f.read()
        return {"truncated": good[:len(good) // 2], "junk": b"\x89HDF\r\n\x1a\n" + b"x" * 500,
                "wrong epoch": wrong_epoch}

    # everything downstream of epoch 2's samples
    DOWNSTREAM = ["epoch-0002/rewards.h5", "policy/epoch-0003.h5", "final"]

    def test_invalid_eval_made_again(self):
        rel = "epoch-0002/sample-001/eval.h5"
        for kind, content in self.variants(rel, "epoch-0001/sample-001/eval.h5").items():
            with self.subTest(kind=kind):
                self.resumed({rel: content}, self.DOWNSTREAM)

    def test_invalid_checkpoint_made_again(self):
        rel = "epoch-0002/sample-000/checkpoint.h5"
        for kind, content in self.variants(rel, "epoch-0001/sample-000/checkpoint.h5").items():
            with self.subTest(kind=kind):
                self.resumed({rel: content}, self.DOWNSTREAM + ["epoch-0002/sample-000/eval.h5"])


if __name__ == "__main__":
    unittest.main()
