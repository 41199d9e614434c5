"""amlfs-export: the exported Python file's NumPy function and PyTorch module give
amlfs-loss's loss and gradient (relative error under 1e-6; amlfs's softmax terms are
float32, the export computes in float64) for random thetas of both spaces and forms, for
a policy's mu and for a tiny run's schedule. Without PyTorch the torch part says it is
skipped and the NumPy part still runs."""
import importlib.util
import os
import shutil
import sys
import tempfile
import unittest

import h5py
import numpy as np

import amlfs_test as T
from amlfs_test import ToolTest, read, write_loss_input

try:
    import torch
except ImportError:
    torch = None
    print("test_export: PyTorch is not importable: the torch module checks are skipped, "
          "the NumPy checks run", file=sys.stderr)

RTOL = 1e-6


def load(path):
    """Imports the exported file as a fresh module."""
    name = "exported_" + os.path.basename(path)[:-3].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rel(a, b):
    """Norm-wise relative error of a against b."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


class Export(ToolTest):
    def batch(self, space, rng, n=64, c=10):
        if space == "prob":
            x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
        else:
            x = rng.uniform(-1, 1, (n, c)).astype(np.float32)
        y = rng.integers(0, c, n)
        inp = self.path(f"in-{space}.h5")
        if space == "prob":
            write_loss_input(inp, logits=x, targets=y)
        else:
            write_loss_input(inp, cosines=x, scale=16.0, targets=y)
        return inp, x, y

    def amlfs_loss(self, thetas, index, inp):
        out = self.path("out.h5")
        self.ok("amlfs-loss", "--thetas", thetas, "--index", index, "--input", inp, "--out", out)
        return read(out, "loss"), read(out, "grad").astype(np.float64)

    def check_module(self, module, x, y, loss, grad, what, **kw):
        """The NumPy function and the torch module against amlfs-loss's loss and grad."""
        l_np, g_np = module.loss_numpy(x, y, **kw)
        self.assertLess(rel(l_np, loss), RTOL, f"{what}: numpy loss")
        self.assertLess(rel(g_np, grad), RTOL, f"{what}: numpy gradient")
        np.testing.assert_allclose(l_np, loss, rtol=RTOL, err_msg=what)
        if torch is None:
            return
        epoch = kw.get("epoch")
        crit = module.Loss(reduction="mean")
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        lt = crit(xt, torch.tensor(y), epoch=epoch) if epoch else crit(xt, torch.tensor(y))
        lt.backward()
        self.assertLess(abs(lt.item() - loss.mean()) / abs(loss.mean()), RTOL, f"{what}: torch")
        self.assertLess(rel(xt.grad.numpy(), grad), RTOL, f"{what}: torch gradient")
        per_row = module.Loss(reduction="none")(torch.tensor(x.astype(np.float64)),
                                                torch.tensor(y), epoch=epoch)
        np.testing.assert_allclose(per_row.numpy(), loss, rtol=RTOL, err_msg=what)

    def test_random_thetas_both_spaces_and_forms(self):
        rng = np.random.default_rng(21)
        for space in ("prob", "cosine"):
            for form in ("anchored", "free"):
                with self.subTest(space=space, form=form):
                    p = self.policy(f"p-{space}-{form}.h5", "--space", space, "--form", form,
                                    "--sigma", 0.25, "--seed", 31)
                    t = self.path(f"t-{space}-{form}.h5")
                    self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 3,
                            "--out", t)
                    inp, x, y = self.batch(space, rng)
                    for i in range(3):
                        py = self.path(f"loss_{space}_{form}_{i}.py")
                        args = ["--scale", 16] if space == "cosine" else []
                        self.ok("amlfs-export", "--thetas", t, "--index", i, "--out", py, *args)
                        module = load(py)
                        self.assertEqual(module.SPACE, space)
                        np.testing.assert_array_equal(np.array(module.THETAS[0]),
                                                      read(t, "theta")[i])
                        loss, grad = self.amlfs_loss(t, i, inp)
                        self.check_module(module, x, y, loss, grad, f"{space} {form} {i}")

    def test_identity_is_cross_entropy(self):
        """The identity theta's export is cross-entropy, computed here from its definition."""
        p = self.policy("fixed.h5", "--mode", "fixed")
        self.ok("amlfs-export", "--policy", p, "--out", self.path("ce.py"))
        module = load(self.path("ce.py"))
        rng = np.random.default_rng(3)
        x = rng.standard_normal((8, 5)) * 5
        y = rng.integers(0, 5, 8)
        lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
        ce = lse - x[np.arange(8), y]
        loss, grad = module.loss_numpy(x, y)
        np.testing.assert_allclose(loss, ce, rtol=1e-12)
        soft = np.exp(x - lse[:, None])
        soft[np.arange(8), y] -= 1
        np.testing.assert_allclose(grad, soft / 8, rtol=1e-12, atol=1e-15)

    def test_policy_mu_in_both_spaces(self):
        """--policy exports the theta mu stands for in its form: what a fixed-mode policy's
        amlfs-sample writes."""
        rng = np.random.default_rng(5)
        for space, init in (("prob", "focal"), ("cosine", "arcface")):
            with self.subTest(space=space):
                p = self.policy(f"p-{space}.h5", "--space", space, "--init", init,
                                "--mode", "fixed")
                t = self.path(f"t-{space}.h5")
                self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 1, "--out", t)
                py = self.path(f"mu_{space}.py")
                self.ok("amlfs-export", "--policy", p, "--out", py)
                module = load(py)
                np.testing.assert_array_equal(np.array(module.THETAS[0]), read(t, "theta")[0])
                inp, x, y = self.batch(space, rng)
                loss, grad = self.amlfs_loss(t, 0, inp)
                kw = {"scale": 16.0} if space == "cosine" else {}
                l_np, g_np = module.loss_numpy(x, y, **kw)
                self.assertLess(rel(l_np, loss), RTOL)
                self.assertLess(rel(g_np, grad), RTOL)
                if space == "cosine":
                    with self.assertRaises(ValueError):  # no scale given, none embedded
                        module.loss_numpy(x, y)
                    if torch is not None:
                        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
                        module.Loss(scale=16.0)(xt, torch.tensor(y)).backward()
                        self.assertLess(rel(xt.grad.numpy(), grad), RTOL)

    def test_usage_and_output_errors(self):
        p = self.policy()
        self.fails(2, "amlfs-export", "--out", self.path("a.py"), mentions=["--policy"])
        self.fails(2, "amlfs-export", "--policy", p, "--run", self.dir, "--out",
                   self.path("a.py"))
        self.fails(2, "amlfs-export", "--thetas", p, "--out", self.path("a.py"),
                   mentions=["--index"])
        self.fails(2, "amlfs-export", "--policy", p, "--scale", 16, "--out", self.path("a.py"),
                   mentions=["prob"])
        self.fails(2, "amlfs-export", "--run", self.dir, "--out", self.path("a.py"),
                   mentions=["rewards"])
        self.fails(2, "amlfs-export", "--policy", self.path("missing.h5"), "--out",
                   self.path("a.py"), mentions=["missing.h5"])
        self.fails(1, "amlfs-export", "--policy", p, "--out", self.path("no/such/dir/a.py"))
        # an exact margin loss is a baseline: nothing found to export
        x = os.path.join(self.dir, "exact", "policy.h5")
        os.mkdir(os.path.dirname(x))
        self.ok("amlfs-init", "--policy-only", "--mode", "fixed", "--space", "cosine", "--loss",
                "cosface", "--out", x)
        self.fails(2, "amlfs-export", "--policy", x, "--out", self.path("a.py"),
                   mentions=["cosface"])
        shutil.rmtree(os.path.dirname(x))
        self.assertEqual(sorted(os.listdir(self.dir)), ["policy.h5"])  # nothing else written
        help_ = T.run("amlfs-export", "--help")
        self.assertEqual(help_.returncode, 0)
        self.assertIn("--run", help_.stdout)


class ExportRun(unittest.TestCase):
    """The schedule of a tiny finished run (2 epochs of 2 samples)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="amlfs-export-run-")
        src = T.fashion_subset(os.path.join(cls.dir, "fm"), 400, 100)
        data = os.path.join(cls.dir, "data.h5")
        p = T.run("amlfs-prep", "fashion-mnist", "--src", src, "--out", data,
                  "--train-size", 300, "--val-size", 100)
        assert p.returncode == 0, p.stderr
        conf = T.write_config(os.path.join(cls.dir, "run.conf"), {
            "data": data, "train_size": 300, "val_size": 100, "batch": 50, "samples": 2,
            "epochs": 2, "jobs": 1, "threads": 1, "seed": 3})
        cls.run_dir = os.path.join(cls.dir, "run")
        cls.p = T.run_workflow("amlfs-run", "--config", conf, "--out", cls.run_dir,
                               env=T.driver_env(), timeout=600)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_schedule(self):
        self.assertEqual(self.p.returncode, 0, self.p.stderr)
        py = os.path.join(self.dir, "schedule.py")
        p = T.run("amlfs-export", "--run", self.run_dir, "--out", py)
        self.assertEqual(p.returncode, 0, p.stderr)
        module = load(py)
        self.assertEqual(module.EPOCHS, 2)
        rng = np.random.default_rng(8)
        x = (rng.standard_normal((40, 10)) * 3).astype(np.float32)
        y = rng.integers(0, 10, 40)
        inp = os.path.join(self.dir, "in.h5")
        write_loss_input(inp, logits=x, targets=y)
        for e in (1, 2):
            edir = os.path.join(self.run_dir, f"epoch-{e:04d}")
            with h5py.File(os.path.join(edir, "rewards.h5")) as f:
                best = int(f.attrs["best"])
            thetas = os.path.join(edir, "thetas.h5")
            np.testing.assert_array_equal(np.array(module.THETAS[e - 1]),
                                          read(thetas, "theta")[best])
            out = os.path.join(self.dir, f"out{e}.h5")
            p = T.run("amlfs-loss", "--thetas", thetas, "--index", best, "--input", inp,
                      "--out", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            loss, grad = read(out, "loss"), read(out, "grad").astype(np.float64)
            l_np, g_np = module.loss_numpy(x, y, epoch=e)
            self.assertLess(rel(l_np, loss), RTOL)
            self.assertLess(rel(g_np, grad), RTOL)
            if torch is not None:
                crit = module.Loss(epoch=e)
                xt = torch.tensor(x.astype(np.float64), requires_grad=True)
                lt = crit(xt, torch.tensor(y))
                lt.backward()
                self.assertLess(abs(lt.item() - loss.mean()) / loss.mean(), RTOL)
                self.assertLess(rel(xt.grad.numpy(), grad), RTOL)
        for bad in (None, 0, 3):
            with self.assertRaises(ValueError):
                module.loss_numpy(x, y, epoch=bad)


if __name__ == "__main__":
    unittest.main()
