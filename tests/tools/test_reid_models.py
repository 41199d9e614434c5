"""The re-ID models through the tools: amlfs-init --model reid-small | resnet50 (the
checkpoint's scale 16 and embedding, the defaults, torchvision's tensor names and shapes,
BNNeck), amlfs-train-epoch with cosine-space thetas on reid-small (the frozen BNNeck bias
stays 0 in the written checkpoint while its weight moves; the loss falls), and the
refusals (--embedding on resnet50). Run with /usr/bin/python3; AMLFS_BIN selects the
build (build/rel/bin by default)."""
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


def write_people(path, n=(256, 32, 32), classes=8, height=64, width=32):
    """(N, 3, H, W) images whose brightness encodes the label (a task learned in an
    epoch or two), as test_face_models' faces."""
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        T.common_attrs(f, "dataset")
        f.attrs["name"] = np.bytes_("people")
        f.attrs["classes"] = np.int64(classes)
        f.attrs["channels"] = np.int64(3)
        f.attrs["height"] = np.int64(height)
        f.attrs["width"] = np.int64(width)
        f.attrs["mean"] = np.array([0.5] * 3)
        f.attrs["std"] = np.array([0.25] * 3)
        f.attrs["noise_ratio"] = np.float64(0.0)
        f.attrs["noise_kind"] = np.bytes_("none")
        f.attrs["seed"] = np.int64(1)
        for split, m in zip(("train", "val", "test"), n):
            labels = rng.integers(0, classes, m, dtype=np.int32)
            level = 20 + 215 * labels / (classes - 1)
            images = level[:, None, None, None] + rng.integers(-10, 11, (m, 3, height, width))
            f[split + "/images"] = images.astype(np.uint8)
            f[split + "/labels"] = labels


class Fixtures:
    def __init__(self, d):
        self.dir = d
        p = self.p
        write_people(p("people.h5"))
        must("amlfs-init", "--policy-only", "--mode", "fixed", "--form", "free", "--space",
             "cosine", "--out", p("cosine-fixed.h5"))
        must("amlfs-init", "--model", "reid-small", "--data", p("people.h5"), "--out",
             p("reid-small.h5"))

    def p(self, name):
        return os.path.join(self.dir, name)


def setUpModule():
    global FX
    FX = Fixtures(tempfile.mkdtemp(prefix="amlfs-reid-"))


def tearDownModule():
    shutil.rmtree(FX.dir, ignore_errors=True)


def shapes(path):
    with h5py.File(path, "r") as f:
        return {k: f["params"][k].shape for k in f["params"]}


class Init(ToolTest):
    def test_reid_small_checkpoint(self):
        c = FX.p("reid-small.h5")
        self.ok("amlfs-check", c)
        self.assertEqual(attr(c, "model"), "reid-small")
        self.assertEqual(attr(c, "scale"), 16.0)
        self.assertEqual(attr(c, "embedding"), 128)
        self.assertEqual(attr(c, "space"), "cosine")
        self.assertEqual(attr(c, "batch"), 32)
        self.assertAlmostEqual(attr(c, "lr"), 0.1)
        s = shapes(c)
        self.assertEqual(s["conv3.weight"], (128, 64, 3, 3))
        self.assertEqual(s["bnneck.weight"], (128,))
        self.assertEqual(s["head.weight"], (8, 128))
        np.testing.assert_array_equal(read(c, "params/bnneck.bias"), np.zeros(128, np.float32))

    def test_resnet50_checkpoint(self):
        c = self.path("resnet50.h5")
        p = self.ok("amlfs-init", "--model", "resnet50", "--data", FX.p("people.h5"), "--out", c)
        self.ok("amlfs-check", c)
        self.assertEqual(attr(c, "scale"), 16.0)
        self.assertEqual(attr(c, "embedding"), 2048)
        self.assertEqual(attr(c, "batch"), 64)
        self.assertEqual(attr(c, "epochs"), 140)
        self.assertEqual(attr(c, "warmup"), 20.0)
        self.assertEqual(attr(c, "schedule"), "step")
        np.testing.assert_array_equal(read(c, "milestones"), [80.0, 100.0])
        s = shapes(c)
        convs = [k for k in s if len(s[k]) == 4]
        self.assertEqual(len(convs), 53)  # conv1, 16 units of 3, 4 downsamples
        self.assertEqual(s["conv1.weight"], (64, 3, 7, 7))
        self.assertEqual(s["layer1.0.downsample.0.weight"], (256, 64, 1, 1))
        self.assertEqual(s["layer4.2.conv3.weight"], (2048, 512, 1, 1))
        self.assertNotIn("layer1.1.downsample.0.weight", s)
        self.assertEqual(s["bnneck.weight"], (2048,))
        self.assertEqual(s["head.weight"], (8, 2048))
        params = sum(int(np.prod(v)) for v in s.values()) - 2048  # the frozen bias
        self.assertEqual(params, 23508032 + 8 * 2048 + 2048)  # torchvision's less fc, + BNNeck gamma, head
        self.assertIn(f"{params} parameters", p.stderr)


class Train(ToolTest):
    def test_bnneck_bias_frozen_and_loss_falls(self):
        policy, c = FX.p("cosine-fixed.h5"), FX.p("reid-small.h5")
        losses = []
        for e in range(1, 3):
            th = self.path(f"thetas-{e}.h5")
            self.ok("amlfs-sample", "--policy", policy, "--epoch", e, "--samples", 2, "--out", th)
            out = self.path(f"ckpt-{e}.h5")
            self.ok("amlfs-train-epoch", "--checkpoint", c, "--thetas", th, "--index", 0,
                    "--data", FX.p("people.h5"), "--out", out, "--threads", 1)
            c = out
            self.ok("amlfs-check", c)
            self.assertEqual(attr(c, "status"), "ok")
            losses.append(attr(c, "train_loss"))
            np.testing.assert_array_equal(read(c, "params/bnneck.bias"), np.zeros(128, np.float32))
            np.testing.assert_array_equal(read(c, "optim/bnneck.bias"), np.zeros(128, np.float32))
            self.assertGreater(np.abs(read(c, "params/bnneck.weight") - 1).max(), 1e-4)
            policy_next = self.path(f"policy-{e + 1}.h5")
            ev = self.path(f"eval-{e}.h5")
            self.ok("amlfs-eval", "--checkpoint", c, "--data", FX.p("people.h5"), "--split",
                    "val", "--out", ev)
            rewards = self.path(f"rewards-{e}.h5")
            must("amlfs-reward", "--thetas", th, "--metric", "top1", "--out", rewards, ev,
                 self.path("none.h5"))
            must("amlfs-update", "--policy", policy, "--thetas", th, "--rewards", rewards,
                 "--out", policy_next)
            policy = policy_next
        self.assertTrue(all(math.isfinite(x) for x in losses), losses)
        self.assertLess(losses[-1], losses[0], losses)


class BadInput(ToolTest):
    def test_resnet50_embedding_fixed(self):
        out = self.path("r.h5")
        self.fails(2, "amlfs-init", "--model", "resnet50", "--data", FX.p("people.h5"),
                   "--embedding", "512", "--out", out)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
