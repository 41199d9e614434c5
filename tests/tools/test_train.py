"""amlfs-init --model, amlfs-train-epoch and amlfs-eval on tiny datasets: the start
checkpoint (shapes, parameter counts, the initialisation's values and statistics,
defaults, bytes), one epoch (what it records, reproducible bytes, another data order per
sample, a loss that goes down, a diverged loss), the evaluation against a numpy forward
pass of small-cnn, and bad input (exit 2), failed writes (exit 1: no directory, a full
disk, the file-size limit), each with one stderr line, the previous output left as it was
and no temporary left behind.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import filecmp
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import unittest

import h5py
import numpy as np

import amlfs_test as T
import philox_ref
from amlfs_test import must, edited
from amlfs_test import ToolTest, attr, read

PRECIOUS = b"an output from an earlier, successful call\n"
TEMPORARY = re.compile(r"^\..*\.tmp\..*")
M = 6  # intervals of the default policy
IDENTITY = np.concatenate([np.ones(M), np.zeros(M), np.ones(M), np.zeros(M)])
FX = None  # the module's shared inputs (Fixtures), made once


def next_policy(policy, thetas, evals, rewards, out):
    """The policy of the next epoch: the epoch's evals rewarded, then the update (a fixed-
    mode policy keeps its mu and only advances its epoch)."""
    must("amlfs-reward", "--thetas", thetas, "--metric", "top1", "--out", rewards, *evals)
    must("amlfs-update", "--policy", policy, "--thetas", thetas, "--rewards", rewards,
         "--out", out)
    return out


def all_attrs(path):
    """{object path: {attribute name: value}} of every object in the file."""
    out = {}
    with h5py.File(path, "r") as f:
        out["/"] = dict(f.attrs)
        f.visititems(lambda name, obj: out.__setitem__("/" + name, dict(obj.attrs)))
    return out


def tensors(path, group):
    with h5py.File(path, "r") as f:
        return {k: v[()] for k, v in f[group].items()}


def small_cnn_shapes(channels=1, size=28, classes=10):
    flat = 32 * (size // 4) * (size // 4)
    p = {"conv1.weight": (16, channels, 3, 3), "bn1.weight": (16,), "bn1.bias": (16,),
         "conv2.weight": (32, 16, 3, 3), "bn2.weight": (32,), "bn2.bias": (32,),
         "fc1.weight": (64, flat), "fc1.bias": (64,), "fc2.weight": (classes, 64),
         "fc2.bias": (classes,)}
    b = {f"bn{i}.{s}": (c,) for i, c in ((1, 16), (2, 32))
         for s in ("running_mean", "running_var")}
    return p, b


def resnet20_shapes(channels=3, classes=10):
    p, b = {}, {}

    def conv_bn(conv, bn, k, c):
        p[conv + ".weight"] = (k, c, 3, 3)
        p[bn + ".weight"] = p[bn + ".bias"] = (k,)
        b[bn + ".running_mean"] = b[bn + ".running_var"] = (k,)

    conv_bn("conv1", "bn1", 16, channels)
    c = 16
    for stage, k in enumerate((16, 32, 64)):
        for blk in range(3):
            n = f"layer{stage + 1}.{blk}"
            conv_bn(n + ".conv1", n + ".bn1", k, c)
            conv_bn(n + ".conv2", n + ".bn2", k, k)
            c = k
    p["fc.weight"] = (classes, 64)
    p["fc.bias"] = (classes,)
    return p, b


class Fixtures:
    """Inputs every test only reads: datasets, policies, thetas, checkpoints."""

    def __init__(self, d):
        self.dir = d
        p = self.p
        T.write_dataset(p("data.h5"), n=(200, 50, 50), noise=False)
        T.write_dataset(p("easy.h5"), n=(200, 50, 50), noise=False, easy=True)
        T.write_dataset(p("rgb.h5"), n=(40, 20, 20), noise=False, channels=3, size=32)
        T.write_dataset(p("five.h5"), n=(20, 10, 10), classes=5, noise=False)
        # a fixed-mode policy: every row of its thetas is mu, the identity
        must("amlfs-init", "--policy-only", "--mode", "fixed", "--form", "free", "--out",
             p("fixed-1.h5"))
        must("amlfs-sample", "--policy", p("fixed-1.h5"), "--epoch", 1, "--samples", 2,
             "--out", p("fixed-thetas-1.h5"))
        # a search policy: rows differ
        must("amlfs-init", "--policy-only", "--out", p("policy.h5"))
        must("amlfs-sample", "--policy", p("policy.h5"), "--epoch", 1, "--samples", 3,
             "--out", p("thetas.h5"))
        must("amlfs-init", "--policy-only", "--space", "cosine", "--out", p("cosine.h5"))
        must("amlfs-sample", "--policy", p("cosine.h5"), "--epoch", 1, "--samples", 2,
             "--out", p("cosine-thetas.h5"))
        must("amlfs-init", "--model", "small-cnn", "--data", p("data.h5"), "--batch", 50,
             "--out", p("start.h5"))
        must("amlfs-train-epoch", "--checkpoint", p("start.h5"), "--thetas",
             p("fixed-thetas-1.h5"), "--index", 0, "--data", p("data.h5"), "--out",
             p("trained.h5"), "--threads", 1)
        # epoch 2's thetas, through the tools that make them in a run
        must("amlfs-eval", "--checkpoint", p("trained.h5"), "--data", p("data.h5"),
             "--split", "val", "--out", p("trained-eval.h5"))
        next_policy(p("fixed-1.h5"), p("fixed-thetas-1.h5"),
                    [p("trained-eval.h5"), p("no-eval.h5")], p("rewards-1.h5"),
                    p("fixed-2.h5"))
        must("amlfs-sample", "--policy", p("fixed-2.h5"), "--epoch", 2, "--samples", 2,
             "--out", p("fixed-thetas-2.h5"))

        # row 0: t = 1 everywhere, tau = 1e308 t + 1e308 overflows: loss -inf
        def overflow(f):
            th = f["theta"][()]
            th[0] = np.concatenate([np.zeros(M), np.ones(M), np.full(2 * M, 1e308)])
            T.set_theta(f, th)

        edited(p("fixed-thetas-1.h5"), p("overflow-thetas.h5"), overflow)
        must("amlfs-train-epoch", "--checkpoint", p("start.h5"), "--thetas",
             p("overflow-thetas.h5"), "--index", 0, "--data", p("data.h5"), "--out",
             p("diverged.h5"), "--threads", 1)
        shutil.copyfile(p("start.h5"), p("truncated.h5"))
        with open(p("truncated.h5"), "r+b") as f:
            f.truncate(os.path.getsize(p("start.h5")) // 2)

        def fc1_narrow(f):  # a tensor of another shape than the model's
            w = f["params/fc1.weight"][()]
            del f["params/fc1.weight"]
            f["params/fc1.weight"] = w[:, :100]

        edited(p("start.h5"), p("wrong-tensor.h5"), fc1_narrow)
        T.write_checkpoint(p("partial.h5"), epoch=0)  # first layer only

    def p(self, name):
        return os.path.join(self.dir, name)


def setUpModule():
    global FX
    FX = Fixtures(tempfile.mkdtemp(prefix="amlfs-train-"))


def tearDownModule():
    shutil.rmtree(FX.dir, ignore_errors=True)


class Init(ToolTest):
    def init(self, model, data, *args, out="start.h5"):
        self.ok("amlfs-init", "--model", model, "--data", data, "--out", self.path(out), *args)
        return self.path(out)

    def check_start(self, c, shapes, buffers, parameters):
        self.ok("amlfs-check", c)
        params, bufs, optim = tensors(c, "params"), tensors(c, "buffers"), tensors(c, "optim")
        self.assertEqual({k: v.shape for k, v in params.items()}, shapes)
        self.assertEqual({k: v.shape for k, v in bufs.items()}, buffers)
        self.assertEqual({k: v.shape for k, v in optim.items()}, shapes)
        self.assertEqual(sum(v.size for v in params.values()), parameters)
        for k, v in list(params.items()) + list(bufs.items()) + list(optim.items()):
            self.assertEqual(v.dtype, np.float32, k)
        for k, v in optim.items():
            self.assertTrue(np.all(v == 0), f"momentum {k} not zero")
        for k, v in params.items():
            if k.startswith("bn") or ".bn" in k:
                want = 1.0 if k.endswith(".weight") else 0.0
                self.assertTrue(np.all(v == want), f"{k} is not {want}")
                continue
            # PyTorch's default: weights and linear biases uniform in +-1/sqrt(fan_in),
            # fan_in the weight's inputs per output (a bias: its layer's weight's)
            w = params[k[:-len("bias")] + "weight"] if k.endswith(".bias") else v
            bound = 1.0 / math.sqrt(np.prod(w.shape[1:]))
            x, n = v.astype(np.float64).ravel(), v.size
            self.assertTrue(np.all(np.abs(x) <= bound), f"{k}: beyond +-{bound}")
            sd = bound / math.sqrt(3)  # uniform's; the sample sd's error about sd/sqrt(5n)
            self.assertLess(abs(x.std() / sd - 1), 5 / math.sqrt(5 * n) + 1e-3,
                            f"{k}: sd {x.std()}, uniform's {sd}")
            self.assertLess(abs(x.mean()), 5 * sd / math.sqrt(n), f"{k}: mean {x.mean()}")
            if n >= 1000:  # uniform, not normal: half within half the bound
                inside = np.mean(np.abs(x) < bound / 2)
                self.assertLess(abs(inside - 0.5), 5 * math.sqrt(0.25 / n), k)
        for k, v in bufs.items():
            want = 0.0 if k.endswith("running_mean") else 1.0
            self.assertTrue(np.all(v == want), f"{k} is not {want}")
        # distinct draws for every tensor, not one stream restarted
        firsts = [v.ravel()[:8].tolist() for k, v in params.items()
                  if v.ndim >= 2 or (k.endswith(".bias") and "bn" not in k)]
        self.assertEqual(len(firsts), len({tuple(x) for x in firsts}))
        a = T.attr
        self.assertEqual(a(c, "epoch"), 0)
        self.assertEqual(a(c, "optim_steps"), 0)
        self.assertEqual(a(c, "status"), "ok")
        self.assertTrue(math.isnan(a(c, "train_loss")) and math.isnan(a(c, "train_top1")))
        self.assertEqual(a(c, "clamp_fraction"), 0)
        self.assertEqual(a(c, "intervals"), M)
        self.assertEqual(a(c, "space"), "prob")
        np.testing.assert_array_equal(read(c, "theta"), IDENTITY)

    def test_small_cnn(self):
        c = self.init("small-cnn", FX.p("data.h5"))
        p, b = small_cnn_shapes()
        self.check_start(c, p, b, 105914)
        want = {"model": "small-cnn", "dataset": "fashion-mnist", "classes": 10,
                "channels": 1, "height": 28, "width": 28, "batch": 100, "lr": 0.05,
                "momentum": 0.9, "nesterov": 0, "weight_decay": 5e-4, "schedule": "cosine",
                "warmup": 0, "epochs": 12, "augment": "none", "seed": 1}
        self.assertEqual({k: attr(c, k) for k in want}, want)

    def test_resnet20(self):
        c = self.init("resnet20", FX.p("rgb.h5"))
        p, b = resnet20_shapes()
        self.check_start(c, p, b, 269722)
        want = {"model": "resnet20", "dataset": "cifar10", "classes": 10, "channels": 3,
                "height": 32, "width": 32, "batch": 128, "lr": 0.1, "momentum": 0.9,
                "nesterov": 0, "weight_decay": 5e-4, "schedule": "cosine", "warmup": 0,
                "epochs": 200, "augment": "crop-flip", "seed": 1}
        self.assertEqual({k: attr(c, k) for k in want}, want)

    def test_options_and_other_shapes(self):
        c = self.init("small-cnn", FX.p("five.h5"), "--batch", 32, "--lr", 0.01,
                      "--momentum", 0.5, "--nesterov", "--weight-decay", 1e-3, "--schedule",
                      "step", "--step", 2, "--gamma", 0.5, "--epochs", 7, "--augment",
                      "crop-flip", "--seed", 9, "--intervals", 3)
        want = {"batch": 32, "lr": 0.01, "momentum": 0.5, "nesterov": 1,
                "weight_decay": 1e-3, "schedule": "step", "step": 2, "gamma": 0.5,
                "epochs": 7, "augment": "crop-flip", "seed": 9, "classes": 5, "intervals": 3}
        self.assertEqual({k: attr(c, k) for k in want}, want)
        self.assertEqual(read(c, "params/fc2.weight").shape, (5, 64))
        np.testing.assert_array_equal(read(c, "theta"), [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0])

    def test_initialisation_is_philox_uniform(self):
        """Every value, computed independently: the weights and linear biases in build
        order draw uniforms u_k of Philox stream (seed, 0, 0, INIT) one after another,
        w = (2 u_k - 1) / sqrt(fan_in) in double, rounded to float32 (model.c)."""
        c = self.init("small-cnn", FX.p("five.h5"), "--seed", 11)
        params = tensors(c, "params")
        order = [("conv1.weight", 1 * 9), ("conv2.weight", 16 * 9),
                 ("fc1.weight", 32 * 7 * 7), ("fc1.bias", 32 * 7 * 7),
                 ("fc2.weight", 64), ("fc2.bias", 64)]
        name, k = (11, 0, 0, 4), 0  # AMLFS_STREAM_INIT = 4
        for tname, fan_in in order:
            v = params[tname].ravel()
            # the whole of the small tensors, the first and last 300 values of fc1.weight
            idx = range(v.size) if v.size <= 5000 else [*range(300), *range(v.size - 300, v.size)]
            want = [(2.0 * philox_ref.uniform(name, k + j) - 1.0) / math.sqrt(fan_in)
                    for j in idx]
            np.testing.assert_array_equal(v[list(idx)], np.array(want).astype(np.float32),
                                          tname)
            k += v.size

    def test_seed_gives_the_bytes(self):
        a = self.init("small-cnn", FX.p("data.h5"), "--seed", 5, out="a.h5")
        b = self.init("small-cnn", FX.p("data.h5"), "--seed", 5, out="b.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), "same seed, other bytes")
        c = self.init("small-cnn", FX.p("data.h5"), "--seed", 6, out="c.h5")
        for k in ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"):
            self.assertFalse(np.array_equal(read(a, "params/" + k), read(c, "params/" + k)), k)
        np.testing.assert_array_equal(read(a, "params/bn1.weight"), read(c, "params/bn1.weight"))


class TrainEpoch(ToolTest):
    def train(self, ckpt, thetas, index, data, out, threads=1):
        out = self.path(out)
        p = self.ok("amlfs-train-epoch", "--checkpoint", ckpt, "--thetas", thetas, "--index",
                    index, "--data", data, "--out", out, "--threads", threads)
        return out, p

    def evaluate(self, ckpt, data, split, out):
        self.ok("amlfs-eval", "--checkpoint", ckpt, "--data", data, "--split", split,
                "--out", self.path(out))
        return self.path(out)

    def test_one_epoch_records(self):
        start = FX.p("start.h5")
        c, p = self.train(start, FX.p("thetas.h5"), 1, FX.p("data.h5"), "c.h5", threads=2)
        self.ok("amlfs-check", c)
        self.assertEqual(attr(c, "epoch"), 1)
        self.assertEqual(attr(c, "status"), "ok")
        self.assertTrue(math.isfinite(attr(c, "train_loss")) and attr(c, "train_loss") > 0)
        self.assertTrue(0 <= attr(c, "train_top1") <= 1)
        self.assertTrue(0 <= attr(c, "clamp_fraction") <= 1)
        self.assertEqual(attr(c, "optim_steps"), 4)  # 200 images, batch 50
        theta = read(FX.p("thetas.h5"), "theta")
        np.testing.assert_array_equal(read(c, "theta"), theta[1])
        self.assertFalse(np.array_equal(theta[0], theta[1]))
        self.assertEqual(attr(c, "intervals"), attr(FX.p("thetas.h5"), "intervals"))
        self.assertEqual(attr(c, "space"), attr(FX.p("thetas.h5"), "space"))
        self.assertEqual(attr(c, "threads"), 2)
        self.assertIn("2 threads", attr(c, "device"))
        self.assertIn("isa", attr(c, "device").lower())  # bytes repeat for the same ISA
        # the settings carry over; the weights, statistics and momenta moved
        for k in ("model", "dataset", "batch", "lr", "momentum", "weight_decay", "schedule",
                  "epochs", "augment", "seed", "classes", "channels", "height", "width"):
            self.assertEqual(attr(c, k), attr(start, k), k)
        for group in ("params", "optim"):
            for k, v in tensors(start, group).items():
                self.assertFalse(np.array_equal(v, read(c, f"{group}/{k}")), f"{group}/{k}")
        self.assertFalse(np.array_equal(read(start, "buffers/bn1.running_mean"),
                                        read(c, "buffers/bn1.running_mean")))
        # wall-clock figures on stderr, never in the file
        self.assertIn("images/s", p.stderr)
        for obj, attrs in all_attrs(c).items():
            for name in attrs:
                low = name.lower()
                self.assertFalse(any(w in low for w in ("time", "second", "images_per")),
                                 f"{obj}@{name} looks like a wall-clock figure")

    def test_same_inputs_same_bytes_other_index_other_order(self):
        start, th, d = FX.p("start.h5"), FX.p("fixed-thetas-1.h5"), FX.p("data.h5")
        for threads in (1, 2):
            a, _ = self.train(start, th, 0, d, f"a{threads}.h5", threads)
            b, _ = self.train(start, th, 0, d, f"b{threads}.h5", threads)
            self.assertTrue(filecmp.cmp(a, b, shallow=False),
                            f"--threads {threads}: same inputs, other bytes")
        # fixed mode: both rows are the identity, only the data order differs
        th_rows = read(th, "theta")
        np.testing.assert_array_equal(th_rows[0], th_rows[1])
        c, _ = self.train(start, th, 1, d, "c.h5")
        self.assertFalse(filecmp.cmp(self.path("a1.h5"), c, shallow=False))
        self.assertFalse(np.array_equal(read(self.path("a1.h5"), "params/fc2.weight"),
                                        read(c, "params/fc2.weight")))
        # the fixture made with the same inputs in another process
        self.assertTrue(filecmp.cmp(self.path("a1.h5"), FX.p("trained.h5"), shallow=False))

    def test_crop_flip_is_keyed_too(self):
        """small-cnn with crop-flip: reproducible, and not the unaugmented epoch."""
        d = FX.p("data.h5")
        self.ok("amlfs-init", "--model", "small-cnn", "--data", d, "--batch", 50,
                "--augment", "crop-flip", "--out", self.path("s.h5"))
        th = FX.p("fixed-thetas-1.h5")
        a, _ = self.train(self.path("s.h5"), th, 0, d, "a.h5")
        b, _ = self.train(self.path("s.h5"), th, 0, d, "b.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False))
        self.assertFalse(np.array_equal(read(a, "params/conv1.weight"),
                                        read(FX.p("trained.h5"), "params/conv1.weight")))

    def test_resnet20_epoch(self):
        d = FX.p("rgb.h5")
        self.ok("amlfs-init", "--model", "resnet20", "--data", d, "--batch", 20, "--out",
                self.path("r.h5"))
        th = FX.p("fixed-thetas-1.h5")
        a, _ = self.train(self.path("r.h5"), th, 0, d, "a.h5")
        b, _ = self.train(self.path("r.h5"), th, 0, d, "b.h5")
        c, _ = self.train(self.path("r.h5"), th, 1, d, "c.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False))
        self.assertFalse(filecmp.cmp(a, c, shallow=False))
        self.ok("amlfs-check", a)
        self.assertEqual(attr(a, "status"), "ok")
        self.assertEqual(attr(a, "optim_steps"), 2)
        self.assertTrue(math.isfinite(attr(a, "train_loss")))
        e = self.evaluate(a, d, "val", "e.h5")
        self.assertEqual(attr(e, "images"), 20)
        self.assertTrue(math.isfinite(attr(e, "loss")))

    def test_loss_goes_down(self):
        """Four chained epochs on images whose brightness is their label, each epoch's
        thetas from the policy the previous epoch's rewards advanced."""
        d = FX.p("easy.h5")
        self.ok("amlfs-init", "--model", "small-cnn", "--data", d, "--batch", 50,
                "--epochs", 4, "--out", self.path("ckpt-0.h5"))
        policy = FX.p("fixed-1.h5")
        train_loss, val_loss, val_top1 = [], [], []
        for e in range(1, 5):
            th = self.path(f"thetas-{e}.h5")
            self.ok("amlfs-sample", "--policy", policy, "--epoch", e, "--samples", 2,
                    "--out", th)
            c, _ = self.train(self.path(f"ckpt-{e - 1}.h5"), th, 0, d, f"ckpt-{e}.h5")
            self.assertEqual(attr(c, "epoch"), e)
            ev = self.evaluate(c, d, "val", f"eval-{e}.h5")
            train_loss.append(attr(c, "train_loss"))
            val_loss.append(attr(ev, "loss"))
            val_top1.append(attr(ev, "top1"))
            policy = next_policy(policy, th, [ev, self.path("none.h5")],
                                 self.path(f"rewards-{e}.h5"), self.path(f"policy-{e + 1}.h5"))
            self.assertEqual(attr(policy, "epoch"), e + 1)
        msg = f"train loss {train_loss}, val loss {val_loss}, val top-1 {val_top1}"
        self.assertTrue(all(b < a for a, b in zip(train_loss, train_loss[1:])), msg)
        self.assertLess(train_loss[-1], 0.5 * train_loss[0], msg)
        self.assertLess(val_loss[-1], 0.5 * val_loss[0], msg)
        self.assertGreater(val_top1[-1], val_top1[0], msg)
        self.assertGreater(val_top1[-1], 0.3, msg)  # chance: 0.1

    def test_diverged(self):
        """A loss that overflows: exit 0, status diverged, NaN metrics, excluded."""
        c = FX.p("diverged.h5")
        p = T.run("amlfs-train-epoch", "--checkpoint", FX.p("start.h5"), "--thetas",
                  FX.p("overflow-thetas.h5"), "--index", 0, "--data", FX.p("data.h5"),
                  "--out", self.path("d.h5"), "--threads", 1)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("diverged", p.stderr)
        self.assertTrue(filecmp.cmp(c, self.path("d.h5"), shallow=False))
        self.ok("amlfs-check", c)
        self.assertEqual(attr(c, "status"), "diverged")
        self.assertEqual(attr(c, "epoch"), 1)
        self.assertTrue(math.isnan(attr(c, "train_loss")))
        np.testing.assert_array_equal(read(c, "theta"), read(FX.p("overflow-thetas.h5"),
                                                             "theta")[0])
        e = self.evaluate(c, FX.p("data.h5"), "val", "e.h5")
        self.ok("amlfs-check", e)
        self.assertEqual(attr(e, "status"), "diverged")
        self.assertEqual(attr(e, "epoch"), 1)
        for k in ("top1", "top5", "loss"):
            self.assertTrue(math.isnan(attr(e, k)), k)
        # sample 1 of the same epoch trained fine: sample 0 is excluded as diverged (3)
        r = self.path("rewards.h5")
        self.ok("amlfs-reward", "--thetas", FX.p("overflow-thetas.h5"), "--metric", "top1",
                "--out", r, e, FX.p("trained-eval.h5"))
        np.testing.assert_array_equal(read(r, "excluded"), [3, 0])
        self.assertTrue(math.isnan(read(r, "raw")[0]))
        self.assertEqual(attr(r, "best"), 1)


def small_cnn_forward(ckpt, images, mean, std):
    """small-cnn's logits in float64, batch norm in inference mode (running statistics)."""
    P = {k: v.astype(np.float64) for k, v in tensors(ckpt, "params").items()}
    B = {k: v.astype(np.float64) for k, v in tensors(ckpt, "buffers").items()}
    mean, std = np.asarray(mean)[None, :, None, None], np.asarray(std)[None, :, None, None]
    x = (images.astype(np.float64) / 255 - mean) / std

    def conv3x3(x, w):  # cross-correlation, padding 1, stride 1, by im2col
        n, c, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.stack([xp[:, :, i:i + h, j:j + wd] for i in range(3) for j in range(3)], 2)
        return np.einsum("ncphw,ocp->nohw", cols, w.reshape(w.shape[0], c, 9), optimize=True)

    def bn(x, name):
        s = lambda v: v[None, :, None, None]
        return (x - s(B[name + ".running_mean"])) / np.sqrt(s(B[name + ".running_var"]) +
                                                               1e-5) \
            * s(P[name + ".weight"]) + s(P[name + ".bias"])

    def maxpool2(x):
        n, c, h, w = x.shape
        return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max((3, 5))

    for i in (1, 2):
        x = maxpool2(np.maximum(bn(conv3x3(x, P[f"conv{i}.weight"]), f"bn{i}"), 0))
    x = x.reshape(len(x), -1)
    x = np.maximum(x @ P["fc1.weight"].T + P["fc1.bias"], 0)
    return x @ P["fc2.weight"].T + P["fc2.bias"]


class Eval(ToolTest):
    def compare(self, ckpt, data, split, name=None):
        e = self.path(name or f"eval-{split}.h5")
        self.ok("amlfs-eval", "--checkpoint", ckpt, "--data", data, "--split", split,
                "--out", e)
        self.ok("amlfs-check", e)
        images, labels = read(data, f"{split}/images"), read(data, f"{split}/labels")
        n = len(labels)
        self.assertEqual(attr(e, "split"), split)
        self.assertEqual(attr(e, "status"), "ok")
        self.assertEqual(attr(e, "epoch"), attr(ckpt, "epoch"))
        self.assertEqual(attr(e, "images"), n)
        top1, top5, loss = attr(e, "top1"), attr(e, "top5"), attr(e, "loss")
        self.assertTrue(0 <= top1 <= top5 <= 1 and loss > 0, (top1, top5, loss))
        f = small_cnn_forward(ckpt, images, attr(data, "mean"), attr(data, "std"))
        fy = f[np.arange(n), labels]
        m = f.max(1)
        ref_loss = np.mean(m + np.log(np.exp(f - m[:, None]).sum(1)) - fy)
        self.assertLess(abs(loss - ref_loss), 1e-4 * abs(ref_loss),
                        f"{split}: loss {loss}, numpy {ref_loss}")
        ties = np.abs(f - fy[:, None]) < 1e-5 * np.maximum(1, np.abs(fy))[:, None]
        ties[np.arange(n), labels] = False
        classes = np.arange(f.shape[1])[None, :]
        above = ((f > fy[:, None]) | ((f == fy[:, None]) & (classes < labels[:, None]))).sum(1)
        for name, got, k in (("top-1", top1, 1), ("top-5", top5, 5)):
            hits = int(np.sum(above < k))
            off = abs(round(got * n) - hits)
            self.assertAlmostEqual(got * n, round(got * n), delta=1e-9)
            self.assertTrue(off == 0 or (off == 1 and ties.any()),
                            f"{split} {name}: amlfs-eval {got * n:.0f} of {n}, numpy {hits}")
        return e

    def test_against_numpy_at_init(self):
        self.compare(FX.p("start.h5"), FX.p("data.h5"), "val")

    def test_against_numpy_after_training(self):
        d = FX.p("easy.h5")
        self.ok("amlfs-init", "--model", "small-cnn", "--data", d, "--batch", 50,
                "--out", self.path("s.h5"))
        c = self.path("c.h5")
        self.ok("amlfs-train-epoch", "--checkpoint", self.path("s.h5"), "--thetas",
                FX.p("fixed-thetas-1.h5"), "--index", 0, "--data", d, "--out", c,
                "--threads", 1)
        # the running statistics moved away from 0 and 1: inference mode is tested
        self.assertGreater(np.abs(read(c, "buffers/bn2.running_mean")).max(), 1e-3)
        for split in ("val", "test"):
            self.compare(c, d, split)
        # the trained model beats chance on its easy task
        self.assertGreater(attr(self.path("eval-val.h5"), "top1"), 0.15)

    def test_other_batch_same_metrics(self):
        """The eval batch is the checkpoint's: 50 images in one batch, or 7 batches of 7
        and one of 1, give the same metrics."""
        d = FX.p("data.h5")
        a = self.compare(FX.p("trained.h5"), d, "val", "a.h5")
        c = self.path("b7.h5")
        edited(FX.p("trained.h5"), c, lambda f: f.attrs.__setitem__("batch", np.int64(7)))
        b = self.compare(c, d, "val", "b.h5")
        for k in ("top1", "top5"):
            self.assertLessEqual(abs(attr(a, k) - attr(b, k)) * 50, 1 + 1e-9, k)
        self.assertAlmostEqual(attr(a, "loss"), attr(b, "loss"), delta=1e-5 * attr(a, "loss"))


class BadInput(ToolTest):
    def temporaries(self, d):
        return sorted(n for n in os.listdir(d) if TEMPORARY.match(n))

    def bad(self, code, tool, *args, mentions=(), keep=True):
        """The call fails with code and one line naming each of mentions; a --out file
        made beforehand (keep) is left as it was, and no temporary is left."""
        out = self.path("out.h5")
        if keep:
            with open(out, "wb") as f:
                f.write(PRECIOUS)
            args = args + ("--out", out)
        with self.subTest(call=" ".join([tool] + [os.path.basename(str(a)) for a in args])):
            line = self.fails(code, tool, *args, mentions=mentions)
            if keep:
                with open(out, "rb") as f:
                    self.assertEqual(f.read(), PRECIOUS, f"{tool} changed its --out and failed")
            self.assertEqual(self.temporaries(self.dir), [], f"{tool} left a temporary")
            self.assertEqual(self.temporaries(FX.dir), [], f"{tool} left a temporary")
            return line

    def train(self, code, ckpt, thetas, index, data, mentions, **kw):
        return self.bad(code, "amlfs-train-epoch", "--checkpoint", ckpt, "--thetas", thetas,
                        "--index", index, "--data", data, "--threads", 1, mentions=mentions,
                        **kw)

    def evaluate(self, code, ckpt, data, mentions, **kw):
        return self.bad(code, "amlfs-eval", "--checkpoint", ckpt, "--data", data, "--split",
                        "val", mentions=mentions, **kw)

    def test_data_of_the_wrong_kind(self):
        p, s, th = FX.p, FX.p("start.h5"), FX.p("fixed-thetas-1.h5")
        for wrong in (p("policy.h5"), p("thetas.h5"), p("start.h5")):
            self.train(2, s, th, 0, wrong, mentions=[wrong])
            self.evaluate(2, s, wrong, mentions=[wrong])
            self.bad(2, "amlfs-init", "--model", "small-cnn", "--data", wrong,
                     mentions=[wrong])
        text = self.path("text.h5")
        with open(text, "w") as f:
            f.write("not a dataset\n")
        self.train(2, s, th, 0, text, mentions=[text])
        self.evaluate(2, s, text, mentions=[text])

    def test_architecture_does_not_fit_the_data(self):
        p, s, th = FX.p, FX.p("start.h5"), FX.p("fixed-thetas-1.h5")
        # channels and size: a 1-channel 28x28 small-cnn on 3-channel 32x32 images
        self.train(2, s, th, 0, p("rgb.h5"), mentions=[p("rgb.h5"), "3-channel"])
        self.evaluate(2, s, p("rgb.h5"), mentions=[p("rgb.h5"), "3-channel"])
        # classes: 10 outputs, a dataset of 5 classes
        self.train(2, s, th, 0, p("five.h5"), mentions=[p("five.h5"), "5 classes"])
        self.evaluate(2, s, p("five.h5"), mentions=[p("five.h5"), "5 classes"])

    def test_checkpoint_tensors_do_not_fit_the_model(self):
        p, th, d = FX.p, FX.p("fixed-thetas-1.h5"), FX.p("data.h5")
        for c, what in ((p("wrong-tensor.h5"), "fc1.weight"), (p("partial.h5"), "missing")):
            self.train(2, c, th, 0, d, mentions=[c, what])
            self.evaluate(2, c, d, mentions=[c, what])

    def test_index_not_below_b(self):
        for i in (2, 1000):
            self.train(2, FX.p("start.h5"), FX.p("fixed-thetas-1.h5"), i, FX.p("data.h5"),
                       mentions=["--index", str(i), FX.p("fixed-thetas-1.h5")])
        self.bad(2, "amlfs-train-epoch", "--checkpoint", FX.p("start.h5"), "--thetas",
                 FX.p("fixed-thetas-1.h5"), "--index", -1, "--data", FX.p("data.h5"),
                 mentions=["--index"])

    def test_truncated_checkpoint(self):
        c = FX.p("truncated.h5")
        self.train(2, c, FX.p("fixed-thetas-1.h5"), 0, FX.p("data.h5"), mentions=[c])
        self.evaluate(2, c, FX.p("data.h5"), mentions=[c])

    def test_thetas_of_another_epoch(self):
        p = FX.p
        # a checkpoint of epoch 1 needs thetas of epoch 2, one of epoch 0 thetas of epoch 1
        self.train(2, p("trained.h5"), p("fixed-thetas-1.h5"), 0, p("data.h5"),
                   mentions=[p("fixed-thetas-1.h5"), "epoch 1", "epoch 2"])
        self.train(2, p("start.h5"), p("fixed-thetas-2.h5"), 0, p("data.h5"),
                   mentions=[p("fixed-thetas-2.h5"), "epoch 2", "epoch 1"])
        # the right epoch trains
        self.ok("amlfs-train-epoch", "--checkpoint", p("trained.h5"), "--thetas",
                p("fixed-thetas-2.h5"), "--index", 0, "--data", p("data.h5"), "--out",
                self.path("c2.h5"), "--threads", 1)
        self.assertEqual(attr(self.path("c2.h5"), "epoch"), 2)

    def test_no_training_from_a_diverged_checkpoint(self):
        self.train(2, FX.p("diverged.h5"), FX.p("fixed-thetas-2.h5"), 0, FX.p("data.h5"),
                   mentions=[FX.p("diverged.h5"), "diverged"])

    def test_cosine_thetas_for_a_linear_head(self):
        self.train(2, FX.p("start.h5"), FX.p("cosine-thetas.h5"), 0, FX.p("data.h5"),
                   mentions=[FX.p("cosine-thetas.h5"), "cosine"])

    def test_unwritable_output_directory(self):
        p = FX.p
        regular = self.path("a-regular-file")
        with open(regular, "wb") as f:
            f.write(PRECIOUS)
        targets = [self.path("no-such-dir/x.h5"), "/proc/amlfs/x.h5",
                   os.path.join(regular, "x.h5")]
        for target in targets:
            self.bad(1, "amlfs-train-epoch", "--checkpoint", p("start.h5"), "--thetas",
                     p("fixed-thetas-1.h5"), "--index", 0, "--data", p("data.h5"),
                     "--threads", 1, "--out", target, mentions=[target], keep=False)
            self.bad(1, "amlfs-eval", "--checkpoint", p("start.h5"), "--data", p("data.h5"),
                     "--split", "val", "--out", target, mentions=[target], keep=False)
            self.bad(1, "amlfs-init", "--model", "small-cnn", "--data", p("data.h5"),
                     "--out", target, mentions=[target], keep=False)
        self.assertFalse(os.path.exists(self.path("no-such-dir")))
        with open(regular, "rb") as f:
            self.assertEqual(f.read(), PRECIOUS)

    def test_output_is_a_directory(self):
        target = self.path("a-directory")
        os.mkdir(target)
        p = FX.p
        self.bad(1, "amlfs-train-epoch", "--checkpoint", p("start.h5"), "--thetas",
                 p("fixed-thetas-1.h5"), "--index", 0, "--data", p("data.h5"), "--threads", 1,
                 "--out", target, mentions=[target], keep=False)
        self.bad(1, "amlfs-eval", "--checkpoint", p("start.h5"), "--data", p("data.h5"),
                 "--split", "val", "--out", target, mentions=[target], keep=False)
        self.assertEqual(os.listdir(target), [])

    def test_dataset_statistics_not_finite(self):
        """A mean or std that is not finite would normalise every image to NaN or 0."""
        s, th = FX.p("start.h5"), FX.p("fixed-thetas-1.h5")
        for name, value in (("mean", np.nan), ("std", np.inf)):
            d = edited(FX.p("data.h5"), self.path(f"{name}.h5"),
                       lambda f, n=name, v=value: f.attrs.__setitem__(n, np.array([v])))
            self.train(2, s, th, 0, d, mentions=[d, name])
            self.evaluate(2, s, d, mentions=[d, name])

    def refused_writes(self, out, run,
                       tools=("amlfs-init", "amlfs-train-epoch", "amlfs-eval")):
        """init --model, train-epoch and eval, each writing out, where run(args) makes the
        write fail: exit 1, one line naming out, out and its directory as they were."""
        p = FX.p
        before = sorted(os.listdir(os.path.dirname(out)))
        calls = {"amlfs-init": ("--model", "small-cnn", "--data", p("data.h5")),
                 "amlfs-train-epoch": ("--checkpoint", p("start.h5"), "--thetas",
                                       p("fixed-thetas-1.h5"), "--index", 0, "--data",
                                       p("data.h5"), "--threads", 1),
                 "amlfs-eval": ("--checkpoint", p("start.h5"), "--data", p("data.h5"),
                                "--split", "val")}
        for tool in tools:
            with self.subTest(tool=tool):
                r = run([os.path.join(T.BIN, tool)] + [str(a) for a in calls[tool]] +
                        ["--out", out])
                lines = [l for l in r.stderr.splitlines() if l.strip()]
                self.assertEqual(r.returncode, 1, f"{tool}: exit {r.returncode}: {r.stderr}")
                self.assertEqual(len(lines), 1, f"{tool}: want one stderr line: {r.stderr}")
                self.assertTrue(lines[0].startswith(f"{tool}: error: "), lines[0])
                self.assertIn(os.path.basename(out), lines[0])
                with open(out, "rb") as f:
                    self.assertEqual(f.read(), PRECIOUS, f"{tool} changed its --out")
                left = sorted(os.listdir(os.path.dirname(out)))
                self.assertEqual(left, before, f"{tool} left a temporary")
                for n in set(left) - set(before):  # the next call starts clean
                    os.unlink(os.path.join(os.path.dirname(out), n))

    def test_full_disk(self):
        """ENOSPC: a checkpoint (860 kB) on a 256 kB tmpfs (needs root and mount; skipped
        without)."""
        d = self.path("tiny")
        os.mkdir(d)
        if os.geteuid() != 0 or not shutil.which("mount"):
            self.skipTest("mounting a small tmpfs needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", d],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {r.stderr.strip()}")
        try:  # unmounted before tearDown removes the directory
            out = os.path.join(d, "out.h5")
            with open(out, "wb") as f:
                f.write(PRECIOUS)
            self.refused_writes(out, lambda cmd: subprocess.run(cmd, capture_output=True,
                                                                 text=True),
                                tools=("amlfs-init", "amlfs-train-epoch"))
        finally:
            subprocess.run(["umount", d], capture_output=True)

    def test_file_size_limit(self):
        """EFBIG: the write refused by the file-size limit (ulimit -f, which a batch
        system may set), with SIGXFSZ ignored so that the write fails instead of killing
        the tool."""
        out = self.path("out.h5")
        with open(out, "wb") as f:
            f.write(PRECIOUS)

        def limited():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

        self.refused_writes(out, lambda cmd: subprocess.run(cmd, capture_output=True,
                                                             text=True, preexec_fn=limited))

    def test_usage(self):
        p = FX.p
        self.bad(2, "amlfs-init", "--model", "vgg16", "--data", p("data.h5"),
                 mentions=["vgg16"])
        self.bad(2, "amlfs-init", "--model", "small-cnn", mentions=["--data"])
        self.bad(2, "amlfs-train-epoch", "--checkpoint", p("start.h5"), "--data", p("data.h5"),
                 "--index", 0, mentions=["--thetas"])
        self.bad(2, "amlfs-eval", "--checkpoint", p("start.h5"), "--data", p("data.h5"),
                 "--split", "everything", mentions=["--split"])
        self.bad(2, "amlfs-train-epoch", "--checkpoint", p("missing.h5"), "--thetas",
                 p("fixed-thetas-1.h5"), "--index", 0, "--data", p("data.h5"),
                 mentions=[p("missing.h5")])


if __name__ == "__main__":
    unittest.main()
