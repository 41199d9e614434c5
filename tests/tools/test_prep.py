"""amlfs-prep on small files in the real formats (gzip idx, CIFAR-10 binary batches)
and on the real Fashion-MNIST: stratified disjoint splits, noise, statistics, bytes."""
import filecmp
import gzip
import os
import struct
import unittest

import numpy as np

from amlfs_test import ToolTest, attr, read


def write_idx(path, array):
    array = np.asarray(array, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim,
                                                                       *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def fake_fashion(d, n_train=600, n_test=100, seed=0):
    """Images whose first two pixels encode their index, labels cycling unevenly."""
    rng = np.random.default_rng(seed)
    os.makedirs(d, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        img = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        img[:, 0, 0], img[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
        labels = (np.arange(n) * 7 % 13) % 10  # uneven class sizes
        write_idx(f"{d}/{prefix}-images-idx3-ubyte.gz", img)
        write_idx(f"{d}/{prefix}-labels-idx1-ubyte.gz", labels)
    return d


def image_ids(images):
    return images[:, 0, 0, 0].astype(int) * 256 + images[:, 0, 0, 1]


class Prep(ToolTest):
    def prep(self, *args, out="data.h5"):
        self.ok("amlfs-prep", *args, "--out", self.path(out))
        return self.path(out)

    def test_splits_stratified_and_disjoint(self):
        src = fake_fashion(self.path("fm"))
        d = self.prep("fashion-mnist", "--src", src, "--val-size", 100, "--train-size", 300)
        tr, va = read(d, "train/images"), read(d, "val/images")
        self.assertEqual(tr.shape, (300, 1, 28, 28))
        self.assertEqual(va.shape, (100, 1, 28, 28))
        self.assertEqual(read(d, "test/images").shape, (100, 1, 28, 28))
        ids_tr, ids_va = image_ids(tr), image_ids(va)
        self.assertEqual(len(set(ids_tr) | set(ids_va)), 400, "splits overlap or repeat")
        labels = (np.arange(600) * 7 % 13) % 10
        np.testing.assert_array_equal(read(d, "train/labels"), labels[ids_tr])
        np.testing.assert_array_equal(read(d, "val/labels"), labels[ids_va])
        share = np.bincount(labels, minlength=10) / 600
        for name, ids, n in (("val", ids_va, 100), ("train", ids_tr, 300)):
            counts = np.bincount(labels[ids], minlength=10)
            self.assertTrue(np.all(np.abs(counts - share * n) < 1 + 1e-9),
                            f"{name} not stratified: {counts} vs {share * n}")
        self.assertEqual(attr(d, "noise_kind"), "none")
        self.assertNotIn("clean_labels", __import__("h5py").File(d)["train"])

    def test_mean_std_and_bytes(self):
        src = fake_fashion(self.path("fm"))
        a = self.prep("fashion-mnist", "--src", src, "--val-size", 50, out="a.h5")
        b = self.prep("fashion-mnist", "--src", src, "--val-size", 50, out="b.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False))
        c = self.prep("fashion-mnist", "--src", src, "--val-size", 50, "--seed", 2, out="c.h5")
        self.assertFalse(np.array_equal(read(a, "val/images"), read(c, "val/images")))
        tr = read(a, "train/images").astype(np.float64) / 255
        self.assertAlmostEqual(attr(a, "mean")[0], tr.mean(), delta=1e-12)
        self.assertAlmostEqual(attr(a, "std")[0], tr.std(), delta=1e-12)

    def test_noise(self):
        src = fake_fashion(self.path("fm"), n_train=4000)
        for kind in ("symmetric", "pair"):
            with self.subTest(kind=kind):
                d = self.prep("fashion-mnist", "--src", src, "--val-size", 500, "--noise", 0.3,
                              "--noise-kind", kind, out=f"{kind}.h5")
                noisy, clean = read(d, "train/labels"), read(d, "train/clean_labels")
                ids = image_ids(read(d, "train/images"))
                np.testing.assert_array_equal(clean, (ids * 7 % 13) % 10)
                changed = noisy != clean
                n = len(noisy)
                # binomial(3500, 0.3): 5 standard deviations
                self.assertLess(abs(changed.mean() - 0.3), 5 * np.sqrt(0.3 * 0.7 / n))
                if kind == "pair":
                    np.testing.assert_array_equal(noisy[changed], (clean[changed] + 1) % 10)
                else:  # the new class is uniform over the 9 others
                    shift = (noisy[changed] - clean[changed]) % 10
                    counts = np.bincount(shift, minlength=10)
                    self.assertEqual(counts[0], 0)
                    expect = changed.sum() / 9
                    self.assertTrue(np.all(np.abs(counts[1:] - expect) < 5 * np.sqrt(expect)))
                self.assertEqual(attr(d, "noise_ratio"), 0.3)
                self.assertEqual(attr(d, "noise_kind"), kind)
                # validation labels stay clean
                vids = image_ids(read(d, "val/images"))
                np.testing.assert_array_equal(read(d, "val/labels"), (vids * 7 % 13) % 10)

    def test_cifar10(self):
        d = self.path("cifar")
        os.makedirs(d)
        rng = np.random.default_rng(1)
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        records = {}
        for name in names:
            labels = rng.integers(0, 10, 40, dtype=np.uint8)
            pixels = rng.integers(0, 256, (40, 3072), dtype=np.uint8)
            records[name] = (labels, pixels)
            with open(f"{d}/{name}", "wb") as f:
                f.write(np.concatenate([labels[:, None], pixels], 1).tobytes())
        out = self.prep("cifar10", "--src", d, "--val-size", 20)
        self.assertEqual(read(out, "train/images").shape, (180, 3, 32, 32))
        self.assertEqual(read(out, "test/images").shape, (40, 3, 32, 32))
        np.testing.assert_array_equal(read(out, "test/images").reshape(40, -1),
                                      records["test_batch.bin"][1])
        allpix = np.concatenate([records[n][1] for n in names[:5]]).reshape(-1, 3, 1024) / 255
        tr = read(out, "train/images").reshape(180, 3, 1024) / 255
        np.testing.assert_allclose(attr(out, "mean"), tr.mean((0, 2)), atol=1e-12)
        self.assertEqual(len(attr(out, "std")), 3)
        # a truncated batch is bad input
        with open(f"{d}/data_batch_3.bin", "r+b") as f:
            f.truncate(3073 * 10 + 5)
        self.fails(2, "amlfs-prep", "cifar10", "--src", d, "--out", self.path("x.h5"),
                   mentions=["data_batch_3.bin"])

    def test_bad_input(self):
        self.fails(2, "amlfs-prep", "fashion-mnist", "--src", self.path("nowhere"), "--out",
                   self.path("x.h5"), mentions=["nowhere/train-images-idx3-ubyte.gz",
                                                "dataset-fashion-mnist"])
        src = fake_fashion(self.path("fm"))
        self.fails(2, "amlfs-prep", "fashion-mnist", "--src", src, "--val-size", 600, "--out",
                   self.path("x.h5"), mentions=["--val-size"])
        self.fails(2, "amlfs-prep", "fashion-mnist", "--src", src, "--val-size", 100,
                   "--train-size", 501, "--out", self.path("x.h5"), mentions=["--train-size"])
        self.fails(2, "amlfs-prep", "mnist", "--out", self.path("x.h5"))
        self.fails(2, "amlfs-prep", "fashion-mnist", "--noise", 1.5, "--out", self.path("x.h5"))
        with gzip.open(f"{src}/train-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x03garbage")
        self.fails(2, "amlfs-prep", "fashion-mnist", "--src", src, "--out", self.path("x.h5"),
                   mentions=["train-labels-idx1-ubyte.gz", "idx"])
        self.assertFalse(os.path.exists(self.path("x.h5")))

    @unittest.skipUnless(os.path.exists("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
                         "dataset-fashion-mnist is installed by make deps")
    def test_real_fashion_mnist(self):
        d = self.prep("fashion-mnist", "--val-size", 5000)
        self.assertEqual(read(d, "train/labels").shape, (55000,))
        np.testing.assert_array_equal(np.bincount(read(d, "val/labels")), [500] * 10)
        np.testing.assert_array_equal(np.bincount(read(d, "test/labels")), [1000] * 10)
        self.assertAlmostEqual(attr(d, "mean")[0], 0.2860, delta=5e-4)
        self.ok("amlfs-check", d)


if __name__ == "__main__":
    unittest.main()
