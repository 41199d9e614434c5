"""amlfs-loss: the searchable loss of a thetas row on a user's batch, against a float64
numpy implementation of DESIGN.md 1 written here."""
import unittest

import h5py
import numpy as np

from amlfs_test import ToolTest, attr, read, write_loss_input

EPS = 1e-300


def pwl(a, b, lo, hi, x):
    m = len(a)
    xc = np.clip(x, lo, hi)
    k = np.minimum(np.floor((xc - lo) / (hi - lo) * m), m - 1).astype(int)
    inside = (x >= lo) & (x <= hi)
    return a[k] * xc + b[k], np.where(inside, a[k], 0.0)


def searchable(theta, x, y, space, scale=None):
    """Per-row loss, gradient of the mean, and the relative weight -p_y dL/dp_y (1 for
    cross-entropy), float64. DESIGN.md's w = p_y dL/dp_y gives dL/df_j = w (1[j=y] - p_j)."""
    m = len(theta) // 4
    at, bt, au, bu = theta[:m], theta[m:2 * m], theta[2 * m:3 * m], theta[3 * m:]
    x = x.astype(np.float64)
    n, c = x.shape
    rows = np.arange(n)
    if space == "prob":
        f = x
        z = f - f.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        py = p[rows, y]
        t, dt = pwl(at, bt, 0.0, 1.0, py)
        dt = np.where((t < EPS) | (t > 1), 0.0, dt)
        t = np.clip(t, EPS, 1)
        u, du = pwl(au, bu, 0.0, 1.0, t)
        du = np.where(u < EPS, 0.0, du)
        u = np.maximum(u, EPS)
        loss = -np.log(u)
        w = -py * du * dt / u
        onehot = np.zeros_like(p)
        onehot[rows, y] = 1
        grad = w[:, None] * (onehot - p) / n
        return loss, grad, -w
    cos = x
    ty, dty = pwl(at, bt, -1.0, 1.0, cos[rows, y])
    f = scale * cos
    f[rows, y] = scale * ty
    z = f - f.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    py = p[rows, y]
    u, du = pwl(au, bu, 0.0, 1.0, py)
    du = np.where(u < EPS, 0.0, du)
    u = np.maximum(u, EPS)
    loss = -np.log(u)
    w = -py * du / u
    onehot = np.zeros_like(p)
    onehot[rows, y] = 1
    gf = w[:, None] * (onehot - p) / n
    grad = scale * gf
    grad[rows, y] = scale * dty * gf[rows, y]
    return loss, grad, -w


class Loss(ToolTest):
    def thetas(self, *init_args, b=4):
        p = self.policy("p.h5", *init_args)
        t = self.path("t.h5")
        self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", b, "--out", t)
        return t

    def identity_thetas(self, space):
        p = self.policy("fixed.h5", "--mode", "fixed", "--space", space)
        t = self.path("fixed-t.h5")
        self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 2, "--out", t)
        return t

    def test_identity_is_cross_entropy(self):
        rng = np.random.default_rng(5)
        for c in (10, 10000):
            with self.subTest(c=c):
                logits = (rng.standard_normal((32, c)) * 8).astype(np.float32)
                y = rng.integers(0, c, 32)
                inp = self.path(f"in{c}.h5")
                write_loss_input(inp, logits=logits, targets=y)
                out = self.path(f"out{c}.h5")
                self.ok("amlfs-loss", "--thetas", self.identity_thetas("prob"), "--index", 1,
                        "--input", inp, "--out", out)
                l64 = logits.astype(np.float64)
                lse = np.log(np.exp(l64 - l64.max(1, keepdims=True)).sum(1)) + l64.max(1)
                ce = lse - l64[np.arange(32), y]
                np.testing.assert_allclose(read(out, "loss"), ce, rtol=1e-6)
                self.assertAlmostEqual(attr(out, "mean"), ce.mean(), delta=1e-6 * ce.mean())
                p = np.exp(l64 - lse[:, None])
                p[np.arange(32), y] -= 1
                np.testing.assert_allclose(read(out, "grad"), p / 32, rtol=1e-5, atol=1e-9)
                np.testing.assert_allclose(read(out, "weight"), 1.0, rtol=1e-6)
                self.assertEqual(attr(out, "clamped"), 0)

    def test_random_theta_both_spaces(self):
        rng = np.random.default_rng(9)
        for space in ("prob", "cosine"):
            with self.subTest(space=space):
                t = self.thetas("--space", space, "--sigma", 0.2, "--seed", 77)
                n, c = 64, 10
                if space == "prob":
                    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
                    write_loss_input(self.path("in.h5"), logits=x, targets=rng.integers(0, c, n))
                    scale = None
                else:
                    x = rng.uniform(-1, 1, (n, c)).astype(np.float32)
                    scale = 16.0
                    write_loss_input(self.path("in.h5"), cosines=x, scale=scale,
                                     targets=rng.integers(0, c, n))
                with h5py.File(self.path("in.h5"), "r") as f:
                    y = f["targets"][()]
                for index in range(4):
                    out = self.path(f"out-{space}-{index}.h5")
                    self.ok("amlfs-loss", "--thetas", t, "--index", index, "--input",
                            self.path("in.h5"), "--out", out)
                    theta = read(t, "theta")[index]
                    np.testing.assert_array_equal(read(out, "theta"), theta)
                    loss, grad, w = searchable(theta, x, y, space, scale)
                    np.testing.assert_allclose(read(out, "loss"), loss, rtol=1e-5, atol=1e-7)
                    np.testing.assert_allclose(read(out, "weight"), w, rtol=1e-5, atol=1e-7)
                    np.testing.assert_allclose(read(out, "grad"), grad, rtol=1e-4, atol=1e-7)
                    self.assertEqual(attr(out, "space"), space)
                    self.ok("amlfs-check", out)

    def test_space_must_match_input(self):
        t = self.identity_thetas("prob")
        write_loss_input(self.path("cos.h5"), cosines=np.zeros((2, 3)), scale=16.0,
                         targets=[0, 1])
        self.fails(2, "amlfs-loss", "--thetas", t, "--index", 0, "--input", self.path("cos.h5"),
                   "--out", self.path("o.h5"), mentions=["cosine", "prob"])


if __name__ == "__main__":
    unittest.main()
