"""amlfs-init and amlfs-sample: mu_1 against an independent least-squares fit, theta
against an independent Philox, reproducibility, moments, the modes."""
import filecmp
import os
import unittest

import numpy as np

from amlfs_test import ToolTest, anchored_theta, attr, read
import philox_ref

GRID = 10001


def pwl_fit(target, lo, hi, m):
    """Per-interval least-squares lines on the 10,001-point grid (DESIGN.md 1), with
    numpy's lstsq: slopes, biases, max abs error."""
    x = np.linspace(lo, hi, GRID)
    y = target(x)
    k = np.minimum(np.floor((x - lo) / (hi - lo) * m), m - 1).astype(int)
    a, b = np.zeros(m), np.zeros(m)
    err = 0.0
    for i in range(m):
        xi, yi = x[k == i], y[k == i]
        A = np.stack([xi, np.ones_like(xi)], 1)
        (a[i], b[i]), *_ = np.linalg.lstsq(A, yi, rcond=None)
        err = max(err, np.max(np.abs(a[i] * xi + b[i] - yi)))
    return a, b, err


def anchored_fit(target, lo, hi, m, v0):
    """The continuous least-squares fit on the same grid, with numpy's lstsq over the
    knot values (columns: the hat functions, np.interp of unit vectors): v0 "free",
    "zero" (fixed at 0) or "nonneg" (refitted at 0 when negative). Slopes, lower-end
    value."""
    x = np.linspace(lo, hi, GRID)
    y = target(x)
    knots = np.linspace(lo, hi, m + 1)
    hats = np.stack([np.interp(x, knots, np.eye(m + 1)[k]) for k in range(m + 1)], 1)
    def solve(fix0):
        cols = hats[:, 1:] if fix0 else hats
        v, *_ = np.linalg.lstsq(cols, y, rcond=None)
        return np.concatenate([[0.0], v]) if fix0 else v
    v = solve(v0 == "zero")
    if v0 == "nonneg" and v[0] < 0:
        v = solve(True)
    return np.diff(v) / ((hi - lo) / m), v[0]


def focal_tau(p):
    return p ** ((1 - p) ** 2)


def gce_tau(p):
    return np.exp((p ** 0.7 - 1) / 0.7)


def sphereface_t(c):
    theta = np.arccos(np.clip(c, -1, 1))
    k = np.minimum(np.floor(theta * 4 / np.pi), 3)
    return (-1) ** k * np.cos(4 * theta) - 2 * k


TARGETS = {  # init: (space, t target or None for identity, tau target or None)
    "focal": ("prob", None, focal_tau),
    "gce": ("prob", None, gce_tau),
    "cosface": ("cosine", lambda c: c - 0.35, None),
    "arcface": ("cosine", lambda c: np.cos(np.arccos(np.clip(c, -1, 1)) + 0.5), None),
    "sphereface": ("cosine", sphereface_t, None),
}


class Init(ToolTest):
    def test_identity(self):
        p = self.policy()
        mu = read(p, "mu")
        m = 6
        np.testing.assert_array_equal(mu, np.concatenate([np.ones(m), np.zeros(m)] * 2))
        self.assertEqual(attr(p, "epoch"), 1)
        self.assertEqual(attr(p, "adam_step"), 0)
        self.assertEqual(attr(p, "sigma"), 0.2)
        self.assertEqual(attr(p, "lr"), 0.05)
        self.assertEqual(attr(p, "space"), "prob")
        self.assertEqual(attr(p, "mode"), "amlfs")
        self.assertEqual(attr(p, "init_max_error"), 0.0)
        np.testing.assert_array_equal(read(p, "adam_m"), 0)
        np.testing.assert_array_equal(read(p, "mu_init"), mu)
        # the anchored form by default: the slopes and tau's value at 0 searched
        self.assertEqual(attr(p, "form"), "anchored")
        self.assertEqual(attr(p, "slope_floor"), 0.05)
        sigma = np.zeros(4 * m)
        sigma[0:m] = sigma[2 * m:3 * m] = 0.2
        sigma[3 * m] = 0.2
        np.testing.assert_array_equal(read(p, "sigma"), sigma)
        p = self.policy("free.h5", "--form", "free", "--sigma-intercept", 0.05)
        self.assertEqual(attr(p, "form"), "free")
        np.testing.assert_array_equal(read(p, "sigma"), np.concatenate(
            [np.full(m, 0.2), np.full(m, 0.05)] * 2))
        np.testing.assert_array_equal(read(p, "mu"), mu)
        # the cosine space's identity: t(-1) = -1 is searched too
        p = self.policy("cos.h5", "--space", "cosine")
        want = np.concatenate([np.ones(m), np.zeros(m)] * 2)
        want[m] = -1.0
        np.testing.assert_array_equal(read(p, "mu"), want)
        self.assertEqual(read(p, "sigma")[m], 0.2)

    def test_fits_against_numpy(self):
        for init, (space, t_target, tau_target) in TARGETS.items():
            for m in (6, 10):
                with self.subTest(init=init, m=m):
                    p = self.policy(f"{init}{m}.h5", "--init", init, "--space", space,
                                    "--intervals", m, "--form", "free")
                    mu = read(p, "mu")
                    t_lo = 0.0 if space == "prob" else -1.0
                    ident = lambda x: x
                    at, bt, et = pwl_fit(t_target or ident, t_lo, 1.0, m)
                    au, bu, eu = pwl_fit(tau_target or ident, 0.0, 1.0, m)
                    want = np.concatenate([at, bt, au, bu])
                    np.testing.assert_allclose(mu, want, atol=1e-8, rtol=1e-8)
                    self.assertAlmostEqual(attr(p, "init_max_error"), max(et, eu), delta=1e-8)
                    self.assertEqual(attr(p, "init"), init)

    def test_anchored_fits_against_numpy(self):
        for init, (space, t_target, tau_target) in TARGETS.items():
            for m in (6, 10):
                with self.subTest(init=init, m=m):
                    p = self.policy(f"a-{init}{m}.h5", "--init", init, "--space", space,
                                    "--intervals", m)
                    mu = read(p, "mu")
                    t_lo = 0.0 if space == "prob" else -1.0
                    ident = lambda x: x
                    at, ct = anchored_fit(t_target or ident, t_lo, 1.0, m,
                                          "free" if space == "cosine" else "zero")
                    au, cu = anchored_fit(tau_target or ident, 0.0, 1.0, m, "nonneg")
                    want = np.zeros(4 * m)
                    want[0:m], want[m], want[2 * m:3 * m], want[3 * m] = at, ct, au, cu
                    np.testing.assert_allclose(mu, want, atol=1e-8, rtol=1e-8)
                    # the error, through the transform the loss applies (floor included)
                    theta = anchored_theta(mu, m, space)
                    x = np.linspace(t_lo, 1.0, GRID)
                    def pwl(th, lo, xs):
                        k = np.minimum(np.floor((xs - lo) / (1.0 - lo) * m), m - 1).astype(int)
                        return th[k] * xs + th[m + k]
                    et = np.max(np.abs(pwl(theta[:2 * m], t_lo, x) - (t_target or ident)(x)))
                    u = np.linspace(0.0, 1.0, GRID)
                    eu = np.max(np.abs(pwl(theta[2 * m:], 0.0, u) - (tau_target or ident)(u)))
                    self.assertAlmostEqual(attr(p, "init_max_error"), max(et, eu), delta=1e-8)


def as_version_1(path, kind):
    """Rewrites a free-form file of the current version as the tools wrote it before the
    forms (schemas/old/KIND-1.schema): no /sigma, /draw or form attributes."""
    import h5py
    with h5py.File(path, "r+") as f:
        for name in ("sigma", "draw"):
            if name in f:
                del f[name]
        for name in ("form", "sigma_intercept", "slope_floor", "floored"):
            if name in f.attrs:
                del f.attrs[name]
        f.attrs["schema_version"] = np.int64(1)
    return path


class Version1(ToolTest):
    def test_version_1_files_are_read_as_the_free_form(self):
        import shutil
        p2 = self.policy("v2.h5", "--form", "free", "--init", "focal", "--seed", 5)
        p1 = self.path("v1.h5")
        shutil.copyfile(p2, p1)
        as_version_1(p1, "policy")
        self.assertIn("valid", self.ok("amlfs-check", p1).stdout)
        for pol in (p1, p2):
            self.ok("amlfs-sample", "--policy", pol, "--epoch", 1, "--samples", 4, "--out",
                    self.path(f"t-{os.path.basename(pol)}"))
        t1, t2 = self.path("t-v1.h5"), self.path("t-v2.h5")
        np.testing.assert_array_equal(read(t1, "theta"), read(t2, "theta"))
        self.assertEqual(attr(t1, "form"), "free")
        # a version-1 thetas file updates a version-1 policy as before
        tv1 = self.path("tv1.h5")
        shutil.copyfile(t1, tv1)
        as_version_1(tv1, "thetas")
        from amlfs_test import write_eval
        evals = [self.path(f"e{i}.h5") for i in range(4)]
        for e, v in zip(evals, (0.1, 0.5, 0.3, 0.2)):
            write_eval(e, top1=v)
        r = self.path("r.h5")
        self.ok("amlfs-reward", "--thetas", tv1, "--metric", "top1", "--out", r, *evals)
        for pol, th, out in ((p1, tv1, "n1.h5"), (p2, t2, "n2.h5")):
            self.ok("amlfs-update", "--policy", pol, "--thetas", th, "--rewards", r, "--out",
                    self.path(out))
        np.testing.assert_array_equal(read(self.path("n1.h5"), "mu"),
                                      read(self.path("n2.h5"), "mu"))
        self.assertEqual(attr(self.path("n1.h5"), "schema_version"), 2)


class Sample(ToolTest):
    def sample(self, policy, b, out="thetas.h5", epoch=1):
        self.ok("amlfs-sample", "--policy", policy, "--epoch", epoch, "--samples", b,
                "--out", self.path(out))
        return self.path(out)

    def test_theta_is_mu_plus_sigma_philox_normals(self):
        p = self.policy("p.h5", "--seed", 4242, "--sigma", 0.3, "--form", "free")
        t = self.sample(p, 4)
        theta, mu = read(t, "theta"), read(p, "mu")
        for i in range(4):
            eps = [philox_ref.normal((4242, 1, i, 1), j) for j in range(24)]
            np.testing.assert_allclose(theta[i], mu + 0.3 * np.array(eps), rtol=0, atol=1e-14)
        np.testing.assert_array_equal(read(t, "draw"), theta)
        self.assertEqual(attr(t, "epoch"), 1)
        self.assertEqual(attr(t, "samples"), 4)
        self.assertEqual(attr(t, "floored"), 0)

    def test_anchored_draw_and_theta(self):
        m = 6
        for space in ("prob", "cosine"):
            p = self.policy(f"a-{space}.h5", "--seed", 77, "--sigma", 0.5,
                            "--sigma-intercept", 0.3, "--space", space)
            t = self.sample(p, 16, f"a-{space}-thetas.h5")
            draw, theta, mu = read(t, "draw"), read(t, "theta"), read(p, "mu")
            sigma = read(p, "sigma")
            floored = 0
            for i in range(16):
                eps = np.array([philox_ref.normal((77, 1, i, 1), j) for j in range(4 * m)])
                np.testing.assert_allclose(draw[i], mu + sigma * eps, rtol=0, atol=1e-14)
                np.testing.assert_allclose(theta[i], anchored_theta(draw[i], m, space),
                                           rtol=1e-13, atol=1e-13)
                floored += int(np.sum(draw[i][np.r_[0:m, 2 * m:3 * m]] < 0.05))
            self.assertEqual(attr(t, "floored"), floored)
            self.assertGreater(floored, 0, "sigma 0.5 floors some slopes of 16 draws")
            # unsearched coordinates are mu's in every row
            np.testing.assert_array_equal(draw[:, sigma == 0], np.tile(mu[sigma == 0], (16, 1)))
            self.assertEqual(attr(t, "form"), "anchored")

    def test_same_inputs_same_bytes_other_epoch_other_theta(self):
        p = self.policy("p.h5", "--form", "free")
        a, b = self.sample(p, 8, "a.h5"), self.sample(p, 8, "b.h5")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), "two runs wrote different bytes")
        theta = read(a, "theta")
        self.assertEqual(len({tuple(r) for r in theta}), 8, "rows repeat")
        # the same policy one epoch later (as amlfs-update would write it) draws others
        import h5py
        p2 = self.path("p2.h5")
        with open(p, "rb") as src, open(p2, "wb") as dst:
            dst.write(src.read())
        with h5py.File(p2, "r+") as f:
            f.attrs["epoch"] = np.int64(2)
        c = self.sample(p2, 8, "c.h5", epoch=2)
        self.assertFalse(np.any(read(c, "theta") == theta))

    def test_moments_b4096(self):
        p = self.policy("p.h5", "--sigma", 0.2, "--init", "focal", "--form", "free")
        theta = read(self.sample(p, 4096), "theta")
        mu, n = read(p, "mu"), 4096
        # 5 standard errors: sigma/sqrt(n) for the mean, sigma/sqrt(2n) for the std
        np.testing.assert_array_less(np.abs(theta.mean(0) - mu), 5 * 0.2 / np.sqrt(n))
        np.testing.assert_array_less(np.abs(theta.std(0) - 0.2), 5 * 0.2 / np.sqrt(2 * n))
        # components are independent: no correlation beyond sampling error
        c = np.corrcoef(theta.T)
        off = c[~np.eye(24, dtype=bool)]
        self.assertLess(np.max(np.abs(off)), 5 / np.sqrt(n))

    def test_antithetic(self):
        p = self.policy("p.h5", "--sampling", "antithetic", "--form", "free")
        theta, mu = read(self.sample(p, 6), "theta"), read(p, "mu")
        np.testing.assert_allclose(theta[3:] - mu, -(theta[:3] - mu), atol=1e-15)
        self.fails(2, "amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 5, "--out",
                   self.path("odd.h5"), mentions=["even"])

    def test_fixed_and_random_modes(self):
        p = self.policy("f.h5", "--mode", "fixed", "--init", "focal", "--form", "free")
        theta, mu = read(self.sample(p, 3), "theta"), read(p, "mu")
        np.testing.assert_array_equal(theta, np.tile(mu, (3, 1)))
        # fixed mode alone may train one model
        self.assertEqual(read(self.sample(p, 1, "one.h5"), "theta").shape, (1, 24))
        self.fails(2, "amlfs-sample", "--policy", self.policy("s.h5"), "--epoch", 1,
                   "--samples", 1, "--out", self.path("one-search.h5"), mentions=["B >= 2"])
        r = self.policy("r.h5", "--mode", "random", "--form", "free")
        t = self.sample(r, 3, "r-thetas.h5")
        self.assertEqual(attr(t, "mode"), "random")
        self.assertTrue(np.all(read(t, "theta") != read(r, "mu")))

    def test_replay_from_a_finished_policy(self):
        # anchored: the replayed mu is a draw, its theta the source's
        src = self.policy("asrc.h5", "--init", "gce", "--intervals", 4)
        p = self.policy("areplay.h5", "--mode", "replay", "--from", src)
        self.assertEqual(attr(p, "form"), "anchored")
        t = self.sample(p, 1, "areplay-thetas.h5")
        np.testing.assert_array_equal(read(t, "draw")[0], read(src, "mu"))
        np.testing.assert_allclose(read(t, "theta")[0], anchored_theta(read(src, "mu"), 4,
                                                                        "prob"), atol=1e-13)
        src = self.policy("src.h5", "--init", "focal", "--intervals", 4, "--form", "free")
        p = self.policy("replay.h5", "--mode", "replay", "--from", src)
        np.testing.assert_array_equal(read(p, "mu"), read(src, "mu"))
        self.assertEqual(attr(p, "intervals"), 4)
        theta = read(self.sample(p, 1), "theta")
        np.testing.assert_array_equal(theta[0], read(src, "mu"))


if __name__ == "__main__":
    unittest.main()
