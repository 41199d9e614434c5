"""The cosine-head models through the tools: amlfs-init --model face-small | sphere20
(the checkpoint's scale and embedding, the cosine space, the tensors), amlfs-train-epoch
with cosine-space thetas (a loss that goes down on images whose brightness is their
label, as test_train's), amlfs-eval on a cosine head, and the refusals: prob-space thetas
on a cosine head, --space prob or a linear head's options, each exit 2 with one line.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import math
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np

import amlfs_test as T
from amlfs_test import ToolTest, attr, must, read

FX = None


def write_faces(path, n=(160, 40, 40), classes=8, height=24, width=20, channels=3):
    """A dataset of (N, 3, height, width) images whose brightness encodes the label (within
    10 of 20 + 215 label / (classes - 1)): a task the models learn in a few epochs."""
    rng = np.random.default_rng(5)
    with h5py.File(path, "w") as f:
        T.common_attrs(f, "dataset")
        f.attrs["name"] = np.bytes_("faces")
        f.attrs["classes"] = np.int64(classes)
        f.attrs["channels"] = np.int64(channels)
        f.attrs["height"] = np.int64(height)
        f.attrs["width"] = np.int64(width)
        f.attrs["mean"] = np.array([0.5] * channels)
        f.attrs["std"] = np.array([0.25] * channels)
        f.attrs["noise_ratio"] = np.float64(0.0)
        f.attrs["noise_kind"] = np.bytes_("none")
        f.attrs["seed"] = np.int64(1)
        for split, m in zip(("train", "val", "test"), n):
            labels = rng.integers(0, classes, m, dtype=np.int32)
            level = 20 + 215 * labels / (classes - 1)
            images = level[:, None, None, None] + rng.integers(-10, 11, (m, channels, height, width))
            f[split + "/images"] = images.astype(np.uint8)
            f[split + "/labels"] = labels


class Fixtures:
    def __init__(self, d):
        self.dir = d
        p = self.p
        write_faces(p("faces.h5"))
        write_faces(p("faces-112x96.h5"), n=(4, 2, 2), height=112, width=96)
        write_faces(p("tiny.h5"), n=(4, 2, 2), height=12, width=10)
        must("amlfs-init", "--policy-only", "--mode", "fixed", "--form", "free", "--space",
             "cosine", "--out", p("cosine-fixed.h5"))
        must("amlfs-init", "--policy-only", "--mode", "fixed", "--form", "free", "--out",
             p("prob-fixed.h5"))
        for space in ("cosine", "prob"):
            must("amlfs-sample", "--policy", p(f"{space}-fixed.h5"), "--epoch", 1, "--samples",
                 2, "--out", p(f"{space}-thetas.h5"))
        must("amlfs-init", "--model", "face-small", "--data", p("faces.h5"), "--batch", 32,
             "--out", p("face-small.h5"))
        must("amlfs-init", "--model", "small-cnn", "--data", p("faces.h5"), "--out",
             p("small-cnn.h5"))

    def p(self, name):
        return os.path.join(self.dir, name)


def setUpModule():
    global FX
    FX = Fixtures(tempfile.mkdtemp(prefix="amlfs-face-"))


def tearDownModule():
    shutil.rmtree(FX.dir, ignore_errors=True)


def shapes(path):
    with h5py.File(path, "r") as f:
        return {k: f["params"][k].shape for k in f["params"]}


class Init(ToolTest):
    def test_face_small_checkpoint(self):
        c = FX.p("face-small.h5")
        self.ok("amlfs-check", c)
        self.assertEqual(attr(c, "model"), "face-small")
        self.assertEqual(attr(c, "scale"), 64.0)
        self.assertEqual(attr(c, "embedding"), 128)
        self.assertEqual(attr(c, "space"), "cosine")
        self.assertEqual(attr(c, "batch"), 32)
        s = shapes(c)
        self.assertEqual(s["head.weight"], (8, 128))
        self.assertEqual(s["fc.weight"], (128, 64 * 3 * 2))  # 24x20 after three pools: 3x2
        self.assertEqual(s["prelu2.weight"], (32,))
        np.testing.assert_array_equal(read(c, "params/prelu1.weight"), np.full(16, 0.25, np.float32))
        bound = 1 / math.sqrt(128)  # the head: a linear weight's bound, fan-in = embedding
        w = read(c, "params/head.weight")
        self.assertLessEqual(np.abs(w).max(), bound)
        self.assertGreater(np.abs(w).max(), 0.9 * bound)
        self.assertNotIn("head.bias", s)

    def test_defaults_and_options(self):
        c = self.path("s.h5")
        self.ok("amlfs-init", "--model", "face-small", "--data", FX.p("faces.h5"), "--scale",
                "30", "--embedding", "48", "--out", c)
        self.assertEqual(attr(c, "scale"), 30.0)
        self.assertEqual(attr(c, "embedding"), 48)
        self.assertEqual(attr(c, "batch"), 64)  # face-small's default
        self.assertAlmostEqual(attr(c, "lr"), 0.1)
        self.assertEqual(shapes(c)["head.weight"], (8, 48))
        # a linear head records neither
        with h5py.File(FX.p("small-cnn.h5"), "r") as f:
            self.assertNotIn("scale", f.attrs)
            self.assertNotIn("embedding", f.attrs)

    def test_sphere20_checkpoint(self):
        c = self.path("sphere20.h5")
        p = self.ok("amlfs-init", "--model", "sphere20", "--data", FX.p("faces-112x96.h5"),
                    "--out", c)
        self.ok("amlfs-check", c)
        self.assertEqual(attr(c, "batch"), 256)
        self.assertAlmostEqual(attr(c, "lr"), 0.1)
        self.assertEqual(attr(c, "schedule"), "step")
        self.assertEqual(attr(c, "embedding"), 512)
        s = shapes(c)
        convs = [k for k in s if k.endswith(".weight") and len(s[k]) == 4]
        self.assertEqual(len(convs), 20)  # 4 stride-2 convolutions, 8 units of 2
        self.assertEqual(s["fc.weight"], (512, 512 * 7 * 6))  # 112x96 -> 7x6x512
        self.assertEqual(s["stage1.conv.bias"], (64,))
        self.assertNotIn("stage1.unit0.conv1.bias", s)
        self.assertEqual(s["stage3.unit3.prelu2.weight"], (256,))
        params = sum(int(np.prod(v)) for v in s.values())
        self.assertIn(f"{params} parameters", p.stderr)


class Train(ToolTest):
    def train(self, ckpt, thetas, out):
        out = self.path(out)
        self.ok("amlfs-train-epoch", "--checkpoint", ckpt, "--thetas", thetas, "--index", 0,
                "--data", FX.p("faces.h5"), "--out", out, "--threads", 1)
        return out

    def test_loss_goes_down(self):
        """Three epochs of the cosine space's identity (cross-entropy of 64 cos): the train
        loss falls, the validation top-1 beats chance (1/8), the head's scale stays."""
        policy, c = FX.p("cosine-fixed.h5"), FX.p("face-small.h5")
        losses, top1 = [], []
        for e in range(1, 4):
            th = self.path(f"thetas-{e}.h5")
            self.ok("amlfs-sample", "--policy", policy, "--epoch", e, "--samples", 2, "--out", th)
            c = self.train(c, th, f"ckpt-{e}.h5")
            self.ok("amlfs-check", c)
            self.assertEqual(attr(c, "status"), "ok")
            self.assertEqual(attr(c, "space"), "cosine")
            self.assertEqual(attr(c, "scale"), 64.0)
            losses.append(attr(c, "train_loss"))
            ev = self.path(f"eval-{e}.h5")
            self.ok("amlfs-eval", "--checkpoint", c, "--data", FX.p("faces.h5"), "--split",
                    "val", "--out", ev)
            top1.append(attr(ev, "top1"))
            # fixed mode: the next policy keeps mu and advances its epoch
            rewards, policy_next = self.path(f"rewards-{e}.h5"), self.path(f"policy-{e + 1}.h5")
            must("amlfs-reward", "--thetas", th, "--metric", "top1", "--out", rewards, ev,
                 self.path("none.h5"))
            must("amlfs-update", "--policy", policy, "--thetas", th, "--rewards", rewards,
                 "--out", policy_next)
            policy = policy_next
        msg = f"train loss {losses}, val top-1 {top1}"
        self.assertTrue(all(math.isfinite(x) for x in losses), msg)
        self.assertLess(losses[-1], losses[0], msg)
        self.assertGreater(top1[-1], 0.3, msg)


class BadInput(ToolTest):
    def test_prob_thetas_on_a_cosine_head(self):
        out = self.path("out.h5")
        self.fails(2, "amlfs-train-epoch", "--checkpoint", FX.p("face-small.h5"), "--thetas",
                   FX.p("prob-thetas.h5"), "--index", 0, "--data", FX.p("faces.h5"), "--out",
                   out, mentions=[FX.p("prob-thetas.h5"), "cosine head"])
        self.assertFalse(os.path.exists(out))

    def test_cosine_thetas_on_a_linear_head(self):
        self.fails(2, "amlfs-train-epoch", "--checkpoint", FX.p("small-cnn.h5"), "--thetas",
                   FX.p("cosine-thetas.h5"), "--index", 0, "--data", FX.p("faces.h5"), "--out",
                   self.path("out.h5"), mentions=[FX.p("cosine-thetas.h5"), "linear head"])

    def test_init_refusals(self):
        d = FX.p("faces.h5")
        self.fails(2, "amlfs-init", "--model", "face-small", "--data", d, "--space", "prob",
                   "--out", self.path("a.h5"), mentions=["--space", "cosine head"])
        self.fails(2, "amlfs-init", "--model", "small-cnn", "--data", d, "--scale", "30",
                   "--out", self.path("b.h5"), mentions=["--scale", "linear head"])
        self.fails(2, "amlfs-init", "--model", "face-small", "--data", d, "--scale", "0",
                   "--out", self.path("c.h5"), mentions=["--scale"])
        self.fails(2, "amlfs-init", "--model", "sphere20", "--data", FX.p("tiny.h5"),
                   "--out", self.path("e.h5"), mentions=["sphere20", "16x16"])
        for name in "abce":
            self.assertFalse(os.path.exists(self.path(f"{name}.h5")))

    def test_scale_on_a_linear_head_checkpoint(self):
        c = self.path("c.h5")
        shutil.copyfile(FX.p("small-cnn.h5"), c)
        with h5py.File(c, "r+") as f:
            f.attrs["scale"] = np.float64(30)
        self.fails(2, "amlfs-train-epoch", "--checkpoint", c, "--thetas", FX.p("prob-thetas.h5"),
                   "--index", 0, "--data", FX.p("faces.h5"), "--out", self.path("out.h5"),
                   mentions=[c, "scale"])


if __name__ == "__main__":
    unittest.main()
