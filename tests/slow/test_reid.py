"""A re-ID search end to end on a generated folder: amlfs-synth market writes a
Market-1501-layout folder (bounding_box_train, query, bounding_box_test with pid 0
distractors and -1 junk, six cameras with their own colour shifts); amlfs-run prepares
it (amlfs-prep market1501), searches in the cosine space with P x K batches, rewarded by
the mAP of held-out identities' validation query/gallery, and evaluates the best model
once on the test query/gallery (mAP, CMC); beside it the fixed SphereReID loss (the
plain sphere softmax, the best of B kept each epoch) and the random ablation on the same
prepared file. Checks the files say what they should and prints the three results.

Run with /usr/bin/python3; AMLFS_BIN selects the build (build/rel/bin by default)."""
import math
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import amlfs_test as T  # noqa: E402
from amlfs_test import ToolTest, attr, read  # noqa: E402

CONFIG = os.path.join(T.ROOT, "configs", "reid-small.conf")
EPOCHS = 4


class ReidSearch(ToolTest):
    def run_search(self, out, *sets):
        args = ["--config", CONFIG, "--set", f"epochs={EPOCHS}", "--set", "samples=4"]
        for s in sets:
            args += ["--set", s]
        p = T.run_workflow("amlfs-run", *args, "--out", out, env=T.driver_env(), timeout=900)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])

    def test_search_fixed_and_random(self):
        t0 = time.monotonic()
        market = self.path("market")
        self.ok("amlfs-synth", "market", "--out", market, "--identities", 40,
                "--test-identities", 20, "--size", "64x32", "--seed", 7)
        runs = {"search": self.path("search"), "fixed": self.path("fixed"),
                "random": self.path("random")}
        self.run_search(runs["search"], f"src={market}")
        data = os.path.join(runs["search"], "data", "data.h5")
        self.assertEqual(attr(data, "task"), "reid")
        self.run_search(runs["fixed"], f"src={market}", f"data={data}", "mode=fixed")
        self.run_search(runs["random"], f"src={market}", f"data={data}", "mode=random")
        results = {}
        for name, d in runs.items():
            ev = os.path.join(d, "final", "eval-test.h5")
            self.ok("amlfs-check", ev)
            self.assertEqual(attr(ev, "task"), "reid")
            self.assertTrue(math.isfinite(attr(ev, "mAP")), name)
            cmc = read(ev, "cmc")
            self.assertEqual(len(cmc), 50)
            self.assertTrue(all(a <= b for a, b in zip(cmc, cmc[1:])), f"{name}: CMC falls")
            self.assertEqual(attr(ev, "rank1"), cmc[0])
            for e in range(1, EPOCHS + 1):
                r = os.path.join(d, f"epoch-{e:04d}", "rewards.h5")
                self.assertEqual(attr(r, "metric"), "mAP")
            ck = os.path.join(d, "final", "checkpoint.h5")
            self.assertEqual(attr(ck, "sampler"), "pk")
            results[name] = (attr(ev, "mAP"), attr(ev, "rank1"), attr(ev, "skipped"))
        mu1 = read(os.path.join(runs["search"], "policy", "epoch-0001.h5"), "mu")
        last = read(os.path.join(runs["search"], "policy", f"epoch-{EPOCHS + 1:04d}.h5"), "mu")
        self.assertGreater(float(abs(last - mu1).max()), 0.0)
        self.ok("amlfs-report", runs["search"], "--control", runs["fixed"])
        with open(os.path.join(runs["search"], "report", "index.html")) as f:
            self.assertIn("mAP", f.read())
        print(f"\nreid-small on a generated Market folder, {EPOCHS} epochs, B = 4 "
              f"({time.monotonic() - t0:.0f} s):")
        for name, (m, r1, sk) in results.items():
            print(f"  {name:7s} test mAP {m:.4f}, rank-1 {r1:.4f} ({sk} queries skipped)")


if __name__ == "__main__":
    unittest.main()
