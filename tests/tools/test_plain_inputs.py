"""Files written by hand without the root attribute 'schema' (README, "Your own
framework"): a loss input, a thetas file, a policy and a dataset from h5py alone give the
same results as the files the tools write, bit for bit; wrong shapes and out-of-range
targets are exit 2 with one line naming the dataset. Files that carry 'schema' keep
their schema's contract."""
import os
import unittest

import h5py
import numpy as np

import amlfs_test as T
from amlfs_test import ToolTest, attr, read, write_loss_input


def write_plain(path, **datasets):
    """An HDF5 file of the datasets given and no attributes at all (as h5py or
    torch users write them: float64 and int64 unless told otherwise)."""
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value


class PlainLossInput(ToolTest):
    def thetas(self, space="prob", b=3, seed=11):
        p = self.policy(f"p-{space}.h5", "--space", space, "--sigma", 0.3, "--seed", seed)
        t = self.path(f"t-{space}.h5")
        self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", b, "--out", t)
        return t

    def loss(self, thetas, index, inp, out):
        self.ok("amlfs-loss", "--thetas", thetas, "--index", index, "--input", inp, "--out", out)
        return {k: read(out, k) for k in ("loss", "grad", "weight")}, attr(out, "mean")

    def assert_same(self, a, b):
        (da, ma), (db, mb) = a, b
        for k in da:
            np.testing.assert_array_equal(da[k], db[k], err_msg=k)
        self.assertEqual(ma, mb)

    def test_no_attributes_is_bit_identical_to_the_tool_format(self):
        rng = np.random.default_rng(2)
        t = self.thetas()
        n, c = 50, 7
        x = (rng.standard_normal((n, c)) * 4).astype(np.float32)
        y = rng.integers(0, c, n)
        write_loss_input(self.path("tool.h5"), logits=x, targets=y)  # schema, int32
        write_plain(self.path("f32.h5"), logits=x, targets=y.astype(np.int64))
        # float64 logits: rounded to float32 on read, as numpy rounds them
        x64 = x.astype(np.float64) + rng.standard_normal((n, c)) * 1e-9
        write_plain(self.path("f64.h5"), logits=x64, targets=y.astype(np.int32))
        write_loss_input(self.path("f64-rounded.h5"), logits=x64.astype(np.float32), targets=y)
        write_plain(self.path("u8.h5"), logits=x, targets=y.astype(np.uint8))
        for i in range(3):
            ref = self.loss(t, i, self.path("tool.h5"), self.path(f"ref{i}.h5"))
            self.assert_same(self.loss(t, i, self.path("f32.h5"), self.path(f"a{i}.h5")), ref)
            self.assert_same(self.loss(t, i, self.path("u8.h5"), self.path(f"c{i}.h5")), ref)
            self.assert_same(self.loss(t, i, self.path("f64.h5"), self.path(f"b{i}.h5")),
                             self.loss(t, i, self.path("f64-rounded.h5"), self.path(f"r{i}.h5")))

    def test_cosines_without_attributes_but_scale(self):
        rng = np.random.default_rng(3)
        t = self.thetas("cosine")
        x = rng.uniform(-1, 1, (20, 5)).astype(np.float32)
        y = rng.integers(0, 5, 20)
        write_loss_input(self.path("tool.h5"), cosines=x, scale=16.0, targets=y)
        with h5py.File(self.path("plain.h5"), "w") as f:
            f["cosines"] = x.astype(np.float64)
            f["cosines"].attrs["scale"] = 16  # an integer, as h5py stores a Python int
            f["targets"] = y
        self.assert_same(self.loss(t, 1, self.path("plain.h5"), self.path("a.h5")),
                         self.loss(t, 1, self.path("tool.h5"), self.path("b.h5")))
        write_plain(self.path("noscale.h5"), cosines=x, targets=y)
        self.fails(2, "amlfs-loss", "--thetas", t, "--index", 0, "--input",
                   self.path("noscale.h5"), "--out", self.path("o.h5"),
                   mentions=["noscale.h5", "/cosines@scale"])

    def test_wrong_shapes_and_types_are_exit_2_naming_the_dataset(self):
        t = self.thetas()
        x = np.zeros((4, 3))
        out = self.path("o.h5")
        cases = {
            "column": dict(logits=x, targets=np.zeros((4, 1), np.int64)),
            "short": dict(logits=x, targets=np.zeros(3, np.int64)),
            "float": dict(logits=x, targets=np.zeros(4)),
            "missing": dict(logits=x),
        }
        for name, ds in cases.items():
            with self.subTest(name):
                write_plain(self.path(name + ".h5"), **ds)
                line = self.fails(2, "amlfs-loss", "--thetas", t, "--index", 0, "--input",
                                  self.path(name + ".h5"), "--out", out,
                                  mentions=[name + ".h5", "/targets", "(N)"])
                if name in ("column", "short"):
                    self.assertIn("(N) = (4)", line)
                self.assertFalse(os.path.exists(out))
        write_plain(self.path("rank3.h5"), logits=np.zeros((4, 3, 1)), targets=np.zeros(4, int))
        self.fails(2, "amlfs-loss", "--thetas", t, "--index", 0, "--input",
                   self.path("rank3.h5"), "--out", out, mentions=["/logits", "(N,C)"])
        write_plain(self.path("none.h5"), targets=np.zeros(4, int))
        self.fails(2, "amlfs-loss", "--thetas", t, "--index", 0, "--input",
                   self.path("none.h5"), "--out", out, mentions=["/logits", "/cosines"])
        write_plain(self.path("huge.h5"), logits=np.full((4, 3), 1e300), targets=np.zeros(4, int))
        self.fails(2, "amlfs-loss", "--thetas", t, "--index", 0, "--input",
                   self.path("huge.h5"), "--out", out, mentions=["/logits[0][0]", "finite"])
        self.assertFalse(os.path.exists(out))

    def test_targets_out_of_range(self):
        t = self.thetas()
        out = self.path("o.h5")
        for name, y in (("high", np.array([0, 1, 3, 2], np.uint8)),
                        ("negative", np.array([0, -1, 2, 2], np.int64)),
                        ("huge", np.array([0, 1, 2, 2**40], np.int64))):
            with self.subTest(name):
                write_plain(self.path(name + ".h5"), logits=np.zeros((4, 3)), targets=y)
                self.fails(2, "amlfs-loss", "--thetas", t, "--index", 0, "--input",
                           self.path(name + ".h5"), "--out", out,
                           mentions=[name + ".h5", "/targets[", "expected 0 to 2"])
                self.assertFalse(os.path.exists(out))

    def test_files_with_schema_keep_its_contract(self):
        """The same float64 logits that a plain file may hold are refused in a file that
        says it is a loss-input: its schema says float32."""
        with h5py.File(self.path("in.h5"), "w") as f:
            T.common_attrs(f, "loss-input")
            f["logits"] = np.zeros((4, 3))
            f["targets"] = np.zeros(4, np.int32)
        self.fails(2, "amlfs-loss", "--thetas", self.thetas(), "--index", 0, "--input",
                   self.path("in.h5"), "--out", self.path("o.h5"), mentions=["/logits", "float32"])

    def test_hand_written_theta(self):
        """/theta alone, one row (4M) or rows (B,4M); its space follows the input."""
        rng = np.random.default_rng(4)
        for space in ("prob", "cosine"):
            with self.subTest(space):
                t = self.thetas(space)
                theta = read(t, "theta")
                x = rng.uniform(-1, 1, (16, 6)).astype(np.float32)
                y = rng.integers(0, 6, 16)
                if space == "prob":
                    write_plain(self.path("in.h5"), logits=x, targets=y)
                else:
                    with h5py.File(self.path("in.h5"), "w") as f:
                        f["cosines"] = x
                        f["cosines"].attrs["scale"] = 30.0
                        f["targets"] = y
                write_plain(self.path("one.h5"), theta=theta[2])
                write_plain(self.path("rows.h5"), theta=theta.astype(np.float64))
                ref = self.loss(t, 2, self.path("in.h5"), self.path("ref.h5"))
                self.assert_same(self.loss(self.path("one.h5"), 0, self.path("in.h5"),
                                           self.path("a.h5")), ref)
                self.assert_same(self.loss(self.path("rows.h5"), 2, self.path("in.h5"),
                                           self.path("b.h5")), ref)
                self.assertEqual(attr(self.path("a.h5"), "space"), space)
        write_plain(self.path("bad.h5"), theta=np.ones(10))
        self.fails(2, "amlfs-loss", "--thetas", self.path("bad.h5"), "--index", 0, "--input",
                   self.path("in.h5"), "--out", self.path("o.h5"), mentions=["/theta", "4M"])
        with h5py.File(self.path("prob.h5"), "w") as f:
            f["theta"] = np.ones(24)
            f.attrs["space"] = "prob"
        self.fails(2, "amlfs-loss", "--thetas", self.path("prob.h5"), "--index", 0, "--input",
                   self.path("in.h5"), "--out", self.path("o.h5"), mentions=["prob", "cosines"])


class PlainPolicy(ToolTest):
    def test_mu_alone_samples_as_amlfs_inits_free_policy(self):
        """A file holding only /mu (the identity) is amlfs-init's free-form policy with its
        defaults (sigma 0.2, seed 1, epoch 1): amlfs-sample draws the same bits."""
        ref = self.policy("ref.h5", "--form", "free")
        m = 6
        write_plain(self.path("mu.h5"), mu=np.concatenate([np.ones(m), np.zeros(m),
                                                           np.ones(m), np.zeros(m)]))
        for name, p in (("ref", ref), ("plain", self.path("mu.h5"))):
            self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 4, "--out",
                    self.path(f"t-{name}.h5"))
        for k in ("draw", "theta", "mu", "sigma"):
            np.testing.assert_array_equal(read(self.path("t-plain.h5"), k),
                                          read(self.path("t-ref.h5"), k), err_msg=k)
        self.ok("amlfs-check", self.path("t-plain.h5"))

    def test_attributes_are_honoured_and_checked(self):
        ref = self.policy("ref.h5", "--space", "cosine", "--sigma", 0.1, "--seed", 9)
        with h5py.File(self.path("mu.h5"), "w") as f:
            f["mu"] = read(ref, "mu")
            f.attrs["space"] = "cosine"
            f.attrs["form"] = "anchored"
            f.attrs["sigma"] = 0.1
            f.attrs["seed"] = 9
        for name, p in (("ref", ref), ("plain", self.path("mu.h5"))):
            self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 4, "--out",
                    self.path(f"t-{name}.h5"))
        for k in ("draw", "theta"):
            np.testing.assert_array_equal(read(self.path("t-plain.h5"), k),
                                          read(self.path("t-ref.h5"), k), err_msg=k)
        with h5py.File(self.path("bad.h5"), "w") as f:
            f["mu"] = np.ones(24)
            f.attrs["form"] = "banana"
        self.fails(2, "amlfs-sample", "--policy", self.path("bad.h5"), "--epoch", 1,
                   "--samples", 4, "--out", self.path("o.h5"), mentions=["/@form", "banana"])
        write_plain(self.path("short.h5"), mu=np.ones((2, 12)))
        self.fails(2, "amlfs-sample", "--policy", self.path("short.h5"), "--epoch", 1,
                   "--samples", 4, "--out", self.path("o.h5"), mentions=["/mu", "(4M)"])


class PlainDataset(ToolTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.shared = tempfile.mkdtemp(prefix="amlfs-plain-data-")
        src = T.fashion_subset(os.path.join(cls.shared, "fm"), 300, 100)
        cls.data = os.path.join(cls.shared, "data.h5")
        p = T.run("amlfs-prep", "fashion-mnist", "--src", src, "--out", cls.data,
                  "--train-size", 200, "--val-size", 100)
        assert p.returncode == 0, p.stderr
        cls.start = os.path.join(cls.shared, "start.h5")
        p = T.run("amlfs-init", "--model", "small-cnn", "--data", cls.data, "--out", cls.start,
                  "--batch", 50, "--epochs", 2)
        assert p.returncode == 0, p.stderr

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.shared, ignore_errors=True)

    def plain_copy(self, path, labels=np.int64, images3=False):
        """The prepared dataset's images and labels alone (no attributes: classes, mean and
        std come from the data)."""
        with h5py.File(self.data, "r") as src, h5py.File(path, "w") as f:
            for split in ("train", "val", "test"):
                im = src[split + "/images"][()]
                f[split + "/images"] = im[:, 0] if images3 else im
                f[split + "/labels"] = src[split + "/labels"][()].astype(labels)
        return path

    def test_eval_and_training_match_the_prepared_file(self):
        plain = self.plain_copy(self.path("plain.h5"), images3=True)
        for name, d in (("ref", self.data), ("plain", plain)):
            self.ok("amlfs-eval", "--checkpoint", self.start, "--data", d, "--split", "val",
                    "--out", self.path(f"eval-{name}.h5"))
        for k in ("top1", "top5", "loss"):
            self.assertEqual(attr(self.path("eval-plain.h5"), k),
                             attr(self.path("eval-ref.h5"), k), k)
        t = self.path("t.h5")
        self.ok("amlfs-sample", "--policy", self.policy(), "--epoch", 1, "--samples", 2,
                "--out", t)
        for name, d in (("ref", self.data), ("plain", self.plain_copy(self.path("u8.h5"),
                                                                      labels=np.uint8))):
            self.ok("amlfs-train-epoch", "--checkpoint", self.start, "--thetas", t, "--index", 1,
                    "--data", d, "--out", self.path(f"ck-{name}.h5"), "--threads", 1)
        with h5py.File(self.path("ck-ref.h5")) as a, h5py.File(self.path("ck-plain.h5")) as b:
            names = []
            a["params"].visit(names.append)
            for n in names:
                if isinstance(a["params/" + n], h5py.Dataset):
                    np.testing.assert_array_equal(a["params/" + n][()], b["params/" + n][()], n)

    def test_bad_plain_dataset(self):
        plain = self.plain_copy(self.path("p.h5"))
        with h5py.File(plain, "a") as f:
            del f["val/labels"]
            f["val/labels"] = np.zeros((100, 1), np.int64)
        self.fails(2, "amlfs-eval", "--checkpoint", self.start, "--data", plain, "--split", "val",
                   "--out", self.path("e.h5"), mentions=["/val/labels", "(N) = (100)"])
        with h5py.File(plain, "a") as f:
            del f["val/labels"]
            f["val/labels"] = np.full(100, 10, np.int64)
            f.attrs["classes"] = 10
        self.fails(2, "amlfs-eval", "--checkpoint", self.start, "--data", plain, "--split", "val",
                   "--out", self.path("e.h5"), mentions=["/val/labels[0]", "expected 0 to 9"])
        self.assertFalse(os.path.exists(self.path("e.h5")))


if __name__ == "__main__":
    unittest.main()
