"""The exact margin losses as fixed baselines (loss = cosface | arcface | sphereface) and the
step schedule's milestones, through the tools: amlfs-init --loss into the policy,
amlfs-sample into the thetas, amlfs-loss on cosines against a float64 numpy CosFace,
ArcFace and SphereFace written here; the config keys loss and milestones; amlfs-init
--model --milestones into the checkpoint, carried by amlfs-train-epoch; amlfs-report
naming the loss; and the bad inputs (one line, exit 2)."""
import os
import unittest

import h5py
import numpy as np

from amlfs_test import ToolTest, attr, read, write_dataset, write_eval, write_loss_input


def exact_np(loss, cos, y, s):
    """Per-row loss and the gradient of the mean wrt the cosines, float64, of softmax
    cross-entropy on f_j = s cos_j, f_y = s u(cos_y): CosFace u = c - 0.35; ArcFace
    (insightface, easy_margin off) cos(acos c + 0.5) where c > cos(pi - 0.5), else
    c - 0.5 sin 0.5; SphereFace psi = (-1)^k cos(4 theta) - 2k, k = floor(4 theta / pi)."""
    c = cos.astype(np.float64)
    n = len(y)
    rows = np.arange(n)
    cy = c[rows, y]
    theta = np.arccos(cy)
    if loss == "cosface":
        u, du = cy - 0.35, np.ones(n)
    elif loss == "arcface":
        m = 0.5
        inside = cy > np.cos(np.pi - m)
        u = np.where(inside, np.cos(theta + m), cy - m * np.sin(m))
        # d cos(theta + m) / dc = sin(theta + m) / sin(theta)
        du = np.where(inside, np.sin(theta + m) / np.sin(theta), 1.0)
    else:
        m = 4
        k = np.minimum(np.floor(m * theta / np.pi), m - 1)
        sign = np.where(k % 2 == 1, -1.0, 1.0)
        u = sign * np.cos(m * theta) - 2 * k
        du = sign * m * np.sin(m * theta) / np.sin(theta)
    f = s * c
    f[rows, y] = s * u
    mx = f.max(1, keepdims=True)
    lse = np.log(np.exp(f - mx).sum(1)) + mx[:, 0]
    per = lse - f[rows, y]
    p = np.exp(f - lse[:, None])
    g = s * p / n
    g[rows, y] = s * du * (p[rows, y] - 1) / n
    return per, g


def target_cosines(rng, n, c, loss):
    """Cosines (N,C) float32 in [-0.5, 0.8] with the targets' at angles in (0.2, pi - 0.2)
    kept 0.05 from ArcFace's switch at pi - 0.5 and SphereFace's pieces."""
    y = rng.integers(0, c, n)
    cos = rng.uniform(-0.5, 0.8, (n, c))
    kinks = [np.pi - 0.5] + [k * np.pi / 4 for k in (1, 2, 3)]
    angles = rng.uniform(0.2, np.pi - 0.2, n)
    for i in range(n):
        while min(abs(angles[i] - k) for k in kinks) < 0.05:
            angles[i] = rng.uniform(0.2, np.pi - 0.2)
    cos[np.arange(n), y] = np.cos(angles)
    return cos.astype(np.float32), y


class MarginLosses(ToolTest):
    def exact_thetas(self, loss, b=2):
        p = self.policy(f"p-{loss}.h5", "--mode", "fixed", "--space", "cosine", "--loss", loss)
        t = self.path(f"t-{loss}.h5")
        self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", b, "--out", t)
        return p, t

    def test_policy_and_thetas_carry_the_loss(self):
        p, t = self.exact_thetas("cosface")
        self.assertEqual(attr(p, "loss"), "cosface")
        self.assertEqual(attr(t, "loss"), "cosface")
        self.assertEqual(attr(t, "mode"), "fixed")
        self.assertEqual(attr(t, "space"), "cosine")
        self.ok("amlfs-check", p)
        self.ok("amlfs-check", t)
        # the default is the searched loss, which leaves the files as they were before
        # the attribute (absent: searched)
        for f in (self.policy("plain.h5"), self.policy("plainfixed.h5", "--mode", "fixed",
                                                       "--loss", "searched")):
            with h5py.File(f, "r") as h:
                self.assertNotIn("loss", h.attrs)
        # amlfs-update carries it into the next policy
        write_eval(self.path("e0.h5"), top1=0.5)
        write_eval(self.path("e1.h5"), top1=0.6)
        self.ok("amlfs-reward", "--thetas", t, "--metric", "top1", "--out", self.path("r.h5"),
                self.path("e0.h5"), self.path("e1.h5"))
        self.ok("amlfs-update", "--policy", p, "--thetas", t, "--rewards", self.path("r.h5"),
                "--out", self.path("p2.h5"))
        self.assertEqual(attr(self.path("p2.h5"), "loss"), "cosface")

    def test_amlfs_loss_applies_the_exact_loss(self):
        rng = np.random.default_rng(16)
        for loss, s in (("cosface", 64.0), ("arcface", 64.0), ("sphereface", 16.0)):
            with self.subTest(loss=loss):
                _, t = self.exact_thetas(loss)
                n, c = 48, 12
                cos, y = target_cosines(rng, n, c, loss)
                inp = self.path(f"in-{loss}.h5")
                write_loss_input(inp, cosines=cos, scale=s, targets=y)
                out = self.path(f"out-{loss}.h5")
                self.ok("amlfs-loss", "--thetas", t, "--index", 1, "--input", inp, "--out", out)
                want, grad = exact_np(loss, cos, y, s)
                np.testing.assert_allclose(read(out, "loss"), want, rtol=2e-6, atol=1e-10)
                np.testing.assert_allclose(read(out, "grad"), grad, rtol=2e-5, atol=1e-9)
                np.testing.assert_array_equal(read(out, "weight"), np.ones(n))
                self.assertAlmostEqual(attr(out, "mean"), want.mean(), delta=2e-6 * want.mean())
                self.assertEqual(attr(out, "clamped"), 0)
                self.assertEqual(attr(out, "loss"), loss)
                self.ok("amlfs-check", out)
                # not the searched loss of the same (identity) theta: that is plain
                # normalised softmax, which has no margin
                plain = self.path(f"plain-{loss}.h5")
                p2 = self.policy(f"id-{loss}.h5", "--mode", "fixed", "--space", "cosine")
                self.ok("amlfs-sample", "--policy", p2, "--epoch", 1, "--samples", 2, "--out",
                        self.path(f"tid-{loss}.h5"))
                self.ok("amlfs-loss", "--thetas", self.path(f"tid-{loss}.h5"), "--index", 0,
                        "--input", inp, "--out", plain)
                self.assertEqual(attr(plain, "loss"), "searched")
                self.assertTrue(np.all(read(plain, "loss") < want))

    def test_hand_written_thetas_with_a_loss(self):
        """A thetas file without 'schema' may name its loss; its space is the input's."""
        rng = np.random.default_rng(3)
        cos, y = target_cosines(rng, 8, 5, "arcface")
        write_loss_input(self.path("in.h5"), cosines=cos, scale=30.0, targets=y)
        with h5py.File(self.path("t.h5"), "w") as f:
            f["theta"] = np.tile(np.r_[np.ones(2), np.zeros(2), np.ones(2), np.zeros(2)], (1, 1))
            f.attrs["loss"] = "arcface"
        self.ok("amlfs-loss", "--thetas", self.path("t.h5"), "--index", 0, "--input",
                self.path("in.h5"), "--out", self.path("o.h5"))
        want, _ = exact_np("arcface", cos, y, 30.0)
        np.testing.assert_allclose(read(self.path("o.h5"), "loss"), want, rtol=2e-6)

    def test_old_files_read_as_searched(self):
        """A thetas file written before the attribute (none) is the searched loss."""
        _, t = self.exact_thetas("cosface")
        with h5py.File(t, "a") as f:
            del f.attrs["loss"]
        self.ok("amlfs-check", t)
        rng = np.random.default_rng(4)
        cos, y = target_cosines(rng, 6, 4, "cosface")
        write_loss_input(self.path("in.h5"), cosines=cos, scale=16.0, targets=y)
        self.ok("amlfs-loss", "--thetas", t, "--index", 0, "--input", self.path("in.h5"),
                "--out", self.path("o.h5"))
        self.assertEqual(attr(self.path("o.h5"), "loss"), "searched")
        f = 16.0 * cos.astype(np.float64)
        lse = np.log(np.exp(f).sum(1))
        np.testing.assert_allclose(read(self.path("o.h5"), "loss"),
                                   lse - f[np.arange(6), y], rtol=1e-6)

    def test_bad_input(self):
        out = self.path("p.h5")
        self.fails(2, "amlfs-init", "--policy-only", "--out", out, "--mode", "fixed", "--space",
                   "prob", "--loss", "cosface", mentions=["--loss cosface", "cosine"])
        self.fails(2, "amlfs-init", "--policy-only", "--out", out, "--space", "cosine",
                   "--loss", "cosface", mentions=["--loss cosface", "fixed", "amlfs"])
        self.fails(2, "amlfs-init", "--policy-only", "--out", out, "--mode", "random", "--space",
                   "cosine", "--loss", "arcface", mentions=["fixed", "random"])
        self.fails(2, "amlfs-init", "--policy-only", "--out", out, "--mode", "fixed", "--space",
                   "cosine", "--loss", "softmax", mentions=["--loss"])
        self.assertFalse(os.path.exists(out))
        # a thetas file that says cosface in the prob space, or in amlfs mode
        _, t = self.exact_thetas("sphereface")
        for key, value, said in (("space", "prob", "cosine"), ("mode", "amlfs", "fixed")):
            bad = self.path(f"bad-{key}.h5")
            with h5py.File(t, "r") as src, h5py.File(bad, "w") as dst:
                for k in src:
                    src.copy(k, dst)
                for k, v in src.attrs.items():
                    dst.attrs[k] = v
                dst.attrs[key] = value
            write_loss_input(self.path("in.h5"), cosines=np.zeros((2, 3)), scale=16.0,
                             targets=[0, 1])
            self.fails(2, "amlfs-loss", "--thetas", bad, "--index", 0, "--input",
                       self.path("in.h5"), "--out", self.path("o.h5"),
                       mentions=[bad, "sphereface", said])
            self.assertFalse(os.path.exists(self.path("o.h5")))

    def test_config_keys(self):
        def config(*sets):
            args = []
            for s in sets:
                args += ["--set", s]
            return args
        p = self.ok("amlfs-config", *config("mode=fixed", "space=cosine", "loss=arcface",
                                             "samples=1"), "--get", "loss")
        self.assertEqual(p.stdout.strip(), "arcface")
        p = self.ok("amlfs-config", "--get", "loss")
        self.assertEqual(p.stdout.strip(), "searched")
        self.fails(2, "amlfs-config", *config("loss=cosface"), mentions=["loss = cosface",
                                                                        "fixed"])
        self.fails(2, "amlfs-config", *config("mode=fixed", "loss=cosface"),
                   mentions=["cosine", "space prob"])
        self.fails(2, "amlfs-config", *config("loss=margin"), mentions=["loss"])
        p = self.ok("amlfs-config", *config("schedule=step", "milestones=16,24"), "--get",
                    "milestones")
        self.assertEqual(p.stdout.strip(), "16,24")
        self.assertEqual(self.ok("amlfs-config", "--get", "milestones").stdout.strip(), "")
        self.fails(2, "amlfs-config", *config("milestones=16,24"), mentions=["schedule = step"])
        for bad in ("24,16", "0,3", "1,,2", "a", "3,3"):
            self.fails(2, "amlfs-config", *config("schedule=step", f"milestones={bad}"),
                       mentions=["milestones"])

    def test_milestones_in_the_checkpoint(self):
        data = self.path("data.h5")
        write_dataset(data, n=(30, 10, 10))
        start = self.path("start.h5")
        self.ok("amlfs-init", "--model", "small-cnn", "--data", data, "--out", start,
                "--schedule", "step", "--milestones", "1,2.5", "--batch", 10, "--epochs", 3)
        np.testing.assert_array_equal(read(start, "milestones"), [1.0, 2.5])
        self.ok("amlfs-check", start)
        # the searched thetas of epoch 1, one epoch trained: the milestones carry on
        p = self.policy("p.h5", "--mode", "fixed")
        self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 1, "--out",
                self.path("t.h5"))
        ck = self.path("ck.h5")
        self.ok("amlfs-train-epoch", "--checkpoint", start, "--thetas", self.path("t.h5"),
                "--index", 0, "--data", data, "--out", ck, "--threads", 1)
        np.testing.assert_array_equal(read(ck, "milestones"), [1.0, 2.5])
        # without --milestones, no /milestones (the step every --step epochs)
        self.ok("amlfs-init", "--model", "small-cnn", "--data", data, "--out",
                self.path("s2.h5"), "--schedule", "step")
        with h5py.File(self.path("s2.h5"), "r") as f:
            self.assertNotIn("milestones", f)
        out = self.path("bad.h5")
        self.fails(2, "amlfs-init", "--model", "small-cnn", "--data", data, "--out", out,
                   "--milestones", "1,2", mentions=["--milestones", "step", "cosine"])
        self.fails(2, "amlfs-init", "--model", "small-cnn", "--data", data, "--out", out,
                   "--schedule", "step", "--milestones", "2,1", mentions=["--milestones"])
        self.fails(2, "amlfs-init", "--model", "small-cnn", "--data", data, "--out", out,
                   "--schedule", "step", "--milestones", "1,x", mentions=["--milestones"])
        self.assertFalse(os.path.exists(out))
        # a checkpoint whose milestones are not increasing is refused by its readers
        with h5py.File(start, "a") as f:
            del f["milestones"]
            f["milestones"] = np.array([2.0, 1.0])
        self.fails(2, "amlfs-train-epoch", "--checkpoint", start, "--thetas", self.path("t.h5"),
                   "--index", 0, "--data", data, "--out", out, mentions=["/milestones"])

    def test_the_step_script_passes_them_on(self):
        """amlfs-step setup (the local driver's and the Slurm path's) gives amlfs-init the
        config's loss and milestones: the epoch-1 policy and start checkpoint carry them."""
        import amlfs_test as T
        data = self.path("data.h5")
        write_dataset(data, n=(30, 10, 10))
        conf = T.write_config(self.path("run.conf"), {
            "data": data, "val_size": 10, "batch": 10, "samples": 2, "epochs": 3,
            "mode": "fixed", "space": "cosine", "loss": "sphereface", "schedule": "step",
            "milestones": "1,2", "jobs": 1, "threads": 1})
        run = self.path("run")
        os.makedirs(run)
        with open(os.path.join(run, "config"), "w") as f:
            f.write(self.ok("amlfs-config", "--config", conf).stdout)
        p = T.run_workflow("amlfs-step", "setup", run, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(attr(os.path.join(run, "policy", "epoch-0001.h5"), "loss"),
                         "sphereface")
        np.testing.assert_array_equal(read(os.path.join(run, "epoch-0001", "start.h5"),
                                           "milestones"), [1.0, 2.0])

    def test_report_names_the_loss(self):
        run = self.path("run")
        os.makedirs(os.path.join(run, "policy"))
        with open(os.path.join(run, "config"), "w") as f:
            f.write("dataset = fashion-mnist\nmodel = small-cnn\nepochs = 1\nsamples = 2\n"
                    "mode = fixed\nspace = cosine\nloss = cosface\n")
        pol = lambda e: os.path.join(run, "policy", f"epoch-{e:04d}.h5")
        self.ok("amlfs-init", "--policy-only", "--out", pol(1), "--mode", "fixed", "--space",
                "cosine", "--loss", "cosface")
        ed = os.path.join(run, "epoch-0001")
        os.makedirs(ed)
        thetas = os.path.join(ed, "thetas.h5")
        self.ok("amlfs-sample", "--policy", pol(1), "--epoch", 1, "--samples", 2, "--out", thetas)
        evals = []
        for i, top1 in enumerate((0.4, 0.5)):
            os.makedirs(os.path.join(ed, f"sample-{i:03d}"))
            evals.append(os.path.join(ed, f"sample-{i:03d}", "eval.h5"))
            write_eval(evals[-1], epoch=1, top1=top1)
        self.ok("amlfs-reward", "--thetas", thetas, "--metric", "top1", "--out",
                os.path.join(ed, "rewards.h5"), *evals)
        self.ok("amlfs-update", "--policy", pol(1), "--thetas", thetas, "--rewards",
                os.path.join(ed, "rewards.h5"), "--out", pol(2))
        self.ok("amlfs-report", run)
        with open(os.path.join(run, "report", "index.html")) as f:
            html = f.read()
        self.assertIn("fixed with the exact cosface loss", html)


if __name__ == "__main__":
    unittest.main()
