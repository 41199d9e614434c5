"""amlfs-reward, amlfs-update, amlfs-broadcast: exclusions recorded, shaping against
numpy, REINFORCE + Adam against a hand computation, skipped updates, the best start."""
import filecmp
import os
import unittest

import numpy as np

from amlfs_test import ToolTest, attr, read, write_checkpoint, write_eval


class Epoch(ToolTest):
    def setup_epoch(self, b=4, *init_args):
        p = self.policy("policy.h5", *init_args)
        t = self.path("thetas.h5")
        self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", b, "--out", t)
        return p, t

    def reward(self, t, evals, metric="top1", out="rewards.h5"):
        p = self.ok("amlfs-reward", "--thetas", t, "--metric", metric, "--out",
                    self.path(out), *evals)
        return self.path(out), p

    def test_exclusions_recorded(self):
        p, t = self.setup_epoch(7)
        evals = [self.path(f"e{i}.h5") for i in range(7)]
        write_eval(evals[0], top1=0.60)
        # evals[1] missing
        with open(evals[2], "w") as f:
            f.write("not hdf5")
        write_eval(evals[3], status="diverged", top1=float("nan"))
        write_eval(evals[4], top1=float("nan"))
        write_eval(evals[5], top1=0.9, epoch=2)  # a stale file of another epoch
        write_eval(evals[6], top1=0.70)
        r, proc = self.reward(t, evals)
        np.testing.assert_array_equal(read(r, "excluded"), [0, 1, 2, 3, 4, 5, 0])
        raw = read(r, "raw")
        self.assertEqual(raw[0], 0.60)
        self.assertTrue(np.all(np.isnan(raw[1:6])))
        self.assertEqual(attr(r, "finite"), 2)
        self.assertEqual(attr(r, "best"), 6)
        self.assertEqual(attr(r, "best_reward"), 0.70)
        np.testing.assert_allclose(read(r, "normalized"), [-1, 0, 0, 0, 0, 0, 1], atol=1e-12)
        self.assertEqual(attr(r, "update_skipped"), "")
        self.assertIn("sample 1 excluded", proc.stderr)

    def test_zscore_and_rank_against_numpy(self):
        rewards = [0.61, 0.72, 0.55, 0.72, 0.68]
        for shaping in ("zscore", "rank"):
            with self.subTest(shaping=shaping):
                p, t = self.setup_epoch(5, "--shaping", shaping)
                evals = []
                for i, v in enumerate(rewards):
                    evals.append(self.path(f"{shaping}{i}.h5"))
                    write_eval(evals[-1], top1=v, loss=1 - v)
                r, _ = self.reward(t, evals)
                x = np.array(rewards)
                if shaping == "zscore":
                    want = (x - x.mean()) / x.std()
                else:  # ranks from 0, ties by index: 0.72 at index 1 ranks below index 3
                    want = np.array([1, 3, 0, 4, 2]) / 4 - 0.5
                np.testing.assert_allclose(read(r, "normalized"), want, atol=1e-12)
                self.assertEqual(attr(r, "best"), 1)
                self.assertEqual(attr(r, "shaping"), shaping)
        # loss as the metric: lower loss is the higher reward
        r, _ = self.reward(t, evals, metric="loss", out="loss-rewards.h5")
        np.testing.assert_allclose(read(r, "raw"), -(1 - np.array(rewards)), atol=1e-15)
        self.assertEqual(attr(r, "best"), 1)

    def test_update_is_reinforce_adam_by_hand(self):
        for form in ("free", "anchored"):
            with self.subTest(form=form):
                self.check_update_by_hand(form)

    def check_update_by_hand(self, form):
        """g_j = (1/F) sum_i z_i (d_ij - mu_j) / sigma_j^2 over the searched coordinates
        (sigma_j > 0), from the draws; the others keep mu and the Adam moments."""
        p = self.policy(f"policy-{form}.h5", "--sigma", 0.25, "--sigma-intercept", 0.125,
                        "--intervals", 2, "--form", form)
        t = self.path(f"thetas-{form}.h5")
        self.ok("amlfs-sample", "--policy", p, "--epoch", 1, "--samples", 3, "--out", t)
        evals = [self.path(f"e{i}.h5") for i in range(3)]
        for e, v in zip(evals, (0.8, 0.2, 0.5)):
            write_eval(e, top1=v)
        r, _ = self.reward(t, evals, out=f"rewards-{form}.h5")
        nxt = self.path(f"policy-2-{form}.h5")
        self.ok("amlfs-update", "--policy", p, "--thetas", t, "--rewards", r, "--out", nxt)
        mu, draw, sigma = read(p, "mu"), read(t, "draw"), read(p, "sigma")
        if form == "free":
            np.testing.assert_array_equal(draw, read(t, "theta"))
            np.testing.assert_array_equal(sigma, [0.25, 0.25, 0.125, 0.125] * 2)
        else:  # slopes, and tau's value at 0 (the bias block's first entry)
            np.testing.assert_array_equal(sigma, [0.25, 0.25, 0, 0, 0.25, 0.25, 0.125, 0])
        on = sigma > 0
        s2 = np.where(on, sigma, 1.0) ** 2
        # rewards 0.8, 0.2, 0.5: mean 0.5, population std sqrt(0.06), z = (+-0.3, 0)/std
        z = np.array([0.3, -0.3, 0.0]) / np.sqrt(0.06)
        g = np.where(on, sum(z[i] * (draw[i] - mu) for i in range(3)) / 3 / s2, 0.0)
        # first Adam step: m-hat = g, v-hat = g^2
        want = np.where(on, mu + 0.05 * g / (np.abs(g) + 1e-8), mu)
        np.testing.assert_allclose(read(nxt, "mu"), want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(read(nxt, "adam_m"), 0.1 * g, rtol=1e-12)
        np.testing.assert_allclose(read(nxt, "adam_v"), 0.001 * g * g, rtol=1e-12)
        self.assertEqual(attr(nxt, "epoch"), 2)
        self.assertEqual(attr(nxt, "adam_step"), 1)
        self.assertEqual(attr(nxt, "last_update"), "applied")
        np.testing.assert_array_equal(read(nxt, "mu_init"), mu)

        # epoch 2 from the new policy: the second step uses the stored moments
        t2 = self.path(f"thetas-2-{form}.h5")
        self.ok("amlfs-sample", "--policy", nxt, "--epoch", 2, "--samples", 3, "--out", t2)
        for e, v in zip(evals, (0.1, 0.4, 0.4)):
            write_eval(e, top1=v, epoch=2)
        r2, _ = self.reward(t2, evals, out=f"rewards-2-{form}.h5")
        p3 = self.path(f"policy-3-{form}.h5")
        self.ok("amlfs-update", "--policy", nxt, "--thetas", t2, "--rewards", r2, "--out", p3)
        mu2, draw2 = read(nxt, "mu"), read(t2, "draw")
        x = np.array([0.1, 0.4, 0.4])
        z2 = (x - x.mean()) / x.std()
        g2 = np.where(on, sum(z2[i] * (draw2[i] - mu2) for i in range(3)) / 3 / s2, 0.0)
        m2 = 0.9 * (0.1 * g) + 0.1 * g2
        v2 = 0.999 * (0.001 * g * g) + 0.001 * g2 * g2
        want2 = np.where(on, mu2 + 0.05 * (m2 / (1 - 0.9 ** 2)) /
                         (np.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8), mu2)
        np.testing.assert_allclose(read(p3, "mu"), want2, rtol=1e-12, atol=1e-14)
        self.assertEqual(attr(p3, "adam_step"), 2)

    def test_skipped_updates(self):
        cases = {"zero spread": (0.5, 0.5, 0.5), "only 1 finite": (0.5, None, None)}
        for reason, values in cases.items():
            with self.subTest(reason=reason):
                p, t = self.setup_epoch(3)
                evals = []
                for i, v in enumerate(values):
                    evals.append(self.path(f"{reason[:4]}{i}.h5"))
                    if v is not None:
                        write_eval(evals[-1], top1=v)
                r, proc = self.reward(t, evals)
                self.assertIn(reason, attr(r, "update_skipped"))
                np.testing.assert_array_equal(read(r, "normalized"), 0)
                nxt = self.path("next.h5")
                self.ok("amlfs-update", "--policy", p, "--thetas", t, "--rewards", r, "--out", nxt)
                np.testing.assert_array_equal(read(nxt, "mu"), read(p, "mu"))
                self.assertEqual(attr(nxt, "adam_step"), 0)
                self.assertEqual(attr(nxt, "epoch"), 2)
                self.assertTrue(attr(nxt, "last_update").startswith("skipped: "))
                self.assertIn(reason, attr(nxt, "last_update"))

    def test_random_mode_never_moves_mu(self):
        p, t = self.setup_epoch(3, "--mode", "random")
        evals = [self.path(f"e{i}.h5") for i in range(3)]
        for e, v in zip(evals, (0.8, 0.2, 0.5)):
            write_eval(e, top1=v)
        r, _ = self.reward(t, evals)
        nxt = self.path("next.h5")
        self.ok("amlfs-update", "--policy", p, "--thetas", t, "--rewards", r, "--out", nxt)
        np.testing.assert_array_equal(read(nxt, "mu"), read(p, "mu"))
        self.assertEqual(attr(nxt, "adam_step"), 0)
        self.assertIn("random mode", attr(nxt, "last_update"))

    def test_broadcast_copies_the_best(self):
        p, t = self.setup_epoch(3)
        evals = [self.path(f"e{i}.h5") for i in range(3)]
        ckpts = [self.path(f"c{i}.h5") for i in range(3)]
        for i, v in enumerate((0.5, 0.9, 0.9)):
            write_eval(evals[i], top1=v)
            write_checkpoint(ckpts[i], fill=0.1 * i)
        r, _ = self.reward(t, evals)
        start = self.path("start.h5")
        self.ok("amlfs-broadcast", "--rewards", r, "--out", start, *ckpts)
        self.assertTrue(filecmp.cmp(start, ckpts[1], shallow=False), "not sample 1's bytes")
        # only the winner is read: a broken loser does not matter
        with open(ckpts[2], "w") as f:
            f.write("broken")
        self.ok("amlfs-broadcast", "--rewards", r, "--out", start, *ckpts)
        # a winner that is no checkpoint, or of another epoch, is bad input
        with open(ckpts[1], "w") as f:
            f.write("broken")
        self.fails(2, "amlfs-broadcast", "--rewards", r, "--out", start, *ckpts,
                   mentions=[ckpts[1], "not an HDF5 file"])
        write_checkpoint(ckpts[1], epoch=4)
        self.fails(2, "amlfs-broadcast", "--rewards", r, "--out", start, *ckpts,
                   mentions=["epoch 4"])

    def test_infinite_rewards_excluded(self):
        """A loss of +inf (metric loss: reward -inf) or -inf, a top-1 of +inf: each is
        excluded as not finite, exactly like NaN, and never best."""
        p, t = self.setup_epoch(5)
        evals = [self.path(f"e{i}.h5") for i in range(5)]
        write_eval(evals[0], loss=0.7)
        write_eval(evals[1], loss=float("inf"))
        write_eval(evals[2], loss=float("-inf"))
        write_eval(evals[3], loss=0.4)
        write_eval(evals[4], loss=float("nan"))
        r, proc = self.reward(t, evals, metric="loss")
        np.testing.assert_array_equal(read(r, "excluded") != 0, [0, 1, 1, 0, 1])
        self.assertEqual(attr(r, "finite"), 2)
        self.assertEqual(attr(r, "best"), 3)
        np.testing.assert_allclose(read(r, "normalized"), [-1, 0, 0, 1, 0], atol=1e-12)
        for i, v in enumerate((0.5, float("inf"), 0.6)):
            write_eval(evals[i], top1=v)
        r, _ = self.reward(t, evals, metric="top1", out="r2.h5")
        self.assertEqual(read(r, "excluded")[1] != 0, True)
        self.assertEqual(attr(r, "best"), 2)

    def test_diverged_winner_refused(self):
        """The best eval says ok but its checkpoint says diverged: amlfs-broadcast refuses
        it (exit 2 naming the file and the status) and writes nothing."""
        p, t = self.setup_epoch(2)
        evals = [self.path("e0.h5"), self.path("e1.h5")]
        ckpts = [self.path("c0.h5"), self.path("c1.h5")]
        write_eval(evals[0], top1=0.3)
        write_eval(evals[1], top1=0.8)
        write_checkpoint(ckpts[0])
        write_checkpoint(ckpts[1], status="diverged")
        r, _ = self.reward(t, evals)
        start = self.path("start.h5")
        self.fails(2, "amlfs-broadcast", "--rewards", r, "--out", start, *ckpts,
                   mentions=[ckpts[1], "diverged"])
        self.assertFalse(os.path.exists(start))

    def test_no_finite_reward_stops_the_run(self):
        p, t = self.setup_epoch(2)
        evals = [self.path("e0.h5"), self.path("e1.h5")]
        write_eval(evals[0], status="diverged", top1=float("nan"))
        r, proc = self.reward(t, evals)
        self.assertEqual(attr(r, "best"), -1)
        self.assertIn("no finite reward", attr(r, "update_skipped"))
        line = self.fails(1, "amlfs-broadcast", "--rewards", r, "--out", self.path("start.h5"),
                          self.path("c0.h5"), self.path("c1.h5"), mentions=["no finite reward"])


if __name__ == "__main__":
    unittest.main()
