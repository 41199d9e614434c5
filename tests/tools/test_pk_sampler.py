"""The P x K identity sampler and the re-ID augmentation through the tools: amlfs-init
--sampler pk --p P --k K (the checkpoint's /@sampler, /@p, /@k; batch = P x K),
amlfs-train-epoch training the epoch of amlfs_pk_order (the order is not in the checkpoint:
the number of SGD steps must be the number of P x K batches of the literal Python
RandomIdentitySampler of tests/fixtures/make_stream_fixtures.py on the same Philox
stream), reproducible bytes, the same bytes with the images streamed from the file, the
workflow passing the config keys on, and the bad inputs (exit 2, one line).

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import filecmp
import os
import subprocess
import unittest

import h5py
import numpy as np

import amlfs_test as T
from amlfs_test import ToolTest, attr, edited, write_config, write_dataset
from make_stream_fixtures import DATA_ORDER, pk_order

# images per identity of the training split: some under K = 3 (drawn with replacement),
# some not a multiple of K (left over), one identity of 15
COUNTS = [9, 7, 5, 4, 3, 2, 1, 8, 6, 15]


def pk_dataset(path, counts=COUNTS, seed=5):
    """A small-cnn dataset (10 classes, 28x28) whose training labels have these counts, in
    a shuffled order."""
    write_dataset(path, n=(sum(counts), 20, 20), noise=False)
    labels = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    labels = np.random.default_rng(seed).permutation(labels)
    with h5py.File(path, "r+") as f:
        del f["train/labels"]
        f["train/labels"] = labels
    return [int(v) for v in labels]


class PKSampler(ToolTest):
    def setUp(self):
        super().setUp()
        self.data = self.path("data.h5")
        self.labels = pk_dataset(self.data)
        self.policy()
        self.thetas = self.path("thetas.h5")
        self.ok("amlfs-sample", "--policy", self.path("policy.h5"), "--epoch", 1, "--samples", 3,
                "--out", self.thetas)

    def start(self, *args, name="start.h5"):
        out = self.path(name)
        self.ok("amlfs-init", "--model", "small-cnn", "--data", self.data, "--out", out, *args)
        return out

    def train(self, start, name, index=1, read="memory", data=None):
        out = self.path(name)
        self.ok("amlfs-train-epoch", "--checkpoint", start, "--thetas", self.thetas, "--index",
                index, "--data", data or self.data, "--out", out, "--threads", 2, "--read", read)
        return out

    def batches(self, p, k, seed=1, epoch=1, sample=1):
        order = pk_order(self.labels, p, k, (seed, epoch, sample, DATA_ORDER))
        self.assertEqual(len(order) % (p * k), 0)
        return len(order) // (p * k)

    def test_start_records_the_sampler(self):
        s = self.start("--sampler", "pk", "--p", 4, "--k", 3)
        self.assertEqual(attr(s, "sampler"), "pk")
        self.assertEqual((int(attr(s, "p")), int(attr(s, "k")), int(attr(s, "batch"))), (4, 3, 12))
        self.ok("amlfs-check", s)
        s2 = self.start("--sampler", "pk", "--p", 4, "--k", 3, "--batch", 12, name="s2.h5")
        self.assertTrue(filecmp.cmp(s, s2, shallow=False), "--batch P x K given: other bytes")
        # random (the default) writes none of them: the files of before
        r = self.start(name="random.h5")
        with h5py.File(r, "r") as f:
            self.assertFalse({"sampler", "p", "k"} & set(f.attrs))

    def test_epoch_trains_the_pk_batches(self):
        for p, k in ((4, 3), (3, 4), (5, 1)):
            with self.subTest(p=p, k=k):
                s = self.start("--sampler", "pk", "--p", p, "--k", k, name=f"s{p}{k}.h5")
                a = self.train(s, f"a{p}{k}.h5")
                want = self.batches(p, k)
                self.assertEqual(int(attr(a, "optim_steps")), want)
                self.assertEqual((attr(a, "sampler"), int(attr(a, "p")), int(attr(a, "k"))),
                                 ("pk", p, k))
                self.ok("amlfs-check", a)
                b = self.train(s, f"b{p}{k}.h5")
                self.assertTrue(filecmp.cmp(a, b, shallow=False), "not reproducible")
        # 57 entries at most for K = 3 (19 chunks): never the 5 batches of the random order
        self.assertLessEqual(self.batches(4, 3), 4)
        # another sample: another order (the steps may agree, the weights do not)
        s = self.path("s43.h5")
        other = self.train(s, "other.h5", index=2)
        self.assertEqual(int(attr(other, "optim_steps")), self.batches(4, 3, sample=2))
        self.assertFalse(filecmp.cmp(other, self.path("a43.h5"), shallow=False))
        # the random sampler of the same batch: ceil(60 / 12) = 5 steps, other weights
        r = self.train(self.start("--batch", 12, name="r.h5"), "r-out.h5")
        self.assertEqual(int(attr(r, "optim_steps")), 5)
        self.assertFalse(filecmp.cmp(r, self.path("a43.h5"), shallow=False))

    def test_second_epoch_continues(self):
        s = self.start("--sampler", "pk", "--p", 4, "--k", 3)
        a = self.train(s, "e1.h5")
        th2 = self.path("thetas2.h5")
        pol2 = edited(self.path("policy.h5"), self.path("policy2.h5"),
                      lambda f: f.attrs.__setitem__("epoch", np.int64(2)))
        self.ok("amlfs-sample", "--policy", pol2, "--epoch", 2, "--samples", 3, "--out", th2)
        out = self.path("e2.h5")
        self.ok("amlfs-train-epoch", "--checkpoint", a, "--thetas", th2, "--index", 1,
                "--data", self.data, "--out", out, "--threads", 2)
        self.assertEqual(int(attr(out, "optim_steps")),
                         self.batches(4, 3) + self.batches(4, 3, epoch=2))

    def test_reid_augmentation(self):
        s = self.start("--sampler", "pk", "--p", 4, "--k", 3, "--augment", "reid")
        self.assertEqual(attr(s, "augment"), "reid")
        a = self.train(s, "a.h5")
        b = self.train(s, "b.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), "reid augmentation not reproducible")
        plain = self.train(self.start("--sampler", "pk", "--p", 4, "--k", 3, name="n.h5"), "n-out.h5")
        self.assertEqual(int(attr(a, "optim_steps")), int(attr(plain, "optim_steps")))
        with h5py.File(a, "r") as fa, h5py.File(plain, "r") as fb:
            differ = [n for n in fa["params"] if not np.array_equal(fa["params"][n][()],
                                                                  fb["params"][n][()])]
        self.assertTrue(differ, "the reid augmentation changed nothing")

    def test_streamed_same_bytes(self):
        # images chunked by 7 rows: the order's repeated and scattered rows read per batch
        chunked = self.path("chunked.h5")
        with h5py.File(self.data, "r") as a, h5py.File(chunked, "w") as b:
            for k, v in a.attrs.items():
                b.attrs[k] = v
            for split in ("train", "val", "test"):
                im = a[split + "/images"][...]
                b.create_dataset(split + "/images", data=im, fletcher32=True,
                                 chunks=(7,) + im.shape[1:])
                b[split + "/labels"] = a[split + "/labels"][...]
        for augment in ("none", "reid"):
            with self.subTest(augment=augment):
                s = self.start("--sampler", "pk", "--p", 4, "--k", 3, "--augment", augment,
                               name=f"s-{augment}.h5")
                m = self.train(s, f"m-{augment}.h5", data=chunked, read="memory")
                st = self.train(s, f"st-{augment}.h5", data=chunked, read="stream")
                self.assertTrue(filecmp.cmp(m, st, shallow=False), "the streamed epoch differs")

    def test_bad_input(self):
        out = self.path("bad.h5")
        base = ("amlfs-init", "--model", "small-cnn", "--data", self.data, "--out", out)
        self.fails(2, *base, "--sampler", "pk", "--p", 4, "--k", 3, "--batch", 10,
                   mentions=["--batch 10", "12"])
        self.fails(2, *base, "--sampler", "pk", "--p", 4, "--k", 0, mentions=["--k"])
        self.fails(2, *base, "--sampler", "pk", "--p", 0, "--k", 3, mentions=["--p"])
        self.fails(2, *base, "--sampler", "pk", "--p", 4, mentions=["--k"])
        self.fails(2, *base, "--p", 4, "--k", 3, mentions=["--sampler pk"])
        self.fails(2, *base, "--sampler", "pq", mentions=["--sampler"])
        self.fails(2, *base, "--augment", "erase", mentions=["--augment"])
        self.assertFalse(os.path.exists(out))
        # more identities a batch than the training split has (10)
        s = self.start("--sampler", "pk", "--p", 11, "--k", 2, name="p11.h5")
        self.fails(2, "amlfs-train-epoch", "--checkpoint", s, "--thetas", self.thetas, "--index",
                   0, "--data", self.data, "--out", out, mentions=["10 identities", "P = 11"])
        self.assertFalse(os.path.exists(out))
        good = self.start("--sampler", "pk", "--p", 4, "--k", 3, name="good.h5")
        # a checkpoint whose P x K is not its batch, K < 1, pk without P, P without pk
        for name, edit, mention in (
                ("pk-batch.h5", lambda f: f.attrs.__setitem__("batch", np.int64(10)), "/@p 4"),
                ("k0.h5", lambda f: f.attrs.__setitem__("k", np.int64(0)), "/@k 0"),
                ("nop.h5", lambda f: f.attrs.__delitem__("p"), "/@p"),
                ("onlyk.h5", lambda f: (f.attrs.__delitem__("sampler"), f.attrs.__delitem__("p")),
                 "/@k")):
            with self.subTest(edit=name):
                bad = edited(good, self.path(name), edit)
                self.fails(2, "amlfs-train-epoch", "--checkpoint", bad, "--thetas", self.thetas,
                           "--index", 0, "--data", self.data, "--out", out, mentions=[mention])
                self.assertFalse(os.path.exists(out))

    def test_workflow_passes_the_sampler(self):
        run = self.path("run")
        os.makedirs(run)
        write_config(os.path.join(run, "config"), {
            "data": self.data, "model": "small-cnn", "sampler": "pk", "p": 5, "k": 2,
            "augment": "reid", "epochs": 2, "samples": 2})
        p = subprocess.run(["bash", os.path.join(T.WORKFLOW, "amlfs-step"), "setup", run],
                           env=T.driver_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        s = os.path.join(run, "epoch-0001", "start.h5")
        self.assertEqual((attr(s, "sampler"), int(attr(s, "p")), int(attr(s, "k")),
                          int(attr(s, "batch")), attr(s, "augment")), ("pk", 5, 2, 10, "reid"))
        # batch given beside sampler = pk: it must be p x k
        p = subprocess.run([os.path.join(T.BIN, "amlfs-config"), "--set", "sampler=pk", "--set",
                            "p=5", "--set", "k=2", "--set", "batch=12"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("p x k = 5 x 2 = 10", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
